/**
 * What bench/compute-ensemble.ts and bench/compute-sac.ts share: command-line options, timing
 * with interleaved repeats, and running the PyTorch anchor (../shared/anchors/torch_mbpo_step.py)
 * in the same run.
 *
 * Timing: the machine is shared and noisy, so variants that are compared are timed in turns
 * (A, B, A, B, …, several calls per turn) and each reports the median of its turns; a ratio is
 * only ever taken between figures of the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** `--name value` from argv, or the fallback. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** A comma-separated list of positive integers (e.g. --threads 1,2), or a one-line error. */
export function integerListOption(name: string, fallback: string): number[] {
  const text = option(name, fallback);
  const values = text.split(",").map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v <= 0)) {
    console.error(`--${name}: expected positive integers separated by commas, got "${text}"`);
    process.exit(2);
  }
  return values;
}

/** One entry of --backends: a backend name, and for wasm an optional thread count ("wasm:2"). */
export interface BackendEntry {
  name: string;
  threads: number;
  /** How results name it: "wasm", "wasm 2t". */
  label: string;
}

/** --backends as entries (`wasm,wasm:2,cpu`), or a one-line error for a bad thread count. */
export function backendEntries(fallback: string): BackendEntry[] {
  return option("backends", fallback)
    .split(",")
    .filter(Boolean)
    .map((text) => {
      const [name, count] = text.split(":");
      const threads = count === undefined ? 1 : Number(count);
      if (!Number.isInteger(threads) || threads < 1 || (count !== undefined && name !== "wasm")) {
        console.error(
          `--backends: "${text}": a thread count is a positive integer, and only for wasm (wasm:2)`,
        );
        process.exit(2);
      }
      return { name, threads, label: threads === 1 ? name : `${name} ${threads}t` };
    });
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** A positive integer option, or a one-line error naming it. */
export function integerOption(name: string, fallback: number): number {
  const text = option(name, String(fallback));
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`--${name}: expected a positive integer, got "${text}"`);
    process.exit(2);
  }
  return value;
}

/**
 * --batch-scale K: every batch K times MBPO's default (SAC's 256 rows, the ensemble's 256 rows per
 * member, the 8,000-row forward pass), for a GPU, where larger batches cost little more. The
 * anchor has fixed sizes, so it runs only at K = 1.
 */
export function batchScale(): number {
  return integerOption("batch-scale", 1);
}

/**
 * Times every variant in turns: `rounds` rounds, each running every variant `callsPerRound`
 * times after `warmup` untimed calls; returns each variant's median milliseconds per call. Each
 * call is awaited (the learner's calls end with a readback, which a GPU backend does async).
 */
