/**
 * A learning run's figures: one metrics.csv row per training episode (with its update and, when
 * due, its evaluation), and summary.json from all rows so far.
 */
import type { EpisodeResult } from "../control/episode.js";
import type { TimingSummary } from "../control/tick-timer.js";
import type { LearnerSpec, UpdateReport } from "../mbpo/learner.js";
import type { HostState, MetricsRow, TrainSettings, TrainSummary } from "../train/run-dir.js";

export interface EvaluationResult {
  success: number;
  return: number;
  finalDistance: number;
  seconds: number;
}

export function episodeRow(p: {
  index: number;
  exploring: boolean;
  realSteps: number;
  result: EpisodeResult;
  report: UpdateReport;
  episodeSeconds: number;
  updateSeconds: number;
  hold: { compute: TimingSummary; lateness: TimingSummary };
  interventions: number;
}): MetricsRow {
  const { result: r, report: u } = p;
  return {
    episode: p.index + 1,
    policy: p.exploring ? "explore" : "actor",
    real_steps: p.realSteps,
    episode_steps: r.steps,
    return: r.return,
    success: r.success ? 1 : 0,
    final_distance_m: r.finalDistance,
    eval_success: Number.NaN,
    eval_return: Number.NaN,
    eval_final_distance_m: Number.NaN,
    ...updateColumns(u, p.updateSeconds),
    seconds_episode: p.episodeSeconds,
    seconds_eval: Number.NaN,
    hold_ticks: p.hold.compute.count,
    hold_tick_median_us: p.hold.compute.medianUs,
    hold_tick_p99_us: p.hold.compute.p99Us,
    hold_tick_max_us: p.hold.compute.maxUs,
    hold_late_p99_us: p.hold.lateness.p99Us,
    hold_late_max_us: p.hold.lateness.maxUs,
    safety_interventions: p.interventions,
  };
}

/** A row's columns that come from the learner's update phase (and its wall-clock seconds). */
export function updateColumns(u: UpdateReport, updateSeconds: number) {
  const filtered = u.rolloutsFiltered ?? {
    terminated: Number.NaN,
    jointLimits: Number.NaN,
    uncertainty: Number.NaN,
  };
  return {
    model_trained: u.modelTrained ? 1 : 0,
    model_holdout_nll: u.modelHoldoutNll,
    model_holdout_mse: u.modelHoldoutMse,
    rollout_length: u.rolloutLength,
    rollouts_kept: u.rolloutsKept,
    rollouts_filtered_terminated: filtered.terminated,
    rollouts_filtered_joint_limits: filtered.jointLimits,
    rollouts_filtered_uncertainty: filtered.uncertainty,
    sac_updates: u.sacUpdates,
    q_loss: u.qLoss,
    policy_loss: u.policyLoss,
    alpha: u.alpha,
    seconds_update: updateSeconds,
    seconds_model: u.seconds?.model ?? Number.NaN,
    seconds_rollouts: u.seconds?.rollouts ?? Number.NaN,
    seconds_sac: u.seconds?.sac ?? Number.NaN,
  } satisfies Partial<MetricsRow>;
}

export function summarise(p: {
  settings: TrainSettings;
  spec: LearnerSpec;
  host: HostState;
  backend: string;
  wallSeconds: number;
  controlTicks: TimingSummary;
  hold: { compute: TimingSummary; lateness: TimingSummary };
  completed: boolean;
  interrupted: boolean;
  fault?: string;
  checkpoint: string | null;
  transitionLog: TrainSummary["transitionLog"];
}): TrainSummary {
  const rows = p.host.rows;
  const evals = rows.filter((r) => typeof r.eval_success === "number" && Number.isFinite(r.eval_success));
  const sum = (column: keyof MetricsRow) =>
    rows.reduce(
      (s, r) => s + (typeof r[column] === "number" && Number.isFinite(r[column]) ? (r[column] as number) : 0),
      0,
    );
  const first90 = evals.find((r) => (r.eval_success as number) >= 0.9);
  return {
    algo: p.settings.algo,
    task: p.spec.task.name,
    seed: p.settings.seed,
    backend: p.backend,
    stepsTarget: p.settings.steps,
    realSteps: p.host.realSteps,
    episodes: p.host.episodes,
    evals: p.host.evals,
    finalEvalSuccess: evals.length > 0 ? (evals[evals.length - 1].eval_success as number) : Number.NaN,
    bestEvalSuccess: evals.length > 0 ? Math.max(...evals.map((r) => r.eval_success as number)) : Number.NaN,
    stepsTo90: first90 === undefined ? null : (first90.real_steps as number),
    wallSeconds: p.wallSeconds,
    seconds: {
      episodes: sum("seconds_episode"),
      update: sum("seconds_update"),
      model: sum("seconds_model"),
      rollouts: sum("seconds_rollouts"),
      sac: sum("seconds_sac"),
      eval: sum("seconds_eval"),
    },
    episodeTicks: p.controlTicks,
    holdTicks: p.hold.compute,
    holdLateness: p.hold.lateness,
    completed: p.completed,
    interrupted: p.interrupted,
    ...(p.fault !== undefined ? { fault: p.fault } : {}),
    checkpoint: p.checkpoint,
    bootstrap: p.settings.bootstrap ?? null,
    transitionLog: p.transitionLog,
  };
}
