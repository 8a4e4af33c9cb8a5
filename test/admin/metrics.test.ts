// Prometheus metrics of a real balancer (startBalancer, in this process): a scripted UDP node and
// a dead one, an INVITE/200/ACK, local replies, a drop, an unparseable datagram and an HTTP
// request with no HTTP node move the counters; the exposition carries them under the expected
// names and labels, counters never go back between scrapes, and promtool accepts the text.

import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { pino, type Logger } from 'pino';
import { checkMetrics, promtool } from '../helpers/promtool.ts';
import { Metrics } from '../../src/admin/metrics.ts';
import type { AdminTarget } from '../../src/admin/target.ts';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { startBalancer } from '../../src/wiring/balancer.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { ScriptedUas } from '../helpers/scripted-uas.ts';
import { elements } from '../helpers/sip.ts';
import { eventually } from '../helpers/wait.ts';
import { startRedis } from '../helpers/redis.ts';

// ---------------------------------------------------------------- the exposition, read back

interface Exposition {
  /** Metric family name -> TYPE. */
  types: Map<string, string>;
  /** `name{labels}` as written -> value. */
  samples: Map<string, number>;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m !== null, `unreadable sample line: ${line}`);
    samples.set(m[1], Number(m[2]));
  }
  return { types, samples };
}

/** The family a sample belongs to (histogram samples carry a suffix). */
function familyOf(e: Exposition, sample: string): string | undefined {
  const name = sample.replace(/\{.*$/, '');
  if (e.types.has(name)) return name;
  const base = name.replace(/_(bucket|count|sum)$/, '');
  return e.types.has(base) ? base : undefined;
}

/** Value of `name` with exactly these labels (any order); undefined when absent. */
function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const [key, v] of e.samples) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key);
    if (m === null || m[1] !== name) continue;
    const have = (m[2] ?? '').match(/[a-zA-Z_]+="(?:[^"\\]|\\.)*"/g)?.sort().join(',') ?? '';
    if (have === want) return v;
  }
  return undefined;
}

// ---------------------------------------------------------------- a UDP client

class Client {
  readonly received: SipMessage[] = [];
  readonly socket: Socket;
  readonly port: number;

  private constructor(socket: Socket, port: number) {
    this.socket = socket;
    this.port = port;
  }

  static async open(): Promise<Client> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const c = new Client(socket, socket.address().port);
    socket.on('message', (buf) => {
      const m = parseSipMessage(buf, true);
      if (!isParseFailure(m)) c.received.push(m);
    });
    return c;
  }

  send(to: number, lines: readonly string[] | string): void {
    this.socket.send(Buffer.from(typeof lines === 'string' ? lines : `${lines.join('\r\n')}\r\n\r\n`, 'latin1'), to, '127.0.0.1');
  }

  responses(callId: string, status?: number): SipMessage[] {
    return this.received.filter((m) => !m.isRequest && m.callId === callId && (status === undefined || m.status === status));
  }

  close(): void {
    this.socket.close();
  }
}

// ---------------------------------------------------------------- the test


/** A balancer started in this process on `config`, and the Metrics of what the admin surface sees of it; both closed after the test. */
async function balancerWithMetrics(t: TestContext, config: Config): Promise<{ lb: Awaited<ReturnType<typeof startBalancer>>; target: AdminTarget; metrics: Metrics }> {
  const log = pino({ level: 'silent' });
  const lb = await startBalancer(config, log);
  t.after(() => lb.close());
  const target = targetOf(lb, config, log);
  const metrics = new Metrics(target);
  t.after(() => metrics.close());
  return { lb, target, metrics };
}

/** What the admin surface sees of a balancer started in this process. */
function targetOf(lb: Awaited<ReturnType<typeof startBalancer>>, config: Config, log: Logger): AdminTarget {
  return {
    config, configPath: null, balancerId: lb.balancerId, version: '9.8.7-test', startedAt: Date.now(),
    stats: lb.stats, registry: lb.registry, calls: lb.calls, store: lb.store, health: lb.health,
    transports: lb.transports, http: lb.http, heartbeat: lb.heartbeat, log,
    isStopping: () => false, stop: () => undefined, logLevel: () => 'info', setLogLevel: () => undefined,
  };
}

