/**
 * TensorFlow.js backend selection, and the one place the learner imports tfjs-core from.
 *
 * Candidates, fastest first (our names; `--tf-backend NAME` takes the same):
 *
 *   node-gpu   @tensorflow/tfjs-node-gpu: libtensorflow with CUDA (e.g. a Jetson or a desktop GPU)
 *   webgpu     @tensorflow/tfjs-backend-webgpu on the npm package `webgpu` (Dawn's Node bindings,
 *              prebuilt for linux-x64/arm64, macOS and Windows) over Vulkan, Metal or D3D12: any GPU
 *              with a driver. Chosen only on a hardware adapter; a software one (Mesa's lavapipe,
 *              SwiftShader) runs only when forced (`--tf-backend webgpu`), which is how CI tests it
 *   node       @tensorflow/tfjs-node: libtensorflow on the CPU (multi-threaded, oneDNN)
 *   wasm       @tensorflow/tfjs-backend-wasm: XNNPACK compiled to WebAssembly with SIMD; one
 *              thread, or its threaded build with `--tf-threads N` (wasm-threads.ts: tfjs keeps
 *              that build off under Node)
 *   cpu        @tensorflow/tfjs-backend-cpu: plain JavaScript, always present, slowest
 *   tensorflow (forcing only) whichever libtensorflow binding is installed, node-gpu first;
 *              "tensorflow" is the name both bindings register their tfjs backend under
 *
 * The two libtensorflow bindings and the two webgpu packages are optionalDependencies: the first
 * download libtensorflow on install and may fail, and a missing one is the normal case, not an
 * error. wasm and cpu are dependencies.
 *
 * Everything else in src/mbpo imports `tf` from here, so that the backends are registered before any
 * tensor is made and there is exactly one tfjs-core in play.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import "./gradients.js";
import { adapterDescription, describeAdapter, type GpuAdapterDescription } from "./gpu-adapter.js";
import { nativeKernels } from "./native-kernels.js";
import { setWasmThreads } from "./wasm-threads.js";

export { describeAdapter, type GpuAdapterDescription, tf };

const execFileAsync = promisify(execFile);

/** The backends selectBackend() can pick, fastest first. */
export const BACKEND_NAMES = ["node-gpu", "webgpu", "node", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What may be forced: a backend, or "tensorflow" for either libtensorflow binding. */
export type ForcedBackendName = BackendName | "tensorflow";

/** One candidate tried by selectBackend(); `error` is absent for the one that was selected. */
export interface BackendAttempt {
  name: BackendName;
  error?: string;
}

export interface BackendSelection {
  /** The backend now running (our name). */
  name: BackendName;
  /** tfjs's own name for it (tf.getBackend()): "tensorflow", "webgpu", "wasm" or "cpu". */
  tfBackend: string;
  /** The GPU adapter that runs webgpu (absent for the other backends). */
  adapter?: GpuAdapterDescription;
  /** XNNPACK's threads on wasm (absent for the other backends, which thread by themselves). */
  threads?: number;
  /**
   * wasm: what runs its matrix products and element-wise work ("OpenBLAS and native kernels", or
   * "XNNPACK (why not the native kernels)").
   */
  products?: string;
  /** Every candidate tried, in order, with why each one before the selected one was passed over. */
  tried: BackendAttempt[];
}

/** The npm package that provides each backend (for errors that say what to install). */
export const BACKEND_PACKAGES: Record<BackendName, string> = {
  "node-gpu": "@tensorflow/tfjs-node-gpu",
  webgpu: "webgpu and @tensorflow/tfjs-backend-webgpu, and a Vulkan (Metal, D3D12) GPU driver",
  node: "@tensorflow/tfjs-node",
  wasm: "@tensorflow/tfjs-backend-wasm",
  cpu: "@tensorflow/tfjs-backend-cpu",
};

/** Validates a `--tf-backend` value; throws a one-line error listing the valid names. */
export function parseBackendName(text: string): ForcedBackendName {
  const name = text.trim().toLowerCase();
  if (name === "tensorflow" || (BACKEND_NAMES as readonly string[]).includes(name)) {
    return name as ForcedBackendName;
  }
  throw new Error(
    `--tf-backend: unknown backend "${text}", expected one of ${[...BACKEND_NAMES, "tensorflow"].join(", ")}`,
  );
}

/**
 * Selects the fastest backend that works, or the forced one (a name parseBackendName accepts).
 * A forced backend that is missing or fails throws one line naming what to install.
 * `wasmThreads` (default 1) is how many threads the wasm backend runs, if it is the one chosen.
 * Safe to call again (e.g. to switch backends in tests); tensors made before a switch stay on
 * the old backend, so switch before building models.
 */
export async function selectBackend(forced?: string, wasmThreads = 1): Promise<BackendSelection> {
  const wanted = forced === undefined ? undefined : parseBackendName(forced);
  // Checked before anything starts, whichever backend is chosen: a bad count is a typo to report.
  setWasmThreads(wasmThreads);
  const candidates: BackendName[] =
    wanted === undefined ? [...BACKEND_NAMES] : wanted === "tensorflow" ? ["node-gpu", "node"] : [wanted];
  const tried: BackendAttempt[] = [];
  for (const name of candidates) {
    const error = await tryBackend(name, wanted !== undefined);
    if (error === undefined) {
      tried.push({ name });
      const selection: BackendSelection = { name, tfBackend: tf.getBackend(), tried };
      if (name === "webgpu" && webgpuAdapter !== undefined) selection.adapter = webgpuAdapter;
      if (name === "wasm") {
        selection.threads = wasmThreads;
        const native = nativeKernels();
        selection.products =
          typeof native === "string" ? `XNNPACK (native kernels ${native})` : "OpenBLAS and native kernels";
      }
      return selection;
    }
    tried.push({ name, error });
  }
  // Only a forced selection gets here: cpu, the last automatic candidate, is always present.
  const reasons = tried.map((t) => `${t.name}: ${t.error}`).join("; ");
  const install = candidates.map((name) => BACKEND_PACKAGES[name]).join(" or ");
  throw new Error(`--tf-backend ${wanted}: not available (${reasons}); install ${install}`);
}

/** Activates one backend; returns why it cannot run, or undefined once it runs. */
async function tryBackend(name: BackendName, forced: boolean): Promise<string | undefined> {
  try {
    switch (name) {
      case "webgpu": {
        const problem = await loadWebgpu(forced);
        if (problem !== undefined) return problem;
        return (await tf.setBackend("webgpu")) ? undefined : "the WebGPU device failed to initialise";
      }
      case "node-gpu":
      case "node": {
        const problem = await loadTensorflowBinding(name);
        if (problem !== undefined) return problem;
        return (await tf.setBackend("tensorflow")) ? undefined : "libtensorflow failed to initialise";
      }
      case "wasm":
        // The Node build of tfjs-backend-wasm loads its .wasm files from its own dist/ folder
        // (Emscripten's scriptDirectory = __dirname), so no setWasmPaths is needed in Node.
        return (await tf.setBackend("wasm")) ? undefined : "WebAssembly module failed to initialise";
      case "cpu": {
        if (!(await tf.setBackend("cpu"))) return "failed to initialise";
        silenceCpuBanner();
        return undefined;
      }
    }
  } catch (error) {
    return firstLine(error);
  }
}

/** Which binding (if any) has been imported in this process: the two cannot both be loaded. */
let loadedBinding: "node-gpu" | "node" | undefined;

/**
 * Imports @tensorflow/tfjs-node(-gpu), which registers the "tensorflow" backend. A missing package
 * is reported as "not installed". The binding bundles @tensorflow/tfjs, whose tfjs-core must be the
 * same version as ours: tfjs keeps its engine and kernel registry in globals, so a second copy of
 * another version would share them half-way; such a binding is refused with the versions named.
 */
async function loadTensorflowBinding(name: "node-gpu" | "node"): Promise<string | undefined> {
  if (loadedBinding !== undefined) {
    return loadedBinding === name ? undefined : `@tensorflow/tfjs-${loadedBinding} is already loaded`;
  }
  const specifier = BACKEND_PACKAGES[name];
  if (!isInstalled(specifier)) return "not installed";
  // libtensorflow's own C++ logging (oneDNN notices etc.) is noise for our users; errors still show.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
  let binding: { version?: Record<string, string> };
  try {
    binding = (await import(specifier)) as typeof binding;
  } catch (error) {
    return `installed but failed to load: ${firstLine(error)}`;
  }
  loadedBinding = name;
  const theirCore = binding.version?.["tfjs-core"];
  if (theirCore !== undefined && theirCore !== tf.version_core) {
    return `it uses tfjs-core ${theirCore} but this project uses ${tf.version_core}; install ${specifier}@${tf.version_core}`;
  }
  if (tf.findBackendFactory("tensorflow") === null) return "loaded but registered no tensorflow backend";
  return undefined;
}

/** What the child-process probe found (once per process), or why it found nothing. */
let probed: GpuAdapterDescription | string | undefined;

/** The adapter found by loadWebgpu(), once it has run. */
let webgpuAdapter: GpuAdapterDescription | undefined;

/**
 * Gives Node a WebGPU (`navigator.gpu` and the GPU* globals tfjs-backend-webgpu uses) from the
 * `webgpu` package, asks it for an adapter, and imports tfjs-backend-webgpu, which registers the
 * "webgpu" backend. Returns why webgpu cannot run: a package missing, no adapter (no Vulkan, Metal
 * or D3D12 driver), or, unless forced, an adapter that is only software.
 */
async function loadWebgpu(forced: boolean): Promise<string | undefined> {
  // Variables, not literals: both packages are optional, so the compiler must not require them.
  const [dawnPackage, backendPackage] = ["webgpu", "@tensorflow/tfjs-backend-webgpu"];
  for (const specifier of [dawnPackage, backendPackage]) {
    if (!isInstalled(specifier)) return `not installed (${specifier})`;
  }
  if (webgpuAdapter === undefined && !forced) {
    // Chosen by itself only on a hardware adapter: find out which adapter there is first, in a
    // child process, so that a software one costs nothing here (Dawn prints warnings about
    // lavapipe's limits on stderr) and a broken GPU driver cannot crash the learner.
    probed ??= await probeAdapter(dawnPackage);
    if (typeof probed === "string") return probed;
    if (probed.software) return softwareOnly(probed);
  }
  if (webgpuAdapter === undefined) {
    let dawn: DawnModule;
    try {
      dawn = (await import(dawnPackage)) as DawnModule;
    } catch (error) {
      return `${dawnPackage} installed but failed to load: ${firstLine(error)}`;
    }
    const gpu = installNavigatorGpu(dawn);
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (adapter === null) return NO_ADAPTER;
    webgpuAdapter = adapterDescription(adapter.info);
  }
  if (webgpuAdapter.software && !forced) return softwareOnly(webgpuAdapter);
  if (tf.findBackendFactory("webgpu") === null) await import(backendPackage);
  return undefined;
}

/** Why a software adapter is passed over in an automatic selection. */
function softwareOnly(adapter: GpuAdapterDescription): string {
  return `only a software adapter (${describeAdapter(adapter)}), used only when forced with --tf-backend webgpu`;
}

/** Longest the adapter probe may take (a first Vulkan start can compile driver caches). */
const ADAPTER_PROBE_TIMEOUT_MS = 20_000;

/** The child's program: the adapter's info as JSON, or null where Dawn finds none. */
const ADAPTER_PROBE = `
const { create } = await import(process.argv[1]);
const adapter = await create([]).requestAdapter({ powerPreference: "high-performance" });
const info = adapter?.info;
const fields = ["vendor", "architecture", "device", "description", "isFallbackAdapter"];
process.stdout.write(JSON.stringify(info ? Object.fromEntries(fields.map((f) => [f, info[f]])) : null));
process.exit(0);
`;

const NO_ADAPTER = "no WebGPU adapter (no Vulkan, Metal or D3D12 driver found)";

/** The adapter Dawn would give, asked in a child process; a string says why there is none. */
async function probeAdapter(dawnPackage: string): Promise<GpuAdapterDescription | string> {
  const entry = pathToFileURL(createRequire(import.meta.url).resolve(dawnPackage)).href;
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      ["--input-type=module", "-e", ADAPTER_PROBE, entry],
      { timeout: ADAPTER_PROBE_TIMEOUT_MS, encoding: "utf8" },
    );
    const info = JSON.parse(stdout) as Record<string, unknown> | null;
    return info === null ? NO_ADAPTER : adapterDescription(info);
  } catch (error) {
    return `the WebGPU adapter probe failed: ${firstLine(error)}`;
  }
}

