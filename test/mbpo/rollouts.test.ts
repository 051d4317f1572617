import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { defaultConfig } from "../../src/config/config.js";
import type { JointState } from "../../src/drivers/driver.js";
import type { EnsembleSample } from "../../src/mbpo/ensemble.js";
import { type ControlSpec, controlSpecFromConfig } from "../../src/mbpo/learner.js";
import { RealReplayBuffer, ReplayBuffer } from "../../src/mbpo/replay-buffer.js";
import {
  BranchedRollouts,
  createRolloutStarts,
  EffortModel,
  modelInputSize,
  modelOutputSize,
  type RolloutModel,
  type RolloutPolicy,
  realModelData,
  sampleRolloutStarts,
} from "../../src/mbpo/rollouts.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { SafetyFilter } from "../../src/safety/filter.js";
import { ReachTask } from "../../src/tasks/reach.js";
import type { Task } from "../../src/tasks/task.js";
import { packageRoot } from "../../src/util/paths.js";
import { Rng } from "../../src/util/rng.js";

const arm = loadUrdf(resolve(packageRoot(), "urdf/arm.urdf"));
const dynamics = new Dynamics(arm);
const control: ControlSpec = controlSpecFromConfig(defaultConfig(), arm);
const DOF = arm.dof;

describe("EffortModel", () => {
  it("sends what ControlLoop + SafetyFilter send, tick after tick, near and past every limit", async () => {
    const config = defaultConfig();
    const filter = new SafetyFilter(
      arm.joints,
      {
        effortScale: 0.8, // so that the effort clamp acts below the action's reach
        torqueRateLimit: control.torqueRateLimit,
        staleTimeout: config.safety.stale_timeout,
        positionMargin: config.safety.position_margin,
        velocityMargin: config.safety.velocity_margin,
        useSoftLimits: true,
      },
      dynamics,
    );
    const spec = { ...control, effortScale: 0.8, actionTorqueFraction: 0.9 };
    const model = new EffortModel(arm, spec, dynamics);
    const rng = new Rng(3);
    const q = new Float64Array(DOF);
    const qd = new Float64Array(DOF);
    const action = new Float32Array(DOF);
    const previous = new Float64Array(DOF).fill(Number.NaN); // first tick: the filter starts from the hold
    const ours = new Float64Array(DOF);
    const gravity = new Float64Array(DOF);
    const command = new Float64Array(DOF);
    const sent = new Float64Array(DOF);
    const dt = 1 / spec.controlRateHz;
    const acted = {
      softLimit: 0,
      rateLimit: 0,
      dynamicLimit: 0,
      positionLimit: 0,
      velocityLimit: 0,
      effortClamp: 0,
    };
    for (let tick = 0; tick < 3000; tick++) {
      arm.joints.forEach((j, i) => {
        // States across the whole admissible range: inside, near and past the soft and hard
        // limits (up to the watchdog's margin), and up to past the velocity limit.
        q[i] = rng.range(j.lower - 0.04, j.upper + 0.04);
        qd[i] = rng.range(-1.2, 1.2) * j.velocity;
        action[i] = rng.range(-1.3, 1.3);
      });
      const state: JointState = {
        stamp: tick * dt,
        position: q,
        velocity: qd,
        effort: new Float64Array(DOF),
      };
      dynamics.gravity(q, gravity);
      model.effort(q, qd, action, previous, 0, ours);
      for (let i = 0; i < DOF; i++) {
        command[i] =
          Math.max(-1, Math.min(1, action[i])) * model.torqueScale[i] -
          (spec.actionDamping as number[])[i] * qd[i] +
          gravity[i];
      }
      // Every tick is a new random state, not where the last torque took the arm: the filter's
      // observer of its own prediction error has nothing to learn from (nor has a model state).
      filter.forgetMotionHistory();
      const report = filter.filter(command, state, tick * dt, gravity, dt, sent);
      assert.equal(report.faulted, false, `tick ${tick}: the test state should pass the watchdog`);
      for (const kind of Object.keys(acted) as (keyof typeof acted)[])
        acted[kind] += report.interventions[kind];
      for (let i = 0; i < DOF; i++) {
        assert.ok(
          Math.abs(ours[i] - sent[i]) <= 1e-12,
          `tick ${tick} joint ${i}: model ${ours[i]}, filter ${sent[i]}`,
        );
      }
      previous.set(sent);
    }
    // The comparison covered every rule the model mirrors.
    for (const [kind, count] of Object.entries(acted))
      assert.ok(count > 20, `${kind} acted only ${count} times`);
  });

  it("adds no gravity when compensation is off, and needs Dynamics when it is on", async () => {
    assert.throws(() => new EffortModel(arm, control), /Dynamics are needed/);
    const model = new EffortModel(arm, { ...control, gravityCompensation: false, torqueRateLimit: 1e9 });
    const q = Float64Array.from([0, -0.6, 0.3, 0.9]);
    const out = new Float64Array(DOF);
    model.effort(
      q,
      new Float64Array(DOF),
      Float32Array.from([0.5, -0.5, 0.25, 0]),
      new Float64Array(DOF),
      0,
      out,
    );
    assert.deepEqual(
      Array.from(out),
      [0.5, -0.5, 0.25, 0].map((a, i) => a * model.torqueScale[i]),
    );
  });
});

