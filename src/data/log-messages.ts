/**
 * The transition log's topics and the conversions between our data and their ROS 2 messages.
 */
import type { EpisodeResult } from "../control/episode.js";
import type { RealTransitionInput } from "../mbpo/replay-buffer.js";
import { EPISODE_SUMMARY, FLOAT64_MULTI_ARRAY, JOINT_STATE, TRANSITION } from "./definitions.js";
import type { EpisodeRecording } from "./episode-recording.js";
import type { Ros2McapWriter } from "./mcap-writer.js";

export const TOPICS = {
  jointStates: "/joint_states",
  commands: "/effort_controller/commands",
  transition: "/mbpo/transition",
  episode: "/mbpo/episode",
} as const;

export const SOURCE_POLICY = 0;
export const SOURCE_TELEOP = 1;

/** Declares the log's four topics on a writer. */
export function addLogTopics(writer: Ros2McapWriter): void {
  writer.addTopic(TOPICS.jointStates, JOINT_STATE);
  writer.addTopic(TOPICS.commands, FLOAT64_MULTI_ARRAY);
  writer.addTopic(TOPICS.transition, TRANSITION);
  writer.addTopic(TOPICS.episode, EPISODE_SUMMARY);
}

export interface RosTime {
  sec: number;
  nanosec: number;
}

/** Seconds (≥ 0) → nanoseconds. */
export function secondsToNanos(t: number): bigint {
  return BigInt(Math.round(Math.max(0, t) * 1e9));
}

export function nanosToRosTime(ns: bigint): RosTime {
  return { sec: Number(ns / 1_000_000_000n), nanosec: Number(ns % 1_000_000_000n) };
}

export function rosTimeToNanos(t: RosTime): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nanosec);
}

/** The fields of mbpo_arm_msgs/msg/Transition as @foxglove/rosmsg2-serialization reads them. */
export interface TransitionMessage {
  header: { stamp: RosTime; frame_id: string };
  source: number;
  episode: number;
  step: number;
  joint_names: string[];
  position: Float64Array;
  velocity: Float64Array;
  effort: Float64Array;
  next_position: Float64Array;
  next_velocity: Float64Array;
  goal: Float64Array;
  observation: Float32Array;
  action: Float32Array;
  next_observation: Float32Array;
  reward: number;
  terminated: boolean;
  truncated: boolean;
  safety_interventions: number;
}

export interface EpisodeSummaryMessage {
  header: { stamp: RosTime; frame_id: string };
  episode: number;
  steps: number;
  episode_return: number;
  success: boolean;
  final_distance: number;
  reset_reached: boolean;
  aborted: boolean;
  fault: string;
  intervention_kinds: string[];
  intervention_counts: Uint32Array | number[];
  peak_effort_fraction: Float64Array | number[];
}

/**
 * Writes one recorded episode: per step the observed /joint_states, the command sent and the
 * Transition (all at the observed state's stamp), then the last next state and the episode summary.
 * Does not flush: the caller ends the chunk.
 */
export function writeEpisode(
  writer: Ros2McapWriter,
  r: EpisodeRecording,
  jointNames: string[],
  result: EpisodeResult | undefined,
  source: number = SOURCE_POLICY,
): void {
  const { dof, obsSize, actSize } = r;
  const goal = r.goal.slice();
  for (let i = 0; i < r.rows; i++) {
    const t = secondsToNanos(r.stamp[i]);
    const stamp = nanosToRosTime(t);
    const q = r.position.slice(i * dof, (i + 1) * dof);
    const qd = r.velocity.slice(i * dof, (i + 1) * dof);
    const effort = r.effort.slice(i * dof, (i + 1) * dof);
    writer.write(TOPICS.jointStates, t, {
      header: { stamp, frame_id: "" },
      name: jointNames,
      position: q,
      velocity: qd,
      effort: finiteOrEmpty(r.measuredEffort.subarray(i * dof, (i + 1) * dof)),
    });
    writer.write(TOPICS.commands, t, { layout: { dim: [], data_offset: 0 }, data: effort });
    const message: TransitionMessage = {
      header: { stamp, frame_id: "" },
      source,
      episode: r.episode,
      step: r.step[i],
      joint_names: jointNames,
      position: q,
      velocity: qd,
      effort,
      next_position: r.nextPosition.slice(i * dof, (i + 1) * dof),
      next_velocity: r.nextVelocity.slice(i * dof, (i + 1) * dof),
      goal,
      observation: r.observation.slice(i * obsSize, (i + 1) * obsSize),
      action: r.action.slice(i * actSize, (i + 1) * actSize),
      next_observation: r.nextObservation.slice(i * obsSize, (i + 1) * obsSize),
      reward: r.reward[i],
      terminated: r.terminated[i] === 1,
      truncated: r.truncated[i] === 1,
      safety_interventions: r.interventions[i],
    };
    writer.write(TOPICS.transition, t, message);
  }
  // An episode stopped before its first step (a fault, an e-stop, Ctrl-C) has no time of its own:
  // its summary takes the log's latest time, never 0 (which readers would take as the log's start).
  let endStamp = writer.lastLogTime;
  if (r.rows > 0) {
    const last = r.rows - 1;
    endStamp = secondsToNanos(r.nextStamp[last]);
    writer.write(TOPICS.jointStates, endStamp, {
      header: { stamp: nanosToRosTime(endStamp), frame_id: "" },
      name: jointNames,
      position: r.nextPosition.slice(last * dof, (last + 1) * dof),
      velocity: r.nextVelocity.slice(last * dof, (last + 1) * dof),
      effort: finiteOrEmpty(r.nextMeasuredEffort.subarray(last * dof, (last + 1) * dof)),
    });
  }
  if (result !== undefined) writer.write(TOPICS.episode, endStamp, episodeSummaryMessage(result, endStamp));
}

/** JointState.effort may be empty; a driver that measures none gives NaN, written as empty. */
function finiteOrEmpty(values: Float64Array): Float64Array {
  for (let k = 0; k < values.length; k++) if (!Number.isFinite(values[k])) return new Float64Array(0);
  return values.slice();
}

export function episodeSummaryMessage(r: EpisodeResult, stampNs: bigint): EpisodeSummaryMessage {
  const kinds = Object.keys(r.interventions);
  return {
    header: { stamp: nanosToRosTime(stampNs), frame_id: "" },
    episode: r.episode,
    steps: r.steps,
    episode_return: r.return,
    success: r.success,
    final_distance: r.finalDistance,
    reset_reached: r.resetReached,
    aborted: r.aborted,
    fault: r.fault ?? "",
    intervention_kinds: kinds,
    intervention_counts: kinds.map((k) => r.interventions[k]),
    peak_effort_fraction: r.peakEffortFraction,
  };
}

/** A logged Transition as the learner takes it (fresh arrays). */
export function realTransitionFromMessage(m: TransitionMessage): RealTransitionInput {
  return {
    obs: Float32Array.from(m.observation),
    action: Float32Array.from(m.action),
    reward: m.reward,
    nextObs: Float32Array.from(m.next_observation),
    terminated: m.terminated,
    q: Float64Array.from(m.position),
    qd: Float64Array.from(m.velocity),
    effort: Float64Array.from(m.effort),
    nextQ: Float64Array.from(m.next_position),
    nextQd: Float64Array.from(m.next_velocity),
    goal: Float64Array.from(m.goal),
  };
}
