/**
 * The reach task: observation layout (hand-computed), pure reward/termination/success, targets
 * inside the workspace, seeded determinism, and the task registry.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Kinematics } from "../../src/robot/kinematics.js";
import type { Mat3, RobotModel, Vec3 } from "../../src/robot/types.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { createTask, TASK_NAMES } from "../../src/tasks/index.js";
import { ARM_HOME_POSE, DEFAULT_REACH_CONFIG, ReachTask } from "../../src/tasks/reach.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));

/**
 * A hand-built two-joint model: a continuous turret about z at height 0.1 m, a 0.2 m arm to a
 * revolute pitch joint about y, and a 0.1 m link to the tool point. For (θ, φ) the tool point is
 * (cos θ·(0.2 + 0.1 cos φ), sin θ·(0.2 + 0.1 cos φ), 0.1 − 0.1 sin φ).
 */
function turretModel(): RobotModel {
  const R: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const inertial = {
    mass: 0.1,
    com: [0.05, 0, 0] as Vec3,
    inertia: [1e-4, 0, 0, 0, 1e-4, 0, 0, 0, 1e-4] as Mat3,
  };
  const none = { mass: 0, com: [0, 0, 0] as Vec3, inertia: [0, 0, 0, 0, 0, 0, 0, 0, 0] as Mat3 };
  return {
    name: "turret",
    links: [
      {
        name: "base",
        parent: -1,
        jointIndex: -1,
        origin: { R, p: [0, 0, 0] },
        axis: [0, 0, 0],
        inertial: none,
      },
      {
        name: "upper",
        parent: 0,
        jointName: "yaw",
        jointIndex: 0,
        origin: { R, p: [0, 0, 0.1] },
        axis: [0, 0, 1],
        inertial,
      },
      {
        name: "lower",
        parent: 1,
        jointName: "pitch",
        jointIndex: 1,
        origin: { R, p: [0.2, 0, 0] },
        axis: [0, 1, 0],
        inertial,
      },
      {
        name: "tool",
        parent: 2,
        jointName: "tool_joint",
        jointIndex: -1,
        origin: { R, p: [0.1, 0, 0] },
        axis: [0, 0, 0],
        inertial: none,
      },
    ],
    joints: [
      {
        name: "yaw",
        type: "continuous",
        lower: -Infinity,
        upper: Infinity,
        effort: 2,
        velocity: 4,
        damping: 0,
        friction: 0,
        armature: 0,
      },
      {
        name: "pitch",
        type: "revolute",
        lower: -1,
        upper: 1,
        effort: 2,
        velocity: 2,
        damping: 0,
        friction: 0,
        armature: 0,
      },
    ],
    jointLink: [1, 2],
    dof: 2,
    endEffector: "tool",
    gravity: [0, 0, -9.81],
  };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function observe(task: ReachTask, q: number[], qd: number[], goal: number[]): Float32Array {
  const out = new Float32Array(task.observationSize);
  task.observe(Float64Array.from(q), Float64Array.from(qd), Float64Array.from(goal), out);
  return out;
}

describe("reach observation", () => {
  it("lays out q, scaled q̇, end effector, target and their difference on urdf/arm.urdf", () => {
    const task = new ReachTask(arm);
    assert.deepEqual(task.layout, {
      q: 0,
      qLength: 4,
      qd: 4,
      ee: 8,
      target: 11,
      delta: 14,
      fine: 17,
      size: 20,
    });
    assert.equal(task.observationSize, 20);
    assert.equal(task.actionSize, 4);
    assert.equal(task.goalSize, 3);
    // All-zero pose: the tool point is at (0.286, 0, 0.2045) (see urdf/arm.urdf). Velocity limits are 4.8 rad/s.
    const obs = observe(task, [0, 0, 0, 0], [4.8, -2.4, 0, 1.2], [0.1, 0.2, 0.15]);
    const delta = [-0.186, 0.2, -0.0545];
    const fine = delta.map((d) => Math.tanh(d / DEFAULT_REACH_CONFIG.precisionScale));
    const expected = [0, 0, 0, 0, 1, -0.5, 0, 0.25, 0.286, 0, 0.2045, 0.1, 0.2, 0.15, ...delta, ...fine];
    assertClose(obs, expected, 1e-6, "obs");
    assert.ok(Math.abs(task.distance(obs) - Math.hypot(0.186, 0.2, 0.0545)) < 1e-6);
    // The goal a pose achieves is its tool point: a target there is reached.
    const achieved = new Float64Array(3);
    task.achievedGoal(Float64Array.from([0, 0, 0, 0]), achieved);
    assertClose(achieved, [0.286, 0, 0.2045], 1e-9, "achieved goal");
    assert.equal(task.distance(observe(task, [0, 0, 0, 0], [0, 0, 0, 0], Array.from(achieved))), 0);
  });

  it("gives each joint position the spread of a uniform draw over its soft range, and 0 elsewhere", () => {
    const task = new ReachTask(arm);
    const spread = task.observationSpread();
    assert.equal(spread.length, task.observationSize);
    arm.joints.forEach((j, i) => {
      const s = j.safety!;
      assert.ok(Math.abs(spread[i] - (s.softUpper - s.softLower) / Math.sqrt(12)) < 1e-15, j.name);
    });
    assert.ok(spread.subarray(arm.dof).every((v) => v === 0));
  });

  it("uses sin/cos for a continuous joint (hand-built model)", () => {
    const task = new ReachTask(turretModel(), { homePose: [0, 0] });
    assert.deepEqual(task.layout, {
      q: 0,
      qLength: 3,
      qd: 3,
      ee: 5,
      target: 8,
      delta: 11,
      fine: 14,
      size: 17,
    });
    const theta = 2.5;
    const phi = 0.4;
    const r = 0.2 + 0.1 * Math.cos(phi);
    const ee = [Math.cos(theta) * r, Math.sin(theta) * r, 0.1 - 0.1 * Math.sin(phi)];
    const goal = [0.1, -0.1, 0.05];
    const obs = observe(task, [theta, phi], [2, -1], goal);
    const expected = [
      Math.sin(theta),
      Math.cos(theta),
      phi,
      2 / 4,
      -1 / 2,
      ...ee,
      ...goal,
      ...[0, 1, 2].map((a) => goal[a] - ee[a]),
      ...[0, 1, 2].map((a) => Math.tanh((goal[a] - ee[a]) / DEFAULT_REACH_CONFIG.precisionScale)),
    ];
    assertClose(obs, expected, 1e-6, "obs");
    // One more turn of the continuous joint is the same observation.
    assertClose(observe(task, [theta + 2 * Math.PI, phi], [2, -1], goal), obs, 1e-6, "obs after a turn");
    // Spread: sin and cos of a uniform angle 1/√2; the pitch (hard limits ±1, no soft ones) 2/√12.
    assertClose(
      task.observationSpread(),
      [Math.SQRT1_2, Math.SQRT1_2, 2 / Math.sqrt(12), ...new Array(14).fill(0)],
      1e-15,
      "spread",
    );
  });
});

describe("reach reward, termination and success", () => {
  const task = new ReachTask(arm);
  const c = DEFAULT_REACH_CONFIG;

  it("follows the documented formula", () => {
    const obs = observe(task, [0.1, -0.2, 0.3, 0.4], [0, 0, 0, 0], [0.2, 0.1, 0.2]);
    const qd = [1.0, -0.5, 2.0, 0];
    const nextObs = observe(task, [0.12, -0.21, 0.33, 0.4], qd, [0.2, 0.1, 0.2]);
    const action = Float32Array.from([0.5, -1, 0, 0.25]);
    const d = task.distance(nextObs);
    assert.ok(d > c.successRadius);
    const expected =
      -c.distanceWeight * d +
      c.precisionWeight * Math.exp(-((d / c.precisionScale) ** 2)) -
      c.actionWeight * (0.25 + 1 + 0.0625) -
      c.velocityWeight * (1 + 0.25 + 4);
    assert.ok(Math.abs(task.reward(obs, action, nextObs) - expected) < 1e-6);
  });

  it("adds the bonus inside the success radius, and success and distance agree", () => {
    const inside = new Float32Array(task.observationSize);
    inside[task.layout.delta] = 0.012;
    inside[task.layout.delta + 2] = -0.01;
    const outside = new Float32Array(task.observationSize);
    outside[task.layout.delta + 1] = 0.021;
    assert.ok(Math.abs(task.distance(inside) - Math.hypot(0.012, 0.01)) < 1e-7);
    assert.equal(task.success(inside), true);
    assert.equal(task.success(outside), false);
    const zero = new Float32Array(4);
    const precision = (d: number) => c.precisionWeight * Math.exp(-((d / c.precisionScale) ** 2));
    const dIn = task.distance(inside);
    const dOut = task.distance(outside);
    assert.ok(Math.abs(task.reward(outside, zero, inside) - (-dIn + precision(dIn) + c.successBonus)) < 1e-7);
    assert.ok(Math.abs(task.reward(inside, zero, outside) - (-dOut + precision(dOut))) < 1e-7);
    // The precision term rises steeply over the last centimetres: it pays more to go from 3 cm to
    // 1 cm than the distance term alone would (0.02).
    const shaped = (d: number) => -d + precision(d);
    assert.ok(shaped(0.01) - shaped(0.03) > 10 * 0.02);
  });

  it("terminates only on a non-finite observation, with the invalid reward", () => {
    const obs = observe(task, [0, -0.6, 0.3, 0.9], [0, 0, 0, 0], [0.2, 0, 0.1]);
    assert.equal(task.terminated(obs), false);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const broken = Float32Array.from(obs);
      broken[5] = bad;
      assert.equal(task.terminated(broken), true);
      assert.equal(task.reward(obs, new Float32Array(4), broken), c.invalidReward);
    }
  });

  it("are pure: the same observations give the same results on any instance, whatever it did before", () => {
    const a = new ReachTask(arm);
    const b = new ReachTask(arm);
    const rng = new Rng(5);
    fc.assert(
      fc.property(
        fc.float32Array({
          minLength: 17,
          maxLength: 17,
          noNaN: true,
          noDefaultInfinity: true,
          min: -3,
          max: 3,
        }),
        fc.float32Array({
          minLength: 17,
          maxLength: 17,
          noNaN: true,
          noDefaultInfinity: true,
          min: -3,
          max: 3,
        }),
        fc.float32Array({ minLength: 4, maxLength: 4, noNaN: true, min: -1, max: 1 }),
        (obs, nextObs, action) => {
          const obsCopy = Float32Array.from(obs);
          const nextCopy = Float32Array.from(nextObs);
          const before = [
            a.reward(obs, action, nextObs),
            a.terminated(nextObs),
            a.success(nextObs),
            a.distance(nextObs),
          ];
          // Churn instance a's state: new episodes and observations of other states.
          const episode = a.sampleEpisode(rng);
          observe(a, Array.from(episode.goalPosition ?? []), [1, 2, 3, 4], Array.from(episode.goal));
          const after = [
            a.reward(obs, action, nextObs),
            a.terminated(nextObs),
            a.success(nextObs),
            a.distance(nextObs),
          ];
          const other = [
            b.reward(obs, action, nextObs),
            b.terminated(nextObs),
            b.success(nextObs),
            b.distance(nextObs),
          ];
          assert.deepEqual(after, before);
          assert.deepEqual(other, before);
          assert.deepEqual(obs, obsCopy, "reward must not modify its inputs");
          assert.deepEqual(nextObs, nextCopy, "reward must not modify its inputs");
        },
      ),
      { numRuns: 200, seed: 42 },
    );
  });
});