/**
 * A hand-built model: Δ and disagreement are functions of each row's input (q, q̇, τ), so every
 * branch's fate is known in advance. It records the inputs it was given.
 */
class ScriptedModel implements RolloutModel {
  readonly inputSize = modelInputSize(DOF);
  readonly outputSize = modelOutputSize(DOF);
  readonly inputs: number[][] = [];
  constructor(
    private readonly delta: (q0: number) => number,
    private readonly disagreement: (q0: number) => number,
  ) {}
  randomElites(rows: number, _rng: Rng, out: Int32Array): void {
    out.fill(0, 0, rows);
  }
  async sample(
    inputs: Float32Array,
    rows: number,
    _members: Int32Array,
    _rng: Rng,
    out: EnsembleSample,
  ): Promise<void> {
    for (let r = 0; r < rows; r++) {
      const row = Array.from(inputs.subarray(r * this.inputSize, (r + 1) * this.inputSize));
      this.inputs.push(row);
      out.delta.fill(0, r * this.outputSize, (r + 1) * this.outputSize);
      out.delta[r * this.outputSize] = this.delta(row[0]); // Δq of joint 0 only
      out.disagreement[r] = this.disagreement(row[0]);
    }
  }
}

/** Reach, except that the episode terminates once joint 0 passes 1.43 rad (a failure state for the test). */
function terminatingReach(): Task {
  const reach = new ReachTask(arm);
  return Object.assign(Object.create(reach) as ReachTask, {
    terminated: (nextObs: Float32Array) => nextObs[reach.layout.q] > 1.43,
  });
}

