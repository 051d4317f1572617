/**
 * What the node publishes about itself: one diagnostic_msgs/DiagnosticStatus on /diagnostics (the
 * safety state and counts, tick timing, episode and learning progress), and learn mode's progress
 * as numbers on ~/learning_progress (std_msgs/Float64MultiArray, one labelled dimension per field,
 * so Foxglove's Plot panel can draw `/mbpo_arm/learning_progress.data[1]` and the like).
 */
import type { EpisodeResult } from "../control/episode.js";
import type { ControlStack } from "../control/stack.js";
import type { Float64MultiArrayMsg, KeyValueMsg } from "../drivers/ros2/rclnodejs.js";
import { INTERVENTION_KINDS } from "../safety/filter.js";
import type { MetricsRow } from "../train/run-dir.js";

export const DIAGNOSTIC_LEVEL = { OK: 0, WARN: 1, ERROR: 2 } as const;

/** The fields of ~/learning_progress, in order (the message's layout labels name them too). */
export const PROGRESS_FIELDS = [
  "real_steps",
  "episode",
  "return",
  "success",
  "eval_success",
  "model_holdout_mse",
  "q_loss",
  "policy_loss",
  "alpha",
  "seconds_update",
] as const satisfies readonly (keyof MetricsRow)[];

/** A Float64MultiArray with one labelled dimension per PROGRESS_FIELDS entry, reused per message. */
export function progressMessage(): Float64MultiArrayMsg {
  return {
    layout: {
      dim: PROGRESS_FIELDS.map((label) => ({ label, size: 1, stride: 1 })),
      data_offset: 0,
    },
    data: new Float64Array(PROGRESS_FIELDS.length),
  };
}

export function fillProgress(msg: Float64MultiArrayMsg, row: MetricsRow): void {
  const data = msg.data as Float64Array;
  PROGRESS_FIELDS.forEach((field, i) => {
    const v = row[field];
    data[i] = typeof v === "number" ? v : Number.NaN;
  });
}

/** What the node knows of its learning run, for /diagnostics (absent outside learn mode). */
export interface LearnStatus {
  realSteps: number;
  stepsTarget: number;
  learning: boolean;
  training: boolean;
  lastEvalSuccess: number;
  lastModelHoldoutMse: number;
  out: string;
}

export interface NodeStatus {
  mode: string;
  running: boolean;
  episodesDone: number;
  lastResult: EpisodeResult | undefined;
  transitionsRecorded: number;
  driverValues: [string, string | number | boolean][];
  extra: [string, string | number | boolean][];
  learn?: LearnStatus;
}

/** The key/value pairs of the node's status, and its level and message. */
export function statusValues(
  stack: ControlStack,
  s: NodeStatus,
): { level: number; message: string; values: KeyValueMsg[] } {
  const fault = stack.safety.fault;
  const timing = stack.loop.timing.summary();
  let level: number = DIAGNOSTIC_LEVEL.OK;
  let message = s.running ? `running (${s.mode})` : "holding";
  if (fault !== undefined) {
    level = DIAGNOSTIC_LEVEL.ERROR;
    message = `fault ${fault.reason}: ${fault.detail}`;
  } else if (stack.driver.readState() === undefined) {
    level = DIAGNOSTIC_LEVEL.WARN;
    message = "no joint state yet";
  }
  const r = s.lastResult;
  const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : "none");
  const values: [string, string | number | boolean | undefined][] = [
    ["mode", s.mode],
    ["driver", stack.driver.name],
    ["running", s.running],
    ["fault", fault ? `${fault.reason}: ${fault.detail}` : "none"],
    ["ticks", stack.loop.ticks],
    ["tick_compute_median_us", timing.compute.medianUs.toFixed(1)],
    ["tick_compute_p99_us", timing.compute.p99Us.toFixed(1)],
    ["tick_compute_max_us", timing.compute.maxUs.toFixed(1)],
    ["tick_late_p99_us", fixed(timing.lateness.p99Us, 1)],
    ["tick_late_max_us", fixed(timing.lateness.maxUs, 1)],
    ...s.driverValues,
    ["episodes_done", s.episodesDone],
    ["last_return", r ? r.return.toFixed(3) : "none"],
    ["last_success", r ? r.success : "none"],
    ["last_final_distance_m", r ? r.finalDistance.toFixed(4) : "none"],
    ["transitions_recorded", s.transitionsRecorded],
    ...s.extra,
  ];
  const l = s.learn;
  if (l !== undefined) {
    values.push(
      ["learning", l.learning],
      ["learner", l.training ? "training" : "idle"],
      ["real_steps", l.realSteps],
      ["steps_target", l.stepsTarget === 0 ? "until stopped" : l.stepsTarget],
      ["last_eval_success", fixed(l.lastEvalSuccess, 3)],
      ["model_holdout_mse", fixed(l.lastModelHoldoutMse, 6)],
      ["run_dir", l.out],
    );
  }
  for (const kind of INTERVENTION_KINDS) values.push([`interventions.${kind}`, stack.safety.counts[kind]]);
  return { level, message, values: values.map(([key, v]) => ({ key, value: String(v) })) };
}
