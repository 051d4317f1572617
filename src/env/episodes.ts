/**
 * The episode streams an outside learner can ask `env serve` for, named so that the benchmark and
 * the server draw them the same way (one function, no copy to drift):
 *
 *   training episodes of seed S:    Rng(S, 1), drawn in order (what `run --seed S` plays);
 *   evaluation episode k of seed S: the (k+1)-th draw of Rng(S, 3) (what `bench/learning.ts
 *                                   --seeds S` evaluates on, k = 0 … --eval-episodes − 1).
 */
import type { Task, TaskEpisode } from "../tasks/task.js";
import { Rng } from "../util/rng.js";

/** The Rng stream of training episodes (as `run` draws them). */
export const TRAINING_STREAM = 1;
/** The Rng stream of evaluation episodes (as bench/learning draws them). */
export const EVALUATION_STREAM = 3;

/** The first `count` evaluation episodes of a seed. */
export function evaluationEpisodes(task: Task, seed: number, count: number): TaskEpisode[] {
  const rng = new Rng(seed, EVALUATION_STREAM);
  return Array.from({ length: count }, () => task.sampleEpisode(rng));
}

/** Evaluation episode k (0-based) of a seed: the draws before it are replayed (sampling rejects, so a draw has no fixed offset). */
export function evaluationEpisode(task: Task, seed: number, k: number): TaskEpisode {
  return evaluationEpisodes(task, seed, k + 1)[k];
}
