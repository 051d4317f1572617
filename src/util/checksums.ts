/**
 * A checkpoint's checksum file: SHA256SUMS in the checkpoint directory, in the format of coreutils'
 * `sha256sum` (`<64 hex digits>  <path relative to the directory>` per line), so that a user can
 * also check one by hand with `cd checkpoint && sha256sum -c SHA256SUMS`. Written last, over every
 * file the checkpoint holds; verified before a checkpoint is loaded, so that a file damaged on disk
 * or edited by hand is refused with a line naming it instead of being trained on.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

export const CHECKSUM_FILE = "SHA256SUMS";

/** Writes SHA256SUMS over every file under dir (recursively; the checksum file itself excluded). */
export function writeChecksums(dir: string): void {
  const lines = filesUnder(dir)
    .filter((file) => file !== CHECKSUM_FILE)
    .map((file) => `${sha256(join(dir, file))}  ${file}`);
  writeFileSync(join(dir, CHECKSUM_FILE), `${lines.join("\n")}\n`);
}

/**
 * Checks the files SHA256SUMS lists under dir (only those in `only`, when given): each must exist
 * and have its listed digest. Throws one line naming the first file that does not. Returns false
 * when dir has no SHA256SUMS (a checkpoint written before checksums existed), true when verified.
 */
export function verifyChecksums(dir: string, only?: readonly string[]): boolean {
  const listPath = join(dir, CHECKSUM_FILE);
  if (!existsSync(listPath)) return false;
  const entries = parseChecksums(readFileSync(listPath, "utf8"), listPath);
  const wanted = only === undefined ? [...entries.keys()] : only;
  for (const file of wanted) {
    const expected = entries.get(file);
    const path = join(dir, file);
    if (expected === undefined) throw new Error(`${path}: not listed in ${listPath}`);
    if (!existsSync(path)) throw new Error(`${path}: missing (${listPath} lists it)`);
    if (sha256(path) !== expected) {
      throw new Error(
        `${path}: checksum mismatch: the file was damaged or changed after the checkpoint was written (${listPath})`,
      );
    }
  }
  return true;
}

function parseChecksums(text: string, listPath: string): Map<string, string> {
  const entries = new Map<string, string>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === "") continue;
    const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(lines[i]);
    if (match === null) throw new Error(`${listPath}: line ${i + 1} is not "<sha256>  <file>"`);
    entries.set(match[2], match[1]);
  }
  return entries;
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Paths of the regular files under dir, relative to it, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}
