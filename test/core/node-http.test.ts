// node:http through require(), never an ES import: the ES face of node:http reads its lazy
// WebSocket/CloseEvent/MessageEvent exports, which loads Node's bundled undici into every siplb
// process (src/core/node-http.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { nodeBinary, REPO_ROOT } from '../e2e/harness/siplb.ts';

const SRC = join(REPO_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? sources(path) : e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Whether Node's bundled undici is loaded after the ES module `code` has run. */
function loadsBundledUndici(code: string): boolean {
  const r = spawnSync(nodeBinary(), ['--input-type=module', '-e', `${code}\nprocess.stdout.write(String(process.moduleLoadList.includes('NativeModule internal/deps/undici/undici')));`], {
    cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout === 'true';
}

test('no module of src/ imports node:http as an ES module (types only), except core/node-http.ts', () => {
  const offenders = sources(SRC)
    .filter((f) => relative(SRC, f) !== join('core', 'node-http.ts'))
    .filter((f) => /^import (?!type )[^;]*from 'node:http';/m.test(readFileSync(f, 'utf8')))
    .map((f) => relative(REPO_ROOT, f));
  assert.deepEqual(offenders, [], 'take node:http from src/core/node-http.ts');
});

test('what it avoids: an ES import of node:http loads the bundled undici; siplb\'s HTTP servers do not', () => {
  // If a Node release stops doing this, the first check fails and src/core/node-http.ts can go.
  assert.equal(loadsBundledUndici("import 'node:http';"), true);
  const modules = ['admin/admin-server.ts', 'cluster/heartbeat-server.ts', 'transport/websocket.ts', 'http/http-balancer.ts', 'node-agent/agent.ts'];
  assert.equal(loadsBundledUndici(modules.map((m) => `await import(${JSON.stringify(`./src/${m}`)});`).join('\n')), false);
});
