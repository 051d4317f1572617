/**
 * What a transition log holds: topics and message counts, episodes with their returns, success and
 * safety interventions. Reads damaged files up to the damage (see mcap-reader.ts).
 */
import type { EpisodeSummaryMessage, TransitionMessage } from "./log-messages.js";
import { TOPICS } from "./log-messages.js";
import { BagFormatError, readRos2Mcap } from "./mcap-reader.js";
import { logSegments, TRANSITIONS_FILE } from "./run-log.js";

export interface EpisodeLine {
  episode: number;
  steps: number;
  return: number;
  success: boolean;
  finalDistance: number;
  aborted: boolean;
  fault?: string;
  interventions: Record<string, number>;
}

export interface LogSummary {
  file: string;
  profile: string;
  library: string;
  /** False when the file has no footer (killed writer) or is damaged; see `problem`. */
  complete: boolean;
  problem?: string;
  bytes: number;
  topics: { topic: string; type: string; messages: number }[];
  /** Seconds between the first and last message (log time). */
  duration: number;
  transitions: number;
  /** Transitions whose tick had a safety intervention. */
  interventionTicks: number;
  episodes: EpisodeLine[];
  /** Transitions after the last complete episode (the episode in progress when the writer stopped). */
  unfinishedTransitions: number;
  successRate: number;
  meanReturn: number;
  /** Interventions over all episodes, by kind. */
  interventions: Record<string, number>;
}

/**
 * Summarises a transition log. Throws a one-line BagFormatError when the file is not MCAP or lacks
 * the log's topics; damage is reported in `problem` with what was read before it.
 */
export async function summarizeLog(file: string): Promise<LogSummary> {
  const episodes: EpisodeLine[] = [];
  let transitions = 0;
  let interventionTicks = 0;
  let sinceLastEpisode = 0;
  let first: bigint | undefined;
  let last: bigint | undefined;
  const read = await readRos2Mcap(file, {
    topics: new Set([TOPICS.transition, TOPICS.episode]),
    onMessage: (m) => {
      // An episode of no steps carries no time of its own (a log written before that was fixed
      // stamped it 0): it does not bound the log's duration.
      const timeless = m.topic === TOPICS.episode && (m.message as EpisodeSummaryMessage).steps === 0;
      if (!timeless && (first === undefined || m.logTime < first)) first = m.logTime;
      if (!timeless && (last === undefined || m.logTime > last)) last = m.logTime;
      if (m.topic === TOPICS.transition) {
        const t = m.message as TransitionMessage;
        transitions++;
        sinceLastEpisode++;
        if (t.safety_interventions > 0) interventionTicks++;
      } else {
        const e = m.message as EpisodeSummaryMessage;
        sinceLastEpisode = 0;
        const interventions: Record<string, number> = {};
        e.intervention_kinds.forEach((kind, i) => {
          interventions[kind] = Number(e.intervention_counts[i]);
        });
        episodes.push({
          episode: e.episode,
          steps: e.steps,
          return: e.episode_return,
          success: e.success,
          finalDistance: e.final_distance,
          aborted: e.aborted,
          ...(e.fault !== "" ? { fault: e.fault } : {}),
          interventions,
        });
      }
    },
  });
  const topics = [...read.channels.values()].map((c) => ({
    topic: c.topic,
    type: c.type,
    messages: read.counts.get(c.topic) ?? 0,
  }));
  // Our writer declares every topic before its first message: a file cut before any message is a
  // truncated log (its problem says so, exit code 2), not a file of some other kind.
  const cutEarly = read.messages === 0 && read.problem !== undefined;
  for (const wanted of [TOPICS.transition, TOPICS.episode]) {
    if (!cutEarly && !topics.some((t) => t.topic === wanted)) {
      const present = topics.map((t) => t.topic).join(", ") || "none";
      throw new BagFormatError(
        `${file} has no ${wanted} topic: it is not an mbpo-arm transition log (topics: ${present})` +
          (read.problem !== undefined ? `; also: ${read.problem}` : ""),
      );
    }
  }
  const interventions: Record<string, number> = {};
  for (const e of episodes) {
    for (const [kind, count] of Object.entries(e.interventions)) {
      interventions[kind] = (interventions[kind] ?? 0) + count;
    }
  }
  const n = episodes.length;
  return {
    file,
    profile: read.profile,
    library: read.library,
    complete: read.complete && read.problem === undefined,
    ...(read.problem !== undefined ? { problem: read.problem } : {}),
    bytes: read.bytes,
    topics,
    duration: first !== undefined && last !== undefined ? Number(last - first) / 1e9 : 0,
    transitions,
    interventionTicks,
    episodes,
    unfinishedTransitions: sinceLastEpisode,
    successRate: n === 0 ? Number.NaN : episodes.filter((e) => e.success).length / n,
    meanReturn: n === 0 ? Number.NaN : episodes.reduce((s, e) => s + e.return, 0) / n,
    interventions,
  };
}

