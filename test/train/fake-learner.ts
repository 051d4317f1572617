/**
 * A test double of the learner contract (src/mbpo/learner.ts), loaded into the worker thread by
 * tests only. It is deterministic and stateful in a way that a resume must reproduce: its actor is
 * a linear layer whose weights are a function of every real transition it was given and of the
 * number of updates run. It can also fail on purpose, to test how the host handles a crash:
 * spec.hyperparameters.test.fail = "throw" (update rejects), "crash" (an uncaught exception in the
 * worker thread), "exit" (the thread exits), each on update number test.failOnUpdate (1-based);
 * test.delayMs makes every update take that long; test.nanWeightsAfter = n makes the actor's
 * weights contain a NaN from update n on. The same settings may come as JSON in the
 * environment variable MBPO_FAKE_LEARNER (for runs whose spec is checked against the real
 * learner's hyperparameters).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type {
  ActorWeights,
  BootstrapReport,
  Learner,
  LearnerSpec,
  PretrainReport,
  RealTransitionInput,
  UpdateReport,
} from "../../src/mbpo/learner.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { createTask } from "../../src/tasks/index.js";

interface State {
  spec: LearnerSpec;
  steps: number;
  updates: number;
  /** Bootstrap rows received, and pretrain() calls. */
  bootstrapped: number;
  pretrained: number;
  sumReward: number;
  /** Running sums of obs_i · action_j (obsSize × actSize), the actor's weights' source. */
  moments: number[];
  obsSize: number;
  actSize: number;
}

class FakeLearner implements Learner {
  readonly spec: LearnerSpec;
  private readonly state: State;
  private stepsAtLastUpdate: number;

  constructor(state: State) {
    this.spec = state.spec;
    this.state = state;
    this.stepsAtLastUpdate = state.steps;
  }

  addReal(t: RealTransitionInput): void {
    const s = this.state;
    for (let i = 0; i < s.obsSize; i++)
      for (let j = 0; j < s.actSize; j++) s.moments[i * s.actSize + j] += t.obs[i] * t.action[j];
    s.sumReward += t.reward;
    s.steps++;
  }

  /** Bootstrap rows are counted apart from the robot's steps, as the real learner does. */
  addBootstrap(transitions: readonly RealTransitionInput[]): BootstrapReport {
    this.state.bootstrapped += transitions.length;
    return { added: transitions.length, rejected: 0 };
  }

  /** test.pretrainUntilStopped: a pre-training that only a stop ends (at most 30 s). */
  async pretrain(shouldStop: () => boolean = () => false): Promise<PretrainReport> {
    this.state.pretrained++;
    const test = (this.spec.hyperparameters?.test ?? JSON.parse(process.env.MBPO_FAKE_LEARNER ?? "{}")) as {
      pretrainUntilStopped?: boolean;
    };
    if (test.pretrainUntilStopped === true) {
      const started = Date.now();
      while (!shouldStop() && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 5));
      return {
        modelTrained: false,
        modelHoldoutNll: Number.NaN,
        modelHoldoutMse: Number.NaN,
        seconds: 0,
        interrupted: true,
      };
    }
    return { modelTrained: true, modelHoldoutNll: -1, modelHoldoutMse: 0.1, seconds: 0 };
  }

  async update(): Promise<UpdateReport> {
    const s = this.state;
    s.updates++;
    const test = (this.spec.hyperparameters?.test ?? JSON.parse(process.env.MBPO_FAKE_LEARNER ?? "{}")) as {
      fail?: string;
      failOnUpdate?: number;
      delayMs?: number;
    };
    if (test.delayMs !== undefined) await new Promise((r) => setTimeout(r, test.delayMs));
    if (test.fail !== undefined && s.updates === (test.failOnUpdate ?? 1)) {
      if (test.fail === "throw") throw new Error("fake learner: update failed on purpose");
      if (test.fail === "crash")
        setImmediate(() => {
          throw new Error("fake learner: crashed on purpose");
        });
      if (test.fail === "exit") process.exit(7);
      await new Promise((r) => setTimeout(r, 10_000));
    }
    const newSteps = s.steps - this.stepsAtLastUpdate;
    this.stepsAtLastUpdate = s.steps;
    return {
      realSteps: s.steps,
      modelTrained: s.updates % 2 === 1,
      modelHoldoutNll: s.updates % 2 === 1 ? -1 / s.updates : Number.NaN,
      modelHoldoutMse: s.updates % 2 === 1 ? 0.1 / s.updates : Number.NaN,
      rolloutLength: 1,
      rolloutsKept: 10 * newSteps,
      rolloutsFiltered: { terminated: 1, jointLimits: 2, uncertainty: 3 },
      sacUpdates: 2 * newSteps,
      qLoss: s.sumReward / Math.max(1, s.steps),
      policyLoss: -s.updates,
      alpha: 1 / (1 + s.updates),
      seconds: { model: 0.001, rollouts: 0.001, sac: 0.001 },
    };
  }

  async actorWeights(): Promise<ActorWeights> {
    const s = this.state;
    const misbehave = (this.spec.hyperparameters?.test ??
      JSON.parse(process.env.MBPO_FAKE_LEARNER ?? "{}")) as {
      nanWeightsAfter?: number;
    };
    const A = s.actSize;
    const O = s.obsSize;
    const weight = new Float32Array(O * 2 * A);
    const scale = 1 / Math.max(1, s.steps);
    for (let i = 0; i < O; i++) {
      for (let j = 0; j < A; j++) {
        weight[i * 2 * A + j] = Math.tanh((s.moments[i * A + j] ?? 0) * scale + 0.01 * s.updates);
        weight[i * 2 * A + A + j] = 0;
      }
    }
    const bias = new Float32Array(2 * A).fill(-1);
    if (misbehave.nanWeightsAfter !== undefined && s.updates >= misbehave.nanWeightsAfter)
      weight[3] = Number.NaN;
    return {
      sizes: [O, 2 * A],
      activation: "relu",
      layers: [{ weight, bias }],
      actionSize: A,
      logStdMin: -20,
      logStdMax: 2,
    };
  }

  async save(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "fake-learner.json"), JSON.stringify(this.state));
  }

  dispose(): void {}
}

export async function createLearner(spec: LearnerSpec): Promise<Learner> {
  const task = createTask(spec.task.name, loadUrdf(spec.urdf));
  const obsSize = task.observationSize;
  const actSize = task.actionSize;
  const moments = new Array(obsSize * actSize).fill(0);
  return new FakeLearner({
    spec,
    steps: 0,
    updates: 0,
    bootstrapped: 0,
    pretrained: 0,
    sumReward: 0,
    moments,
    obsSize,
    actSize,
  });
}

export async function loadLearner(dir: string): Promise<Learner> {
  const state = JSON.parse(readFileSync(join(dir, "fake-learner.json"), "utf8")) as State;
  return new FakeLearner(state);
}
