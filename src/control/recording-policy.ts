/**
 * A policy wrapper that records what a transition needs beside what the runner reports: the joint
 * state each action was chosen at and the episode's goal. It changes nothing the wrapped policy
 * sees or does. Copies into preallocated arrays: nothing is allocated per tick.
 */
import type { JointState } from "../drivers/driver.js";
import type { TaskEpisode } from "../tasks/task.js";
import type { Policy, PolicyContext } from "./policy.js";

export class RecordingPolicy implements Policy {
  /** The joint state the last action was chosen at (a copy; effort NaN when the driver has none). */
  readonly observed: JointState;
  readonly goal: Float64Array;
  private inner: Policy | undefined;

  constructor(dof: number, goalSize: number, inner?: Policy) {
    this.observed = {
      stamp: 0,
      position: new Float64Array(dof),
      velocity: new Float64Array(dof),
      effort: new Float64Array(dof),
    };
    this.goal = new Float64Array(goalSize);
    this.inner = inner;
  }

  /** The policy to wrap from the next episode on. */
  use(policy: Policy): void {
    this.inner = policy;
  }

  get name(): string {
    return this.inner?.name ?? "none";
  }

  reset(episode: TaskEpisode): void {
    this.goal.set(episode.goal);
    this.inner?.reset(episode);
  }

  act(obs: Float32Array, ctx: PolicyContext, out: Float32Array): void {
    const { stamp, position, velocity, effort } = ctx.state;
    const observed = this.observed;
    observed.stamp = stamp;
    observed.position.set(position);
    observed.velocity.set(velocity);
    if (effort.length === observed.effort.length) observed.effort.set(effort);
    else observed.effort.fill(Number.NaN);
    (this.inner as Policy).act(obs, ctx, out);
  }
}
