/**
 * The wire, without a robot: line splitting with a bound on line length, and request parsing that
 * turns anything a client sends into a request or a ProtocolError naming the problem.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type LineItem, LineSplitter } from "../../src/env/lines.js";
import { ProtocolError, parseRequest } from "../../src/env/protocol.js";

function split(chunks: (string | Buffer)[], maxBytes = 1000): LineItem[] {
  const items: LineItem[] = [];
  const splitter = new LineSplitter(maxBytes, (item) => items.push(item));
  for (const c of chunks) splitter.push(typeof c === "string" ? Buffer.from(c) : c);
  splitter.end();
  return items;
}

describe("LineSplitter", () => {
  it("gives the same lines however the bytes are cut into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: "grapheme", maxLength: 30 }).map((s) => s.replace(/[\n\r]/g, "")),
          {
            maxLength: 8,
          },
        ),
        fc.array(fc.nat(), { maxLength: 10 }),
        (lines, cuts) => {
          const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(""));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let from = 0;
          for (const p of [...points, bytes.length]) {
            chunks.push(bytes.subarray(from, p));
            from = p;
          }
          assert.deepEqual(
            split(chunks, 1 << 20),
            lines.map((line) => ({ line })),
          );
        },
      ),
    );
  });

  it("strips a CR before the newline and keeps a last line without newline", () => {
    assert.deepEqual(split(["a\r\nb", "c"]), [{ line: "a" }, { line: "bc" }]);
  });

  it("drops an over-long line as it arrives, reports it once at its end, and goes on", () => {
    const items = split(["ok\n", "x".repeat(600), "y".repeat(600), "z\nnext\n"], 1000);
    assert.deepEqual(items, [{ line: "ok" }, { tooLongBytes: 1201 }, { line: "next" }]);
    assert.deepEqual(split(["x".repeat(1001)], 1000), [{ tooLongBytes: 1001 }]);
    assert.deepEqual(split(["x".repeat(1000), "\n"], 1000), [{ line: "x".repeat(1000) }]);
  });
});

describe("parseRequest", () => {
  const sizes = { observationSize: 3, actionSize: 2, dof: 2, goalSize: 3 };

  it("reads each command, echoes an id, and writes a step's action into the buffer", () => {
    const action = new Float32Array(2);
    assert.deepEqual(parseRequest('{"cmd":"spec","id":"a"}', sizes, action), { cmd: "spec", id: "a" });
    assert.deepEqual(parseRequest('{"cmd":"reset","seed":12}', sizes, action), { cmd: "reset", seed: 12 });
    assert.deepEqual(parseRequest('{"cmd":"reset","seed":null}', sizes, action), { cmd: "reset" });
    assert.deepEqual(parseRequest('{"cmd":"step","action":[0.5,-2],"id":4}', sizes, action), {
      cmd: "step",
      id: 4,
    });
    assert.deepEqual(Array.from(action), [0.5, -2]);
    const reward = parseRequest(
      '{"cmd":"reward","obs":[[1,2,3]],"action":[[0,1]],"next_obs":[[4,null,6]]}',
      sizes,
      action,
    );
    assert.equal(reward.cmd, "reward");
    if (reward.cmd === "reward") {
      assert.equal(reward.batch.rows, 1);
      assert.deepEqual(Array.from(reward.batch.nextObs), [4, Number.NaN, 6]);
    }
  });

  it("a reward batch in base64 float32 reads back bit for bit, NaN included, and a bad one is named", () => {
    const action = new Float32Array(2);
    const b64 = (values: number[]) => Buffer.from(Float32Array.from(values).buffer).toString("base64");
    const obs = [1, 2, 3, Math.fround(0.1), Math.fround(1e-40), -0]; // a subnormal, a negative zero
    const next = [4, Number.NaN, 6, Number.POSITIVE_INFINITY, 5, 6];
    const line = (fields: Record<string, unknown>) =>
      JSON.stringify({
        cmd: "reward",
        encoding: "base64",
        obs: b64(obs),
        action: b64([0, 1, 2, 3]),
        next_obs: b64(next),
        ...fields,
      });
    const r = parseRequest(line({}), sizes, action);
    assert.ok(r.cmd === "reward" && r.encoding === "base64");
    if (r.cmd !== "reward") return;
    assert.equal(r.batch.rows, 2);
    assert.deepEqual(Array.from(r.batch.obs), obs);
    assert.deepEqual(Array.from(r.batch.nextObs), next);
    assert.equal(r.batch.action.length, 4);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ obs: [[1, 2, 3]] }, /"obs" must be a base64 string of float32 values .*got an array of 1/],
      [{ obs: "not base64!" }, /"obs" must be a base64 string/],
      [{ obs: `${b64(obs).slice(0, 8)}*${b64(obs).slice(9)}` }, /"obs" must be a base64 string/],
      [{ obs: b64([1, 2, 3, 4]) }, /"obs" holds 16 bytes, not rows of 3 float32 values \(12 bytes\)/],
      [{ action: b64([0, 1]) }, /"action" has 1 rows, "obs" has 2/],
      [{ encoding: "f32" }, /"encoding" must be "json" or "base64", got the string "f32"/],
    ];
    for (const [fields, message] of bad) {
      assert.throws(
        () => parseRequest(line(fields), sizes, action),
        (e: Error) => {
          assert.ok(e instanceof ProtocolError);
          assert.match(e.message, /^reward: /);
          assert.match(e.message, message);
          return true;
        },
      );
    }
  });

  it("anything at all is a request or a ProtocolError, never another exception", () => {
    const action = new Float32Array(2);
    const anything = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record({
          cmd: fc.constantFrom("spec", "reset", "step", "reward", "close", "x", 1, null),
          seed: fc.anything(),
          action: fc.oneof(fc.anything(), fc.array(fc.double(), { maxLength: 3 })),
          obs: fc.anything(),
          next_obs: fc.anything(),
          id: fc.anything(),
        })
        .map((r) => JSON.stringify(r) ?? ""),
    );
    fc.assert(
      fc.property(anything, (line) => {
        try {
          parseRequest(line, sizes, action);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `${(err as Error).name}: ${(err as Error).message}`);
          assert.ok(err.message.length < 300, "errors are one short line");
          assert.ok(!err.message.includes("\n"));
        }
      }),
      { numRuns: 500 },
    );
  });
});
