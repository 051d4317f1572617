import type { TaskEpisode } from "../../tasks/task.js";
import { Rng } from "../../util/rng.js";
import type { Policy, PolicyContext } from "../policy.js";

export interface RandomPolicyOptions {
  seed: number;
  /**
   * Low-pass factor α in [0, 1). 0 (the default) draws every action afresh, uniform in [−1, 1], as
   * MBPO's initial exploration does. With α > 0 each action is
   *   a_t = clamp(α·a_{t−1} + √(1 − α²)·u_t, −1, 1),  u_t uniform in [−1, 1],
   * noise correlated over about 1/(1 − α) ticks with the same spread as plain uniform noise, so the
   * arm wanders through the workspace instead of buzzing in place.
   */
  smoothing?: number;
}

/** Random actions from a seeded Rng: the same seed gives the same action sequence. */
export class RandomPolicy implements Policy {
  readonly name = "random";
  readonly smoothing: number;
  private readonly rng: Rng;
  private readonly innovation: number;
  private readonly previous: Float32Array;

  constructor(actionSize: number, options: RandomPolicyOptions) {
    const smoothing = options.smoothing ?? 0;
    if (!(smoothing >= 0 && smoothing < 1)) {
      throw new Error(`random policy: smoothing must be in [0, 1), got ${smoothing}`);
    }
    this.smoothing = smoothing;
    this.innovation = Math.sqrt(1 - smoothing * smoothing);
    this.rng = new Rng(options.seed);
    this.previous = new Float32Array(actionSize);
  }

  /** The noise restarts from zero each episode; the Rng stream continues. */
  reset(_episode: TaskEpisode): void {
    this.previous.fill(0);
  }

  act(_obs: Float32Array, _ctx: PolicyContext, out: Float32Array): void {
    for (let i = 0; i < this.previous.length; i++) {
      const u = this.rng.range(-1, 1);
      const a = this.smoothing * this.previous[i] + this.innovation * u;
      out[i] = Math.min(1, Math.max(-1, a));
      this.previous[i] = out[i];
    }
  }
}
