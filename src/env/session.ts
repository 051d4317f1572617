/**
 * One environment on one robot: what `env serve` does for each request, with the robot behind
 * the same control stack, episode runner, task and safety filter as `run`. A step is one
 * EpisodeRunner.step (one control period: the client's action, gravity compensation, the safety
 * filter, the wait to the next period), so `run` and `env serve` agree by construction.
 *
 * Seeds. Episodes (start pose, goal) come from Rng(seed, 1), the stream `run` uses: reset with
 * seed S and then N − 1 resets without a seed give the episodes of `run --seed S --episodes N`.
 * On the simulator, a reset with a seed also starts from a fresh twin (a new control stack, as a
 * new `run` process has), so the same seed gives the same episode bit for bit whatever came before.
 * A real robot cannot be rebuilt: there a seed only restarts the episode stream, and the reset move
 * starts from wherever the arm is.
 *
 * Faults. A latched safety fault ends the episode, and the step gets an error naming it. On the
 * simulator the next reset starts from a fresh twin; on a real robot every later reset or step is
 * refused with that error, because someone must look at the arm and restart the server.
 */
import type { EpisodeResult, Transition } from "../control/episode.js";
import type { Policy } from "../control/policy.js";
import type { ControlStack } from "../control/stack.js";
import { INTERVENTION_KINDS } from "../safety/filter.js";
import type { TaskEpisode } from "../tasks/task.js";
import { Rng } from "../util/rng.js";
import { EVALUATION_STREAM, evaluationEpisode, TRAINING_STREAM } from "./episodes.js";
import {
  encodeFlags,
  encodeFloat64,
  PROTOCOL_VERSION,
  ProtocolError,
  type ProtocolSizes,
  type ResetRequest,
  type RewardBatch,
  type RewardEncoding,
} from "./protocol.js";
import { jointLimits, observationLayout, poseOutsideLimits } from "./spec.js";

export interface EnvSessionOptions {
  /** Builds a control stack from the server's config (called again for a fresh simulator). */
  createStack: () => ControlStack;
  /** The episode seed until a reset names one (the config's seed, as `run` uses). */
  seed: number;
  /** Notes for the operator (stack rebuilt, faults). */
  log?: (level: "info" | "warn", message: string) => void;
}

/** Plays the client's action: the policy the runner's tick calls when a step arrives. */
class ClientAction implements Policy {
  readonly name = "client";
  readonly action: Float32Array;
  constructor(size: number) {
    this.action = new Float32Array(size);
  }
  reset(): void {}
  act(_obs: Float32Array, _ctx: unknown, out: Float32Array): void {
    out.set(this.action);
  }
}

export class EnvSession {
  private stack: ControlStack;
  private readonly options: EnvSessionOptions;
  private readonly client: ClientAction;
  private episodeRng: Rng;
  private episodeSeed: number;
  private episodeIndex = 0;
  /** Whether the stack has not ticked since it was built (a seeded reset need not rebuild it). */
  private pristine = true;
  /** Hold ticks since the last step (paced robots only). */
  private holdTicks = 0;
  private started = false;
  // Reward scratch (one row), sized by the task.
  private readonly rewardObs: Float32Array;
  private readonly rewardAction: Float32Array;
  private readonly rewardNext: Float32Array;

  constructor(options: EnvSessionOptions) {
    this.options = options;
    this.stack = options.createStack();
    const task = this.stack.task;
    this.client = new ClientAction(task.actionSize);
    this.episodeSeed = options.seed;
    this.episodeRng = new Rng(options.seed, TRAINING_STREAM);
    this.rewardObs = new Float32Array(task.observationSize);
    this.rewardAction = new Float32Array(task.actionSize);
    this.rewardNext = new Float32Array(task.observationSize);
  }

  /** The buffer a step request's action is parsed into. */
  get actionBuffer(): Float32Array {
    return this.client.action;
  }

  get sizes(): ProtocolSizes {
    const task = this.stack.task;
    return {
      observationSize: task.observationSize,
      actionSize: task.actionSize,
      dof: task.dof,
      goalSize: task.goalSize,
    };
  }

  /** A robot that moves on its own (a real arm, or the twin paced to wall time): keep the rate. */
  get paced(): boolean {
    return this.stack.driver.timing === "realtime";
  }

  private get simulated(): boolean {
    return this.stack.config.driver === "sim";
  }

  async start(): Promise<void> {
    await this.stack.driver.start();
    this.started = true;
  }

  /** Ends any episode and stops the robot safely (zero effort). Safe to call twice. */
  async close(): Promise<void> {
    if (this.stack.runner.isActive) this.stack.runner.endEpisode(true);
    if (this.started) await this.stack.driver.stop();
    this.started = false;
  }

