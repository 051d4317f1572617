/**
 * Times one SAC update (critic, actor and temperature steps, Polyak update of the targets) at the
 * sizes of ../shared/anchors/torch_mbpo_step.py: obs 20, action 6, batch 256, 256 × 256 hidden
 * layers, on each backend asked for, with both critic paths of Sac (batched: the twin critics as
 * one stacked network, one batched product per layer; separate: two 2-D networks), in turns, and
 * prints the ratio batched / separate. Then runs the anchor (PyTorch on the CPU) in the same run
 * and prints ours / torch.
 *
 *   node dist/bench/compute-sac.js [--backends wasm,wasm:2,cpu,webgpu] [--obs 20] [--act 6] [--rounds 5]
 *                                  [--threads 1,2] [--no-torch] [--profile] [--batch-scale 4] [--json]
 *
 * --backends (default wasm,wasm:2,cpu) takes `wasm:N` for the wasm backend on N threads
 * (wasm-threads.ts; plain `wasm` is one thread). --threads lists the torch thread counts the anchor
 * runs with, one run each (default 1 and 2: on this machine's 2 cores, shared with other work,
 * torch's second thread can cost more than it brings); --profile adds
 * the time per kernel (tf.profile) of one batched update on each backend, to show where it goes.
 */
import { selectBackend, tf } from "../src/mbpo/backend.js";
import { createBatch } from "../src/mbpo/replay-buffer.js";
import { Sac, type SacCriticPath } from "../src/mbpo/sac.js";
import { Rng } from "../src/util/rng.js";
import {
  anchorLabel,
  type BackendEntry,
  backendEntries,
  batchScale,
  describeAnchors,
  flag,
  integerListOption,
  integerOption,
  printTable,
  runAnchors,
  timeInTurns,
} from "./compute-anchor.js";

const PATHS: SacCriticPath[] = ["batched", "separate"];
const backends = backendEntries("wasm,wasm:2,cpu");
const obsSize = integerOption("obs", 20);
const actSize = integerOption("act", 6);
const rounds = integerOption("rounds", 5);
const threadCounts = integerListOption("threads", "1,2");
const json = flag("json");
const profile = flag("profile");
const batchRows = 256 * batchScale();

interface BackendFigures {
  backend: string;
  /** ms per update, by critic path. */
  ms: Record<SacCriticPath, number>;
  batchedOverSeparate: number;
  /** The seeded Rng's share: 2 · batch · |A| normals per update. */
  noiseMs: number;
  kernels?: Record<string, { ms: number; calls: number }>;
  tensorsLeft: number;
}

async function measureBackend(entry: BackendEntry): Promise<BackendFigures> {
  const selection = await selectBackend(entry.name, entry.threads);
  process.stderr.write(`timing the SAC update on ${entry.label}…\n`);
  const agents = Object.fromEntries(
    PATHS.map((critics) => [
      critics,
      new Sac(obsSize, actSize, new Rng(1), { batchSize: batchRows }, { critics }),
    ]),
  ) as Record<SacCriticPath, Sac>;
  const rng = new Rng(2);
  const batch = createBatch(obsSize, actSize, agents.batched.options.batchSize);
  for (const array of [batch.obs, batch.action, batch.reward, batch.nextObs]) {
    for (let i = 0; i < array.length; i++) array[i] = rng.normal();
  }
  const slow = selection.name === "cpu";
  const ms = (await timeInTurns(
    Object.fromEntries(PATHS.map((path) => [path, () => agents[path].update(batch)])),
    slow ? Math.min(rounds, 3) : rounds,
    slow ? 2 : 5,
    3,
  )) as Record<SacCriticPath, number>;

  const noiseStart = performance.now();
  for (let i = 0; i < 20 * 2 * batch.rows * actSize; i++) rng.normal();
  const noiseMs = (performance.now() - noiseStart) / 20;

  let kernels: BackendFigures["kernels"];
  if (profile) {
    const info = await tf.profile(async () => {
      await agents.batched.update(batch);
    });
    const byName: Record<string, { ms: number; calls: number }> = {};
    for (const k of info.kernels) {
      const entry = byName[k.name] ?? { ms: 0, calls: 0 };
      entry.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
      entry.calls++;
      byName[k.name] = entry;
    }
    kernels = Object.fromEntries(
      Object.entries(byName)
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([kernel, v]) => [kernel, { ms: Number(v.ms.toFixed(2)), calls: v.calls }]),
    );
  }
  for (const agent of Object.values(agents)) agent.dispose();
  return {
    backend: entry.label,
    ms,
    batchedOverSeparate: ms.batched / ms.separate,
    noiseMs,
    kernels,
    tensorsLeft: tf.memory().numTensors,
  };
}

const results: BackendFigures[] = [];
for (const entry of backends) results.push(await measureBackend(entry));
const torchRuns = runAnchors(threadCounts, obsSize, actSize);
const torchMs = torchRuns.map((run) => (run.ok ? (run.figures.sac_update_ms ?? Number.NaN) : Number.NaN));
const labels = torchRuns.map((run, i) => anchorLabel(run, threadCounts[i]));

if (json) {
  console.log(
    JSON.stringify(
      {
        bench: "sac_update",
        sizes: { obs: obsSize, act: actSize, batch: batchRows, hidden: [256, 256] },
        results,
        torch: torchRuns,
        oursBatchedOverTorch: Object.fromEntries(
          results.map((r) => [r.backend, torchMs.map((ms) => r.ms.batched / ms)]),
        ),
      },
      null,
      2,
    ),
  );
} else {
  console.log(
    `\nSAC update: obs ${obsSize}, act ${actSize}, batch ${batchRows}, 256 × 256 (ms per update, median)`,
  );
  printTable(
    [
      "backend",
      "batched",
      "separate",
      "batched/separate",
      "of which noise",
      ...labels.flatMap((label) => [label, `batched/${label}`]),
    ],
    results.map((r) => [
      r.backend,
      r.ms.batched,
      r.ms.separate,
      r.batchedOverSeparate,
      r.noiseMs,
      ...torchMs.flatMap((ms) => [ms, r.ms.batched / ms]),
    ]),
  );
  describeAnchors(torchRuns);
  for (const r of results) {
    if (r.kernels !== undefined) {
      console.log(`\n${r.backend}: time per kernel in one batched update`);
      printTable(
        ["kernel", "ms", "calls"],
        Object.entries(r.kernels)
          .slice(0, 12)
          .map(([kernel, v]) => [kernel, v.ms, v.calls]),
      );
    }
  }
}
