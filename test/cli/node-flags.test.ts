// The Node flags siplb runs with: its shebang caps V8's young generation (RSS otherwise grows for
// half an hour under steady load while the live heap stays small; src/cli/siplb.ts), and every
// other way of starting it (npm start, the test and benchmark harness) must pass the same flags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnOwned } from '../e2e/harness/children.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { cliNodeFlags, nodeBinary, REPO_ROOT, SIPLB_CLI, SIPLB_LAUNCHER, startSiplb } from '../e2e/harness/siplb.ts';

test('the siplb CLI caps the young generation and turns Maglev off, and npm start passes the same flags', () => {
  const flags = cliNodeFlags();
  assert.ok(flags.includes('--max-semi-space-size=8'), `shebang flags: ${flags.join(' ')}`);
  assert.ok(flags.includes('--no-maglev'), `shebang flags: ${flags.join(' ')}`);
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // Through the launcher, as npx siplb: it checks the Node version and turns the compile cache on first.
  assert.equal(pkg.scripts['start'], ['node', ...flags, 'bin/siplb.cjs'].join(' '));
});

test('cliNodeFlags reads a plain node shebang as no flags and refuses a file without one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-flags-'));
  try {
    const plain = join(dir, 'plain.ts');
    writeFileSync(plain, '#!/usr/bin/env node\nconsole.log(1);\n');
    assert.deepEqual(cliNodeFlags(plain), []);
    const two = join(dir, 'two.ts');
    writeFileSync(two, '#!/usr/bin/env -S node --max-semi-space-size=8 --stack-size=2000\n');
    assert.deepEqual(cliNodeFlags(two), ['--max-semi-space-size=8', '--stack-size=2000']);
    const none = join(dir, 'none.ts');
    writeFileSync(none, '// no shebang\n');
    assert.throws(() => cliNodeFlags(none), /not a node shebang/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI runs as an executable through its env -S shebang', async () => {
  // As an installed bin runs it: the file itself, with the pinned Node first on PATH.
  const owned = spawnOwned(SIPLB_CLI, ['--help'], {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT,
    env: { ...process.env, PATH: `${dirname(nodeBinary())}:${process.env['PATH'] ?? ''}` },
  });
  let out = '';
  owned.process.stdout?.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  owned.process.stderr?.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  const status = await owned.exited;
  assert.equal(status.code, 0, out);
  assert.match(out, /^usage: siplb /);
});

test('through the launcher, a second start of siplb loads no type stripper: the compile cache has the stripped code', { timeout: 60_000 }, async () => {
  // The launcher's cache lives under os.tmpdir(): a TMPDIR of its own makes the first start cold
  // whatever ran before. A preload reports at exit whether Node loaded its stripper (amaro).
  const dir = mkdtempSync(join(tmpdir(), 'siplb-compile-cache-'));
  try {
    const probe = join(dir, 'probe.cjs');
    writeFileSync(probe, "process.on('exit', () => process.stderr.write('amaro loaded: ' + process.moduleLoadList.some((m) => m.includes('amaro')) + '\\n'));\n");
    const loaded: string[] = [];
    for (let run = 0; run < 2; run++) {
      const owned = spawnOwned(nodeBinary(), [...cliNodeFlags(), '--require', probe, SIPLB_LAUNCHER, '--help'], {
        // SIPLB_FROM_SOURCE: the TypeScript even where dist/ is built (npm ci builds it), which needs no stripper at all.
        stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT, env: { ...process.env, TMPDIR: dir, SIPLB_FROM_SOURCE: '1' },
      });
      let err = '';
      owned.process.stdout?.resume();
      owned.process.stderr?.on('data', (d: Buffer) => { err += d.toString('utf8'); });
      assert.deepEqual(await owned.exited, { code: 0, signal: null }, err);
      loaded.push(/amaro loaded: (\w+)/.exec(err)?.[1] ?? `no report in: ${err}`);
    }
    // The first start strips (and fills the cache); the second finds every module there.
    assert.deepEqual(loaded, ['true', 'false']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a balancer killed with SIGKILL once ready has written the compile cache: its restart loads no type stripper', { timeout: 60_000 }, async () => {
  // Node writes the cache at a clean exit only; siplb writes it once started, so a balancer
  // killed outright (an operator's kill -9, the OOM killer) does not restart with the stripper.
  const dir = mkdtempSync(join(tmpdir(), 'siplb-compile-cache-'));
  const ports = await allocatePorts(2);
  try {
    const probe = join(dir, 'probe.cjs');
    writeFileSync(probe, "process.on('exit', () => process.stderr.write('amaro loaded: ' + process.moduleLoadList.some((m) => m.includes('amaro')) + '\\n'));\n");
    const props = { host: '127.0.0.1', externalPort: String(ports[0]), internalPort: String(ports[1]) };
    const opts = { env: { ...process.env, TMPDIR: dir, SIPLB_FROM_SOURCE: '1' }, nodeFlags: ['--require', probe] };
    const first = await startSiplb(props, opts);
    process.kill(first.pid, 'SIGKILL');
    assert.deepEqual(await first.exit, { code: null, signal: 'SIGKILL' });
    await first.stop();
    const second = await startSiplb(props, opts);
    await second.stop();
    assert.equal(await second.exitCode, 0);
    assert.deepEqual(second.logs().filter((l) => l.startsWith('amaro loaded')), ['amaro loaded: false']);
  } finally {
    releasePorts(ports);
    rmSync(dir, { recursive: true, force: true });
  }
});