  /** One hold tick (gravity compensation plus damping) and the wait to the next period. */
  async hold(): Promise<void> {
    this.stack.runner.holdTick();
    this.pristine = false;
    this.holdTicks++;
    await this.stack.loop.wait();
  }

  /** The client left: an episode it was in is over. */
  abandonEpisode(): void {
    if (this.stack.runner.isActive) this.stack.runner.endEpisode(true);
  }

  spec(): Record<string, unknown> {
    const { task, model, config, driver } = this.stack;
    return {
      protocol: PROTOCOL_VERSION,
      observation_size: task.observationSize,
      action_size: task.actionSize,
      action_low: new Array(task.actionSize).fill(-1),
      action_high: new Array(task.actionSize).fill(1),
      episode_steps: task.episodeSteps,
      control_rate_hz: config.control_rate_hz,
      joint_names: model.joints.map((j) => j.name),
      observation_layout: observationLayout(task, model) ?? null,
      joint_limits: jointLimits(model.joints),
      torque_scale: Array.from(this.stack.runner.torqueScale),
      task: { name: task.name, params: task.params() },
      driver: driver.name,
      timing: driver.timing,
      seed: this.episodeSeed,
      episode_streams: {
        training: `reset {"seed": S} then plain resets: the episodes of Rng(S, ${TRAINING_STREAM}), as run --seed S plays them`,
        evaluation: `reset {"seed": S, "eval": k}: the (k+1)-th draw of Rng(S, ${EVALUATION_STREAM}), evaluation episode k of bench/learning --seeds S`,
      },
    };
  }

  async reset(request: ResetRequest = {}): Promise<Record<string, unknown>> {
    this.refuseAfterRealFault();
    // Everything the robot is not asked to do is checked first: a refused reset changes nothing.
    const planned = this.planEpisode(request);
    if (this.stack.runner.isActive) this.stack.runner.endEpisode(true);
    const faulted = this.stack.safety.fault !== undefined;
    const reproducible = request.seed !== undefined || request.eval !== undefined;
    if (this.simulated && ((reproducible && !this.pristine) || faulted)) {
      if (faulted) this.log("warn", `reset after a safety fault: starting from a fresh simulator`);
      await this.rebuild();
    }
    const { episode, seed } = planned;
    if (request.eval === undefined && request.seed !== undefined) {
      this.episodeSeed = request.seed;
      this.episodeRng = planned.rng;
      this.episodeIndex = 0;
    } else if (request.eval === undefined) {
      this.episodeRng = planned.rng;
    }
    const { task, runner } = this.stack;
    const index = this.episodeIndex++;
    this.pristine = false;
    const obs = await runner.beginEpisode(index, episode);
    this.holdTicks = 0;
    const result = runner.result;
    return {
      obs: Array.from(obs),
      info: {
        episode: index,
        seed,
        ...(request.eval !== undefined ? { eval: request.eval } : {}),
        reset_reached: result.resetReached,
        start_position: Array.from(episode.startPosition),
        goal: Array.from(episode.goal),
        distance: task.distance(obs),
        success: task.success(obs),
        ...(this.stack.safety.fault !== undefined ? { fault: this.faultText() } : {}),
      },
    };
  }

  /**
   * The episode a reset asks for, checked against the joint limits. The training stream is drawn
   * on a copy (planned.rng), so that a refused reset does not consume an episode of it.
   */
  private planEpisode(request: ResetRequest): { episode: TaskEpisode; seed: number; rng: Rng } {
    const { task, model } = this.stack;
    const seed = request.seed ?? this.episodeSeed;
    if (request.eval !== undefined) {
      return { episode: evaluationEpisode(task, seed, request.eval), seed, rng: this.episodeRng };
    }
    for (const [field, pose] of [
      ["start_position", request.startPosition],
      ["goal_position", request.goalPosition],
    ] as const) {
      const why = pose === undefined ? undefined : poseOutsideLimits(model.joints, pose, field);
      if (why !== undefined) throw new ProtocolError(why);
    }
    const rng = request.seed !== undefined ? new Rng(seed, TRAINING_STREAM) : copyRng(this.episodeRng);
    const drawn = task.sampleEpisode(rng);
    const episode: TaskEpisode = { ...drawn };
    if (request.startPosition !== undefined) episode.startPosition = request.startPosition;
    if (request.goal !== undefined) {
      // A goal point alone has no known joint pose that reaches it (the PD policy needs one).
      episode.goal = request.goal;
      episode.goalPosition = undefined;
    } else if (request.goalPosition !== undefined) {
      const goal = new Float64Array(task.goalSize);
      task.achievedGoal(request.goalPosition, goal);
      episode.goal = goal;
      episode.goalPosition = request.goalPosition;
    }
    return { episode, seed, rng };
  }