describe("BranchedRollouts", () => {
  // Four kinds of branch, told apart by joint 0's start position:
  //   q0 = 0.0    Δq0 = +0.01, no disagreement          → runs all k steps
  //   q0 = 0.5    disagreement 1 (threshold 0.5)        → cut by the uncertainty filter at step 1
  //   q0 = 2.7    Δq0 = +0.2 → 2.9 > 2.8 + 0.05         → cut by the joint-limit filter at step 1
  //   q0 = 1.405  Δq0 = +0.01 → 1.435 > 1.43 at step 3  → terminated (kept) at step 3
  //   q0 = -0.5   Δq0 = −0.1, disagreement once q0 < −0.65 → 2 kept, cut by uncertainty at step 3
  const starts0 = [0, 0.5, 2.7, 1.405, -0.5];
  const delta = (q0: number) => (q0 > 2 ? 0.2 : q0 < -0.4 ? -0.1 : 0.01);
  const disagreement = (q0: number) => (Math.abs(q0 - 0.5) < 1e-6 || q0 < -0.65 ? 1 : 0);

  const constantPolicy: RolloutPolicy = async (_obs, rows, out) => {
    out.fill(0.3, 0, rows * DOF);
  };

  async function run(
    k: number,
    copies: number,
    policy: RolloutPolicy = constantPolicy,
    spec: ControlSpec = control,
  ) {
    const task = terminatingReach();
    const rollouts = new BranchedRollouts(task, arm, spec, dynamics);
    const starts = createRolloutStarts(starts0.length * copies, DOF, task.goalSize);
    for (let r = 0; r < starts.rows; r++) {
      starts.q.set([starts0[r % starts0.length], -0.6, 0.3, 0.9], r * DOF);
      starts.goal.set([0.2, 0.05, 0.15], r * 3);
    }
    starts.previousEffort.fill(Number.NaN);
    const model = new ScriptedModel(delta, disagreement);
    const buffer = new ReplayBuffer(10_000, task.observationSize, task.actionSize);
    const counts = await rollouts.run(
      starts,
      model,
      policy,
      new Rng(1),
      { length: k, disagreementThreshold: 0.5 },
      buffer,
    );
    return { counts, buffer, model, task };
  }

  it("stops each branch on its cause and counts kept and filtered transitions", async () => {
    const copies = 3;
    const { counts, buffer } = await run(5, copies);
    assert.deepEqual(counts, {
      branches: 5 * copies,
      // Steps predicted: 5 + 1 + 1 + 3 + 3 per copy.
      predicted: 13 * copies,
      // Kept: 5 (full branch) + 3 (terminating, its last one included) + 2 (late uncertainty).
      kept: 10 * copies,
      terminated: 1 * copies,
      jointLimits: 1 * copies,
      uncertainty: 2 * copies,
      completed: 1 * copies,
    });
    // The identities the UpdateReport documents.
    assert.equal(counts.predicted, counts.kept + counts.jointLimits + counts.uncertainty);
    assert.equal(
      counts.branches,
      counts.terminated + counts.jointLimits + counts.uncertainty + counts.completed,
    );
    assert.equal(buffer.size, counts.kept);
    let terminal = 0;
    for (let i = 0; i < buffer.size; i++) terminal += buffer.terminated[i];
    assert.equal(terminal, counts.terminated);
  });

  it("keeps transitions scored by the task's own functions, from the model's states", async () => {
    const { buffer, task, model } = await run(3, 1);
    const O = task.observationSize;
    const obs = new Float32Array(O);
    const next = new Float32Array(O);
    const goal = Float64Array.from([0.2, 0.05, 0.15]);
    // Transition 0 is step 1 of the full branch: q0 0 → 0.01, q̇ unchanged (Δq̇ = 0).
    task.observe(Float64Array.from([0, -0.6, 0.3, 0.9]), new Float64Array(DOF), goal, obs);
    task.observe(Float64Array.from([0.01, -0.6, 0.3, 0.9]), new Float64Array(DOF), goal, next);
    assert.deepEqual(Array.from(buffer.obs.subarray(0, O)), Array.from(obs));
    assert.deepEqual(Array.from(buffer.nextObs.subarray(0, O)), Array.from(next));
    assert.deepEqual(Array.from(buffer.action.subarray(0, DOF)), [0.3, 0.3, 0.3, 0.3].map(Math.fround));
    assert.equal(
      buffer.reward[0],
      Math.fround(task.reward(obs, Float32Array.from([0.3, 0.3, 0.3, 0.3]), next)),
    );
    // The model saw (q, q̇, τ) with τ the effort the stack would send for the action.
    const effort = new Float64Array(DOF);
    new EffortModel(arm, control, dynamics).effort(
      Float64Array.from([0, -0.6, 0.3, 0.9]),
      new Float64Array(DOF),
      Float32Array.from([0.3, 0.3, 0.3, 0.3]),
      Float64Array.from([Number.NaN, 0, 0, 0]),
      0,
      effort,
    );
    assert.deepEqual(model.inputs[0].slice(2 * DOF), Array.from(effort, Math.fround));
  });

  it("carries each branch's own effort into the next step's torque-rate limit", async () => {
    // Full reverse between steps (−1 then +1: 4.1 N·m apart), more than the 2 N·m a tick allows.
    let calls = 0;
    const reversing = async (_obs: Float32Array, rows: number, out: Float32Array) => {
      out.fill(calls++ === 0 ? -1 : 1, 0, rows * DOF);
    };
    // The dynamic limits off: they may override the rate limit (safety first), and this is about the rate limit.
    const spec = { ...control, dynamicLimits: false };
    const { model } = await run(2, 1, reversing, spec);
    // Step 2's rows follow step 1's five; the full branch is the first survivor.
    const step1 = model.inputs[0];
    const step2 = model.inputs[starts0.length];
    const q = Float64Array.from(step2.slice(0, DOF));
    const qd = Float64Array.from(step2.slice(DOF, 2 * DOF));
    const effortModel = new EffortModel(arm, spec, dynamics);
    const withPast = new Float64Array(DOF);
    const withoutPast = new Float64Array(DOF);
    const up = new Float32Array(DOF).fill(1);
    effortModel.effort(q, qd, up, Float64Array.from(step1.slice(2 * DOF)), 0, withPast);
    effortModel.effort(q, qd, up, new Float64Array(DOF).fill(Number.NaN), 0, withoutPast);
    const sent = step2.slice(2 * DOF);
    assert.ok(
      sent.every((tau, i) => Math.abs(tau - withPast[i]) < 1e-5),
      `${sent} vs ${Array.from(withPast)}`,
    );
    // The rate limit bound: without the branch's past the torque would have been different.
    assert.ok(sent.some((tau, i) => Math.abs(tau - withoutPast[i]) > 0.1));
    assert.ok(
      sent.every(
        (tau, i) =>
          Math.abs(tau - step1[2 * DOF + i]) <=
          (control.torqueRateLimit as number[])[i] / control.controlRateHz + 1e-5,
      ),
    );
  });

  it("rejects a model of the wrong shape and a bad length", async () => {
    const task = new ReachTask(arm);
    const rollouts = new BranchedRollouts(task, arm, control, dynamics);
    const starts = createRolloutStarts(1, DOF, 3);
    const buffer = new ReplayBuffer(10, task.observationSize, task.actionSize);
    const wrong = {
      ...new ScriptedModel(
        () => 0,
        () => 0,
      ),
      inputSize: 8,
      outputSize: 8,
    } as unknown as RolloutModel;
    const policy = async () => {};
    await assert.rejects(
      rollouts.run(starts, wrong, policy, new Rng(1), { length: 1, disagreementThreshold: 1 }, buffer),
      /expected \(q, q̇, τ\) = 12 → Δ\(q, q̇\) = 8/,
    );
    const model = new ScriptedModel(
      () => 0,
      () => 0,
    );
    await assert.rejects(
      rollouts.run(starts, model, policy, new Rng(1), { length: 1.5, disagreementThreshold: 1 }, buffer),
      /length must be a non-negative integer/,
    );
  });

  it("treats a non-finite prediction as leaving the joint limits", async () => {
    const task = new ReachTask(arm);
    const rollouts = new BranchedRollouts(task, arm, control, dynamics);
    assert.equal(rollouts.admissible(Float64Array.from([0, 0, 0, 0]), new Float64Array(DOF)), true);
    assert.equal(rollouts.admissible(Float64Array.from([Number.NaN, 0, 0, 0]), new Float64Array(DOF)), false);
    assert.equal(rollouts.admissible(new Float64Array(DOF), Float64Array.from([0, 0, Infinity, 0])), false);
    // The watchdog's bounds: hard limit + position margin, velocity limit · (1 + velocity margin).
    assert.equal(rollouts.admissible(Float64Array.from([2.84, 0, 0, 0]), new Float64Array(DOF)), true);
    assert.equal(rollouts.admissible(Float64Array.from([2.86, 0, 0, 0]), new Float64Array(DOF)), false);
    assert.equal(rollouts.admissible(new Float64Array(DOF), Float64Array.from([0, 5.9, 0, 0])), true);
    assert.equal(rollouts.admissible(new Float64Array(DOF), Float64Array.from([0, -6.1, 0, 0])), false);
  });
});

