/**
 * `mbpo-arm identify LOG.mcap... [--out FILE.urdf]`: system identification from logged transitions
 * (a run's transitions.mcap and its segments, excitation episodes from `run --policy excite`, a
 * teleop bag): src/robot/identification.ts fits the parameters that enter the dynamics linearly on
 * four fifths of the transitions; the other fifth (every fifth transition) is held out, and the
 * report says how much the one-period prediction error of the URDF's rigid-body model (the URDF
 * prior's, src/mbpo/model-prior.ts) falls there with the identified parameters and latency (the
 * state's age, fitted too: on a real arm, USB, bus and ROS delay the state by part of a period). --out writes the
 * identified URDF: the input URDF with its inertials, <dynamics> and armatures replaced.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Config } from "../config/config.js";
import { type ControlStack, createControlStack } from "../control/stack.js";
import { loadBootstrap } from "../data/bootstrap.js";
import type { RealTransitionInput } from "../mbpo/learner.js";
import { RigidBodyPrior } from "../mbpo/model-prior.js";
import { type IdentificationResult, type IdentificationSample, identify } from "../robot/identification.js";
import type { RobotModel } from "../robot/types.js";
import { writeIdentifiedUrdf } from "../robot/urdf-writer.js";

/** Every HOLDOUT_EVERY-th transition is held out of the fit. */
/** Positions (rad or m) within which one transition's end and the next one's start are the same tick. */
const CONTIGUOUS_POSITION = 1e-6;

const HOLDOUT_EVERY = 5;

export interface IdentifyCommandOptions {
  config: Config;
  files: string[];
  out?: string;
  /** The prior's integration rate (Hz), as the learner's mbpo.priorRateHz. */
  priorRateHz?: number;
  logger: { info(message: string): void; warn(message: string): void };
}

export interface IdentifyReport {
  files: string[];
  samples: number;
  heldOut: number;
  skipped: number;
  rank: number;
  parameterCount: number;
  conditionNumber: number;
  /** The fitted age of the logged state (control periods). */
  latencyPeriods: number | null;
  torqueRms: { nominal: number[]; identified: number[] };
  /** Held-out RMS error of the predicted Δq̇ per joint (rad/s), URDF and identified. */
  heldOutVelocityRms: { nominal: number[]; identified: number[] };
  parameters: IdentificationResult["parameters"];
  warnings: string[];
  out?: string;
}

export async function runIdentifyCommand(options: IdentifyCommandOptions): Promise<IdentifyReport> {
  const { config, logger } = options;
  if (options.files.length === 0) throw new Error("identify: name at least one log file");
  const stack = createControlStack(config);
  const transitions: RealTransitionInput[] = [];
  for (const file of options.files) {
    const loaded = await loadBootstrap(file, stack);
    if (loaded.read.problem !== undefined)
      logger.warn(`${file}: ${loaded.read.problem}; using what came before it`);
    transitions.push(...loaded.transitions);
  }
  return identifyTransitions(options, stack, transitions);
}

/**
 * The fit and its report, on transitions in the order they were logged, against the stack's model
 * (the benchmark hands over the ones it recorded in memory; `options.files` only names them in the
 * report).
 */
export function identifyTransitions(
  options: IdentifyCommandOptions,
  stack: ControlStack,
  transitions: readonly RealTransitionInput[],
): IdentifyReport {
  const { config, logger } = options;
  const samples = withPreviousEffort(transitions);
  const fit = samples.filter((_, i) => i % HOLDOUT_EVERY !== HOLDOUT_EVERY - 1);
  const held = samples.filter((_, i) => i % HOLDOUT_EVERY === HOLDOUT_EVERY - 1);
  const result = identify(stack.model, fit, { controlRateHz: config.control_rate_hz, fitLatency: true });
  const rate = options.priorRateHz ?? 1000;
  const heldOutVelocityRms = {
    nominal: predictionRms(stack.model, held, config.control_rate_hz, rate, 0),
    identified: predictionRms(result.model, held, config.control_rate_hz, rate, result.latencyPeriods ?? 0),
  };
  const report: IdentifyReport = {
    files: options.files,
    samples: result.samples,
    heldOut: held.length,
    skipped: result.skipped,
    rank: result.rank,
    parameterCount: result.parameters.length,
    conditionNumber: result.conditionNumber,
    latencyPeriods: result.latencyPeriods,
    torqueRms: result.residualRms,
    heldOutVelocityRms,
    parameters: result.parameters,
    warnings: result.warnings,
  };
  if (options.out !== undefined) {
    const xml = readFileSync(stack.urdfPath, "utf8");
    writeFileSync(options.out, writeIdentifiedUrdf(xml, stack.model, result.model, options.out));
    report.out = options.out;
  }
  for (const line of formatIdentifyReport(report)) logger.info(line);
  for (const warning of result.warnings) logger.warn(warning);
  return report;
}

