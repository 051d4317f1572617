/**
 * The Python client (python/mbpo_arm_env.py) against the real server, through python3's unittest
 * (test/env/client_test.py). Skipped, saying so, where python3 with numpy is not installed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../src/util/paths.js";

const root = packageRoot();
const hasNumpy = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" }).status === 0;

describe("Python client", () => {
  it("spaces, seeded resets, reset options, run's return, replay, batch rewards (JSON and binary), errors, TCP, close", {
    skip: hasNumpy ? false : "python3 with numpy is not installed",
  }, () => {
    const r = spawnSync("python3", [join(root, "test", "env", "client_test.py")], {
      cwd: root,
      encoding: "utf8",
      timeout: 180_000,
    });
    assert.equal(r.status, 0, `python3 client_test.py failed:\n${r.stderr}\n${r.stdout}`);
    assert.match(r.stderr, /Ran 7 tests/);
    assert.match(r.stderr, /\nOK/);
  });
});
