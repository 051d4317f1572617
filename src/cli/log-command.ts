/**
 * `mbpo-arm log summary FILE|DIR [--json]`: what a transition log holds. A file that is incomplete
 * or damaged is summarised up to the damage, the problem is printed on stderr, and the exit code is
 * 2. A run directory is read segment by segment (transitions.mcap, then a resumed run's
 * transitions-from-episode-N.mcap), with totals.
 */
import { statSync } from "node:fs";
import {
  formatLogSummary,
  formatRunLogSummary,
  type LogSummary,
  type RunLogSummary,
  summarizeLog,
  summarizeRunLog,
} from "../data/log-summary.js";

export interface LogSummaryOutput {
  summary: LogSummary | RunLogSummary;
  exitCode: number;
}

export async function runLogSummary(
  file: string,
  json: boolean,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<LogSummaryOutput> {
  const isDir = statSync(file, { throwIfNoEntry: false })?.isDirectory() === true;
  const summary = isDir ? await summarizeRunLog(file) : await summarizeLog(file);
  if (json) out.write(`${JSON.stringify(summary)}\n`);
  else
    out.write(
      `${isDir ? formatRunLogSummary(summary as RunLogSummary) : formatLogSummary(summary as LogSummary)}\n`,
    );
  if (summary.problem !== undefined) {
    err.write(`mbpo-arm: ${summary.problem}\n`);
    return { summary, exitCode: 2 };
  }
  return { summary, exitCode: 0 };
}
