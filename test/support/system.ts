/**
 * System packages some tests need (socat, MuJoCo, python3 with numpy). One rule for all of them:
 * where a package is missing the test is skipped with a message naming the Debian package, so that
 * `npm test` passes on a machine with only Node.js; under CI (`CI` set, as `.ci/run` does) a missing
 * package fails the test instead, so nothing is skipped silently where everything is installed.
 */
import { spawnSync } from "node:child_process";

export interface SystemDependency {
  /** What the tests use, e.g. "socat". */
  what: string;
  /** The Debian packages that provide it, e.g. ["socat"]. */
  debian: readonly string[];
  /** True where it is present. */
  present: () => boolean;
}

/**
 * The skip message for `dep` where it is missing, undefined where it is present. Under CI a
 * missing dependency throws instead (the test fails and says what to install).
 */
export function missingDependency(dep: SystemDependency): string | undefined {
  if (dep.present()) return undefined;
  const message = `${dep.what} is not installed (apt-get install ${dep.debian.join(" ")}; .ci/run installs it)`;
  if (process.env["CI"]) throw new Error(`${message}, and CI is set, so this test must run`);
  return message;
}

/**
 * As missingDependency, for a dependency found only by trying it: `problem` is why the try failed
 * (undefined where it worked), `install` the command that provides it.
 */
export function unavailable(what: string, install: string, problem: string | undefined): string | undefined {
  if (problem === undefined) return undefined;
  const message = `${what} is not available (${problem}; ${install}; .ci/run installs it)`;
  if (process.env["CI"]) throw new Error(`${message}, and CI is set, so this test must run`);
  return message;
}

/** True where `command args` can be started and exits 0. */
export function runs(command: string, args: readonly string[]): boolean {
  const r = spawnSync(command, args, { stdio: "ignore", timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

export const SOCAT: SystemDependency = {
  what: "socat",
  debian: ["socat"],
  present: () => runs("socat", ["-V"]),
};

export const PYTHON3: SystemDependency = {
  what: "python3",
  debian: ["python3"],
  present: () => runs("python3", ["--version"]),
};

export const PYTHON3_NUMPY: SystemDependency = {
  what: "python3 with numpy",
  debian: ["python3", "python3-numpy"],
  present: () => runs("python3", ["-c", "import numpy"]),
};
