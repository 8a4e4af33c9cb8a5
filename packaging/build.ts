// npm run build (and npm pack, through prepack; npm ci and npm install, through prepare with
// --if-possible): the package's JavaScript. Checks that each launcher of package.json's bin has
// its source's shebang (the Node flags), then compiles src/ with tsconfig.build.json (JavaScript
// with .ts imports rewritten to .js, and .d.ts declarations) into a temporary directory, copies
// the files of src/ that are not TypeScript (the dashboard's HTML, CSS and script) beside them,
// and puts the result in place of dist/ file by file (install-tree.ts: never a missing or
// half-written file for a launcher starting meanwhile; a file removed from src/ goes from dist/).
// Last it records what src/ looked like when the build began (.dist-stamp), which the launcher
// compares before it runs dist/ in a checkout (bin/launcher.cjs).
//
// --if-possible (prepare): a checkout installed without devDependencies has no TypeScript, and a
// checkout in the middle of a change may not compile; neither must fail the install. The build
// then says why and exits 0, dist/ stays as it was, and the launcher keeps running src/. Under
// npm pack and npm publish it does nothing: prepack builds, and fails on any error.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filesUnder, installTree, writeAtomically } from './install-tree.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');
const require = createRequire(import.meta.url);
const launcher = require('../bin/launcher.cjs') as { sourceStamp(root: string): string; stampPath(root: string): string };
const ifPossible = process.argv.includes('--if-possible');
/** The temporary directory tsc compiles into, removed on every way out. */
let stage: string | null = null;

function fail(message: string): never {
  if (stage !== null) rmSync(stage, { recursive: true, force: true });
  if (ifPossible) {
    process.stdout.write(`build: ${message}; dist/ not built, siplb runs from src/ (npm run build to retry)\n`);
    process.exit(0);
  }
  process.stderr.write(`build: ${message}\n`);
  process.exit(1);
}

if (ifPossible && (process.env['npm_command'] === 'pack' || process.env['npm_command'] === 'publish')) process.exit(0);

// The installed commands are the launchers: each must start Node with the flags of its source's
// shebang (siplb's caps V8's young generation; src/cli/siplb.ts says why).
const bins = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
for (const [command, launcherFile] of Object.entries(bins)) {
  const firstLine = (file: string): string => readFileSync(join(ROOT, file), 'utf8').split('\n', 1)[0];
  const source = `src/cli/${command}.ts`;
  if (firstLine(launcherFile) !== firstLine(source)) {
    fail(`${launcherFile} starts with ${JSON.stringify(firstLine(launcherFile))} but ${source} with ${JSON.stringify(firstLine(source))}: make them the same`);
  }
}

let tsc: string;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  fail('typescript is not installed (a devDependency: npm ci without --omit=dev)');
}
// Taken before compiling: a file changed during the build leaves a stamp that no longer matches,
// so the launcher keeps to src/ until the next build.
const stamp = launcher.sourceStamp(ROOT);
stage = mkdtempSync(join(tmpdir(), 'siplb-build-'));
try {
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', stage], { stdio: 'inherit' });
  if (r.status !== 0) fail(`tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal})`);
  // The files of src/ that are not TypeScript (the dashboard's page, style and script).
  const copied = filesUnder(SRC).filter((rel) => !rel.endsWith('.ts'));
  for (const rel of copied) cpSync(join(SRC, rel), join(stage, rel));
  const counts = installTree(stage, DIST);
  writeAtomically(launcher.stampPath(ROOT), stamp);
  process.stdout.write(`build: dist/ from src/ (${copied.length} non-TypeScript files copied; ${counts.written} files written, ${counts.unchanged} unchanged, ${counts.removed} removed)\n`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
