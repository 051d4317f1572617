/**
 * Where real transitions go: the MCAP transition log (every real episode) and, when learning, the
 * learner's packer. One sink per purpose, built once; the tick path copies into preallocated
 * arrays only.
 */
import type { EpisodeResult, Transition } from "../control/episode.js";
import type { RecordingPolicy } from "../control/recording-policy.js";
import type { ControlStack } from "../control/stack.js";
import { TransitionLog } from "../data/transition-log.js";
import type { JointState } from "../drivers/driver.js";
import type { RealTransitionInput } from "../mbpo/learner.js";
import type { RealTransitionPacker } from "../mbpo/transition-batch.js";

/** Where real transitions go (the MCAP transition log, or a test's recorder). */
export interface TransitionSink {
  record(t: Transition, state: JointState, next: JointState, goal: ArrayLike<number>): void;
  endEpisode(result: EpisodeResult): void;
}

/**
 * The runner's onTransition: the transition recorded in the log (when there is one) and packed for
 * the learner (when there is a packer), with the state the action was chosen at (the recorder's)
 * and the state it led to (the driver's current one: the runner has just read it).
 */
export function makeTransitionSink(
  stack: ControlStack,
  recorder: RecordingPolicy,
  packer: RealTransitionPacker | undefined,
  log: () => TransitionSink | undefined,
): (t: Transition) => void {
  const dof = stack.model.dof;
  const nextQ = new Float64Array(dof);
  const nextQd = new Float64Array(dof);
  const input: RealTransitionInput = {
    obs: new Float32Array(0),
    action: new Float32Array(0),
    reward: 0,
    nextObs: new Float32Array(0),
    terminated: false,
    q: recorder.observed.position,
    qd: recorder.observed.velocity,
    effort: stack.loop.sent,
    nextQ,
    nextQd,
    goal: recorder.goal,
  };
  return (t) => {
    const next = stack.driver.readState();
    if (next === undefined) return;
    log()?.record(t, recorder.observed, next, recorder.goal);
    if (packer === undefined) return;
    nextQ.set(next.position);
    nextQd.set(next.velocity);
    input.obs = t.obs;
    input.action = t.action;
    input.reward = t.reward;
    input.nextObs = t.nextObs;
    input.terminated = t.terminated;
    input.effort = t.effort;
    packer.push(input);
  };
}

/** Opens a transition log shaped for the stack's robot and task (the writer thread starts). */
export function openTransitionLog(
  stack: ControlStack,
  path: string,
  source?: number,
): Promise<TransitionLog> {
  return TransitionLog.open(path, {
    jointNames: stack.model.joints.map((j) => j.name),
    dof: stack.model.dof,
    obsSize: stack.task.observationSize,
    actSize: stack.task.actionSize,
    goalSize: stack.task.goalSize,
    episodeSteps: stack.task.episodeSteps,
    ...(source !== undefined ? { source } : {}),
  });
}
