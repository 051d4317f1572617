/**
 * `mbpo-arm identify LOG.mcap... [--out FILE.urdf]`: system identification from logged transitions
 * (a run's transitions.mcap and its segments, excitation episodes from `run --policy excite`, a
 * teleop bag): src/robot/identification.ts fits the parameters that enter the dynamics linearly on
 * four fifths of the transitions; the other fifth (every fifth transition) is held out, and the
 * report says how much the one-period prediction error of the URDF's rigid-body model (the URDF
 * prior's, src/mbpo/model-prior.ts) falls there with the identified parameters. --out writes the
 * identified URDF: the input URDF with its inertials, <dynamics> and armatures replaced.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Config } from "../config/config.js";
import { createControlStack } from "../control/stack.js";
import { loadBootstrap } from "../data/bootstrap.js";
import type { RealTransitionInput } from "../mbpo/learner.js";
import { RigidBodyPrior } from "../mbpo/model-prior.js";
import { type IdentificationResult, identify } from "../robot/identification.js";
import type { RobotModel } from "../robot/types.js";
import { writeIdentifiedUrdf } from "../robot/urdf-writer.js";

/** Every HOLDOUT_EVERY-th transition is held out of the fit. */
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
  const fit = transitions.filter((_, i) => i % HOLDOUT_EVERY !== HOLDOUT_EVERY - 1);
  const held = transitions.filter((_, i) => i % HOLDOUT_EVERY === HOLDOUT_EVERY - 1);
  const result = identify(stack.model, fit, { controlRateHz: config.control_rate_hz });
  const rate = options.priorRateHz ?? 1000;
  const heldOutVelocityRms = {
    nominal: predictionRms(stack.model, held, config.control_rate_hz, rate),
    identified: predictionRms(result.model, held, config.control_rate_hz, rate),
  };
  const report: IdentifyReport = {
    files: options.files,
    samples: result.samples,
    heldOut: held.length,
    skipped: result.skipped,
    rank: result.rank,
    parameterCount: result.parameters.length,
    conditionNumber: result.conditionNumber,
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

/** Per joint, the RMS over transitions of (predicted − logged) Δq̇ with `model` as the prior. */
function predictionRms(
  model: RobotModel,
  data: readonly RealTransitionInput[],
  controlRateHz: number,
  priorRateHz: number,
): number[] {
  const n = model.dof;
  const prior = new RigidBodyPrior(model, controlRateHz, priorRateHz);
  const input = new Float64Array(3 * n);
  const delta = new Float64Array(2 * n);
  const sums = new Array<number>(n).fill(0);
  for (const t of data) {
    input.set(t.q, 0);
    input.set(t.qd, n);
    input.set(t.effort, 2 * n);
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
    `identify: ${r.samples} transitions fitted, ${r.heldOut} held out, ${r.skipped} left out near the hard limits`,
    `excitation: ${r.rank} of ${r.parameterCount} parameter directions determined, condition number ${r.conditionNumber.toPrecision(3)}` +
      (r.conditionNumber > 1e3
        ? " (poorly excited: record more varied motion, e.g. run --policy excite)"
        : ""),
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