/**
 * The transitions, each with the effort of the tick before where the log has that tick (the
 * previous transition ends where this one starts: the same positions, to CONTIGUOUS_POSITION; a
 * reset in between moves the arm by far more, and a velocity read twice may differ by its noise),
 * for the latency fit.
 */
function withPreviousEffort(transitions: readonly RealTransitionInput[]): IdentificationSample[] {
  return transitions.map((t, i) => {
    const before = transitions[i - 1];
    const contiguous =
      before !== undefined &&
      Array.from(t.q).every((q, j) => Math.abs(q - before.nextQ[j]) <= CONTIGUOUS_POSITION);
    return contiguous ? { ...t, previousEffort: before.effort } : t;
  });
}

/**
 * Per joint, the RMS over transitions of (predicted − logged) Δq̇ with `model` as the prior, the
 * torque of each interval taken as (1 − latency)·τ + latency·τ_previous where the tick before is known.
 */
function predictionRms(
  model: RobotModel,
  data: readonly IdentificationSample[],
  controlRateHz: number,
  priorRateHz: number,
  latency: number,
): number[] {
  const n = model.dof;
  const prior = new RigidBodyPrior(model, controlRateHz, priorRateHz);
  const input = new Float64Array(3 * n);
  const delta = new Float64Array(2 * n);
  const sums = new Array<number>(n).fill(0);
  for (const t of data) {
    input.set(t.q, 0);
    input.set(t.qd, n);
    const previous = t.previousEffort ?? t.effort;
    for (let j = 0; j < n; j++) input[2 * n + j] = (1 - latency) * t.effort[j] + latency * previous[j];
    prior.predict(input, 1, delta);
    for (let j = 0; j < n; j++) sums[j] += (delta[n + j] - (t.nextQd[j] - t.qd[j])) ** 2;
  }
  return sums.map((s) => Math.sqrt(s / Math.max(data.length, 1)));
}

export function formatIdentifyReport(r: IdentifyReport): string[] {
  const list = (values: number[], digits = 4) => values.map((v) => v.toFixed(digits)).join(" ");
  const fall = (a: number[], b: number[]) =>
    `${(100 * (1 - b.reduce((s, v) => s + v, 0) / a.reduce((s, v) => s + v, 0))).toFixed(0)}%`;
  const lines = [
    `identify: ${r.samples} transitions fitted, ${r.heldOut} held out, ${r.skipped} left out (near a hard limit, or the first of an episode: no tick before it for the latency fit)`,
    `excitation: ${r.rank} of ${r.parameterCount} parameter directions determined, condition number ${r.conditionNumber.toPrecision(3)}` +
      (r.conditionNumber > 1e3
        ? " (poorly excited: record more varied motion, e.g. run --policy excite)"
        : ""),
    `latency of the logged state: ${r.latencyPeriods === null ? "not fitted" : `${r.latencyPeriods.toFixed(2)} control periods`}`,
    `torque residual RMS per joint (N·m): URDF ${list(r.torqueRms.nominal)}, identified ${list(r.torqueRms.identified)}`,
    `held-out Δq̇ prediction error RMS per joint (rad/s): URDF ${list(r.heldOutVelocityRms.nominal)}, identified ${list(r.heldOutVelocityRms.identified)} (${fall(r.heldOutVelocityRms.nominal, r.heldOutVelocityRms.identified)} lower)`,
  ];
  for (const p of r.parameters) {
    if (p.kind === "inertial" && !p.name.endsWith(".m")) continue;
    const std = Number.isFinite(p.std) ? ` ± ${p.std.toPrecision(2)}` : "";
    const note =
      p.determination === "identified"
        ? ""
        : p.determination === "poorly excited"
          ? " (poorly excited: its error is large; record more motion of this joint)"
          : p.determination === "grouped"
            ? " (only in combination with other parameters: the URDF's split kept)"
            : " (not excited by these data: the URDF's value kept)";
    lines.push(
      `  ${p.name.padEnd(20)} ${p.value.toPrecision(4)}${std} (URDF ${p.nominal.toPrecision(4)})${note}`,
    );
  }
  if (r.out !== undefined) lines.push(`identified URDF: ${r.out}`);
  return lines;
}
