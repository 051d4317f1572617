import type { Policy, PolicyContext } from "../../src/control/policy.js";
import type { TaskEpisode } from "../../src/tasks/task.js";

/**
 * Wraps a policy and keeps a fresh copy of the joint state each tick acted on: a real
 * transition's (q, q̇), which the runner's Transition does not carry.
 */
export class StateRecorder implements Policy {
  readonly name: string;
  q = new Float64Array(0);
  qd = new Float64Array(0);
  constructor(private readonly inner: Policy) {
    this.name = inner.name;
  }
  reset(episode: TaskEpisode): void {
    this.inner.reset(episode);
  }
  act(obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    this.q = Float64Array.from(ctx.state.position);
    this.qd = Float64Array.from(ctx.state.velocity);
    this.inner.act(obs, ctx, out);
  }
}
