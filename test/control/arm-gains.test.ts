/**
 * Gains derived from each arm's dynamics: close to the hand-tuned ones on urdf/arm.urdf, scaled
 * with the inertias on the other arms, stable on every joint; a gain the user sets is checked and
 * refused, naming the setting and the joint, where it would ring.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import {
  deriveArmGains,
  instability,
  loopIsStable,
  resolveArmGains,
  rootsInsideUnitCircle,
  STATE_DELAY_PERIODS,
} from "../../src/control/arm-gains.js";
import { createControlStack } from "../../src/control/stack.js";
import { loadRobotDescription } from "../../src/robot/description.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { packageRoot } from "../../src/util/paths.js";

const ARMS = ["urdf/arm.urdf", "urdf/so100.urdf.xacro", "urdf/ur5e.urdf.xacro", "urdf/panda.urdf.xacro"];
const load = (file: string) => loadRobotDescription(resolve(packageRoot(), file));

test("urdf/arm.urdf: the derived dampings are within 30% of those tuned on it by hand; the hand-tuned PD rings on a late state", () => {
  const model = load("urdf/arm.urdf");
  const g = deriveArmGains(model, new Dynamics(model), 50);
  const near = (values: number[], tuned: number) =>
    values.every((v) => Math.abs(v - tuned) / tuned <= 0.3) || assert.fail(`${values} vs ${tuned}`);
  near(g.actionDamping, 0.3);
  near(g.holdDamping, 0.05);
  // The PD tuned by hand (kp 4, kd 0.3) is stable on a fresh state and on one a period late, not
  // on one two periods late (the wrist, I = 0.0115 kg·m²); the derived one is stable on all three.
  const wrist = g.inertia[3];
  assert.equal(instability("pd", 4, 0.3, wrist, 50, 0), undefined);
  assert.equal(instability("pd", 4, 0.3, wrist, 50, 1), undefined);
  assert.match(instability("pd", 4, 0.3, wrist, 50, 2) ?? "", /unstable with the state 2 periods late/);
  for (let delay = 0; delay <= 2; delay++)
    assert.equal(instability("pd", g.resetKp[3], g.resetKd[3], wrist, 50, delay), undefined);
});

test("the Schur–Cohn test agrees with polynomials whose roots are known", () => {
  // (z − r1)(z − r2)(z − r3) expanded, highest power first.
  const cubic = (r1: number, r2: number, r3: number) => [
    1,
    -(r1 + r2 + r3),
    r1 * r2 + r1 * r3 + r2 * r3,
    -r1 * r2 * r3,
  ];
  assert.equal(rootsInsideUnitCircle(cubic(0.5, -0.9, 0.99)), true);
  assert.equal(rootsInsideUnitCircle(cubic(0.5, -0.9, 1.01)), false);
  assert.equal(rootsInsideUnitCircle(cubic(-1.2, 0.1, 0.1)), false);
  assert.equal(rootsInsideUnitCircle(cubic(0, 0, 1)), false, "a root on the circle is not inside");
  // z² − z + d: complex roots of magnitude √d.
  assert.equal(rootsInsideUnitCircle([1, -1, 0.98]), true);
  assert.equal(rootsInsideUnitCircle([1, -1, 1.02]), false);
  // Velocity feedback with k periods of delay, z^(k+1) − z^k + d, is stable for d < 2·sin(π / (2(2k + 1))).
  for (let k = 0; k <= 4; k++) {
    const bound = 2 * Math.sin(Math.PI / (2 * (2 * k + 1)));
    assert.equal(loopIsStable(0, bound * 0.99, k), true, `k = ${k}`);
    assert.equal(loopIsStable(0, bound * 1.01, k), false, `k = ${k}`);
  }
  // A fresh PD: kp·T²/I < 4 − 2·kd·T/I (and kd·T/I < 2).
  assert.equal(loopIsStable(2.99, 0.5, 0), true);
  assert.equal(loopIsStable(3.01, 0.5, 0), false);
});

test("every arm: derived gains are stable on every joint at 10–1000 Hz, on a state up to two periods late, and scale with its inertia", () => {
  for (const file of ARMS) {
    const model = load(file);
    const dynamics = new Dynamics(model);
    for (const rate of [10, 50, 500, 1000]) {
      const g = deriveArmGains(model, dynamics, rate);
      model.joints.forEach((j, i) => {
        const where = `${file} ${j.name} at ${rate} Hz`;
        assert.ok(g.inertia[i] > 0, where);
        for (let delay = 0; delay <= STATE_DELAY_PERIODS; delay++) {
          const I = g.inertia[i];
          assert.equal(instability("damping", 0, g.actionDamping[i], I, rate, delay), undefined, where);
          assert.equal(instability("damping", 0, g.holdDamping[i], I, rate, delay), undefined, where);
          assert.equal(instability("pd", g.resetKp[i], g.resetKd[i], I, rate, delay), undefined, where);
        }
      });
    }
  }
  // A UR5e-class shoulder is ~70 times a desk servo joint: its damping follows.
  const small = deriveArmGains(load("urdf/arm.urdf"), new Dynamics(load("urdf/arm.urdf")), 50);
  const ur = load("urdf/ur5e.urdf.xacro");
  const big = deriveArmGains(ur, new Dynamics(ur), 50);
  assert.ok(big.actionDamping[1] / small.actionDamping[1] > 30);
});

test("the smallest effective inertia is no larger than M_ii at the middle of the range, and includes the armature", () => {
  const model = load("urdf/ur5e.urdf.xacro");
  const dynamics = new Dynamics(model);
  const g = deriveArmGains(model, dynamics, 50);
  const q = Float64Array.from(
    model.joints,
    (j) => 0.5 * ((j.safety?.softLower ?? j.lower) + (j.safety?.softUpper ?? j.upper)),
  );
  const M = new Float64Array(model.dof * model.dof);
  dynamics.massMatrix(q, M);
  model.joints.forEach((j, i) => {
    assert.ok(g.inertia[i] <= M[i * model.dof + i] + 1e-15, j.name);
    assert.ok(g.inertia[i] >= j.armature, j.name);
  });
});

test("a gain the config sets is used as given (one value or one per joint) and refused where it would ring", () => {
  const model = load("urdf/arm.urdf");
  const config = withOverrides(defaultConfig(), { action_damping: 0.2, "reset.kp": [1, 1.1, 1.2, 1] });
  const g = resolveArmGains(config, model);
  assert.deepEqual(g.actionDamping, [0.2, 0.2, 0.2, 0.2]);
  assert.deepEqual(g.resetKp, [1, 1.1, 1.2, 1]);
  assert.deepEqual(g.fromConfig, ["action_damping", "reset.kp"]);
  assert.deepEqual(g.warnings, []);
  assert.deepEqual(resolveArmGains(defaultConfig(), model).warnings, [], "derived gains warn of nothing");

  // The hand-tuned PD of before: accepted (stable on a fresh state), with a warning per joint
  // where a state two periods late makes it ring.
  const tuned = resolveArmGains(withOverrides(defaultConfig(), { "reset.kp": 4, "reset.kd": 0.3 }), model);
  assert.ok(tuned.warnings.length >= 1, JSON.stringify(tuned.warnings));
  assert.match(
    tuned.warnings.find((w) => w.includes('"joint4"')) ?? "",
    /^reset.kp\/kd on joint "joint4": kp 4, kd 0.3 .* unstable with the state 2 periods late .* at 50 Hz/,
  );

  // 2 I / T for the arm's lightest joint at 50 Hz is about 1.08 N·m·s/rad.
  assert.throws(
    () => resolveArmGains(withOverrides(defaultConfig(), { action_damping: 1.5 }), model),
    /^Error: action_damping on joint "joint1": 1.5 N·m·s\/rad over a 20 ms period .* unstable .* at 50 Hz/,
  );
  assert.throws(
    () => resolveArmGains(withOverrides(defaultConfig(), { "reset.kp": [4, 4, 4, 200] }), model),
    /reset.kp\/kd on joint "joint4": kp 200, kd .* unstable/,
  );
  assert.throws(
    () => resolveArmGains(withOverrides(defaultConfig(), { hold_damping: [0.1, 0.1] }), model),
    /hold_damping: 2 values for 4 joints/,
  );
  // The same damping is fine on a heavy arm: the check is per joint, from its inertia.
  const ur = load("urdf/ur5e.urdf.xacro");
  assert.deepEqual(
    resolveArmGains(withOverrides(defaultConfig(), { action_damping: 1.5 }), ur).actionDamping[0],
    1.5,
  );
});

test("the stack runs episodes with the resolved gains, and a bad one stops it before it starts", () => {
  const stack = createControlStack(withOverrides(defaultConfig(), { "reset.kd": [0.3, 0.3, 0.3, 0.25] }));
  assert.deepEqual(stack.gains.resetKd, [0.3, 0.3, 0.3, 0.25]);
  assert.deepEqual(
    [...(stack.runner as unknown as { resetMove: { kd: Float64Array } }).resetMove.kd],
    [0.3, 0.3, 0.3, 0.25],
  );
  assert.throws(
    () => createControlStack(withOverrides(defaultConfig(), { hold_damping: 5 })),
    /hold_damping on joint/,
  );
});
