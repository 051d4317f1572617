import { createBatch, type TransitionBatch } from "../../src/mbpo/replay-buffer.js";
import type { Rng } from "../../src/util/rng.js";

/**
 * A batch of `rows` random transitions for the learner's tests: normal observations and rewards,
 * actions uniform in [−1, 1], one in five terminated. The draws come in this order from `rng`.
 */
export function randomBatch(obsSize: number, actSize: number, rows: number, rng: Rng): TransitionBatch {
  const batch = createBatch(obsSize, actSize, rows);
  for (const array of [batch.obs, batch.nextObs, batch.reward])
    for (let i = 0; i < array.length; i++) array[i] = rng.normal();
  for (let i = 0; i < batch.action.length; i++) batch.action[i] = rng.range(-1, 1);
  for (let i = 0; i < rows; i++) batch.terminated[i] = rng.uniform() < 0.2 ? 1 : 0;
  return batch;
}
