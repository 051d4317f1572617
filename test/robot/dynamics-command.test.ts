import assert from "node:assert/strict";
import { resolve } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { runDynamicsCommand } from "../../src/cli/dynamics-command.js";
import { Dynamics } from "../../src/robot/dynamics.js";
import { loadUrdf } from "../../src/robot/urdf.js";
import { packageRoot } from "../../src/util/paths.js";

const ARM = resolve(packageRoot(), "urdf/arm.urdf");

async function run(inputText: string): Promise<unknown[]> {
  const input = new PassThrough();
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on("data", (c: Buffer) => chunks.push(c));
  const done = runDynamicsCommand(ARM, input, output);
  input.end(inputText);
  await done;
  const text = Buffer.concat(chunks).toString("utf8");
  assert.ok(text.endsWith("\n"), "every answer ends its line");
  return text
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
}

test("dynamics command: one JSON answer per line, errors in place, full precision", async () => {
  const state = [0.1, -0.4, 0.7, 0.2, 0.5, -1, 2, 0.3];
  const answers = await run(
    `${state.join(" ")}\n` +
      "0 0 0 0 0\n" +
      "\n" +
      `${state.slice(0, 7).join(",")},abc\n` +
      `${state.join(", ")}\r\n`,
  );
  assert.equal(answers.length, 4, "the blank line gets no answer");
  const dyn = new Dynamics(loadUrdf(ARM));
  const M = new Float64Array(16);
  const bias = new Float64Array(4);
  dyn.massMatrix(Float64Array.from(state.slice(0, 4)), M);
  dyn.bias(Float64Array.from(state.slice(0, 4)), Float64Array.from(state.slice(4)), bias);
  // Exact equality: the numbers survive JSON at full precision.
  assert.deepEqual(answers[0], { M: Array.from(M), bias: Array.from(bias) });
  assert.deepEqual(answers[1], { error: "line 2: expected 8 numbers, got 5" });
  assert.deepEqual(answers[2], { error: 'line 4: "abc" is not a finite number' });
  assert.deepEqual(answers[3], answers[0], "commas and CRLF are accepted");
  const first = answers[0] as { M: number[]; bias: number[] };
  assert.ok(first.M[0] > 0 && Math.abs(first.bias[1]) > 0.05, "a real mass matrix and gravity load");
});

test("dynamics command: a bad URDF is an error naming the file", async () => {
  const input = new PassThrough();
  input.end("");
  await assert.rejects(
    runDynamicsCommand("/nonexistent/arm.urdf", input, new PassThrough()),
    /\/nonexistent\/arm\.urdf/,
  );
});