export async function timeInTurns(
  variants: Record<string, () => unknown>,
  rounds: number,
  callsPerRound: number,
  warmup = 2,
): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (const [name, f] of Object.entries(variants)) {
    samples[name] = [];
    for (let i = 0; i < warmup; i++) await f();
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, f] of Object.entries(variants)) {
      const start = performance.now();
      for (let i = 0; i < callsPerRound; i++) await f();
      samples[name].push((performance.now() - start) / callsPerRound);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The anchor's figures (ms per call, keys as it prints them), or why there are none. */
export type AnchorResult =
  | {
      ok: true;
      python: string;
      threads: number;
      figures: Record<string, number>;
      seconds: number;
      /** CPU seconds (user + system) the anchor's process used over `seconds` of wall time. */
      cpuSeconds: number;
    }
  | { ok: false; reason: string };

/**
 * The first Python that imports torch: $TORCH_PYTHON, then Debian's /usr/bin/python3 (where
 * python3-torch installs; a pyenv or venv python3 earlier on PATH does not see it), then python3.
 */
export function findTorchPython(): string | undefined {
  const candidates = [process.env.TORCH_PYTHON, "/usr/bin/python3", "python3"].filter(
    (c): c is string => c !== undefined && c !== "",
  );
  return candidates.find(
    (python) => spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0,
  );
}

/** Where the anchor script lies: ../shared/anchors beside the checkout, or /work/shared. */
export function findAnchor(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [
    process.env.TORCH_ANCHOR,
    resolve(here, "../../../shared/anchors/torch_mbpo_step.py"),
    resolve(here, "../../shared/anchors/torch_mbpo_step.py"),
    "/work/shared/anchors/torch_mbpo_step.py",
  ].find((path): path is string => path !== undefined && existsSync(path));
}

/**
 * Runs the anchor with `threads` torch threads at obs/act sizes and parses its "name_ms value"
 * lines. It times 200 SAC updates, 200 ensemble steps and 50 forward passes: a minute or two here.
 *
 * torch.set_num_threads() alone does not hold torch to its thread count: Debian's torch multiplies
 * through OpenBLAS's pthread build, whose own pool starts one thread per core, so "1 thread" used
 * both cores of this machine (1.9 cores busy, 10–15% faster than on one). OPENBLAS_NUM_THREADS
 * and OMP_NUM_THREADS are therefore set to `threads` too, and the anchor runs under a small
 * wrapper that prints the CPU seconds its process used: cpuSeconds / seconds is how many cores it
 * kept busy, printed beside its figures so that the thread count of each side can be checked.
 */
export function runAnchor(threads: number, obs: number, act: number): AnchorResult {
  const anchor = findAnchor();
  if (anchor === undefined) return { ok: false, reason: "torch_mbpo_step.py not found (../shared/anchors)" };
  const python = findTorchPython();
  if (python === undefined) {
    return {
      ok: false,
      reason: "no python3 imports torch (Debian: apt-get install python3-torch libopenblas0-pthread)",
    };
  }
  process.stderr.write(`running the PyTorch anchor (${python} ${anchor} ${threads} ${obs} ${act})…\n`);
  const wrapper = [
    "import resource, runpy, sys",
    "sys.argv = sys.argv[1:]",
    "runpy.run_path(sys.argv[0], run_name='__main__')",
    "r = resource.getrusage(resource.RUSAGE_SELF)",
    "print(f'cpu_seconds {r.ru_utime + r.ru_stime:.3f}')",
  ].join("\n");
  const start = performance.now();
  const threadEnv = String(threads);
  const run = spawnSync(python, ["-c", wrapper, anchor, threadEnv, String(obs), String(act)], {
    encoding: "utf8",
    timeout: 900_000,
    env: { ...process.env, OPENBLAS_NUM_THREADS: threadEnv, OMP_NUM_THREADS: threadEnv },
  });
  const seconds = (performance.now() - start) / 1000;
  if (run.status !== 0) {
    const why = (run.stderr || run.error?.message || `exit ${run.status}`).trim().split("\n").pop();
    return { ok: false, reason: `anchor failed: ${why}` };
  }
  const figures: Record<string, number> = {};
  let cpuSeconds = Number.NaN;
  for (const line of run.stdout.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key?.endsWith("_ms") && Number.isFinite(Number(value))) figures[key] = Number(value);
    if (key === "cpu_seconds") cpuSeconds = Number(value);
  }
  return { ok: true, python, threads, figures, seconds, cpuSeconds };
}

/** Prints rows of [label, value…] as an aligned text table. */
export function printTable(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((v) => (typeof v === "number" ? formatNumber(v) : v)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  for (const row of cells) {
    console.log(
      row.map((v, i) => (i === 0 ? String(v).padEnd(widths[i]) : String(v).padStart(widths[i]))).join("  "),
    );
  }
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return "—";
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** The anchor once per thread count (or a single "not run" entry with --no-torch). */
export function runAnchors(threadCounts: number[], obs: number, act: number): AnchorResult[] {
  if (flag("no-torch")) return [{ ok: false, reason: "--no-torch" }];
  if (batchScale() !== 1) {
    return [{ ok: false, reason: `--batch-scale ${batchScale()}: the anchor runs only the default sizes` }];
  }
  return threadCounts.map((threads) => runAnchor(threads, obs, act));
}

/** Column title of one anchor run: "torch 2t" (2 threads). */
export function anchorLabel(run: AnchorResult, threads: number | undefined): string {
  return run.ok ? `torch ${run.threads}t` : `torch ${threads ?? "—"}t`;
}

/** One line per anchor run: which Python, how many threads, how long it took, or why it did not run. */
export function describeAnchors(runs: AnchorResult[]): void {
  for (const run of runs) {
    console.log(
      run.ok
        ? `torch: ${run.python}, ${run.threads} thread(s) (OPENBLAS_NUM_THREADS and OMP_NUM_THREADS too), ran ${run.seconds.toFixed(0)} s in this run, ${(run.cpuSeconds / run.seconds).toFixed(2)} cores busy`
        : `torch: no figures (${run.reason})`,
    );
  }
  console.log("ratios below 1: ours faster");
}
