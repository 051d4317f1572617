/**
 * The wasm backend's matrix products on the CPU's own vector units: OpenBLAS's sgemm through a
 * small native addon (native/gemm.c), where it has been built (`npm run build:native`; Debian:
 * `apt-get install libopenblas-dev`). Optional: without it every product runs in XNNPACK as before.
 *
 * Why: a SAC update at MBPO's sizes spends three quarters of its time in its 28 matrix products, and
 * XNNPACK compiled to WebAssembly reaches about 18 GFLOP/s there (128-bit SIMD, no FMA), against
 * some 60 for native AVX2/FMA code (the README's compute figures). The addon multiplies in place on
 * the wasm memory (a Float32Array over it, offsets from the backend's tensor table): no copy in or
 * out, and every operand is bounds-checked in C against that memory before anything is written, so
 * a wrong offset is a RangeError, never a write outside it. OpenBLAS runs one thread, the caller's,
 * whatever `--tf-threads` says: its own pool beside XNNPACK's made a SAC update slower on two cores
 * (35 ms against 24 with one OpenBLAS thread, `compute-sac.js --backends wasm:2`).
 *
 * MBPO_ARM_NATIVE_GEMM=0 turns it off (e.g. to compare, or to rule it out).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../util/paths.js";

export interface NativeGemm {
  /**
   * out[i] = op(a[i]) · op(b[i]), i < batch, row-major, on `heap` (offsets in floats); a batch of 1
   * (batchA or batchB) is shared by every entry; op transposes where its flag is 1.
   */
  sgemm(
    heap: Float32Array,
    aOffset: number,
    bOffset: number,
    outOffset: number,
    batch: number,
    m: number,
    k: number,
    n: number,
    batchA: number,
    batchB: number,
    transposeA: number,
    transposeB: number,
  ): void;
}

/** Where `npm run build:native` puts the addon. */
export const NATIVE_GEMM_PATH = join(packageRoot(), "native", "build", "Release", "gemm.node");

let loaded: NativeGemm | string | undefined;

/** The addon, or why there is none ("not built", "turned off", a load error's first line). */
export function nativeGemm(): NativeGemm | string {
  loaded ??= load();
  return loaded;
}

function load(): NativeGemm | string {
  if (process.env.MBPO_ARM_NATIVE_GEMM === "0") return "turned off (MBPO_ARM_NATIVE_GEMM=0)";
  if (!existsSync(NATIVE_GEMM_PATH))
    return "not built (apt-get install libopenblas-dev; npm run build:native)";
  try {
    return createRequire(import.meta.url)(NATIVE_GEMM_PATH) as NativeGemm;
  } catch (error) {
    return `failed to load: ${String((error as Error).message).split("\n")[0]}`;
  }
}
