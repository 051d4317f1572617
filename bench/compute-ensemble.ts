/**
 * Times the ensemble's inner loops at MBPO's default sizes (7 members, 4 × 200 SiLU, 256 rows per
 * member per step), input 12 = (q, q̇, τ) of a 4-joint arm, output 8 = (Δq, Δq̇), on each backend
 * asked for, with both compute paths of ProbabilisticEnsemble (batched: one [E, rows, in] ×
 * [E, in, out] product per layer; per-member: E separate 2-D networks), in turns, and prints the
 * ratio batched / per-member. Then runs ../shared/anchors/torch_mbpo_step.py (PyTorch on the CPU)
 * with obs 7 and act 5, so that its ensemble is 12 → 8 as ours, and prints ours / torch.
 *
 *   train_step        one Adam step of the whole ensemble (Gaussian NLL with soft-bounded
 *                     log-variance, weight decay, bound penalty), loss read back
 *   forward_8000      8,000 member-rows: every member on 1,142 rows (the anchor's measure: its
 *                     rx is [7, 8000/7, in])
 *   forward_8000_all  8,000 rows through every member and the rollout draw (sample()): what
 *                     MBPO's rollouts with a disagreement filter need, 7× the member-rows
 *
 *   node dist/bench/compute-ensemble.js [--backends wasm,wasm:2,cpu,webgpu] [--rounds 5] [--threads 1,2]
 *                                       [--no-torch] [--batch-scale 4] [--json]
 *
 * --backends (default wasm,wasm:2,cpu) takes `wasm:N` for the wasm backend on N threads
 * (wasm-threads.ts; plain `wasm` is one thread). --threads lists the torch thread counts the anchor
 * runs with, one run each (default 1 and 2: on this machine's 2 cores, shared with other work,
 * torch's second thread can cost more than it brings); --json prints one JSON object instead of tables.
 */
import { selectBackend, tf } from "../src/mbpo/backend.js";
import { type EnsembleComputePath, ProbabilisticEnsemble } from "../src/mbpo/ensemble.js";
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

const IN = 12;
const OUT = 8;
const FORWARD_ROWS = 8000 * batchScale();
const BATCH_PER_MEMBER = 256 * batchScale();
const PATHS: EnsembleComputePath[] = ["batched", "per-member"];

const backends = backendEntries("wasm,wasm:2,cpu");
const rounds = integerOption("rounds", 5);
const threadCounts = integerListOption("threads", "1,2");
const json = flag("json");

/** The private step ProbabilisticEnsemble.train() runs, timed without the epoch around it. */
type Steppable = { trainStepTensor(x: Float32Array, y: Float32Array, b: number): tf.Scalar };

interface BackendFigures {
  backend: string;
  /** ms per call, by measure then compute path. */
  ms: Record<string, Record<EnsembleComputePath, number>>;
  /** batched / per-member, by measure (below 1: batched is faster). */
  batchedOverPerMember: Record<string, number>;
  tensorsLeft: number;
}

