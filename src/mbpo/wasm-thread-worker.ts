/**
 * One pthread of tfjs-backend-wasm's threaded build, as a Node worker (see wasm-threads.ts).
 *
 * tfjs ships the pthread worker's program only as a string (`wasmWorkerContents`), written for a
 * classic script: it expects `require` and `__filename` as globals and runs in the global scope.
 * This file gives it those and runs it there. The string keeps "\n" escapes of its own code as
 * real newlines (it was a template literal); they are escaped back first, as tfjs's loader does.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { runInThisContext } from "node:vm";

const require = createRequire(import.meta.url);
const filename = fileURLToPath(import.meta.url);
const { wasmWorkerContents } =
  require("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js") as {
    wasmWorkerContents: string;
  };

Object.assign(globalThis, { require, __filename: filename, __dirname: dirname(filename) });
runInThisContext(wasmWorkerContents.replace(/\n/g, "\\n"), {
  filename: "tfjs-backend-wasm-threaded-simd.worker.js",
});
