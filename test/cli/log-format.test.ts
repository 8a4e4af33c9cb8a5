// --log-format: JSON lines (the default off a terminal, what supervisors and log shippers read),
// human-readable lines with pretty, and a clear refusal of anything else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnOwned, terminate } from '../e2e/harness/children.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { nodeBinary, REPO_ROOT, SIPLB_CLI } from '../e2e/harness/siplb.ts';

/** Runs siplb with `args` until its output contains `until` (or it exits); returns the output. */
async function run(args: string[], until: RegExp | 'exit', ms = 10_000): Promise<{ out: string; code: number | null }> {
  const owned = spawnOwned(nodeBinary(), [SIPLB_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  let out = '';
  const seen = new Promise<void>((resolve) => {
    const on = (d: Buffer): void => {
      out += d.toString('utf8');
      if (until !== 'exit' && until.test(out)) resolve();
    };
    owned.process.stdout?.on('data', on);
    owned.process.stderr?.on('data', on);
  });
  await Promise.race([seen, owned.exited, new Promise((r) => setTimeout(r, ms))]);
  const { status } = await terminate(owned, 'SIGTERM', 3000);
  return { out, code: status.code };
}

test('--log-format pretty writes human-readable lines; json (the default off a terminal) JSON lines', async () => {
  const ports = await allocatePorts(3);
  const dir = mkdtempSync(join(tmpdir(), 'siplb-logfmt-'));
  try {
    const props = join(dir, 'lb.properties');
    writeFileSync(props, `externalUdpPort=${ports[0]}\napiPort=${ports[1]}\nheartbeatPort=${ports[2]}\n`);
    const pretty = await run([props, '--log-format', 'pretty'], /siplb ready/);
    const readyLine = pretty.out.split('\n').find((l) => l.includes('siplb ready')) ?? '';
    assert.ok(!readyLine.trimStart().startsWith('{'), `not JSON: ${readyLine}`);
    assert.match(readyLine, /INFO/);
    const json = await run([props], /siplb ready/);
    const line = json.out.split('\n').find((l) => l.includes('siplb ready')) ?? '';
    assert.equal((JSON.parse(line) as { msg: string }).msg, 'siplb ready');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    releasePorts(ports);
  }
});

test('--log-format with another value stops with exit 2 and says what is allowed', async () => {
  const r = await run(['--log-format', 'xml'], 'exit');
  assert.match(r.out, /--log-format "xml": expected json or pretty/);
  assert.equal(r.code, 2);
});
