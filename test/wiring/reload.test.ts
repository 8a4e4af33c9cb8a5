// Hot reload (src/wiring/reload.ts). First the plan alone: for each kind of change, applied or
// refused naming the key, and every Config key classified. Then a real running balancer
// (startBalancer on a configuration file, loopback sockets) reloading its file: what applies
// reaches the parts (the proxy policy on the next request, health settings, static nodes,
// weights), and a bad file, or one asking for a change that needs a restart, changes nothing,
// not even the keys of the same file that could have changed.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { keyForField } from '../../src/config/keys.ts';
import { defaultConfig, loadConfigFile, loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { startBalancer, type RunningBalancer } from '../../src/wiring/balancer.ts';
import { changedFields, refusedKeys, reloadPlan } from '../../src/wiring/reload.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { eventually } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
const RECONFIGURABLE = { name: 'wrr', reconfigure: () => null };
const FIXED = { name: 'my-module' };

describe('reloadPlan: what each change does', () => {
  const BASE = ['externalUdpPort=5060', 'nodes=10.0.0.1:5080', 'tlsCertFile=/etc/siplb/a.pem', 'tlsKeyFile=/etc/siplb/a.key', 'externalTlsPort=5061'];
  const CASES: { change: string[]; applied?: string[]; refused?: string[]; algorithm?: typeof FIXED }[] = [
    { change: [], applied: [] },
    { change: ['nodes=10.0.0.1:5080,10.0.0.2:5080;weight=3'], applied: ['nodes'] },
    { change: ['healthCheckInterval=1000', 'healthCheckTimeout=300', 'healthCheckFailures=2', 'healthCheckSuccesses=3'], applied: ['healthCheckInterval', 'healthCheckTimeout', 'healthCheckFailures', 'healthCheckSuccesses'] },
    {
      change: ['responsesStatusCodeNodeRemoval=500,503', 'maxNumberResponsesWithError=2', 'maxErrorTime=1000', 'responseReasonNodeRemoval=Overloaded', 'maxRequestNumberWithoutResponse=5', 'maxResponseTime=2000'],
      applied: ['responsesStatusCodeNodeRemoval', 'responseReasonNodeRemoval', 'maxNumberResponsesWithError', 'maxErrorTime', 'maxRequestNumberWithoutResponse', 'maxResponseTime'],
    },
    { change: ['blockedValues=evil', 'isSend5xxResponse=true', 'isSend5xxResponseSatusCode=500', 'terminateTLSTraffic=true'], applied: ['blockedValues', 'isSend5xxResponse', 'isSend5xxResponseSatusCode', 'terminateTLSTraffic'] },
    { change: ['pikeRequests=400', 'pikeWindow=1000', 'pikeBlockTime=5000', 'pikeAllow=10.0.0.0/8'], applied: ['pikeRequests', 'pikeWindow', 'pikeBlockTime', 'pikeAllow'] },
    { change: ['publicIp=203.0.113.7'], refused: ['publicIp'] },
    { change: ['publicIp=203.0.113.7', 'routingRulesIpv4=10.*=false'], refused: ['publicIp'] },
    { change: ['hashLoadFactor=0.25', 'callIdAffinityGroupFailover=true', 'subclusterMap=(10.0.0.1,10.0.0.2)'], applied: ['callIdAffinityGroupFailover', 'subclusterMap', 'hashLoadFactor'] },
    { change: ['hashLoadFactor=0.25'], refused: ['hashLoadFactor'], algorithm: FIXED },
    { change: ['nodeTimeout=3000', 'heartbeatInterval=500', 'trafficRampupCyclePeriod=1000', 'trafficPercentageIncrease=20'], applied: ['nodeTimeout', 'heartbeatInterval', 'trafficRampupCyclePeriod', 'trafficPercentageIncrease'] },
    { change: ['securityRequired=true', 'login=a', 'password=b', 'shutdownTimeout=2000'], applied: ['securityRequired', 'login', 'password', 'shutdownTimeout'] },
    { change: ['tlsCertFile=/etc/siplb/b.pem'], applied: ['tlsCertFile'] },
    { change: ['externalUdpPort=5070'], refused: ['externalUdpPort'] },
    { change: ['externalPort=5070', 'externalUdpPort=', 'externalTlsPort='], refused: ['externalPort', 'externalUdpPort', 'externalTlsPort'] },
    { change: ['host=127.0.0.2'], refused: ['host', 'externalHost', 'internalHost'] },
    { change: ['ipv6Host=::1'], refused: ['ipv6Host', 'externalIpv6Host', 'internalIpv6Host'] },
    { change: ['heartbeatPort=2611', 'apiPort=2007', 'httpPort=2080'], refused: ['heartbeatPort', 'apiPort', 'httpPort'] },
    { change: ['apiToken=0123456789abcdef0123'], refused: ['apiToken'] },
    { change: ['heartbeatToken=rotated-token-0123456789'], applied: ['heartbeatToken'] },
    { change: ['udpReadDelay=0'], applied: ['udpReadDelay'] },
    { change: ['stateStore=redis', 'redisUrl=redis://10.0.0.9:6379'], refused: ['stateStore', 'redisUrl'] },
    { change: ['algorithmClass=least-calls'], refused: ['algorithmClass'] },
    { change: ['callIdAffinityMaxTimeInCache=60'], refused: ['callIdAffinityMaxTimeInCache'] },
    { change: ['sipHeaderAffinityKey=From'], refused: ['sipHeaderAffinityKey'] },
    { change: ['viaSecret=another-secret-of-some-length'], refused: ['viaSecret'] },
    { change: ['isSendTrying=false'], refused: ['isSendTrying'] },
    { change: ['workers=2'], refused: ['workers'] },
    { change: ['externalIpLoadBalancerAddress=198.51.100.1', 'externalIpLoadBalancerUdpPort=5090'], refused: ['externalIpLoadBalancerAddress', 'externalIpLoadBalancerUdpPort'] },
    { change: ['maxMessageSize=8000', 'wsPingInterval=5000'], refused: ['maxMessageSize', 'wsPingInterval'] },
    { change: ['tlsCertFile=', 'tlsKeyFile=', 'externalTlsPort='], refused: ['externalTlsPort', 'tlsCertFile', 'tlsKeyFile'] },
    { change: ['blockedValues=evil', 'externalUdpPort=5070'], refused: ['externalUdpPort'] },
  ];

  /** The base file with the `change` lines replacing the lines of the same keys. */
  function changed(lines: string[]): Config {
    const keys = new Set(lines.map((l) => l.slice(0, l.indexOf('='))));
    return loadConfigText([...BASE.filter((l) => !keys.has(l.slice(0, l.indexOf('=')))), ...lines.filter((l) => !l.endsWith('='))].join('\n')).config;
  }

  for (const c of CASES) {
    const label = c.change.length === 0 ? 'nothing' : c.change.join(' ');
    test(`${label}: ${c.refused === undefined ? `applies ${c.applied?.join(', ') || 'nothing'}` : `refused naming ${c.refused.join(', ')}`}`, () => {
      const plan = reloadPlan(changed([]), changed(c.change), c.algorithm ?? RECONFIGURABLE);
      if (c.refused === undefined) {
        assert.deepEqual(plan.refused, []);
        assert.deepEqual(plan.changed.map((f) => keyForField(f).key).sort(), [...(c.applied ?? [])].sort());
      } else {
        assert.deepEqual(plan.refused.map((r) => r.key).sort(), [...c.refused].sort());
        for (const r of plan.refused) assert.match(r.reason, /restart siplb/, r.key);
      }
    });
  }

  test('every key of the configuration is compared, and is either applied or refused', () => {
    const base = defaultConfig();
    const refused = refusedKeys();
    for (const field of Object.keys(base) as (keyof Config)[]) {
      const next = { ...base, [field]: different(base[field]) } as Config;
      assert.deepEqual(changedFields(base, next), [field], `${field} is compared`);
      const plan = reloadPlan(base, next, RECONFIGURABLE);
      if (refused.has(field)) assert.deepEqual(plan.refused.map((r) => r.key), [keyForField(field).key], field);
      else assert.equal(plan.parts.size, 1, `${field} goes to a part`);
    }
  });

  test('the keys that need a restart', () => {
    const names = [...refusedKeys().keys()].map((f) => keyForField(f).key);
    // Every per-transport port key (40) is refused too; listed here are the others.
    assert.deepEqual(names.filter((n) => !/^(external|internal)(Ipv6)?(IpLoadBalancer|LoadBalancer)?(Udp|Tcp|Tls|Ws|Wss)Port$/.test(n)).sort(), [
      'algorithmClass', 'apiPort', 'apiToken', 'callIdAffinityMaxEntries', 'callIdAffinityMaxTimeInCache', 'connectedNodeSockets', 'externalHost',
      'externalIpLoadBalancerAddress', 'externalIpLoadBalancerPort', 'externalIpv6Host', 'externalIpv6LoadBalancerAddress',
      'externalPort', 'externalTransport', 'extraServerNodes', 'heartbeatPort', 'host', 'httpAffinityKey', 'httpMaxHeaderSize',
      'httpPort', 'httpResponseTimeout', 'httpWebSocketIdleTimeout', 'httpsPort', 'internalHost', 'internalIpLoadBalancerAddress',
      'internalIpLoadBalancerPort', 'internalIpv6Host', 'internalIpv6LoadBalancerAddress', 'internalPort', 'internalTransport',
      'ipv6Host', 'isFilterSubdomain', 'isSendTrying', 'matchingHostnameForRoute', 'maxConnectionsPerSource', 'maxContentLength',
      'maxMessageSize', 'maxTcpConnections', 'memoryTrimInterval', 'performanceTestingMode', 'publicIp', 'publicIpv6', 'redisCluster', 'redisKeyPrefix', 'redisReadTimeout',
      'redisUrl', 'requestCheckPattern', 'sipHeaderAffinityExclusionPattern', 'sipHeaderAffinityFallbackKey', 'sipHeaderAffinityKey',
      'stateStore', 'tcpFirstMessageTimeout', 'tcpIdleTimeout', 'tcpMessageTimeout', 'tlsClientAuth', 'tlsHandshakeTimeout', 'udpNativeIo', 'udpReceiveBuffer', 'unavailableHost', 'useIpLoadBalancerAddressInViaHeaders', 'userAffinityMaxTimeInCache',
      'viaSecret', 'workers', 'wsAllowedOrigins', 'wsPingInterval',
    ]);
    assert.equal(names.length, 64 + 40);
  });
});

/** A value unlike `v`, of a type the field can hold (the plan only compares). */
function different(v: unknown): unknown {
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'string') return `${v}x`;
  if (v instanceof RegExp) return /^different$/;
  if (Array.isArray(v)) return [...v, 'x'];
  return 12345;
}