test('metrics: a real balancer\'s traffic, nodes and store in Prometheus text that promtool accepts; counters only grow', { timeout: 300_000 }, async (t) => {
  promtool();
  const ports = await allocatePorts(4);
  const [lbPort, deadPort, httpPort, heartbeatPort] = ports;
  t.after(() => releasePorts(ports));
  const uas = await ScriptedUas.start();
  t.after(() => uas.close());
  const idA = `127.0.0.1:${uas.port}`;
  const idB = `127.0.0.1:${deadPort}`;
  const { config } = loadConfigText([
    'host=127.0.0.1', `externalPort=${lbPort}`, `nodes=${idA},${idB}`, `heartbeatPort=${heartbeatPort}`, `httpPort=${httpPort}`,
    'healthCheckInterval=150', 'healthCheckTimeout=300', 'healthCheckFailures=1', 'healthCheckSuccesses=1',
  ].join('\n'));
  const { lb, target, metrics } = await balancerWithMetrics(t, config);
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
  const client = await Client.open();
  t.after(() => client.close());

  // The dead node is taken out by the active checks (its UDP port refuses), the live one stays.
  await eventually('the dead node to be down', 5_000, () => lb.registry.snapshot().stateOf(idB) === 'down');
  assert.equal(lb.registry.snapshot().stateOf(idA), 'active');

  // A call: INVITE, siplb's 100, the node's 200, ACK along the Record-Route.
  const callId = `metrics-${randomBytes(6).toString('hex')}@client`;
  const fromTag = randomBytes(4).toString('hex');
  const via = (branch: string): string => `Via: SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bK-${branch};rport`;
  client.send(lbPort, [
    `INVITE sip:service@127.0.0.1:${lbPort} SIP/2.0`, via(`inv-${fromTag}`), 'Max-Forwards: 70',
    `From: <sip:caller@example.org>;tag=${fromTag}`, 'To: <sip:service@example.com>', `Call-ID: ${callId}`,
    'CSeq: 1 INVITE', `Contact: <sip:caller@127.0.0.1:${client.port}>`, 'Content-Length: 0',
  ]);
  await eventually('the 200 to the INVITE', 5_000, () => client.responses(callId, 200).length > 0);
  const ok = client.responses(callId, 200)[0];
  const contact = /<([^>]+)>/.exec(ok.get('contact') ?? '')?.[1];
  assert.ok(contact !== undefined, 'the 200 has a Contact');
  const routes = elements(ok, 'record-route').reverse();
  assert.ok(routes.length > 0, 'siplb record-routes');
  client.send(lbPort, [
    `ACK ${contact} SIP/2.0`, via(`ack-${fromTag}`), ...routes.map((r) => `Route: ${r}`), 'Max-Forwards: 70',
    `From: <sip:caller@example.org>;tag=${fromTag}`, `To: ${ok.to}`, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0',
  ]);
  await uas.waitForRequest('ACK', (m) => m.callId === callId, 5_000);

  // 64 OPTIONS with Max-Forwards 0 (483 each, and enough messages for a timed sample: one in 64), an ACK
  // with Max-Forwards 0 (dropped: ACKs are never answered), a stray response, a datagram that is
  // not SIP.
  const mfCallId = `mf0-${randomBytes(6).toString('hex')}@client`;
  for (let i = 0; i < 64; i++) {
    client.send(lbPort, [
      `OPTIONS sip:service@127.0.0.1:${lbPort} SIP/2.0`, via(`opt-${i}-${fromTag}`), 'Max-Forwards: 0',
      `From: <sip:caller@example.org>;tag=o${i}`, 'To: <sip:service@example.com>', `Call-ID: ${mfCallId}`, `CSeq: ${i + 1} OPTIONS`, 'Content-Length: 0',
    ]);
  }
  client.send(lbPort, [
    `ACK sip:service@127.0.0.1:${lbPort} SIP/2.0`, via(`ack0-${fromTag}`), 'Max-Forwards: 0',
    `From: <sip:caller@example.org>;tag=a0`, 'To: <sip:service@example.com>;tag=x', `Call-ID: ack0-${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0',
  ]);
  client.send(lbPort, [
    'SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-not-ours', 'From: <sip:a@example.org>;tag=1',
    'To: <sip:b@example.org>;tag=2', `Call-ID: stray-${callId}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0',
  ]);
  client.send(lbPort, 'this is not SIP at all\r\n\r\n');
  await eventually('64 answers 483', 5_000, () => client.responses(mfCallId, 483).length === 64);
  await eventually('the drops to be counted', 5_000, () => lb.stats.unparseable >= 1 && (lb.stats.dropped.get('stray-response') ?? 0) >= 1 && (lb.stats.dropped.get('ack-483') ?? 0) >= 1);

  // HTTP with no node offering HTTP: siplb answers 503 itself.
  const res = await fetch(`http://127.0.0.1:${httpPort}/app`);
  assert.equal(res.status, 503);
  await res.arrayBuffer();

  const firstText = await metrics.render();
  const first = parseExposition(firstText);
  assert.ok(!firstText.includes(callId) && !firstText.includes('caller'), 'no Call-ID or user in labels');

  // SIP traffic by transport and method / status class; forwarded; local replies; drops.
  assert.equal(first.types.get('siplb_sip_requests_received_total'), 'counter');
  assert.equal(value(first, 'siplb_sip_requests_received_total', { transport: 'udp', method: 'INVITE' }), 1);
  assert.equal(value(first, 'siplb_sip_requests_received_total', { transport: 'udp', method: 'ACK' }), 2);
  assert.equal(value(first, 'siplb_sip_requests_received_total', { transport: 'udp', method: 'OPTIONS' }), 64);
  assert.equal(value(first, 'siplb_sip_responses_received_total', { transport: 'udp', status_class: '1xx' }), 1);
  assert.ok((value(first, 'siplb_sip_responses_received_total', { transport: 'udp', status_class: '2xx' }) ?? 0) >= 2, 'the 200 and the stray 200');
  assert.equal(value(first, 'siplb_sip_responses_received_total', { transport: 'tcp', status_class: '5xx' }), 0);
  assert.equal(value(first, 'siplb_sip_requests_forwarded_total'), 2, 'INVITE and ACK');
  assert.ok((value(first, 'siplb_sip_responses_forwarded_total') ?? 0) >= 1);
  assert.equal(value(first, 'siplb_sip_local_replies_total', { status: '483' }), 64);
  assert.equal(value(first, 'siplb_sip_local_replies_total', { status: '100' }), 1, 'siplb\'s 100 Trying');
  assert.equal(value(first, 'siplb_sip_dropped_messages_total', { reason: 'unparseable' }), 1);
  assert.equal(value(first, 'siplb_sip_dropped_messages_total', { reason: 'stray-response' }), 1);
  assert.equal(value(first, 'siplb_sip_dropped_messages_total', { reason: 'ack-483' }), 1);
  assert.equal(value(first, 'siplb_sip_dropped_messages_total', { reason: 'trying-absorbed' }), 1, 'the node\'s 100 (siplb sent its own)');
  assert.equal(first.types.get('siplb_sip_handling_seconds'), 'histogram');
  assert.ok((value(first, 'siplb_sip_handling_seconds_count') ?? 0) >= 1, 'one message in 64 timed');
  assert.equal(value(first, 'siplb_sip_handling_seconds_bucket', { le: '+Inf' }), value(first, 'siplb_sip_handling_seconds_count'));

  // Nodes: state, calls held, take-outs, probes.
  assert.equal(first.types.get('siplb_node_state'), 'gauge');
  assert.equal(value(first, 'siplb_node_state', { node: idA, state: 'active' }), 1);
  assert.equal(value(first, 'siplb_node_state', { node: idA, state: 'down' }), 0);
  assert.equal(value(first, 'siplb_node_state', { node: idB, state: 'down' }), 1);
  assert.equal(value(first, 'siplb_nodes', { state: 'active' }), 1);
  assert.equal(value(first, 'siplb_nodes', { state: 'down' }), 1);
  assert.equal(value(first, 'siplb_node_info', { node: idA, source: 'static', version: '0' }), 1);
  assert.equal(value(first, 'siplb_node_active_calls', { node: idA, counted_by: 'this' }), 1);
  assert.equal(value(first, 'siplb_node_active_calls', { node: idA, counted_by: 'others' }), 0);
  assert.equal(value(first, 'siplb_node_active_calls', { node: idB, counted_by: 'this' }), 0);
  assert.equal(value(first, 'siplb_calls_tracked'), 1);
  assert.equal(value(first, 'siplb_calls_started_total'), 1);
  assert.equal(value(first, 'siplb_node_takeouts_total', { node: idB, cause: 'health_check' }), 1);
  assert.equal(value(first, 'siplb_node_state_transitions_total', { node: idB, state: 'down' }), 1);
  assert.equal(value(first, 'siplb_node_takeouts_total', { node: idA, cause: 'health_check' }), undefined);
  assert.ok((value(first, 'siplb_health_check_probes_total') ?? 0) >= 2);
  // Per node: probe results (the dead node's probes failed), messages each way (INVITE, ACK out; 200 in).
  assert.ok((value(first, 'siplb_health_check_results_total', { node: idB, result: 'failed' }) ?? 0) >= 1);
  assert.equal(value(first, 'siplb_health_check_results_total', { node: idB, result: 'ok' }), 0);
  assert.ok((value(first, 'siplb_node_sip_messages_sent_total', { node: idA }) ?? 0) >= 2);
  assert.ok((value(first, 'siplb_node_sip_messages_received_total', { node: idA }) ?? 0) >= 1);
  assert.equal(value(first, 'siplb_node_sip_messages_sent_total', { node: idB }), 0);

  // Store, transports, HTTP, the balancer, the process.
  assert.equal(value(first, 'siplb_store_available', { kind: 'memory' }), 1);
  assert.equal(value(first, 'siplb_store_outages_total'), 0);
  assert.equal(value(first, 'siplb_transport_connections', { transport: 'tcp', side: 'external' }), 0);
  assert.equal(value(first, 'siplb_http_local_replies_total', { reason: 'unavailable' }), 1);
  assert.equal(value(first, 'siplb_http_retries_total'), 0);
  // Response heads per node: the balancer hands each one to the histogram (test/http/balancer.test.ts
  // times a real one); here two are handed over directly and read back by bucket.
  assert.equal(first.types.get('siplb_http_response_head_seconds'), 'histogram');
  assert.ok(lb.http !== null && lb.http.stats.observeResponse !== null, 'the metrics observe HTTP response heads');
  lb.http.stats.observeResponse(idA, 0.003);
  lb.http.stats.observeResponse(idA, 0.2);
  const heads = parseExposition(await metrics.render());
  assert.equal(value(heads, 'siplb_http_response_head_seconds_count', { node: idA }), 2);
  assert.equal(value(heads, 'siplb_http_response_head_seconds_bucket', { node: idA, le: '0.005' }), 1);
  assert.equal(value(heads, 'siplb_http_response_head_seconds_bucket', { node: idA, le: '0.25' }), 2);
  assert.equal(value(first, 'siplb_build_info', { version: '9.8.7-test' }), 1);
  assert.equal(value(first, 'siplb_stopping'), 0);
  assert.equal(first.types.get('siplb_process_cpu_seconds_total'), 'counter');
  assert.ok((value(first, 'siplb_process_resident_memory_bytes') ?? 0) > 0);
  assert.ok(first.types.has('siplb_nodejs_eventloop_lag_p99_seconds'));
  // Node's delay monitor counts its own 100 ms resolution in, so uncorrected its minimum is never
  // below 0.1 s; siplb takes the resolution off. The reading covers a quiet second of its own (the
  // first scrape reset the histogram): the first one spans the balancer's start, whose warm-up
  // keeps the loop busy, and on a loaded machine every sample of it can be late.
  await delay(1_000);
  const quiet = parseExposition(await metrics.render());
  const lagMin = value(quiet, 'siplb_nodejs_eventloop_lag_min_seconds') ?? 1;
  assert.ok(lagMin < 0.1, `event-loop lag without the monitor resolution: min ${lagMin} s over a quiet second`);

  // Passive health takes the live node out for errors, and a good probe brings it back.
  lb.registry.setPassiveDown(idA, 'test errors', 'errors');
  const during = parseExposition(await metrics.render());
  assert.equal(value(during, 'siplb_node_state', { node: idA, state: 'draining' }), 1);
  assert.equal(value(during, 'siplb_node_takeouts_total', { node: idA, cause: 'errors' }), 1);
  await eventually('the live node back', 5_000, () => lb.registry.snapshot().stateOf(idA) === 'active');

  // More traffic, then the second scrape: no counter went back, and the new ones moved.
  client.send(lbPort, 'still not SIP\r\n\r\n');
  await eventually('the second datagram counted', 5_000, () => lb.stats.unparseable >= 2);
  const secondText = await metrics.render();
  const second = parseExposition(secondText);
  let compared = 0;
  for (const [key, before] of first.samples) {
    const family = familyOf(first, key);
    const type = family === undefined ? undefined : first.types.get(family);
    if (type !== 'counter' && type !== 'histogram') continue;
    const after = second.samples.get(key);
    assert.ok(after !== undefined, `${key} is still there`);
    assert.ok(after >= before, `${key} went from ${before} to ${after}`);
    compared++;
  }
  assert.ok(compared > 50, `compared ${compared} counter samples`);
  assert.equal(value(second, 'siplb_sip_dropped_messages_total', { reason: 'unparseable' }), 2);
  assert.equal(value(second, 'siplb_node_returns_total', { node: idA, cause: 'errors' }), 1);
  assert.equal(value(second, 'siplb_node_state_transitions_total', { node: idA, state: 'active' }), 1);

  // Every family has HELP and TYPE, counters end in _total, and promtool agrees.
  for (const [family, type] of second.types) {
    assert.ok(secondText.includes(`# HELP ${family} `), `HELP for ${family}`);
    if (type === 'counter') assert.match(family, /_total$/, `counter ${family}`);
  }
  for (const text of [firstText, secondText]) {
    const r = await checkMetrics(text);
    assert.equal(r.code, 0, `promtool check metrics:\n${r.out}`);
    assert.equal(r.out.trim(), '', `promtool check metrics found problems:\n${r.out}`);
  }

  // close() stops feeding the histogram. A second Metrics of the same process (the admin
  // surface restarted) shares the process metrics and renders the same counters.
  metrics.close();
  assert.equal(lb.stats.observeHandling, null);
  const again = new Metrics(target);
  const third = parseExposition(await again.render());
  assert.equal(value(third, 'siplb_sip_local_replies_total', { status: '483' }), 64);
  assert.ok((value(third, 'siplb_process_resident_memory_bytes') ?? 0) > 0);
  assert.notEqual(lb.stats.observeHandling, null);
  metrics.close();
  assert.notEqual(lb.stats.observeHandling, null, 'closing the old one leaves the new one\'s hook');
  again.close();
  assert.equal(lb.stats.observeHandling, null);
});

