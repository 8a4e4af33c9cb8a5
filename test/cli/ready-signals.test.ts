// "siplb ready" is the line service managers and harnesses wait for before they signal: every
// signal siplb handles must have its handler by then, or a SIGTERM sent at once kills the process
// outright (Node's default action) instead of stopping it gracefully. The race itself is too
// narrow to hit on demand, so a preload looks at the process at the moment the line is written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { propertiesText, startSiplbWithFile } from '../e2e/harness/siplb.ts';

// Wraps every way pino may write stdout (fs.writeSync, fs.write, process.stdout.write); the first
// chunk holding the ready line reports the signal listeners present at that instant on stderr.
const PROBE = `
const fs = require('node:fs');
let reported = false;
const check = (chunk) => {
  if (reported) return;
  const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
  if (!text.includes('"msg":"siplb ready"')) return;
  reported = true;
  const n = (s) => process.listenerCount(s);
  origWriteSync(2, 'signal listeners at ready: SIGTERM=' + n('SIGTERM') + ' SIGINT=' + n('SIGINT') + ' SIGHUP=' + n('SIGHUP') + '\\n');
};
const origWriteSync = fs.writeSync;
fs.writeSync = function (fd, chunk, ...rest) { if (fd === 1) check(chunk); return origWriteSync.call(this, fd, chunk, ...rest); };
const origWrite = fs.write;
fs.write = function (fd, chunk, ...rest) { if (fd === 1) check(chunk); return origWrite.call(this, fd, chunk, ...rest); };
const origStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => { check(chunk); return origStdout(chunk, ...rest); };
`;

test('when "siplb ready" is written, SIGTERM, SIGINT and SIGHUP already have their handlers; a SIGTERM right after it stops with exit 0', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-ready-'));
  const ports = await allocatePorts(3);
  t.after(() => { releasePorts(ports); rmSync(dir, { recursive: true, force: true }); });
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, PROBE);
  const config = join(dir, 'lb.properties');
  writeFileSync(config, propertiesText({ host: '127.0.0.1', externalPort: String(ports[0]), heartbeatPort: String(ports[1]), apiPort: String(ports[2]) }));
  const lb = await startSiplbWithFile(config, { logLevel: 'info', nodeFlags: ['--require', probe], stopGraceMs: 15_000 });
  t.after(() => lb.stop());
  const report = lb.logs().find((l) => l.startsWith('signal listeners at ready:'));
  assert.ok(report !== undefined, `the probe saw no ready line:\n${lb.logs().slice(-10).join('\n')}`);
  const counts = Object.fromEntries([...report.matchAll(/(SIG\w+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) assert.ok((counts[signal] ?? 0) >= 1, `${signal} had no handler when siplb said ready: ${report}`);
  await lb.stop();
  assert.deepEqual(await lb.exit, { code: 0, signal: null });
});
