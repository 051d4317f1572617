/**
 * `mbpo-arm log summary FILE [--json]`: what a transition log holds. A file that is incomplete or
 * damaged is summarised up to the damage, the problem is printed on stderr, and the exit code is 2.
 */
import { formatLogSummary, type LogSummary, summarizeLog } from "../data/log-summary.js";

export interface LogSummaryOutput {
  summary: LogSummary;
  exitCode: number;
}

export async function runLogSummary(
  file: string,
  json: boolean,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<LogSummaryOutput> {
  const summary = await summarizeLog(file);
  if (json) out.write(`${JSON.stringify(summary)}\n`);
  else out.write(`${formatLogSummary(summary)}\n`);
  if (summary.problem !== undefined) {
    err.write(`mbpo-arm: ${summary.problem}\n`);
    return { summary, exitCode: 2 };
  }
  return { summary, exitCode: 0 };
}
