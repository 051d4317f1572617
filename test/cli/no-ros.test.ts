/** Without a sourced ROS 2, every ROS front end stops at once with its one line, having written nothing. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { packageRoot } from "../../src/util/paths.js";

const main = join(packageRoot(), "dist", "src", "cli", "main.js");
const scratch = mkdtempSync(join(tmpdir(), "mbpo-noros-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the command; resolves with its exit code, stderr, and ms from its first stderr output to exit. */
function run(args: string[]): Promise<{ code: number | null; stderr: string; afterError: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env, MBPO_ARM_RUNS_DIR: join(scratch, "runs") };
  delete env.AMENT_PREFIX_PATH;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args, "--no-log-file"], { env });
    let stderr = "";
    let firstError = Number.NaN;
    child.stderr.on("data", (d) => {
      if (Number.isNaN(firstError)) firstError = performance.now();
      stderr += d;
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stderr, afterError: performance.now() - firstError });
    });
  });
}

for (const args of [
  ["run", "--driver", "ros2", "--out", join(scratch, "run")],
  ["train", "--driver", "ros2", "--steps", "10", "--out", join(scratch, "train")],
  ["node", "--mode", "learn", "--out", join(scratch, "node")],
]) {
  it(`${args.slice(0, 3).join(" ")} without ROS: one line, exit 1 within a second of it, nothing written`, async () => {
    const r = await run(args);
    assert.equal(r.code, 1);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /no ROS 2 distro is sourced/);
    assert.ok(r.afterError < 1000, `exited ${r.afterError.toFixed(0)} ms after its error line`);
    assert.equal(existsSync(args[args.length - 1]), false, "nothing written");
  });
}
