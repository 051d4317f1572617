/**
 * `mbpo-arm dynamics --urdf FILE`: a line protocol for checking our dynamics from outside.
 * Each input line holds 2n numbers, q then q̇ (whitespace- or comma-separated); each gets one JSON
 * line back: {"M": [n·n, row-major], "bias": [n]}, where bias is the torque that gives zero
 * acceleration (Coriolis, centrifugal and gravity; no damping or friction). A malformed line gets
 * {"error": "line K: ..."} and the command goes on. Blank lines are ignored.
 */
import { createInterface } from "node:readline";
import { loadRobotDescription } from "../robot/description.js";
import { Dynamics } from "../robot/dynamics.js";

/** Parses one input line into q and q̇, or returns the error message for it. */
function parseState(line: string, lineNo: number, q: Float64Array, qd: Float64Array): string | undefined {
  const n = q.length;
  const fields = line
    .trim()
    .split(/[\s,]+/)
    .filter((f) => f !== "");
  if (fields.length !== 2 * n) return `line ${lineNo}: expected ${2 * n} numbers, got ${fields.length}`;
  for (let k = 0; k < fields.length; k++) {
    const value = Number(fields[k]);
    if (!Number.isFinite(value)) return `line ${lineNo}: "${fields[k]}" is not a finite number`;
    if (k < n) q[k] = value;
    else qd[k - n] = value;
  }
  return undefined;
}

export async function runDynamicsCommand(
  urdfPath: string,
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
): Promise<void> {
  const model = loadRobotDescription(urdfPath);
  const dynamics = new Dynamics(model);
  const n = model.dof;
  const q = new Float64Array(n);
  const qd = new Float64Array(n);
  const M = new Float64Array(n * n);
  const bias = new Float64Array(n);

  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  // A reader that stops early (`dynamics | head -1`) closes the pipe: that ends the command
  // quietly (exit 0), as a Unix filter does, instead of an uncaught "write EPIPE".
  let outputError: NodeJS.ErrnoException | undefined;
  let outputGone = false;
  const onOutputError = (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") outputGone = true;
    else outputError = err;
    lines.close();
  };
  output.on("error", onOutputError);
  const drained = () =>
    new Promise<void>((resolve) => {
      output.once("drain", resolve);
      output.once("close", resolve);
      output.once("error", () => resolve());
    });
  let lineNo = 0;
  for await (const line of lines) {
    if (outputGone || outputError !== undefined) break;
    lineNo++;
    if (line.trim() === "") continue;
    const error = parseState(line, lineNo, q, qd);
    let answer: string;
    if (error !== undefined) {
      answer = JSON.stringify({ error });
    } else {
      dynamics.massMatrix(q, M);
      dynamics.bias(q, qd, bias);
      answer = JSON.stringify({ M: Array.from(M), bias: Array.from(bias) });
    }
    if (!output.write(`${answer}\n`)) await drained();
  }
  output.off("error", onOutputError);
  if (outputError !== undefined) throw new Error(`dynamics: cannot write the output: ${outputError.message}`);
}