describe("rollout starts and the model's data", () => {
  /** Two 3-step episodes into a real buffer of capacity `capacity`; states step by 0.1 on joint 0. */
  function fill(capacity: number): RealReplayBuffer {
    const buffer = new RealReplayBuffer(capacity, 2, DOF, DOF, 3);
    for (const [episode, first] of [
      [0, 0],
      [1, 10],
    ]) {
      for (let step = 0; step < 3; step++) {
        const q0 = first + 0.1 * step;
        buffer.add({
          obs: [0, 0],
          action: [0, 0, 0, 0],
          reward: 0,
          nextObs: [0, 0],
          terminated: false,
          q: [q0, 0, 0, 0],
          qd: [0, q0, 0, 0],
          effort: [episode, step, 0, 0],
          nextQ: [q0 + 0.1, 0, 0, 0],
          nextQd: [0, q0 + 0.1, 0, 0],
          goal: [episode, 0, 0],
        });
      }
    }
    return buffer;
  }

  it("finds the effort sent just before a start within an episode, and none at an episode's start", async () => {
    const buffer = fill(100);
    const starts = createRolloutStarts(400, DOF, 3);
    sampleRolloutStarts(buffer, new Rng(2), starts);
    const seen = new Set<number>();
    for (let r = 0; r < starts.rows; r++) {
      const q0 = starts.q[r * DOF];
      const step = Math.round((q0 % 10) * 10);
      const episode = q0 >= 10 ? 1 : 0;
      seen.add(episode * 3 + step);
      assert.equal(starts.goal[r * 3], episode);
      assert.equal(starts.qd[r * DOF + 1], q0);
      const previous = Array.from(starts.previousEffort.subarray(r * DOF, (r + 1) * DOF));
      if (step === 0) assert.ok(previous.every(Number.isNaN), `episode start ${q0}: ${previous}`);
      else assert.deepEqual(previous, [episode, step - 1, 0, 0]);
    }
    assert.equal(seen.size, 6);
  });

  it("does not take the newest transition for the past of the oldest one in a full ring", async () => {
    // Capacity 5 after 6 adds: slot 0 holds episode 1's last step (the newest), slot 1 the oldest kept.
    const buffer = fill(5);
    assert.equal(buffer.next, 1);
    const starts = createRolloutStarts(200, DOF, 3);
    sampleRolloutStarts(buffer, new Rng(4), starts);
    for (let r = 0; r < starts.rows; r++) {
      const q0 = starts.q[r * DOF];
      const previous = starts.previousEffort[r * DOF + 1];
      if (Math.abs(q0 - 0.1) < 1e-9) assert.ok(Number.isNaN(previous), "oldest slot has no known past");
      if (Math.abs(q0 - 10.2) < 1e-9) assert.equal(previous, 1, "newest slot wraps to the slot before it");
    }
  });

  it("relabels starts with goals achieved later in their own episode (hindsight), across the ring's seam", async () => {
    // achievedGoal reveals which state it was given: the goal is (q₀, 7, 7).
    const achievedGoal = (q: Float64Array, out: Float64Array) => {
      out[0] = q[0];
      out[1] = 7;
      out[2] = 7;
    };
    for (const capacity of [100, 5]) {
      // Capacity 5 after 6 adds: episode 1's steps 1 and 2 lie in slots 5 − 1 = 4 and 0.
      const buffer = fill(capacity);
      const starts = createRolloutStarts(2000, DOF, 3);
      sampleRolloutStarts(buffer, new Rng(6), starts, { fraction: 0.5, achievedGoal });
      let relabelled = 0;
      const futures = new Set<string>();
      for (let r = 0; r < starts.rows; r++) {
        const q0 = starts.q[r * DOF];
        const episode = q0 >= 10 ? 1 : 0;
        const step = Math.round((q0 - 10 * episode) * 10);
        const goal = Array.from(starts.goal.subarray(r * 3, r * 3 + 3));
        if (goal[1] !== 7) {
          assert.deepEqual(goal, [episode, 0, 0]);
          continue;
        }
        relabelled++;
        // The next state of this step or a later one of the same episode: q₀ = first + 0.1·(f + 1).
        const future = Math.round((goal[0] - 10 * episode) * 10) - 1;
        assert.ok(
          future >= step && future <= 2,
          `start ${q0} relabelled with the state after step ${future}`,
        );
        futures.add(`${episode}:${step}→${future}`);
      }
      assert.ok(
        Math.abs(relabelled / starts.rows - 0.5) < 0.05,
        `${relabelled} of ${starts.rows} relabelled`,
      );
      // Every (start, later step) pair of each episode's kept steps occurs: 6 per whole episode;
      // with capacity 5, episode 0 lost its step 0 (3 pairs left) and episode 1's steps lie in
      // slots 3, 4, 0, so its "0→2" pair walks across the ring's seam.
      assert.equal(futures.size, capacity === 5 ? 9 : 12, [...futures].join(" "));
      assert.ok(futures.has("1:0→2") && futures.has("1:1→2"));
    }
  });

  it("keeps the episode's goal where the achieved goal lies outside the task's goal range", async () => {
    const achievedGoal = (q: Float64Array, out: Float64Array) => {
      out[0] = q[0];
      out[1] = 7;
      out[2] = 7;
    };
    // In range: only what episode 0 achieves (q₀ < 10); episode 1's goals are never taken.
    const inRange = (goal: Float64Array) => goal[0] < 10;
    const starts = createRolloutStarts(2000, DOF, 3);
    sampleRolloutStarts(fill(100), new Rng(6), starts, { fraction: 1, achievedGoal, inRange });
    const relabelled = [0, 0];
    for (let r = 0; r < starts.rows; r++) {
      const episode = starts.q[r * DOF] >= 10 ? 1 : 0;
      const goal = Array.from(starts.goal.subarray(r * 3, r * 3 + 3));
      if (goal[1] === 7) {
        relabelled[episode]++;
        assert.ok(inRange(Float64Array.from(goal)), `start ${starts.q[r * DOF]} took ${goal}`);
      } else {
        assert.deepEqual(goal, [episode, 0, 0]);
      }
    }
    // With fraction 1 every start of episode 0 is relabelled, and none of episode 1.
    assert.equal(relabelled[1], 0);
    assert.ok(relabelled[0] > 800, `${relabelled[0]} starts of episode 0 relabelled`);
  });

  it("lays out (q, q̇, τ) → Δ(q, q̇) for the model", async () => {
    const buffer = fill(100);
    const { inputs, targets } = realModelData(buffer);
    assert.equal(inputs.length, 6 * 3 * DOF);
    assert.equal(targets.length, 6 * 2 * DOF);
    // Row 4: episode 1, step 1 (q0 = 10.1).
    assert.deepEqual(
      Array.from(inputs.subarray(4 * 12, 5 * 12)),
      [10.1, 0, 0, 0, 0, 10.1, 0, 0, 1, 1, 0, 0].map(Math.fround),
    );
    const expected = [10.2 - 10.1, 0, 0, 0, 0, 10.2 - 10.1, 0, 0].map(Math.fround);
    assert.deepEqual(Array.from(targets.subarray(4 * 8, 5 * 8)), expected);
  });
});
