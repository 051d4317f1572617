/**
 * The one rule for a run directory's transition log: an existing log is never replaced.
 *
 * - A command that starts a new run (`run`, `train --out`, `bootstrap --out`, the node's run,
 *   teleop and learn modes) refuses a directory that already holds a log segment, naming the file
 *   (checkNoRunLog), before anything moves.
 * - A resumed training run adds a segment of its own: transitions-from-episode-N.mcap, where N is
 *   the first episode it writes (newSegmentPath). A name already taken (the same checkpoint
 *   resumed twice) gets a -2, -3, ... suffix.
 * - Readers (`log summary DIR`, `train --bootstrap DIR`) take every segment, in the order written
 *   (logSegments).
 *
 * The writer itself opens with O_EXCL (mcap-writer.ts), so even a race cannot replace a file.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const TRANSITIONS_FILE = "transitions.mcap";

const SEGMENT = /^transitions-from-episode-(\d+)(?:-(\d+))?\.mcap$/;

/** The log segments of a run directory, in the order they were written (none: an empty list). */
export function logSegments(dir: string): string[] {
  const names = readdirSync(dir);
  const resumed = names
    .map((name) => ({ name, m: SEGMENT.exec(name) }))
    .filter((s): s is { name: string; m: RegExpExecArray } => s.m !== null)
    .map((s) => ({ name: s.name, episode: Number(s.m[1]), copy: Number(s.m[2] ?? 1) }))
    .sort((a, b) => a.episode - b.episode || a.copy - b.copy)
    .map((s) => s.name);
  const first = names.includes(TRANSITIONS_FILE) ? [TRANSITIONS_FILE] : [];
  return [...first, ...resumed].map((name) => join(dir, name));
}

/**
 * Throws a one-line error when `dir` already holds a transition log: a new run never replaces
 * one. `option` names the flag the directory came from (e.g. "--out").
 */
export function checkNoRunLog(dir: string, option: string, hint = "choose another directory"): void {
  if (!existsSync(dir)) return;
  const existing = logSegments(dir);
  if (existing.length > 0) {
    throw new Error(
      `${option} ${dir}: already holds a transition log (${existing[0]}); a new run never replaces one: ${hint}`,
    );
  }
}

/**
 * Where a session writes its segment: transitions.mcap for a run's first session, else
 * transitions-from-episode-N.mcap (N: the first episode it writes, counted from 1), never a name
 * that exists.
 */
export function newSegmentPath(dir: string, firstEpisode: number): string {
  if (firstEpisode <= 1 && !existsSync(join(dir, TRANSITIONS_FILE))) return join(dir, TRANSITIONS_FILE);
  for (let copy = 1; ; copy++) {
    const name = `transitions-from-episode-${firstEpisode}${copy === 1 ? "" : `-${copy}`}.mcap`;
    if (!existsSync(join(dir, name))) return join(dir, name);
  }
}
