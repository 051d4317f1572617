/**
 * The smoke test of learning: MBPO (src/mbpo/mbpo.ts, wasm backend) on the real control stack
 * (simulator, gravity compensation, safety filter, episode runner) learns a small reach problem
 * within two minutes.
 *
 * Small: targets within ±0.3 rad of the home pose on each joint (about 7 cm away), 50-step
 * episodes, small networks, few updates per step. The claim checked is learning, not mastery: the
 * evaluation (mean action, fixed episodes) must end at less than half the distance the arm starts
 * from, which a policy that learnt nothing (a zero action holds the arm where it starts), or the
 * wrong thing, does not do (seen: 2.2 cm of 6.9 cm). The learner runs in this
 * thread (the trainer's worker thread is niced, and the suite's other files would starve it).
 * Same seed, same backend, same numbers: the result does not vary between runs on a machine.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultConfig, withOverrides } from "../../src/config/config.js";
import { MlpPolicy } from "../../src/control/policies/mlp.js";
import type { Policy, PolicyContext } from "../../src/control/policy.js";
import { createControlStack } from "../../src/control/stack.js";
import { controlSpecFromConfig } from "../../src/mbpo/learner.js";
import { createLearner } from "../../src/mbpo/mbpo.js";
import type { TaskEpisode } from "../../src/tasks/task.js";
import { Rng } from "../../src/util/rng.js";

const REAL_STEPS = 1500;
const EVAL_EPISODES = 10;

/** Keeps the joint state each tick acted on: a real transition's (q, q̇). */
class StateRecorder implements Policy {
  readonly name = "recorder";
  readonly q: Float64Array;
  readonly qd: Float64Array;
  inner: Policy | undefined;
  constructor(dof: number) {
    this.q = new Float64Array(dof);
    this.qd = new Float64Array(dof);
  }
  reset(episode: TaskEpisode): void {
    this.inner?.reset(episode);
  }
  act(obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    this.q.set(ctx.state.position);
    this.qd.set(ctx.state.velocity);
    this.inner?.act(obs, ctx, out);
  }
}

describe("learning smoke test", () => {
  it("MBPO learns to bring the arm onto nearby targets within two minutes", {
    timeout: 240_000,
  }, async (t) => {
    const started = performance.now();
    const config = withOverrides(defaultConfig(), { "task.episode_steps": 50, "task.target_spread": 0.3 });
    const stack = createControlStack(config);
    const { task, runner } = stack;
    const learner = await createLearner({
      algo: "mbpo",
      urdf: stack.urdfPath,
      task: { name: task.name, params: task.params() },
      seed: 1,
      backend: "wasm",
      profile: "quick",
      hyperparameters: {
        sac: { hiddenSizes: [32, 32], batchSize: 64 },
        ensemble: { members: 3, elites: 2, hiddenSizes: [32, 32], weightDecays: [2.5e-5, 5e-5, 1e-4] },
        mbpo: {
          initialExplorationSteps: 250,
          rolloutsPerRealStep: 20,
          sacUpdatesPerRealStep: 5,
          rolloutSchedule: [0, 1, 1, 1],
        },
      },
      control: controlSpecFromConfig(config, stack.model),
    });
    const actor = async (stochastic: boolean, rng: Rng) =>
      MlpPolicy.fromActor(await learner.actorWeights(), { stochastic, rng });
    const evalRng = new Rng(1, 3);
    const evalSet = Array.from({ length: EVAL_EPISODES }, () => task.sampleEpisode(evalRng));
    const startDistance = (episode: TaskEpisode) => {
      const p = new Float64Array(3);
      task.achievedGoal(episode.startPosition, p);
      return Math.hypot(episode.goal[0] - p[0], episode.goal[1] - p[1], episode.goal[2] - p[2]);
    };
    const meanStart = evalSet.reduce((sum, e) => sum + startDistance(e), 0) / EVAL_EPISODES;
    const evaluate = async () => {
      const policy = await actor(false, new Rng(0));
      let sum = 0;
      for (const [i, episode] of evalSet.entries())
        sum += (await runner.runEpisode(i, episode, policy)).finalDistance;
      return sum / EVAL_EPISODES;
    };

    const recorder = new StateRecorder(task.dof);
    const episodeRng = new Rng(1, 1);
    const noiseRng = new Rng(1, 2);
    const nextQ = new Float64Array(task.dof);
    const nextQd = new Float64Array(task.dof);
    let realSteps = 0;
    for (let index = 0; realSteps < REAL_STEPS; index++) {
      const episode = task.sampleEpisode(episodeRng);
      recorder.inner = await actor(true, noiseRng);
      await runner.runEpisode(index, episode, recorder, {
        onTransition: (t) => {
          const next = stack.driver.readState();
          assert.ok(next !== undefined);
          nextQ.set(next.position);
          nextQd.set(next.velocity);
          learner.addReal({ ...t, q: recorder.q, qd: recorder.qd, nextQ, nextQd, goal: episode.goal });
          realSteps++;
        },
      });
      await learner.update();
    }
    const learned = await evaluate();
    learner.dispose();
    const seconds = (performance.now() - started) / 1000;
    const report = `eval mean final distance ${(100 * learned).toFixed(1)} cm after ${realSteps} real steps; the arm starts ${(100 * meanStart).toFixed(1)} cm away; ${seconds.toFixed(0)} s`;
    t.diagnostic(report);
    assert.ok(learned < 0.5 * meanStart, `did not learn: ${report}`);
  });
});