async function measureBackend(entry: BackendEntry): Promise<BackendFigures> {
  const selection = await selectBackend(entry.name, entry.threads);
  process.stderr.write(`timing the ensemble on ${entry.label}…\n`);
  const rng = new Rng(1);
  const models = Object.fromEntries(
    PATHS.map((path) => [
      path,
      new ProbabilisticEnsemble(IN, OUT, new Rng(1), { batchSize: BATCH_PER_MEMBER }, { path }),
    ]),
  ) as Record<EnsembleComputePath, ProbabilisticEnsemble>;
  const E = models.batched.members;
  const B = models.batched.options.batchSize;
  const x = Float32Array.from({ length: E * B * IN }, () => rng.normal());
  const y = Float32Array.from({ length: E * B * OUT }, () => rng.normal());
  const perMemberRows = Math.floor(FORWARD_ROWS / E);
  const splitInputs = Float32Array.from({ length: perMemberRows * IN }, () => rng.normal());
  const allInputs = Float32Array.from({ length: FORWARD_ROWS * IN }, () => rng.normal());
  const prediction = {
    mean: new Float32Array(E * FORWARD_ROWS * OUT),
    logvar: new Float32Array(E * FORWARD_ROWS * OUT),
  };
  const members = new Int32Array(FORWARD_ROWS);
  const drawn = { delta: new Float32Array(FORWARD_ROWS * OUT), disagreement: new Float32Array(FORWARD_ROWS) };

  // The pure-JS cpu backend is about 20× slower: fewer calls, and no 56,000-member-row pass.
  const slow = selection.name === "cpu";
  const measures: Record<string, (model: ProbabilisticEnsemble) => () => Promise<void>> = {
    train_step: (model) => async () => {
      const loss = (model as unknown as Steppable).trainStepTensor(x, y, B);
      await loss.data();
      loss.dispose();
    },
    forward_8000: (model) => () => model.predict(splitInputs, perMemberRows, prediction),
  };
  if (!slow) {
    measures.forward_8000_all = (model) => async () => {
      model.randomElites(FORWARD_ROWS, rng, members);
      await model.sample(allInputs, FORWARD_ROWS, members, rng, drawn);
    };
  }
  const ms: BackendFigures["ms"] = {};
  const ratio: Record<string, number> = {};
  for (const [measure, make] of Object.entries(measures)) {
    const variants = Object.fromEntries(PATHS.map((path) => [path, make(models[path])]));
    const calls = slow || measure === "forward_8000_all" ? 1 : 3;
    const times = (await timeInTurns(variants, slow ? Math.min(rounds, 3) : rounds, calls, 1)) as Record<
      EnsembleComputePath,
      number
    >;
    ms[measure] = times;
    ratio[measure] = times.batched / times["per-member"];
  }
  for (const model of Object.values(models)) model.dispose();
  return { backend: entry.label, ms, batchedOverPerMember: ratio, tensorsLeft: tf.memory().numTensors };
}

const results: BackendFigures[] = [];
for (const entry of backends) results.push(await measureBackend(entry));

// The anchor: obs 7, act 5 make its ensemble 12 → 8 like ours.
const torchRuns = runAnchors(threadCounts, 7, 5);
const labels = torchRuns.map((run, i) => anchorLabel(run, threadCounts[i]));
const torchKeys: Record<string, string> = {
  train_step: "ensemble_train_step_ms",
  forward_8000: "ensemble_forward_8000_ms",
};
/** The anchor's ms for a measure in each run (NaN where it has no such line). */
const torchMs = (measure: string) =>
  torchRuns.map((run) => (run.ok ? (run.figures[torchKeys[measure] ?? ""] ?? Number.NaN) : Number.NaN));

if (json) {
  console.log(
    JSON.stringify(
      {
        bench: "ensemble",
        sizes: {
          members: 7,
          hidden: [200, 200, 200, 200],
          batchPerMember: BATCH_PER_MEMBER,
          forwardRows: FORWARD_ROWS,
          input: IN,
          output: OUT,
        },
        results,
        torch: torchRuns,
        oursBatchedOverTorch: Object.fromEntries(
          results.map((r) => [
            r.backend,
            Object.fromEntries(
              Object.keys(torchKeys).map((m) => [m, torchMs(m).map((ms) => r.ms[m].batched / ms)]),
            ),
          ]),
        ),
      },
      null,
      2,
    ),
  );
} else {
  console.log(
    `\nensemble: 7 members, 4 × 200 SiLU, 12 → 8, ${BATCH_PER_MEMBER} rows per member per step, forward ${FORWARD_ROWS} rows (ms per call, median)`,
  );
  const rows: (string | number)[][] = [];
  for (const r of results) {
    for (const measure of Object.keys(r.ms)) {
      rows.push([
        `${r.backend} ${measure}`,
        r.ms[measure].batched,
        r.ms[measure]["per-member"],
        r.batchedOverPerMember[measure],
        ...torchMs(measure).flatMap((ms) => [ms, r.ms[measure].batched / ms]),
      ]);
    }
  }
  printTable(
    [
      "backend measure",
      "batched",
      "per-member",
      "batched/per-member",
      ...labels.flatMap((label) => [label, `batched/${label}`]),
    ],
    rows,
  );
  describeAnchors(torchRuns);
  for (const r of results) {
    if (r.tensorsLeft > 0)
      console.log(`${r.backend}: ${r.tensorsLeft} tensors still allocated after the bench`);
  }
}
