// packaging/siplb.service: systemd's own checker (systemd-analyze verify) finds nothing to say
// about it, and it keeps what the unit is for: a dedicated user, reload by SIGHUP, restart on
// failure, the hardening options, port 5060 without root and room for many TCP connections.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../e2e/harness/siplb.ts';

const UNIT = join(REPO_ROOT, 'packaging', 'siplb.service');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const INSTALLED_BIN = '/usr/local/bin/siplb';

function ensureSystemdAnalyze(): void {
  if (existsSync(SYSTEMD_ANALYZE)) return;
  if (process.getuid?.() === 0) spawnSync('apt-get', ['install', '-y', 'systemd'], { stdio: 'ignore', timeout: 300_000 });
  if (!existsSync(SYSTEMD_ANALYZE)) throw new Error(`${SYSTEMD_ANALYZE} is missing: apt-get install -y systemd`);
}

/** Each `Key=value` of the unit by key (a key given twice keeps both values), comments left out. */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m !== null) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

test('systemd-analyze verify: no error and no warning', () => {
  ensureSystemdAnalyze();
  const text = readFileSync(UNIT, 'utf8');
  // verify checks that ExecStart's program exists: the unit names where `npm install -g` puts
  // siplb, which this machine need not have; the checkout's launcher stands in for it.
  assert.equal(text.split(INSTALLED_BIN).length, 2, `${INSTALLED_BIN} once in the unit`);
  const dir = mkdtempSync(join(tmpdir(), 'siplb-unit-'));
  try {
    const copy = join(dir, 'siplb.service');
    writeFileSync(copy, text.replace(INSTALLED_BIN, join(REPO_ROOT, 'bin', 'siplb.cjs')));
    const r = spawnSync(SYSTEMD_ANALYZE, ['verify', copy], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `systemd-analyze verify: exit ${r.status}\n${r.stdout}${r.stderr}`);
    // verify exits 0 on an unknown key or an unparsable value and only says so: any line is a failure.
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'systemd-analyze verify said something');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the unit: dedicated user, SIGHUP reload, restart on failure, hardening, port 5060 without root, many descriptors', () => {
  const s = settings(readFileSync(UNIT, 'utf8'));
  const one = (key: string): string => {
    const v = s.get(key);
    assert.ok(v !== undefined && v.length === 1, `${key}= once, found ${JSON.stringify(v)}`);
    return v[0];
  };
  assert.equal(one('User'), 'siplb');
  assert.equal(one('Group'), 'siplb');
  assert.match(one('ExecStart'), new RegExp(`^${INSTALLED_BIN} /etc/siplb/lb\\.properties\\b`));
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('Restart'), 'on-failure');
  // A bad configuration (exit 2) is not retried forever.
  assert.equal(one('RestartPreventExitStatus'), '2');
  for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'],
    ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE'], ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE']]) {
    assert.equal(one(key), value, key);
  }
  assert.ok(Number(one('LimitNOFILE')) >= 65536, 'LimitNOFILE fits many TCP connections');
  // The graceful stop lasts up to shutdownTimeout (default 10 s) plus 3 s for closing.
  assert.ok(Number(/^(\d+)s$/.exec(one('TimeoutStopSec'))?.[1]) > 13, 'TimeoutStopSec above siplb\'s graceful stop');
  assert.ok(!s.has('MemoryDenyWriteExecute'), 'V8 needs writable executable memory');
  assert.equal(one('WantedBy'), 'multi-user.target');
});
