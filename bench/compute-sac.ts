/**
 * Times one SAC update (twin critics, actor and temperature steps, Polyak update) at the sizes of
 * ../shared/anchors/torch_mbpo_step.py: obs 20, action 6, batch 256, 256×256 hidden layers.
 * Prints one JSON object; with PyTorch installed (`python3 -c "import torch"`), runs the anchor
 * in the same run and prints the ratio ours / torch.
 *
 *   node dist/bench/compute-sac.js [--backend wasm|cpu] [--obs 20] [--act 6] [--updates 30]
 *                                  [--threads 2] [--profile]
 *
 * --profile adds the time per kernel (tf.profile) of one update, to show where it goes.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { createBatch } from "../src/mbpo/replay-buffer.js";
import { Sac } from "../src/mbpo/sac.js";
import { Rng } from "../src/util/rng.js";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const backend = option("backend", "wasm");
const obsSize = Number(option("obs", "20"));
const actSize = Number(option("act", "6"));
const updates = Number(option("updates", "30"));
const threads = option("threads", "2");
const profile = process.argv.includes("--profile");

await tf.setBackend(backend);
await tf.ready();

const rng = new Rng(1);
const sac = new Sac(obsSize, actSize, rng);
const batch = createBatch(obsSize, actSize, sac.options.batchSize);
for (const array of [batch.obs, batch.action, batch.reward, batch.nextObs]) {
  for (let i = 0; i < array.length; i++) array[i] = rng.normal();
}

for (let i = 0; i < 3; i++) sac.update(batch); // warm-up: Adam's moments, wasm code paths
const start = performance.now();
for (let i = 0; i < updates; i++) sac.update(batch);
const oursMs = (performance.now() - start) / updates;

// The noise alone (2 · 256 · |A| normals from the seeded PCG32 Rng) is part of every update.
const noiseStart = performance.now();
for (let i = 0; i < 20 * 2 * batch.rows * actSize; i++) rng.normal();
const noiseMs = (performance.now() - noiseStart) / 20;

let kernels: Record<string, { ms: number; calls: number }> | undefined;
if (profile) {
  const info = await tf.profile(() => {
    sac.update(batch);
  });
  kernels = {};
  for (const k of info.kernels) {
    const entry = kernels[k.name] ?? { ms: 0, calls: 0 };
    entry.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    entry.calls++;
    kernels[k.name] = entry;
  }
  kernels = Object.fromEntries(
    Object.entries(kernels)
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([name, v]) => [name, { ms: Number(v.ms.toFixed(3)), calls: v.calls }]),
  );
}
sac.dispose();

// The PyTorch anchor, when torch is importable.
const here = dirname(fileURLToPath(import.meta.url));
const anchor = [
  resolve(here, "../../../shared/anchors/torch_mbpo_step.py"),
  resolve("../shared/anchors/torch_mbpo_step.py"),
].find(existsSync);
let torch: { sacUpdateMs: number; output: string } | { unavailable: string };
const hasTorch = spawnSync("python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0;
if (!hasTorch) {
  torch = {
    unavailable: "python3 cannot import torch (Debian: python3-torch, libopenblas0-pthread); no ratio",
  };
} else if (anchor === undefined) {
  torch = { unavailable: "../shared/anchors/torch_mbpo_step.py not found; no ratio" };
} else {
  const output = execFileSync("python3", [anchor, threads, String(obsSize), String(actSize)], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const match = /sac_update_ms ([\d.]+)/.exec(output);
  torch = match
    ? { sacUpdateMs: Number(match[1]), output: output.trim() }
    : { unavailable: `anchor printed no sac_update_ms: ${output.trim()}` };
}

console.log(
  JSON.stringify(
    {
      bench: "sac_update",
      backend: tf.getBackend(),
      obs: obsSize,
      act: actSize,
      batch: batch.rows,
      hidden: sac.options.hiddenSizes,
      updates,
      sacUpdateMs: Number(oursMs.toFixed(3)),
      noiseMsPerUpdate: Number(noiseMs.toFixed(3)),
      torch,
      ratioOursOverTorch: "sacUpdateMs" in torch ? Number((oursMs / torch.sacUpdateMs).toFixed(2)) : null,
      ...(kernels ? { kernels } : {}),
    },
    null,
    2,
  ),
);
