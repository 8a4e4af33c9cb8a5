// The advisor's HTTP surface over a running Advisor (scripted probes and nft): /state as JSON,
// /metrics as Prometheus text that promtool accepts with the advisor's series, /healthz, and 404
// and 405 as JSON.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { checkMetrics } from '../helpers/promtool.ts';
import { Advisor, type AdvisorSettings, type AdvisorView } from '../../src/sprayer/advisor.ts';
import { AdvisorHttp } from '../../src/sprayer/advisor-http.ts';
import type { ProbeOutcome, ProbeTransport } from '../../src/sprayer/balancer-probe.ts';
import type { Endpoint } from '../../src/sprayer/nft-script.ts';

const SETTINGS: AdvisorSettings = {
  dataPlane: {
    table: 'siplb_advisor', family: 'ip', vip: '10.231.0.10', port: 5060, buckets: 8, seed: 7,
    balancers: [{ host: '10.231.2.2', port: 5060 }, { host: '10.231.3.2', port: 5060 }],
  },
  intervalMs: 5000, timeoutMs: 1000, rise: 2, fall: 3, transports: ['udp', 'tcp'],
};

test('state, metrics, healthz; 404 and 405', { timeout: 60_000 }, async (t) => {
  const probe = async (target: Endpoint, transport: ProbeTransport): Promise<ProbeOutcome> =>
    target.host === '10.231.3.2' && transport === 'tcp'
      ? { ok: false, code: null, reason: 'TCP connection refused', rttMs: 0.2 }
      : { ok: true, code: 200, reason: '200 OK', rttMs: 1.5 };
  const nft = { check: async () => undefined, owner: async () => 'absent' as const, apply: async () => undefined };
  const advisor = new Advisor(SETTINGS, { nft, probe, log: pino({ level: 'silent' }) });
  const http = new AdvisorHttp(advisor, pino({ level: 'silent' }));
  const { port } = await http.listen('127.0.0.1', 0);
  t.after(async () => {
    await advisor.stop();
    await http.close();
  });
  const base = `http://127.0.0.1:${port}`;

  // Before the first round: not installed, healthz says so.
  const early = await fetch(`${base}/healthz`);
  assert.equal(early.status, 503);
  await advisor.start();

  const state = await fetch(`${base}/state`);
  assert.equal(state.status, 200);
  assert.match(state.headers.get('content-type') ?? '', /^application\/json/);
  const v = await state.json() as AdvisorView;
  assert.deepEqual([v.vip, v.port, v.table, v.buckets, v.seed, v.interval, v.timeout, v.rise, v.fall, v.panic, v.installed],
    ['10.231.0.10', 5060, 'siplb_advisor', 8, 7, 5000, 1000, 2, 3, false, true]);
  assert.deepEqual(v.probeTransports, ['udp', 'tcp']);
  const [b1, b2] = v.balancers;
  assert.deepEqual([b1.address, b1.state, b1.buckets, b1.consecutivePass], ['10.231.2.2:5060', 'up', 8, 1]);
  assert.deepEqual([b2.address, b2.state, b2.buckets, b2.reason], ['10.231.3.2:5060', 'down', 0, 'tcp: TCP connection refused']);
  assert.deepEqual(b2.lastProbe.udp && [b2.lastProbe.udp.ok, b2.lastProbe.udp.code, b2.lastProbe.udp.rttMs], [true, 200, 1.5]);
  assert.deepEqual(b2.lastProbe.tcp && [b2.lastProbe.tcp.ok, b2.lastProbe.tcp.reason], [false, 'TCP connection refused']);
  assert.ok(!Number.isNaN(Date.parse(b2.since)) && !Number.isNaN(Date.parse(b2.lastProbe.tcp?.at ?? '')));
  assert.deepEqual(v.map, new Array(8).fill('10.231.2.2:5060'));

  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.equal((await health.json() as { status: string }).status, 'up');

  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await metrics.text();
  for (const line of [
    'siplb_advisor_balancer_up{balancer="10.231.2.2:5060"} 1',
    'siplb_advisor_balancer_up{balancer="10.231.3.2:5060"} 0',
    'siplb_advisor_buckets{balancer="10.231.2.2:5060"} 8',
    'siplb_advisor_buckets{balancer="10.231.3.2:5060"} 0',
    'siplb_advisor_probe_total{balancer="10.231.3.2:5060",transport="tcp",result="failure"} 1',
    'siplb_advisor_probe_total{balancer="10.231.3.2:5060",transport="udp",result="success"} 1',
    'siplb_advisor_transitions_total{balancer="10.231.3.2:5060",state="down"} 1',
    'siplb_advisor_map_updates_total{result="ok"} 1',
    'siplb_advisor_map_updates_total{result="failed"} 0',
    'siplb_advisor_panic 0',
    'siplb_advisor_table_installed 1',
    'siplb_advisor_probe_duration_seconds_count{balancer="10.231.2.2:5060",transport="udp"} 1',
  ]) assert.ok(text.split('\n').includes(line), `missing: ${line}`);
  assert.match(text, /^siplb_advisor_process_cpu_seconds_total /m, 'process metrics, prefixed');
  const checked = await checkMetrics(text);
  assert.equal(checked.code, 0, `promtool check metrics:\n${checked.out}`);

  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  assert.match((await missing.json() as { error: string }).error, /no such endpoint: \/nope/);
  const post = await fetch(`${base}/state`, { method: 'POST', body: '{}' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  assert.match((await post.json() as { error: string }).error, /POST not allowed here/);
});