export function formatLogSummary(s: LogSummary): string {
  const lines: string[] = [];
  lines.push(
    `${s.file}: profile ${s.profile || "(none)"}, written by ${s.library || "(unknown)"}, ${s.bytes} bytes`,
  );
  lines.push(`${s.complete ? "complete" : "INCOMPLETE"}; ${s.duration.toFixed(2)} s of messages`);
  lines.push("topics:");
  for (const t of s.topics) lines.push(`  ${t.topic.padEnd(30)} ${t.type.padEnd(34)} ${t.messages}`);
  lines.push(
    `${s.episodes.length} episodes, ${s.transitions} transitions` +
      (s.unfinishedTransitions > 0 ? ` (${s.unfinishedTransitions} after the last complete episode)` : "") +
      `, ${s.interventionTicks} ticks with a safety intervention`,
  );
  if (s.episodes.length > 0) {
    lines.push(
      `success ${(s.successRate * 100).toFixed(0)}%, mean return ${s.meanReturn.toFixed(3)}; interventions: ${
        Object.entries(s.interventions)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ") || "none"
      }`,
    );
    lines.push("episode  steps   return  success  final distance  notes");
    for (const e of s.episodes) {
      const notes = [e.aborted ? "aborted" : "", e.fault !== undefined ? `fault: ${e.fault}` : ""]
        .filter((x) => x !== "")
        .join("; ");
      lines.push(
        `${String(e.episode + 1).padStart(7)}  ${String(e.steps).padStart(5)}  ${e.return.toFixed(3).padStart(7)}  ${(e.success ? "yes" : "no").padStart(7)}  ${`${(e.finalDistance * 100).toFixed(1)} cm`.padStart(14)}  ${notes}`,
      );
    }
  }
  if (s.problem !== undefined) lines.push(`problem: ${s.problem}`);
  return lines.join("\n");
}

/** Every segment of a run directory's log, read together (see run-log.ts). */
export interface RunLogSummary {
  dir: string;
  segments: LogSummary[];
  episodes: number;
  transitions: number;
  successRate: number;
  meanReturn: number;
  /** True when every segment is complete. */
  complete: boolean;
  /** The segments' problems, one line (undefined when there are none). */
  problem?: string;
}

/**
 * Summarises every log segment of a run directory (transitions.mcap and a resumed run's
 * transitions-from-episode-N.mcap). A directory without any is a one-line error naming it.
 */
export async function summarizeRunLog(dir: string): Promise<RunLogSummary> {
  const files = logSegments(dir);
  if (files.length === 0) {
    throw new BagFormatError(
      `${dir} is a directory without a transition log (no ${TRANSITIONS_FILE} or transitions-from-episode-N.mcap in it)`,
    );
  }
  const segments: LogSummary[] = [];
  for (const file of files) segments.push(await summarizeLog(file));
  const all = segments.flatMap((s) => s.episodes);
  const problems = segments.flatMap((s) => (s.problem !== undefined ? [s.problem] : []));
  return {
    dir,
    segments,
    episodes: all.length,
    transitions: segments.reduce((n, s) => n + s.transitions, 0),
    successRate: all.length === 0 ? Number.NaN : all.filter((e) => e.success).length / all.length,
    meanReturn: all.length === 0 ? Number.NaN : all.reduce((n, e) => n + e.return, 0) / all.length,
    complete: segments.every((s) => s.complete),
    ...(problems.length > 0 ? { problem: problems.join("; ") } : {}),
  };
}

export function formatRunLogSummary(r: RunLogSummary): string {
  const blocks = r.segments.map(formatLogSummary);
  blocks.push(
    `${r.dir}: ${r.segments.length} segment${r.segments.length === 1 ? "" : "s"}, ${r.episodes} episodes, ${r.transitions} transitions` +
      (r.episodes > 0
        ? `, success ${(r.successRate * 100).toFixed(0)}%, mean return ${r.meanReturn.toFixed(3)}`
        : "") +
      (r.complete ? "" : "; INCOMPLETE"),
  );
  return blocks.join("\n\n");
}
