/**
 * `mbpo-arm run`: runs episodes of a task with a fixed policy on a robot, through the same control
 * loop and safety filter that training uses, and reports each episode. A thin front end over the
 * application core (src/app/).
 */
export type { RunSummary } from "../app/episodes.js";

import { ArmApp } from "../app/app.js";
import type { RunSummary } from "../app/episodes.js";
import type { Config } from "../config/config.js";
import type { EpisodeResult } from "../control/episode.js";
import type { Policy } from "../control/policy.js";
import type { ControlStack } from "../control/stack.js";
import { checkNoRunLog } from "../data/run-log.js";
import type { Logger } from "./logger.js";

export function formatEpisode(r: EpisodeResult, total: number): string {
  const interventions = Object.entries(r.interventions)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const peak = r.peakEffortFraction.map((p) => p.toFixed(2)).join(" ");
  return (
    `episode ${r.episode + 1}/${total}  return ${r.return.toFixed(2)}  ` +
    `success ${r.success ? "yes" : "no"}  final distance ${(r.finalDistance * 100).toFixed(1)} cm  ` +
    `interventions: ${interventions || "none"}  peak |effort|/limit: ${peak}` +
    (r.resetReached ? "" : "  (reset move timed out)") +
    (r.fault !== undefined ? `  FAULT ${r.fault}` : "")
  );
}

export function formatSummary(s: RunSummary): string {
  return (
    `${s.episodes} episodes: success ${(s.successRate * 100).toFixed(0)}%, ` +
    `mean return ${s.meanReturn.toFixed(2)}, mean final distance ${(s.meanFinalDistance * 100).toFixed(1)} cm; ` +
    `tick median ${s.tick.medianUs.toFixed(1)} µs, p99 ${s.tick.p99Us.toFixed(1)} µs` +
    (s.fault !== undefined ? `; stopped by safety fault: ${s.fault}` : "") +
    (s.aborted ? "; stopped by the user" : "")
  );
}

export interface RunCommandOptions {
  config: Config;
  policy: (stack: ControlStack) => Policy;
  episodes: number;
  json: boolean;
  logger: Logger;
  signal: AbortSignal;
  /** Run directory: the transition log goes to DIR/transitions.mcap. Undefined: no log. */
  outDir?: string;
}

/**
 * The CLI body of `run`: the app core builds the stack and starts the driver (only then is the
 * transition log opened), runs the episodes, prints them, and brings the arm to rest before the
 * driver stops, also after a fault or a Ctrl-C.
 */
export async function runCommand(options: RunCommandOptions): Promise<RunSummary> {
  const { config, logger, json } = options;
  const app = ArmApp.create({ config, logger });
  const { stack } = app;
  const policy = options.policy(stack);
  // Checked before the robot moves: a new run never replaces an existing log (run-log.ts).
  if (options.outDir !== undefined) checkNoRunLog(options.outDir, "--out");
  try {
    await app.start();
    if (options.outDir !== undefined) {
      const log = await app.openRunLog(options.outDir);
      logger.info(`transition log: ${log.path}`);
    }
    logger.info(
      `run: driver ${config.driver}, task ${stack.task.name}, policy ${policy.name}, ` +
        `${options.episodes} episodes, seed ${config.seed}, urdf ${stack.urdfPath}`,
    );
    const summary = await app.series.run(policy, options.episodes, {
      signal: options.signal,
      // Each episode's line is the progress report of a run.
      emit: (e) => {
        if (e.type !== "episode") return;
        const r = e.result;
        if (json) process.stdout.write(`${JSON.stringify({ type: "episode", ...r })}\n`);
        else logger.info(formatEpisode(r, options.episodes));
        logger.debug("episode", { ...r });
      },
    });
    if (json) process.stdout.write(`${JSON.stringify({ type: "summary", ...summary })}\n`);
    else logger.info(formatSummary(summary));
    logger.debug("summary", { ...summary });
    if (summary.fault !== undefined) logger.error(`safety fault latched: ${summary.fault}`);
    return summary;
  } finally {
    await app.close();
  }
}
