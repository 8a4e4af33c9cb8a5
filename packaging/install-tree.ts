// Puts a freshly built tree in place of the old one without a moment where a reader sees a
// missing or half-written file: each file that differs is written beside its target and renamed
// over it (rename is atomic within a filesystem), files identical to the new ones are left alone,
// and files the new tree no longer has are removed last. The build uses it for dist/, which
// siplb's launcher may be loading from while a build runs (npm pack in the test suite, an operator
// rebuilding a checkout whose balancer is restarting).

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Paths of the files under dir, relative to it, with '/' between parts. */
export function filesUnder(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...filesUnder(join(dir, entry.name), rel));
    else out.push(rel);
  }
  return out;
}

/** Writes `data` to `target` through a temporary file beside it and a rename. */
export function writeAtomically(target: string, data: Buffer | string): void {
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, target);
}

export interface InstallCounts {
  written: number;
  unchanged: number;
  removed: number;
}

/** Makes `dest` hold exactly the files of `stage` (stage is left as it was). */
export function installTree(stage: string, dest: string): InstallCounts {
  const counts: InstallCounts = { written: 0, unchanged: 0, removed: 0 };
  const fresh = filesUnder(stage);
  const keep = new Set(fresh);
  for (const rel of fresh) {
    const data = readFileSync(join(stage, rel));
    const target = join(dest, rel);
    let same = false;
    try {
      same = readFileSync(target).equals(data);
    } catch {
      // Not there yet (or not a readable file): written below.
    }
    if (same) {
      counts.unchanged++;
    } else {
      // A directory where the new tree has a file (a module became a file of the same name):
      // nothing can be loading from it as a file, so it goes first.
      if (existsSync(target) && !isFile(target)) rmSync(target, { recursive: true, force: true });
      writeAtomically(target, data);
      counts.written++;
    }
  }
  for (const rel of filesUnder(dest)) {
    if (keep.has(rel)) continue;
    rmSync(join(dest, rel), { force: true });
    counts.removed++;
  }
  removeEmptyDirectories(dest);
  return counts;
}

function isFile(path: string): boolean {
  return statSync(path).isFile();
}

/** Removes the directories under (not including) dir that hold no file. */
function removeEmptyDirectories(dir: string): boolean {
  if (!existsSync(dir)) return true;
  let empty = true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && removeEmptyDirectories(join(dir, entry.name))) rmdirSync(join(dir, entry.name));
    else empty = false;
  }
  return empty;
}
