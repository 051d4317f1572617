import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (where package.json, urdf/ and config/ live), found from this compiled file. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir)
      throw new Error("mbpo-arm: cannot find the package root (no package.json above the code)");
    dir = up;
  }
  return dir;
}

/** Resolves a path from a config file: absolute as is; relative to the working directory if it exists there, else to the package root. */
export function resolveDataPath(path: string): string {
  if (isAbsolute(path)) return path;
  const fromCwd = resolve(process.cwd(), path);
  if (existsSync(fromCwd)) return fromCwd;
  return resolve(packageRoot(), path);
}