// ---------------------------------------------------------------- a running balancer

interface Running {
  lb: RunningBalancer;
  path: string;
  sipPort: number;
  /** The file: these lines plus the ports. */
  write(lines: string[]): void;
}

async function running(t: TestContext, lines: string[]): Promise<Running> {
  const ports = await allocatePorts(3);
  const [sipPort, apiPort, hbPort] = ports;
  const dir = mkdtempSync(join(tmpdir(), 'siplb-reload-'));
  const path = join(dir, 'lb.properties');
  const write = (l: string[]): void => {
    writeFileSync(path, [`externalUdpPort=${sipPort}`, `apiPort=${apiPort}`, `heartbeatPort=${hbPort}`, ...l].join('\n') + '\n');
  };
  write(lines);
  const lb = await startBalancer(loadConfigFile(path).config, log, { configPath: path });
  t.after(async () => {
    await lb.close();
    releasePorts(ports);
    rmSync(dir, { recursive: true, force: true });
  });
  return { lb, path, sipPort, write };
}

/** A UDP client: sends one INVITE, collects the status lines that come back. */
async function invite(t: TestContext, lbPort: number, callId: string, userAgent: string): Promise<() => string[]> {
  const socket = dgram.createSocket('udp4');
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString('latin1').split('\r\n')[0]));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  t.after(() => socket.close());
  const port = socket.address().port;
  socket.send([
    `INVITE sip:service@127.0.0.1:${lbPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId};rport`,
    'Max-Forwards: 70', 'From: <sip:alice@example.org>;tag=1', 'To: <sip:service@example.org>', `Call-ID: ${callId}`,
    'CSeq: 1 INVITE', `User-Agent: ${userAgent}`, `Contact: <sip:alice@127.0.0.1:${port}>`, 'Content-Length: 0', '', '',
  ].join('\r\n'), lbPort, '127.0.0.1');
  return () => got;
}