describe("reach episodes", () => {
  const task = new ReachTask(arm);
  const kin = new Kinematics(arm);
  const ee = kin.linkIndex("end_effector");
  // The shoulder (joint2) sits at (0.012, 0, 0.0765); the links beyond it are 0.1302 + 0.124 + 0.126 m long.
  const shoulder = [0.012, 0, 0.0765];
  const reach = Math.hypot(0.024, 0.128) + 0.124 + 0.126;

  it("samples targets inside the workspace, above the floor, with a goal pose that reaches them", () => {
    const c = DEFAULT_REACH_CONFIG;
    const p = new Float64Array(3);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const rng = new Rng(seed);
        for (let k = 0; k < 5; k++) {
          const { startPosition, goal, goalPosition } = task.sampleEpisode(rng);
          assert.ok(goalPosition !== undefined);
          assert.equal(goal.length, 3);
          assert.ok(goal[2] >= c.floorHeight, `target z ${goal[2]}`);
          assert.ok(Math.hypot(goal[0], goal[1]) >= c.minTargetRadius, `target radius ${goal}`);
          const fromShoulder = Math.hypot(
            goal[0] - shoulder[0],
            goal[1] - shoulder[1],
            goal[2] - shoulder[2],
          );
          assert.ok(fromShoulder <= reach + 1e-9, `target ${fromShoulder} m from the shoulder`);
          arm.joints.forEach((j, i) => {
            const s = j.safety!;
            assert.ok(
              goalPosition[i] >= s.softLower + c.targetMargin &&
                goalPosition[i] <= s.softUpper - c.targetMargin,
            );
            assert.ok(Math.abs(goalPosition[i] - ARM_HOME_POSE[i]) <= c.targetSpread + 1e-12);
            assert.ok(Math.abs(startPosition[i] - ARM_HOME_POSE[i]) <= c.startNoise + 1e-12);
            assert.ok(startPosition[i] >= s.softLower && startPosition[i] <= s.softUpper);
          });
          kin.update(goalPosition);
          kin.linkPosition(ee, p);
          assertClose(goal, p, 1e-12, "goal = FK(goalPosition)");
          // No link of the goal pose below the table, the mounts (base, turret) aside.
          for (const link of ["link2", "link3", "link4", "end_effector"]) {
            kin.linkPosition(kin.linkIndex(link), p);
            assert.ok(p[2] >= c.floorHeight, `${link} at z = ${p[2]}`);
          }
        }
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  it("is reproducible from the seed, and different seeds give different episodes", () => {
    const run = (seed: number) => {
      const rng = new Rng(seed);
      return [0, 1, 2].map(() => {
        const e = task.sampleEpisode(rng);
        return [Array.from(e.startPosition), Array.from(e.goal), Array.from(e.goalPosition ?? [])];
      });
    };
    assert.deepEqual(run(11), run(11));
    assert.deepEqual(
      new ReachTask(arm).sampleEpisode(new Rng(3)),
      new ReachTask(arm).sampleEpisode(new Rng(3)),
    );
    assert.notDeepEqual(run(11), run(12));
  });

  it("spreads goal poses over ±targetSpread of home; a wide spread covers each joint's whole range", () => {
    const spanOf = (t: ReachTask) => {
      const rng = new Rng(5);
      const lo = [...ARM_HOME_POSE];
      const hi = [...ARM_HOME_POSE];
      for (let k = 0; k < 400; k++) {
        const g = t.sampleEpisode(rng).goalPosition!;
        g.forEach((q, i) => {
          lo[i] = Math.min(lo[i], q);
          hi[i] = Math.max(hi[i], q);
        });
      }
      return { lo, hi };
    };
    const narrow = spanOf(new ReachTask(arm, { targetSpread: 0.2 }));
    ARM_HOME_POSE.forEach((h, i) => {
      assert.ok(narrow.lo[i] >= h - 0.2 - 1e-12 && narrow.hi[i] <= h + 0.2 + 1e-12);
      assert.ok(narrow.hi[i] - narrow.lo[i] > 0.3, `joint ${i} spans ${narrow.hi[i] - narrow.lo[i]}`);
    });
    // Joint 1 (the turret) has ±2.7 rad soft limits: a spread of 10 rad reaches far behind the arm.
    const wide = spanOf(new ReachTask(arm, { targetSpread: 10 }));
    assert.ok(wide.lo[0] < -2 && wide.hi[0] > 2, `turret goals in [${wide.lo[0]}, ${wide.hi[0]}]`);
    assert.throws(
      () => new ReachTask(arm, { targetSpread: 0 }),
      /reach: targetSpread must be a positive number/,
    );
  });

  it("says which goals lie where it sets targets: nearly every target of other seeds does, the far workspace does not", () => {
    const home = new Float64Array(3);
    task.achievedGoal(Float64Array.from(ARM_HOME_POSE), home);
    const fromHome = (p: Float64Array) => Math.hypot(p[0] - home[0], p[1] - home[1], p[2] - home[2]);
    // The range is measured on 512 targets of one fixed seed; targets of other seeds fall inside it
    // but for the rare one a little beyond the farthest of those.
    const rng = new Rng(29);
    let inside = 0;
    let farthest = 0;
    for (let k = 0; k < 2000; k++) {
      const { goal } = task.sampleEpisode(rng);
      farthest = Math.max(farthest, fromHome(goal));
      if (task.goalInRange(goal)) inside++;
    }
    assert.ok(inside >= 1980, `${inside} of 2000 sampled targets in range (farthest ${farthest} m)`);
    assert.equal(task.goalInRange(home), true);
    // A point half as far again as the farthest target, or the tool with the turret turned behind
    // the arm, is not.
    assert.equal(task.goalInRange(Float64Array.from([home[0] + 1.5 * farthest, home[1], home[2]])), false);
    const turned = new Kinematics(arm);
    turned.update(Float64Array.from([2.5, ...ARM_HOME_POSE.slice(1)]));
    const behind = new Float64Array(3);
    turned.linkPosition(ee, behind);
    assert.equal(task.goalInRange(behind), false);
  });

  it("starts exactly at the home pose without start noise", () => {
    const still = new ReachTask(arm, { startNoise: 0 });
    assert.deepEqual(Array.from(still.sampleEpisode(new Rng(1)).startPosition), ARM_HOME_POSE);
  });

  it("fails clearly when the floor leaves no workspace", () => {
    const high = new ReachTask(arm, { floorHeight: 2, maxTargetTries: 50 });
    assert.throws(() => high.sampleEpisode(new Rng(1)), /reach: no target found in 50 tries/);
  });
});

describe("createTask", () => {
  it("builds reach with the stack's parameters", () => {
    const task = createTask("reach", arm, { episodeSteps: 50, successRadius: 0.01 });
    assert.equal(task.name, "reach");
    assert.equal(task.episodeSteps, 50);
    assert.equal(task.params().successRadius, 0.01);
    assert.equal(task.params().homePose, ARM_HOME_POSE.join(","));
    assert.deepEqual(TASK_NAMES, ["reach"]);
  });

  it("names the known tasks for an unknown name, and the field for a bad parameter", () => {
    assert.throws(() => createTask("push", arm), /unknown task "push" \(known tasks: reach\)/);
    assert.throws(() => createTask("toString", arm), /unknown task "toString"/);
    assert.throws(
      () => createTask("reach", arm, { successRadius: -1 }),
      /reach: successRadius must be a positive number/,
    );
    assert.throws(
      () => createTask("reach", arm, { episodeSteps: 2.5 }),
      /reach: episodeSteps must be a positive integer, got 2.5/,
    );
    assert.throws(
      () => createTask("reach", arm, { successRadiuss: 0.1 } as never),
      /reach: unknown parameter "successRadiuss"/,
    );
    assert.throws(
      () => createTask("reach", arm, { homePose: [0, 0] }),
      /reach: homePose has 2 values; expected 4/,
    );
    assert.throws(
      () => createTask("reach", arm, { homePose: [0, 3, 0, 0] }),
      /reach: homePose\[1\] \(joint2\) = 3 is outside the soft limits/,
    );
  });

  it("ignores parameters given as undefined (config fields left unset)", () => {
    const task = createTask("reach", arm, { episodeSteps: undefined, successRadius: 0.03 });
    assert.equal(task.episodeSteps, DEFAULT_REACH_CONFIG.episodeSteps);
  });
});
