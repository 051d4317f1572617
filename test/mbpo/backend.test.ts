import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseBackendName, selectBackend, tf } from "../../src/mbpo/backend.js";

describe("selectBackend", () => {
  it("falls through the missing libtensorflow bindings and a software-only webgpu to wasm", async (t) => {
    const selection = await selectBackend();
    const webgpu = selection.tried[1];
    if (selection.name === "webgpu") return t.skip("this machine has a hardware WebGPU adapter");
    assert.equal(selection.name, "wasm");
    assert.equal(tf.getBackend(), "wasm");
    assert.deepEqual(
      selection.tried.map((t) => t.name),
      ["node-gpu", "webgpu", "node", "wasm"],
    );
    assert.equal(selection.tried[0].error, "not installed");
    // Where webgpu is passed over, the reason is one of: a package missing, no adapter, a software one.
    assert.match(
      webgpu.error ?? "",
      /^(not installed \(.+\)|no WebGPU adapter \(.+\)|only a software adapter \(.+\), used only when forced with --tf-backend webgpu|the WebGPU adapter probe failed: .+)$/,
    );
    t.diagnostic(`webgpu: ${webgpu.error}`);
    assert.equal(selection.tried[2].error, "not installed");
    assert.equal(selection.tried[3].error, undefined);
    // The backend computes.
    const product = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3, 4], [2, 1])));
    assert.deepEqual(Array.from(product.dataSync()), [11]);
    product.dispose();
  });

  it("runs cpu when forced, then wasm again", async () => {
    const cpu = await selectBackend("cpu");
    assert.equal(cpu.name, "cpu");
    assert.equal(cpu.tfBackend, "cpu");
    assert.deepEqual(cpu.tried, [{ name: "cpu" }]);
    assert.equal((await selectBackend("WASM")).tfBackend, "wasm");
  });

  it("names the package to install when a forced backend is missing", async () => {
    await assert.rejects(selectBackend("node"), (error: Error) => {
      assert.match(
        error.message,
        /^--tf-backend node: not available \(node: not installed\); install @tensorflow\/tfjs-node$/,
      );
      return true;
    });
    await assert.rejects(
      selectBackend("tensorflow"),
      /install @tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node/,
    );
    assert.equal(tf.getBackend(), "wasm", "a failed forced selection leaves the running backend alone");
  });

  it("rejects unknown names with the list of valid ones", () => {
    assert.throws(
      () => parseBackendName("gpu"),
      /unknown backend "gpu", expected one of node-gpu, webgpu, node, wasm, cpu, tensorflow/,
    );
    assert.equal(parseBackendName(" Node-GPU "), "node-gpu");
  });
});