/** The part of WebGPU's GPU object used here. */
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<{ info: Record<string, unknown> } | null>;
}

/** What the `webgpu` package exports: a WebGPU entry point and the GPU* classes and constants. */
interface DawnModule {
  create: (flags: string[]) => GpuLike;
  globals: Record<string, unknown>;
}

/** navigator.gpu from Dawn (Node 20 has no navigator; Node 21+ has one without gpu). */
function installNavigatorGpu(dawn: DawnModule): GpuLike {
  const scope = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in scope)) scope[name] = value;
  const existing = (scope.navigator as { gpu?: GpuLike } | undefined)?.gpu;
  if (existing !== undefined) return existing;
  const gpu = dawn.create([]);
  if (scope.navigator === undefined) {
    Object.defineProperty(scope, "navigator", { value: { gpu }, configurable: true, writable: true });
  } else {
    Object.defineProperty(scope.navigator, "gpu", { value: gpu, configurable: true });
  }
  return gpu;
}

/** Whether a package resolves from here, without loading it. */
function isInstalled(specifier: string): boolean {
  try {
    createRequire(import.meta.url).resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

/**
 * tfjs-backend-cpu prints a multi-line "install tfjs-node" banner on its first tensor in Node. We
 * log the chosen backend ourselves, so that first write is made here with tfjs's PROD flag (which
 * only silences its warnings) set for the moment, then the flag is put back.
 */
function silenceCpuBanner(): void {
  const prod = tf.env().getBool("PROD");
  tf.env().set("PROD", true);
  try {
    tf.tensor1d([0]).dispose();
  } finally {
    tf.env().set("PROD", prod);
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}
