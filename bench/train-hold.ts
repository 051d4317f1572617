/**
 * The control loop while the learner trains: the hold (gravity compensation plus damping, through
 * the safety filter) ticked at 50 Hz on wall-clock time, as `train` does, in two phases of one run:
 *
 *   idle      the learner's worker thread started but doing nothing
 *   training  the worker running the real MBPO update phase owed for the real steps it was given
 *             (ensemble training, branched rollouts, SAC updates)
 *
 * For each: hold-tick compute time (read state → hold torque → safety filter → send) and how late
 * each tick woke, median / p99 / max in µs, and the training/idle ratios. Printed as JSON.
 *
 *   npx tsc -p . && node dist/bench/train-hold.js [--profile quick] [--real-steps 600] [--idle-seconds 5]
 *                                                 [--tf-threads 1]
 *
 * --tf-threads runs the learner's wasm backend on that many threads (wasm-threads.ts): what the
 * control loop pays for a faster learner on a machine with few cores.
 */

import { holdWhile } from "../src/app/hold.js";
import { defaultConfig } from "../src/config/config.js";
import { RandomPolicy } from "../src/control/policies/random.js";
import { createControlStack } from "../src/control/stack.js";
import { TickTimer, type TimingSummary } from "../src/control/tick-timer.js";
import { controlSpecFromConfig, type LearnerSpec } from "../src/mbpo/learner.js";
import { RealTransitionPacker } from "../src/mbpo/transition-batch.js";
import { LearnerWorker } from "../src/mbpo/worker.js";
import { Rng } from "../src/util/rng.js";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const PROFILE = flag("--profile", "quick");
const REAL_STEPS = Number(flag("--real-steps", "600"));
const IDLE_SECONDS = Number(flag("--idle-seconds", "5"));
const TF_THREADS = Number(flag("--tf-threads", "1"));

const config = defaultConfig();
const stack = createControlStack(config);
const { task, model } = stack;
const spec: LearnerSpec = {
  algo: "mbpo",
  urdf: stack.urdfPath,
  task: { name: task.name, params: task.params() },
  seed: 1,
  threads: TF_THREADS,
  ...(PROFILE !== "none" ? { profile: PROFILE } : {}),
  // The whole batch of real steps counts as past exploration, so the first update does everything.
  hyperparameters: { mbpo: { initialExplorationSteps: Math.min(REAL_STEPS, 500) } },
  control: controlSpecFromConfig(config, model),
};

const worker = new LearnerWorker({ onFailure: (e) => console.error(`learner failed: ${e.message}`) });
await stack.driver.start();
const startup = new TickTimer();
const { backend } = (await holdWhile(stack, worker.init(spec), [startup])).value;

// Real transitions from random-action episodes on the twin (what exploration gives the learner).
const packer = new RealTransitionPacker(
  { obsSize: task.observationSize, actSize: task.actionSize, dof: model.dof, goalSize: task.goalSize },
  REAL_STEPS,
);
const q = new Float64Array(model.dof);
const qd = new Float64Array(model.dof);
const policy = new RandomPolicy(task.actionSize, { seed: 2 });
const recorder = {
  name: "random",
  reset: (e: Parameters<typeof policy.reset>[0]) => policy.reset(e),
  act: (obs: Float32Array, ctx: Parameters<typeof policy.act>[1], out: Float32Array) => {
    q.set(ctx.state.position);
    qd.set(ctx.state.velocity);
    policy.act(obs, ctx, out);
  },
};
const rng = new Rng(3);
for (let e = 0; packer.count < REAL_STEPS; e++) {
  const episode = task.sampleEpisode(rng);
  await stack.runner.runEpisode(e, episode, recorder, {
    onTransition: (t) => {
      if (packer.count >= REAL_STEPS) return;
      const next = stack.driver.readState();
      if (next === undefined) return;
      packer.push({ ...t, q, qd, nextQ: next.position, nextQd: next.velocity, goal: episode.goal });
    },
  });
}
await holdWhile(stack, worker.addReal(packer.take()), [startup]);

const idle = new TickTimer();
await holdWhile(stack, new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000)), [idle]);
const training = new TickTimer();
const started = performance.now();
const update = await holdWhile(stack, worker.update(), [training]);
const updateSeconds = (performance.now() - started) / 1000;
await worker.dispose();
await stack.driver.stop();

const ratio = (a: TimingSummary, b: TimingSummary) => ({
  median: a.medianUs / b.medianUs,
  p99: a.p99Us / b.p99Us,
  max: a.maxUs / b.maxUs,
});
const i = idle.summary();
const t = training.summary();
console.log(
  JSON.stringify(
    {
      backend: backend.name,
      profile: PROFILE,
      tfThreads: TF_THREADS,
      realSteps: REAL_STEPS,
      updateSeconds,
      update: {
        modelTrained: update.value.modelTrained,
        rolloutsKept: update.value.rolloutsKept,
        sacUpdates: update.value.sacUpdates,
      },
      controlRateHz: config.control_rate_hz,
      idle: { holdTicks: i.compute.count, computeUs: i.compute, latenessUs: i.lateness },
      training: { holdTicks: t.compute.count, computeUs: t.compute, latenessUs: t.lateness },
      ratioTrainingOverIdle: {
        compute: ratio(t.compute, i.compute),
        lateness: ratio(t.lateness, i.lateness),
      },
    },
    null,
    2,
  ),
);
