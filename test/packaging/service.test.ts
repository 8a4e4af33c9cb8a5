// packaging/siplb.service: systemd's own checker (systemd-analyze verify) finds nothing to say
// about it, and it keeps what the unit is for: a dedicated user, reload by SIGHUP, restart on
// failure, the hardening options, ports below 1024 without root (80, 443; SIP's 5060 needs nothing)
// and room for many TCP connections. And siplb run as the unit runs it, as a user without
// privileges holding only CAP_NET_BIND_SERVICE, binds a port below 1024; without it, it cannot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { nodeBinary, propertiesText, REPO_ROOT, startSiplbWithFile, type SiplbHandle } from '../e2e/harness/siplb.ts';

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

test('the unit: dedicated user, SIGHUP reload, restart on failure, hardening, ports below 1024 without root, many descriptors', () => {
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

/** A port below 1024 free for TCP and UDP on 127.0.0.1 right now (this test runs as root). */
async function freeLowPort(): Promise<number> {
  const bindable = (port: number): Promise<boolean> => new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const udp = createSocket('udp4');
      udp.once('error', () => { udp.close(); server.close(() => resolve(false)); });
      udp.bind({ address: '127.0.0.1', port, exclusive: true }, () => { udp.close(); server.close(() => resolve(true)); });
    });
  });
  for (let port = 990; port > 900; port--) if (await bindable(port)) return port;
  throw new Error('no free port in 901-990 on 127.0.0.1');
}

test('as the unit runs it (a user without privileges, CAP_NET_BIND_SERVICE only) siplb binds a port below 1024, and cannot without the capability', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    assert.fail('this test switches to user nobody with setpriv: run it as root');
  }
  if (!existsSync('/usr/bin/setpriv')) throw new Error('/usr/bin/setpriv is missing: apt-get install -y util-linux');
  const ports = await allocatePorts(2);
  const dir = mkdtempSync(join(tmpdir(), 'siplb-unit-user-'));
  let lb: SiplbHandle | undefined;
  try {
    chmodSync(dir, 0o755);
    const low = await freeLowPort();
    const config = join(dir, 'lb.properties');
    writeFileSync(config, propertiesText({ host: '127.0.0.1', externalPort: String(low), heartbeatPort: String(ports[0]), apiPort: String(ports[1]) }), { mode: 0o644 });
    // The launcher with the pinned Node first on PATH, as user nobody; with or without the one
    // capability the unit grants (AmbientCapabilities=CAP_NET_BIND_SERVICE).
    const wrapper = (name: string, caps: string[]): string => {
      const file = join(dir, name);
      writeFileSync(file, ['#!/bin/sh', `PATH=${dirname(nodeBinary())}:/usr/bin:/bin; export PATH`,
        `exec setpriv --reuid=nobody --regid=nogroup --clear-groups ${caps.join(' ')} ${join(REPO_ROOT, 'bin', 'siplb.cjs')} "$@"`, ''].join('\n'), { mode: 0o755 });
      return file;
    };
    const without = spawnSync(wrapper('without-cap.sh', []), [config], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(without.status, 1, `without the capability: exit ${without.status}\n${without.stdout}${without.stderr}`);
    assert.match(without.stderr, new RegExp(`^siplb: .*${low}.*(EACCES|permission)`, 'im'));
    t.diagnostic(`port ${low} refused to nobody: ${without.stderr.trim()}`);

    lb = await startSiplbWithFile(config, {
      // A graceful stop waits for 2 s without traffic; a loaded machine needs more than the default 3 s.
      logLevel: 'info', readyTimeoutMs: 20_000, stopGraceMs: 15_000,
      executable: wrapper('with-cap.sh', ['--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service']),
    });
    const status = readFileSync(`/proc/${lb.pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65534\s/m, 'runs as nobody');
    // CAP_NET_BIND_SERVICE is bit 10: effective set 0x400 and nothing else.
    assert.match(status, /^CapEff:\s+0*400$/m, status);
    const ready = lb.jsonLogs().find((l) => l['msg'] === 'siplb ready');
    assert.equal(ready?.['external'], `127.0.0.1 udp:${low} tcp:${low}`);
    await lb.stop();
    const exit = await lb.exit;
    assert.equal(await lb.exitCode, 0, `SIGTERM should end a graceful stop with exit 0; got ${JSON.stringify(exit)}; last lines:\n${lb.logs().slice(-15).join('\n')}`);
  } finally {
    await lb?.stop();
    releasePorts(ports);
    rmSync(dir, { recursive: true, force: true });
  }
});
