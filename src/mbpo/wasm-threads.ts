/**
 * tfjs-backend-wasm's multi-threaded build (XNNPACK's thread pool on WebAssembly threads) under Node.
 *
 * tfjs 4.22 never runs it under Node, for three reasons, each found by running it:
 *   1. its flag WASM_HAS_MULTITHREAD_SUPPORT is false whenever IS_NODE (tfjs issue 3830);
 *   2. forced, its loader hands Emscripten's pthread workers a `blob:` URL (the worker script made
 *      with URL.createObjectURL), and Node's Worker takes only file paths (ERR_WORKER_PATH);
 *   3. its C++ caps XNNPACK's pool at half the logical cores (os.cpus().length / 2, meant for
 *      hyper-threaded desktops), read once when the module starts: one thread on a 2-core machine.
 *
 * So for `threads` > 1 we start the threaded Emscripten module ourselves and register it as the
 * "wasm" backend in place of the stock factory (every wasm kernel, ours in wasm-kernels.ts too, runs
 * on it unchanged): the pthread worker is `wasm-thread-worker.js` beside this file (a file path),
 * the module's own script is given by path, the core count the module reads at start-up is made
 * 2 × threads for that moment, and its workers start without this process's Node flags (a Worker
 * inherits them, and some, such as --input-type, make it fail). Results are the same as one
 * thread's (XNNPACK splits a product's output into tiles; each element is computed alike), which
 * test/mbpo/wasm-threads.test.ts checks.
 *
 * The Emscripten module keeps 8 workers ready (its PTHREAD_POOL_SIZE); they are unref'd so that
 * they never keep a finished process alive. threads = 1 is the stock single-threaded SIMD build.
 */
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import workerThreads, { type WorkerOptions } from "node:worker_threads";
import * as wasmBackend from "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";

/** XNNPACK's pool is at most 8 threads in tfjs's build (its pre-started workers). */
export const MAX_WASM_THREADS = 8;

const require = createRequire(import.meta.url);
const WASM_OUT = dirname(
  require.resolve("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js"),
);
const FACTORY_SCRIPT = join(WASM_OUT, "tfjs-backend-wasm-threaded-simd.js");
const WORKER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "wasm-thread-worker.js");
/** tfjs-backend-wasm's backend priority (its registerBackend call). */
const WASM_PRIORITY = 2;

/** The parts of an Emscripten pthread module used here. */
interface ThreadedModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: unknown[]) => unknown;
  PThread: { unusedWorkers: { unref(): void }[]; runningWorkers: { unref(): void }[] };
  tfjs?: Record<string, (...args: unknown[]) => unknown>;
}

type Factory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

/** The stock "wasm" factory, kept to go back to one thread. */
let stockFactory: ReturnType<typeof tf.findBackendFactory> | undefined;
/** Threads of the "wasm" factory registered now. */
let registeredThreads = 1;

/**
 * Makes the next wasm backend run `threads` threads (1 to MAX_WASM_THREADS). A wasm backend already
 * running with another count is removed (its tensors go with it), so call this before building
 * models. Throws one line for a count out of range.
 */
export function setWasmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(`wasm threads must be an integer from 1 to ${MAX_WASM_THREADS}, got ${threads}`);
  }
  if (threads === registeredThreads) return;
  stockFactory ??= tf.findBackendFactory("wasm");
  if (stockFactory === null) throw new Error("tfjs-backend-wasm registered no wasm backend");
  tf.removeBackend("wasm");
  if (threads === 1) {
    tf.registerBackend("wasm", stockFactory, WASM_PRIORITY);
  } else {
    tf.registerBackend("wasm", () => threadedBackend(threads), WASM_PRIORITY);
  }
  registeredThreads = threads;
}

/** Threads of the wasm backend that runs (or will run) in this thread. */
export function wasmThreads(): number {
  return registeredThreads;
}

async function threadedBackend(threads: number): Promise<tf.KernelBackend> {
  const factory = require(FACTORY_SCRIPT) as Factory;
  const realCpus = os.cpus;
  const oneCpu = realCpus()[0];
  // Reason 3 above: the module divides this count by two when it starts.
  os.cpus = () => new Array(2 * threads).fill(oneCpu);
  // Emscripten takes worker_threads.Worker when the factory runs and makes its workers with it.
  const RealWorker = workerThreads.Worker;
  workerThreads.Worker = class PoolWorker extends RealWorker {
    constructor(file: string | URL, options?: WorkerOptions) {
      super(file, { ...options, execArgv: [] });
    }
  };
  let module: ThreadedModule;
  try {
    module = await factory({
      locateFile: (path: string, prefix: string) =>
        path.endsWith(".worker.js") ? WORKER_SCRIPT : prefix + path,
      mainScriptUrlOrBlob: FACTORY_SCRIPT,
    });
  } finally {
    os.cpus = realCpus;
    workerThreads.Worker = RealWorker;
  }
  // What tfjs-backend-wasm's own init() adds to the module (its C entry points).
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  wasmBackend.setThreadsCount(threads);
  const backend = new wasmBackend.BackendWasm(module as never);
  for (const worker of [...module.PThread.unusedWorkers, ...module.PThread.runningWorkers]) worker.unref();
  const actual = wasmBackend.getThreadsCount();
  if (actual !== threads) {
    backend.dispose();
    throw new Error(`the threaded wasm module runs ${actual} thread(s), not the ${threads} asked for`);
  }
  return backend;
}