test('metrics: a Redis store exposes its servers and state (up, then down when Redis stops), promtool accepts them', { timeout: 60_000 }, async (t) => {
  promtool();
  const redis = await startRedis();
  t.after(() => redis.stop());
  const ports = await allocatePorts(2);
  t.after(() => releasePorts(ports));
  const { config } = loadConfigText([
    'host=127.0.0.1', `externalPort=${ports[0]}`, `heartbeatPort=${ports[1]}`, 'stateStore=redis', `redisUrl=${redis.url}`,
    'redisKeyPrefix=metrics-test:',
  ].join('\n'));
  const { lb, metrics } = await balancerWithMetrics(t, config);
  const up = parseExposition(await metrics.render());
  assert.equal(value(up, 'siplb_store_available', { kind: 'redis' }), 1);
  assert.equal(value(up, 'siplb_store_servers'), 1);
  assert.equal(value(up, 'siplb_store_servers_up'), 1);
  assert.equal(value(up, 'siplb_store_state', { state: 'up' }), 1);
  assert.equal(value(up, 'siplb_store_state', { state: 'down' }), 0);
  assert.equal(value(up, 'siplb_store_server_outages_total'), 0);
  const checked = await checkMetrics(await metrics.render());
  assert.equal(checked.code, 0, checked.out);
  // A stopped (SIGSTOP) Redis keeps its sockets: only the health check finds it silent.
  redis.pause();
  t.after(() => redis.resume());
  await eventually('the store to be down', 10_000, () => lb.store.health?.state === 'down');
  const down = parseExposition(await metrics.render());
  assert.equal(value(down, 'siplb_store_available', { kind: 'redis' }), 0);
  assert.equal(value(down, 'siplb_store_servers_up'), 0);
  assert.equal(value(down, 'siplb_store_state', { state: 'down' }), 1);
  assert.equal(value(down, 'siplb_store_outages_total'), 1);
});
