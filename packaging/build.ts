// npm run build (and npm pack, through prepack): the package's JavaScript. Checks that each
// launcher of package.json's bin has its source's shebang (the Node flags), then compiles src/ with
// tsconfig.build.json into dist/ (JavaScript with .ts imports rewritten to .js, and .d.ts
// declarations), then copies the files of src/ that are not TypeScript (the dashboard's HTML, CSS
// and script) to the same place under dist/. dist/ is emptied first so that a source file removed
// since the last build does not live on in the package.

import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');

function assets(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...assets(path));
    else if (!entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

// The installed commands are the launchers: each must start Node with the flags of its source's
// shebang (siplb's caps V8's young generation; src/cli/siplb.ts says why).
const bins = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
for (const [command, launcher] of Object.entries(bins)) {
  const firstLine = (file: string): string => readFileSync(join(ROOT, file), 'utf8').split('\n', 1)[0];
  const source = `src/cli/${command}.ts`;
  if (firstLine(launcher) !== firstLine(source)) {
    process.stderr.write(`build: ${launcher} starts with ${JSON.stringify(firstLine(launcher))} but ${source} with ${JSON.stringify(firstLine(source))}: make them the same\n`);
    process.exit(1);
  }
}

rmSync(DIST, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`build: tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal})\n`);
  process.exit(1);
}
const copied = assets(SRC);
for (const file of copied) cpSync(file, join(DIST, relative(SRC, file)));
process.stdout.write(`build: dist/ from src/ (${copied.length} non-TypeScript files copied)\n`);
