/**
 * Times the ensemble's two inner loops at MBPO's default sizes (7 members, 4 × 200 SiLU, batch
 * 256 per member), input 4 + 4 + 4 = 12 (q, q̇, τ) → output 8 (Δq, Δq̇):
 *
 *   train_step     one Adam step of the whole ensemble on [7 × 256] rows (ProbabilisticEnsemble's
 *                  own step: Gaussian NLL with soft-bounded log-variance, weight decay, bounds)
 *   forward_8000_split  8,000 rows split across the members (8000/7 each), the anchor's measure
 *   forward_8000_all    8,000 rows through every member, what rollouts with a disagreement
 *                  filter need (7× the work of the split measure)
 *
 * Prints one JSON object. With PyTorch installed (`python3 -c "import torch"`), runs
 * ../shared/anchors/torch_mbpo_step.py with obs 7 and act 5 (so that its ensemble is 12 → 8) in
 * the same run and prints each ratio ours / torch.
 *
 *   node dist/bench/compute-ensemble.js [--tf-backend NAME] [--steps 15] [--threads 2]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { selectBackend, tf } from "../src/mbpo/backend.js";
import { ProbabilisticEnsemble } from "../src/mbpo/ensemble.js";
import { Rng } from "../src/util/rng.js";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const steps = Number(option("steps", "15"));
const threads = option("threads", "2");
const selection = await selectBackend(
  process.argv.includes("--tf-backend") ? option("tf-backend", "") : undefined,
);

const IN = 12;
const OUT = 8;
const rng = new Rng(1);
const ensemble = new ProbabilisticEnsemble(IN, OUT, rng);
const E = ensemble.members;
const B = ensemble.options.batchSize;
const x = Float32Array.from({ length: E * B * IN }, () => rng.normal());
const y = Float32Array.from({ length: E * B * OUT }, () => rng.normal());
// trainStep is private: the benchmark times exactly the step train() runs, without the epoch's
// batching and holdout evaluation around it.
const step = (
  ensemble as unknown as { trainStep(x: Float32Array, y: Float32Array, b: number): number }
).trainStep.bind(ensemble);

function time(f: () => void, repeats: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) f();
  const start = performance.now();
  for (let i = 0; i < repeats; i++) f();
  return (performance.now() - start) / repeats;
}

const trainStepMs = time(() => step(x, y, B), steps);

// Split forward: each member gets its own 8000/7 rows, as the anchor's rx [E, 8000/E, in].
const perMember = Math.floor(8000 / E);
const splitInputs = Float32Array.from({ length: perMember * IN }, () => rng.normal());
const prediction = { mean: new Float32Array(E * 8000 * OUT), logvar: new Float32Array(E * 8000 * OUT) };
const forwardSplitMs = time(() => ensemble.predict(splitInputs, perMember, prediction), 5, 1);
// (predict runs every member on the rows it is given, so perMember rows cost E × perMember
// member-rows, the same work as the anchor's split; the anchor's rows differ per member.)
const allInputs = Float32Array.from({ length: 8000 * IN }, () => rng.normal());
const forwardAllMs = time(() => ensemble.predict(allInputs, 8000, prediction), 2, 1);
const members = new Int32Array(8000);
const sampleOut = { delta: new Float32Array(8000 * OUT), disagreement: new Float32Array(8000) };
const sampleAllMs = time(
  () => {
    ensemble.randomElites(8000, rng, members);
    ensemble.sample(allInputs, 8000, members, rng, sampleOut);
  },
  2,
  1,
);
const normalsStart = performance.now();
for (let i = 0; i < 8000 * OUT; i++) rng.normal();
const rngNormalsMs = performance.now() - normalsStart;

const ours = {
  ensemble_train_step_ms: trainStepMs,
  ensemble_forward_8000_ms: forwardSplitMs,
  ensemble_forward_8000_all_members_ms: forwardAllMs,
  ensemble_sample_8000_ms: sampleAllMs,
  rng_64000_normals_ms: rngNormalsMs,
};

// The anchor, if PyTorch is installed.
const here = dirname(fileURLToPath(import.meta.url));
const anchor = [
  resolve(here, "../../../shared/anchors/torch_mbpo_step.py"),
  "/work/shared/anchors/torch_mbpo_step.py",
].find(existsSync);
let torch: Record<string, number> | string;
const probe = spawnSync("python3", ["-c", "import torch"], { encoding: "utf8" });
if (anchor === undefined) torch = "anchor torch_mbpo_step.py not found";
else if (probe.status !== 0) torch = "PyTorch not installed (python3 -c 'import torch' fails): no ratio";
else {
  // obs 7, act 5: the anchor's ensemble maps obs + act = 12 inputs to obs + 1 = 8 outputs.
  const run = spawnSync("python3", [anchor, threads, "7", "5"], { encoding: "utf8", timeout: 120_000 });
  torch = {};
  for (const line of run.stdout.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key?.endsWith("_ms")) torch[key] = Number(value);
  }
}
const ratios =
  typeof torch === "string"
    ? undefined
    : {
        ensemble_train_step: trainStepMs / torch.ensemble_train_step_ms,
        ensemble_forward_8000: forwardSplitMs / torch.ensemble_forward_8000_ms,
      };

console.log(
  JSON.stringify(
    {
      backend: selection.name,
      tfBackend: selection.tfBackend,
      sizes: { members: E, hidden: ensemble.options.hiddenSizes, batchPerMember: B, input: IN, output: OUT },
      ours,
      torch,
      ratios,
      tensorsLeft: tf.memory().numTensors,
    },
    null,
    2,
  ),
);
ensemble.dispose();
