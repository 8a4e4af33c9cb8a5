// native/build.cjs, the package's install script, where it cannot build: one line per addon,
// exit 0 (the install goes on; siplb runs untrimmed, with UDP through dgram and branch MACs in JavaScript), or exit 1 with
// --strict. The built addons are left as they were. Its success path runs in every `npm ci` (test/core/memory-trim.test.ts checks the
// result) and in test/packaging/install.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../native/build.cjs', import.meta.url));
const BUILT = ['memory', 'udp', 'mac'].map((name) => fileURLToPath(new URL(`../../native/build/${name}.node`, import.meta.url)));
const mtimes = (): (number | null)[] => BUILT.map((f) => (existsSync(f) ? statSync(f).mtimeMs : null));

function build(args: string[], cc: string): { status: number | null; stdout: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, CC: cc }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout };
}

test('without a C compiler: one line per addon naming it, exit 0, the built addons untouched', () => {
  const before = mtimes();
  const r = build([], '/nonexistent/cc');
  assert.equal(r.status, 0);
  assert.equal(r.stdout,
    'native: native/build/memory.node not built: no C compiler (/nonexistent/cc not found; apt-get install gcc); siplb runs without it (it keeps the memory it could give back)\n'
    + 'native: native/build/udp.node not built: no C compiler (/nonexistent/cc not found; apt-get install gcc); siplb runs without it (UDP goes through dgram, at more CPU per message)\n'
    + 'native: native/build/mac.node not built: no C compiler (/nonexistent/cc not found; apt-get install gcc); siplb runs without it (branch MACs are computed in JavaScript, at more CPU per message)\n');
  assert.deepEqual(mtimes(), before);
});

test('a compiler that fails: its exit and first lines, exit 0; --strict: exit 1', () => {
  const r = build([], 'false');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^native: native\/build\/memory\.node not built: false failed \(exit 1\)/);
  assert.match(r.stdout, /\nnative: native\/build\/udp\.node not built: false failed \(exit 1\)/);
  assert.match(r.stdout, /\nnative: native\/build\/mac\.node not built: false failed \(exit 1\)/);
  assert.equal(build(['--strict'], 'false').status, 1);
  assert.equal(build(['--strict'], '/nonexistent/cc').status, 1);
});
