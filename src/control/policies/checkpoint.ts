/**
 * "checkpoint:DIR": the actor a training run saved (checkpoint/actor.json, see src/train/run-dir.ts),
 * run deterministically (the mean action tanh(μ)) by the plain-JS MLP. DIR may be the run
 * directory or its checkpoint/ directory. No TensorFlow.js is loaded.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Task } from "../../tasks/task.js";
import { verifyChecksums } from "../../util/checksums.js";
import { MlpPolicy } from "./mlp.js";

export const CHECKPOINT_POLICY_PREFIX = "checkpoint:";

export function loadCheckpointPolicy(dir: string, task: Task): MlpPolicy {
  const root = resolve(dir);
  const candidates = [join(root, "checkpoint", "actor.json"), join(root, "actor.json")];
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    throw new Error(`policy checkpoint:${dir}: no saved actor (looked for ${candidates.join(" and ")})`);
  }
  // The actor's line of the checkpoint's SHA256SUMS, when it has one (src/train/checksums.ts).
  verifyChecksums(dirname(path), [basename(path)]);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path}: not readable JSON (${(error as Error).message.split("\n")[0]})`);
  }
  let policy: MlpPolicy;
  try {
    policy = MlpPolicy.fromJSON(json, { name: `checkpoint:${dir}` });
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  if (policy.observationSize !== task.observationSize || policy.actionSize !== task.actionSize) {
    throw new Error(
      `${path}: the actor takes ${policy.observationSize} observations and gives ${policy.actionSize} actions; task ${task.name} has ${task.observationSize} and ${task.actionSize}`,
    );
  }
  return policy;
}