  /** One control period with the action already parsed into actionBuffer. */
  async step(): Promise<Record<string, unknown>> {
    this.refuseAfterRealFault();
    const { runner, task, loop } = this.stack;
    if (!runner.isActive) {
      const r = runner.result;
      throw new ProtocolError(
        this.episodeIndex === 0
          ? "step: no episode yet: send reset first"
          : `step: episode ${r.episode} is over (${r.steps} steps${r.aborted ? ", abandoned" : ""}${r.fault !== undefined ? `, safety fault: ${r.fault}` : ""}): send reset`,
      );
    }
    const holdTicks = this.holdTicks;
    const tr: Transition | undefined = await runner.step(this.client);
    this.holdTicks = 0;
    if (tr === undefined) {
      const fault = this.stack.safety.fault;
      throw new ProtocolError(
        fault !== undefined
          ? `step: safety fault latched, episode over: ${this.faultText()}${this.simulated ? " (reset starts a fresh simulator)" : " (check the arm, then restart the server)"}`
          : "step: the robot sent no joint state; episode over",
      );
    }
    // The runner clipped the action into [-1, 1] in place (tr.action); the reward is of that one.
    const clipped = differs(this.client.action, tr.action);
    const info: Record<string, unknown> = {
      step: tr.step,
      clipped,
      ...(clipped ? { applied_action: Array.from(tr.action) } : {}),
      success: task.success(tr.nextObs),
      distance: task.distance(tr.nextObs),
      interventions: this.stepInterventions(),
      effort: Array.from(loop.sent),
    };
    if (this.paced) info.hold_ticks = holdTicks;
    if (!runner.isActive) info.episode = episodeSummary(runner.result);
    return {
      obs: Array.from(tr.nextObs),
      reward: tr.reward,
      terminated: tr.terminated,
      truncated: tr.truncated,
      info,
    };
  }

  /** The task's rewards and terminations for a batch of transitions (pure: the robot is not touched). */
  reward(batch: RewardBatch, encoding: RewardEncoding = "json"): Record<string, unknown> {
    const task = this.stack.task;
    const { rewardObs: obs, rewardAction: action, rewardNext: next } = this;
    const n = obs.length;
    const m = action.length;
    const rewards = new Float64Array(batch.rows);
    const terminated = new Uint8Array(batch.rows);
    // Plain index loops: a subarray per row cost more than the task's reward itself.
    for (let r = 0; r < batch.rows; r++) {
      for (let i = 0; i < n; i++) {
        obs[i] = batch.obs[r * n + i];
        next[i] = batch.nextObs[r * n + i];
      }
      for (let i = 0; i < m; i++) action[i] = batch.action[r * m + i];
      rewards[r] = task.reward(obs, action, next);
      terminated[r] = task.terminated(next) ? 1 : 0;
    }
    if (encoding === "base64") return { reward: encodeFloat64(rewards), terminated: encodeFlags(terminated) };
    return { reward: Array.from(rewards), terminated: Array.from(terminated, (t) => t === 1) };
  }

  private stepInterventions(): Record<string, number> {
    const out: Record<string, number> = {};
    const report = this.stack.runner.lastReport;
    if (report === undefined || !report.anyIntervention) return out;
    for (const kind of INTERVENTION_KINDS) {
      const count = report.interventions[kind];
      if (count > 0) out[kind] = count;
    }
    return out;
  }

  private refuseAfterRealFault(): void {
    if (!this.simulated && this.stack.safety.fault !== undefined) {
      throw new ProtocolError(
        `safety fault latched: ${this.faultText()}; the robot is in its safe stop: check the arm, then restart the server`,
      );
    }
  }

  private faultText(): string {
    const fault = this.stack.safety.fault;
    return fault === undefined ? "" : `${fault.reason}: ${fault.detail}`;
  }

  private async rebuild(): Promise<void> {
    await this.stack.driver.stop();
    this.stack = this.options.createStack();
    await this.stack.driver.start();
    this.started = true;
    this.pristine = true;
  }

  private log(level: "info" | "warn", message: string): void {
    this.options.log?.(level, message);
  }
}

/** An independent copy of a generator at its current state. */
function copyRng(rng: Rng): Rng {
  const copy = new Rng(0, TRAINING_STREAM);
  copy.setState(rng.getState());
  return copy;
}

function differs(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return true;
  return false;
}

/** The finished episode, as `run --json` reports it (snake_case keys, as the rest of the protocol). */
function episodeSummary(r: EpisodeResult): Record<string, unknown> {
  return {
    episode: r.episode,
    steps: r.steps,
    return: r.return,
    success: r.success,
    final_distance: r.finalDistance,
    reset_reached: r.resetReached,
    interventions: r.interventions,
    peak_effort_fraction: r.peakEffortFraction,
    ...(r.fault !== undefined ? { fault: r.fault } : {}),
  };
}
