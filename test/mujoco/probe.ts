/**
 * MuJoCo as a reference (test and benchmark helper): builds test/mujoco/mjprobe.c into
 * build/mjprobe when needed and runs it. libmujoco-dev (Debian) is a test-only dependency.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { packageRoot } from "../../src/util/paths.js";
import { runs, type SystemDependency } from "../support/system.js";

const MUJOCO_HEADER = "/usr/include/mujoco/mujoco.h";

/** The message to show when MuJoCo is not installed. */
export const MUJOCO_MISSING =
  "MuJoCo is not installed: install libmujoco-dev (apt-get install libmujoco-dev gcc libc6-dev) to run the MuJoCo cross-check";

/** MuJoCo's header and a C compiler, for test/support's skip-or-fail rule. */
export const MUJOCO: SystemDependency = {
  what: "MuJoCo (libmujoco-dev) and a C compiler",
  debian: ["libmujoco-dev", "gcc", "libc6-dev"],
  present: () => existsSync(MUJOCO_HEADER) && runs(process.env.CC ?? "cc", ["--version"]),
};

/**
 * Path of the compiled probe, (re)built with `cc` when missing or older than its source; undefined
 * when libmujoco-dev is absent (no header). A compiler error with the header present is thrown.
 */
export function mujocoProbePath(): string | undefined {
  if (!existsSync(MUJOCO_HEADER)) return undefined;
  const root = packageRoot();
  const source = resolve(root, "test/mujoco/mjprobe.c");
  const binary = resolve(root, "build/mjprobe");
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(resolve(root, "build"), { recursive: true });
  const cc = process.env.CC ?? "cc";
  // Build beside the target and rename: test files run in parallel processes and may race here.
  const partial = `${binary}.${process.pid}.tmp`;
  const result = spawnSync(cc, ["-O2", "-o", partial, source, "-lmujoco", "-lm"], { encoding: "utf8" });
  if (result.error !== undefined || result.status !== 0) {
    const why = result.error?.message ?? result.stderr.trim();
    throw new Error(`cannot build ${binary} with ${cc}: ${why}`);
  }
  renameSync(partial, binary);
  return binary;
}

export interface MujocoDynamics {
  /** Mass matrix, n×n row-major. */
  M: number[];
  /** qfrc_bias: Coriolis, centrifugal and gravity (no damping or friction). */
  bias: number[];
}

/**
 * Mass matrices and bias forces from MuJoCo for a batch of states (q then q̇ per state), in the
 * order of `jointNames` (the probe maps MuJoCo's joints by name). URDF carries no armature for
 * MuJoCo, so `armature` (per joint, same order) is set on MuJoCo's dofs by the probe.
 */
export function mujocoDynamics(
  probe: string,
  urdfPath: string,
  jointNames: string[],
  states: Array<{ q: ArrayLike<number>; qd: ArrayLike<number> }>,
  armature?: ArrayLike<number>,
): MujocoDynamics[] {
  const joints = jointNames.map((name, i) =>
    armature === undefined ? name : `${name}=${armature[i].toPrecision(17)}`,
  );
  const input = states.map((s) =>
    [...Array.from(s.q), ...Array.from(s.qd)].map((x) => x.toPrecision(17)).join(" "),
  );
  const stdout = execFileSync(probe, [urdfPath, "dyn", ...joints], {
    input: `${input.join("\n")}\n`,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = stdout.trim().split("\n");
  if (lines.length !== states.length) {
    throw new Error(`mjprobe answered ${lines.length} lines for ${states.length} states`);
  }
  return lines.map((line, k) => {
    const parsed = JSON.parse(line) as MujocoDynamics & { error?: string };
    if (parsed.error !== undefined) throw new Error(`mjprobe, state ${k}: ${parsed.error}`);
    return { M: parsed.M, bias: parsed.bias };
  });
}

export interface MujocoInfo {
  version: string;
  nq: number;
  nv: number;
  nbody: number;
  joints: string[];
  armature: number[];
  mass: number;
}

/** What MuJoCo made of a URDF: dof count, joint names in its dof order, armature, total mass. */
export function mujocoInfo(probe: string, urdfPath: string): MujocoInfo {
  return JSON.parse(execFileSync(probe, [urdfPath, "info"], { encoding: "utf8" })) as MujocoInfo;
}

export interface MujocoBench {
  steps: number;
  seconds: number;
  steps_per_s: number;
  nq: number;
  nv: number;
  max_contacts: number;
}

/** Times `steps` calls of mj_step (1 ms timestep, zero control) on the URDF. */
export function mujocoBench(probe: string, urdfPath: string, steps: number, noContact = false): MujocoBench {
  const args = [urdfPath, "bench", String(steps), ...(noContact ? ["nocontact"] : [])];
  return JSON.parse(execFileSync(probe, args, { encoding: "utf8" })) as MujocoBench;
}