describe('Reloader on a running balancer', () => {
  test('the same file: ok, nothing applied, the running configuration is the new load', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    const result = await r.lb.reload();
    assert.deepEqual(result, { ok: true, applied: [], tlsListeners: 0, warnings: [], notes: [] });
  });

  test('heartbeatToken: required from the reload on, the new one accepted and the old one refused; removed, not required', async (t) => {
    const oldToken = 'heartbeat-token-before-0001';
    const newToken = 'heartbeat-token-after-0002';
    const r = await running(t, ['healthCheckInterval=0', `heartbeatToken=${oldToken}`]);
    const status = async (token: string | null, sessionId: string): Promise<number> => (await fetch(`http://127.0.0.1:${r.lb.heartbeatPort}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify({ start: { ip: '10.0.0.7', udpPort: 5080, sessionId } }),
    })).status;
    assert.equal(await status(oldToken, 's1'), 200);
    r.write(['healthCheckInterval=0', `heartbeatToken=${newToken}`]);
    const result = await r.lb.reload();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.ok && result.applied, ['heartbeatToken']);
    assert.equal(await status(oldToken, 's2'), 401);
    assert.equal(r.lb.registry.get('10.0.0.7:5080')?.sessionId, 's1', 'the refused start replaced nothing');
    assert.equal(await status(newToken, 's3'), 200);
    r.write(['healthCheckInterval=0']);
    assert.equal((await r.lb.reload()).ok, true);
    assert.equal(await status(null, 's4'), 200);
    assert.equal(r.lb.registry.get('10.0.0.7:5080')?.sessionId, 's4');
  });

  test('policy: the next request meets the new blockedValues and 5xx reply', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    // No node: a new call is answered with the local 503.
    const before = await invite(t, r.sipPort, 'before', 'evil-dialer/1.0');
    await eventually('503 before the reload', 3000, () => before().some((l) => l.startsWith('SIP/2.0 503')));
    r.write(['healthCheckInterval=0', 'blockedValues=evil-dialer', 'isSend5xxResponse=true', 'isSend5xxResponseSatusCode=500']);
    const result = await r.lb.reload();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.ok && result.applied, ['blockedValues', 'isSend5xxResponse', 'isSend5xxResponseSatusCode']);
    assert.deepEqual(r.lb.config.blockedValues, ['evil-dialer']);
    const blocked = await invite(t, r.sipPort, 'blocked', 'evil-dialer/1.0');
    await eventually('the blocked request counted', 3000, () => r.lb.stats.dropped.get('blocked') === 1);
    assert.deepEqual(blocked(), [], 'dropped unanswered');
    const other = await invite(t, r.sipPort, 'other', 'softphone/2');
    await eventually('the new 5xx', 3000, () => other().some((l) => l.startsWith('SIP/2.0 500')));
  });

  test('policy: pikeRequests turned on by a reload limits the next new requests; pikeAllow lets them in again', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    r.write(['healthCheckInterval=0', 'pikeRequests=2', 'pikeWindow=60000']);
    const result = await r.lb.reload();
    assert.deepEqual(result.ok && result.applied, ['pikeRequests', 'pikeWindow'], JSON.stringify(result));
    // No node: the two under the limit get the local 503, the third nothing.
    for (const id of ['p1', 'p2']) {
      const answered = await invite(t, r.sipPort, id, 'softphone/2');
      await eventually(`503 to ${id}`, 3000, () => answered().some((l) => l.startsWith('SIP/2.0 503')));
    }
    const third = await invite(t, r.sipPort, 'p3', 'softphone/2');
    await eventually('the third counted as rate-limited', 3000, () => r.lb.stats.dropped.get('rate-limited') === 1);
    assert.deepEqual(third(), [], 'dropped unanswered');
    assert.equal(r.lb.stats.sourcesBlocked, 1);
    r.write(['healthCheckInterval=0', 'pikeRequests=2', 'pikeWindow=60000', 'pikeAllow=127.0.0.0/8']);
    assert.equal((await r.lb.reload()).ok, true);
    assert.equal(r.lb.stats.sourcesBlocked, 0, 'an allow-listed address is unblocked at once');
    const fourth = await invite(t, r.sipPort, 'p4', 'softphone/2');
    await eventually('503 to p4', 3000, () => fourth().some((l) => l.startsWith('SIP/2.0 503')));
  });

  test('health and passive-health settings reach the checkers; the registry takes nodeTimeout', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    r.write(['healthCheckInterval=60000', 'healthCheckTimeout=700', 'healthCheckFailures=4', 'healthCheckSuccesses=2', 'maxNumberResponsesWithError=1', 'nodeTimeout=2000']);
    const result = await r.lb.reload();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(r.lb.health.settings(), { intervalMs: 60_000, timeoutMs: 700, failures: 4, successes: 2 });
    r.lb.registry.start({ ip: '10.0.0.5', ports: { udp: 5080 }, sessionId: 's', version: '1' });
    const id = '10.0.0.5:5080';
    await eventually('the registered node expires after the new nodeTimeout', 5000, () => r.lb.registry.get(id) === undefined, 100);
  });

  test('static nodes: added, re-weighted, removed (retiring while calls may remain); an API weight stays while the file keeps that node\'s weight, and is withdrawn when the file changes it', async (t) => {
    const r = await running(t, ['healthCheckInterval=0', 'algorithmClass=wrr', 'nodes=10.0.0.1:5080,10.0.0.2:5080']);
    r.lb.registry.adminSetWeight('10.0.0.2:5080', 7);
    r.write(['healthCheckInterval=0', 'algorithmClass=wrr', 'nodes=10.0.0.1:5080;weight=4,10.0.0.2:5080,10.0.0.3:5080;transport=tcp']);
    const result = await r.lb.reload();
    assert.equal(result.ok, true, JSON.stringify(result));
    const snap = r.lb.cluster();
    assert.deepEqual(snap.selectable.map((n) => [n.id, n.weight]), [['10.0.0.1:5080', 4], ['10.0.0.2:5080', 7], ['10.0.0.3:5080', 1]]);
    assert.deepEqual(snap.get('10.0.0.3:5080')?.ports, { tcp: 5080 });
    r.write(['healthCheckInterval=0', 'algorithmClass=wrr', 'nodes=10.0.0.2:5080,10.0.0.3:5080;transport=tcp']);
    const removed = await r.lb.reload();
    assert.equal(removed.ok, true, JSON.stringify(removed));
    assert.deepEqual(removed.ok && removed.notes, ['nodes 10.0.0.1:5080: removed from nodes=; they take no new calls and leave once their calls have ended']);
    assert.equal(r.lb.cluster().stateOf('10.0.0.1:5080'), 'draining');
    assert.equal(r.lb.registry.get('10.0.0.1:5080')?.retiring, true);
    // The file now changes that node's weight: the file's word, and the API's weight withdrawn.
    r.write(['healthCheckInterval=0', 'algorithmClass=wrr', 'nodes=10.0.0.2:5080;weight=3,10.0.0.3:5080;transport=tcp']);
    assert.equal((await r.lb.reload()).ok, true);
    assert.equal(r.lb.cluster().get('10.0.0.2:5080')?.weight, 3);
    assert.equal(r.lb.registry.adminWeightStates().get('10.0.0.2:5080')?.value, null);
  });

  test('a refused change in the file: nothing changes, not even the keys that could have', async (t) => {
    const r = await running(t, ['healthCheckInterval=0', 'nodes=10.0.0.1:5080']);
    const before = r.lb.config;
    r.write(['healthCheckInterval=0', 'nodes=10.0.0.1:5080,10.0.0.2:5080', 'blockedValues=x', 'sipHeaderAffinityKey=To']);
    // The port line comes first in the file; rewrite it with another port.
    writeFileSync(r.path, `externalUdpPort=${r.sipPort + 1}\n` + readFileSync(r.path, 'utf8').split('\n').slice(1).join('\n'));
    const result = await r.lb.reload();
    assert.ok(!result.ok);
    assert.equal(result.status, 'refused');
    assert.deepEqual(result.refused.map((x) => x.key).sort(), ['externalUdpPort', 'sipHeaderAffinityKey']);
    assert.match(result.error, /(externalUdpPort, sipHeaderAffinityKey|sipHeaderAffinityKey, externalUdpPort) cannot change while siplb runs; nothing was changed/);
    assert.equal(r.lb.config, before, 'the running configuration is the old one');
    assert.deepEqual(r.lb.cluster().selectable.map((n) => n.id), ['10.0.0.1:5080']);
  });

  const BAD: { name: string; lines: string[]; key: string }[] = [
    { name: 'a value siplb cannot run with', lines: ['healthCheckInterval=0', 'maxErrorTime=soon'], key: 'maxErrorTime' },
    { name: 'a node whose host does not resolve', lines: ['healthCheckInterval=0', 'nodes=no-such-node.invalid:5080'], key: 'nodes' },
    { name: 'a TLS key file that cannot be read', lines: ['healthCheckInterval=0', 'tlsCertFile=/nonexistent/c.pem', 'tlsKeyFile=/nonexistent/k.pem'], key: '' },
  ];
  for (const c of BAD) {
    test(`a bad file (${c.name}): invalid, naming the key; nothing changes`, async (t) => {
      const r = await running(t, ['healthCheckInterval=0', 'nodes=10.0.0.1:5080']);
      const before = r.lb.config;
      r.write([...c.lines, 'blockedValues=y']);
      const result = await r.lb.reload();
      assert.ok(!result.ok);
      if (c.key === '') {
        // Turning TLS on is refused before the files are even read.
        assert.equal(result.status, 'refused');
        assert.deepEqual(result.refused.map((x) => x.key), ['tlsCertFile', 'tlsKeyFile']);
      } else {
        assert.equal(result.status, 'invalid');
        assert.deepEqual(result.refused.map((x) => x.key), [c.key]);
        assert.match(result.error, /nothing was changed/);
      }
      assert.equal(r.lb.config, before);
      assert.deepEqual(r.lb.cluster().selectable.map((n) => n.id), ['10.0.0.1:5080']);
    });
  }

  test('the file gone: invalid, key (file)', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    rmSync(r.path);
    const result = await r.lb.reload();
    assert.ok(!result.ok);
    assert.deepEqual([result.status, result.refused[0].key], ['invalid', '(file)']);
  });

  test('started without a file: refused, nothing to read', async (t) => {
    const [sipPort, apiPort, hbPort] = await allocatePorts(3);
    const { config } = loadConfigText(`externalUdpPort=${sipPort}\napiPort=${apiPort}\nheartbeatPort=${hbPort}\nhealthCheckInterval=0`);
    const lb = await startBalancer(config, log);
    t.after(async () => {
      await lb.close();
      releasePorts([sipPort, apiPort, hbPort]);
    });
    const result = await lb.reload();
    assert.ok(!result.ok);
    assert.deepEqual([result.status, result.refused[0].key], ['refused', '(file)']);
  });

  test('reloads run one after the other, each against what the one before applied', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    r.write(['healthCheckInterval=0', 'blockedValues=one']);
    const first = r.lb.reload();
    const second = r.lb.reload();
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(a.ok && a.applied, ['blockedValues']);
    assert.deepEqual(b.ok && b.applied, [], 'the second found the file already applied');
  });

  test('a graceful stop under way: refused', async (t) => {
    const r = await running(t, ['healthCheckInterval=0']);
    void r.lb.gracefulStop('test');
    const result = await r.lb.reload();
    assert.ok(!result.ok);
    assert.deepEqual([result.status, result.refused[0].key], ['refused', '(balancer)']);
  });
});
