import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { Dynamics } from "../../src/robot/dynamics.js";
import { Kinematics } from "../../src/robot/kinematics.js";
import type { RobotModel } from "../../src/robot/types.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));
const branched = loadUrdf(resolve(packageRoot(), "test/urdf/branched.urdf"));

function eePosition(model: RobotModel, q: number[], link = model.endEffector): number[] {
  const kin = new Kinematics(model);
  kin.update(Float64Array.from(q));
  const p = new Float64Array(3);
  kin.linkPosition(kin.linkIndex(link), p);
  return Array.from(p);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test("arm forward kinematics on hand-checked poses", () => {
  // All zero: upper arm up, forearm forward: x = 0.012 + 0.024 + 0.124 + 0.126, z = 0.017 + 0.0595 + 0.128.
  assertClose(eePosition(arm, [0, 0, 0, 0]), [0.286, 0, 0.2045], 1e-12, "zero pose");
  // Turret turned 90° left: the same reach swings to +y about the joint1 axis at x = 0.012.
  assertClose(eePosition(arm, [Math.PI / 2, 0, 0, 0]), [0.012, 0.274, 0.2045], 1e-12, "joint1 = π/2");
  // Shoulder pitched 90° forward: the upper arm lies along +x, the forearm points down.
  assertClose(
    eePosition(arm, [0, Math.PI / 2, 0, 0]),
    [0.012 + 0.128, 0, 0.0765 - 0.024 - 0.25],
    1e-12,
    "joint2 = π/2",
  );
  // Elbow at −90° (about y, so the forearm turns up): straight up from the elbow.
  assertClose(eePosition(arm, [0, 0, -Math.PI / 2, 0]), [0.036, 0, 0.2045 + 0.25], 1e-12, "joint3 = −π/2");
  // Fixed links have frames too: the base link is the root frame.
  assertClose(eePosition(arm, [0.4, 0.3, -0.2, 0.1], "base_link"), [0, 0, 0], 0, "base link");
  // Stretched out horizontally (upper arm and forearm in line): the reach from the shoulder is
  // |(0.024, 0.128)| + 0.124 + 0.126 ≈ 0.38 m (OpenManipulator-X class).
  const alpha = Math.atan2(0.128, 0.024);
  const reach = Math.hypot(0.024, 0.128) + 0.25;
  assertClose(eePosition(arm, [0, alpha, -alpha, 0]), [0.012 + reach, 0, 0.0765], 1e-12, "stretched");
  assert.ok(Math.abs(reach - 0.38) < 0.002, `reach ${reach}`);
});

test("link rotation follows the joints (rotation about z by joint1)", () => {
  const kin = new Kinematics(arm);
  kin.update(Float64Array.from([0.7, 0, 0, 0]));
  const R = new Float64Array(9);
  kin.linkRotation(kin.linkIndex("end_effector"), R);
  const c = Math.cos(0.7);
  const s = Math.sin(0.7);
  assertClose(R, [c, -s, 0, s, c, 0, 0, 0, 1], 1e-15, "R");
  assert.throws(() => kin.linkIndex("gripper"), /no link named "gripper" \(links: base_link, link1/);
});

/** The Jacobian against central differences of FK: linear part from positions, angular from rotations. */
function checkJacobian(model: RobotModel, linkName: string, point: Float64Array | undefined, seed: number) {
  const kin = new Kinematics(model);
  const link = kin.linkIndex(linkName);
  const n = model.dof;
  const rng = new Rng(seed);
  const J = new Float64Array(6 * n);
  const p = new Float64Array(3);
  const R = new Float64Array(9);
  const Rp = new Float64Array(9);
  const Rm = new Float64Array(9);
  const pointAt = (q: Float64Array) => {
    kin.update(q);
    kin.linkPosition(link, p);
    kin.linkRotation(link, R);
    const x = point ?? new Float64Array(3);
    return [0, 1, 2].map((i) => p[i] + R[3 * i] * x[0] + R[3 * i + 1] * x[1] + R[3 * i + 2] * x[2]);
  };
  const h = 1e-6;
  let worst = 0;
  for (let trial = 0; trial < 20; trial++) {
    const q = Float64Array.from(model.joints, (j) =>
      rng.range(Number.isFinite(j.lower) ? j.lower : -3, Number.isFinite(j.upper) ? j.upper : 3),
    );
    kin.update(q);
    kin.jacobian(link, J, point);
    for (let j = 0; j < n; j++) {
      const qp = Float64Array.from(q);
      const qm = Float64Array.from(q);
      qp[j] += h;
      qm[j] -= h;
      const xp = pointAt(qp);
      kin.linkRotation(link, Rp);
      const xm = pointAt(qm);
      kin.linkRotation(link, Rm);
      // ω× ≈ (R(q+h) − R(q−h))/(2h) · Rᵀ
      kin.update(q);
      kin.linkRotation(link, R);
      const dR = Rp.map((x, k) => (x - Rm[k]) / (2 * h));
      const W = (a: number, b: number) =>
        dR[3 * a] * R[3 * b] + dR[3 * a + 1] * R[3 * b + 1] + dR[3 * a + 2] * R[3 * b + 2];
      const column = [
        (xp[0] - xm[0]) / (2 * h),
        (xp[1] - xm[1]) / (2 * h),
        (xp[2] - xm[2]) / (2 * h),
        W(2, 1),
        W(0, 2),
        W(1, 0),
      ];
      for (let r = 0; r < 6; r++) worst = Math.max(worst, Math.abs(J[r * n + j] - column[r]));
    }
  }
  assert.ok(worst < 1e-8, `${model.name}/${linkName}: worst |J − finite difference| = ${worst}`);
}

test("the Jacobian matches finite differences of forward kinematics", () => {
  checkJacobian(arm, "end_effector", undefined, 3);
  checkJacobian(arm, "link3", Float64Array.from([0.05, -0.02, 0.03]), 4);
  checkJacobian(branched, "right_tool", Float64Array.from([0.01, 0.02, -0.03]), 5);
  checkJacobian(branched, "left_fore", undefined, 6);
  checkJacobian(branched, "plate", undefined, 7);
});

test("columns of joints that do not carry the link are zero (branched tree)", () => {
  const kin = new Kinematics(branched);
  kin.update(Float64Array.from([0.1, 0.5, 0.3, -0.7, 0.9, 0.4]));
  const J = new Float64Array(6 * 6);
  kin.jacobian(kin.linkIndex("left_fore"), J);
  for (let r = 0; r < 6; r++) {
    assert.equal(J[r * 6 + 4], 0, "right_shoulder column");
    assert.equal(J[r * 6 + 5], 0, "right_elbow column");
  }
  assert.ok(Math.abs(J[2 * 6]) > 0.5, "the lift moves the arm up");
});

test("the arm holds itself against gravity in every pose with a wide margin", () => {
  const dyn = new Dynamics(arm);
  const rng = new Rng(11);
  const q = new Float64Array(4);
  const g = new Float64Array(4);
  const worst = [0, 0, 0, 0];
  for (let k = 0; k < 5000; k++) {
    arm.joints.forEach((j, i) => {
      q[i] = rng.range(j.lower, j.upper);
    });
    dyn.gravity(q, g);
    for (let i = 0; i < 4; i++) worst[i] = Math.max(worst[i], Math.abs(g[i]) / arm.joints[i].effort);
  }
  // Stretched out horizontally the shoulder carries about 0.8 N·m, a fifth of the 4.1 N·m limit.
  assert.ok(
    Math.max(...worst) < 0.3,
    `worst gravity torque / effort limit per joint: ${worst.map((w) => w.toFixed(3))}`,
  );
  assert.ok(worst[1] > 0.1, "the shoulder does carry the arm");
});
