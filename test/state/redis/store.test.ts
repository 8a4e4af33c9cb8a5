// RedisStateStore under outages, against a real redis-server: the server stopped and started
// again (fresh and empty) on the same port, absent at start, and paused (SIGSTOP). The store must
// never throw or hang, report the outage once, fail fast while it lasts and write back what it
// missed. Every wait is bounded; a paused server is always resumed.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { capturingLogger } from '../../helpers/log.ts';
import { pino, type Logger } from 'pino';
import { RedisStateStore } from '../../../src/state/redis/store.ts';
import type { SharedNodeRecord } from '../../../src/state/store.ts';
import { eventually, sleep } from '../../helpers/wait.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';


interface LogLine {
  level: number;
  msg: string;
}

const WARN = 40;
const INFO = 30;

const silent = pino({ level: 'silent' });
let prefixes = 0;
const uniquePrefix = (): string => `outage${process.pid}-${++prefixes}:`;

async function server(t: TestContext): Promise<RedisServer> {
  const s = await startRedis();
  t.after(() => s.stop());
  return s;
}

function store(t: TestContext, url: string, keyPrefix: string, log: Logger = silent, readTimeoutMs = 200): RedisStateStore {
  const s = new RedisStateStore({ url, cluster: [], keyPrefix, readTimeoutMs, log });
  t.after(() => s.close());
  return s;
}

/**
 * Counts the TCP connections this process opens to `port` that are refused: with the server
 * stopped, those are the store's reconnect attempts (node's 'net.client.socket' channel announces
 * every client socket; the listener added here only observes).
 */
function refusedConnections(t: TestContext, port: number): () => number {
  let refused = 0;
  const onSocket = (message: unknown): void => {
    (message as { socket: Socket }).socket.on('error', (err: NodeJS.ErrnoException & { port?: number }) => {
      if (err.code === 'ECONNREFUSED' && err.port === port) refused++;
    });
  };
  diagnosticsChannel.subscribe('net.client.socket', onSocket);
  t.after(() => diagnosticsChannel.unsubscribe('net.client.socket', onSocket));
  return () => refused;
}

/**
 * Settles `p` and says whether it settled before a timer due `ms` after this call. Timers fire in
 * the order they are due and the promise reactions of one run before the next timer's callback,
 * so a promise settled by a timer due sooner (a read timeout, a start limit) always wins, however
 * late a loaded machine runs both: the check is about order, not about wall-clock time.
 */
async function settlesBefore<T>(p: Promise<T>, ms: number): Promise<{ value: T } | null> {
  const late = sleep(ms).then(() => null);
  return Promise.race([p.then((value) => ({ value })), late]);
}

/** What a second balancer finds in Redis for `key`. */
async function sharedValue(t: TestContext, url: string, prefix: string, key: string): Promise<string | undefined> {
  const reader = store(t, url, prefix);
  await reader.start();
  const answer = reader.assignments('callid', { idleMs: 10_000, lingerMs: 5000 }).fetch(key);
  assert.ok(answer !== null, 'the reader is connected');
  const value = await answer;
  await reader.close();
  return value;
}

const record: SharedNodeRecord = {
  id: 'n1',
  registration: { ip: '10.0.0.1', ports: { udp: 5060 }, sessionId: 's1', version: '1' },
  draining: false,
  heardAt: 0,
  by: 'b1',
};

test('server stopped: one warning, fail fast, no throw; started again: back once, missed writes reconciled', async (t) => {
  const redis = await server(t);
  const { log, lines } = capturingLogger<LogLine>();
  const prefix = uniquePrefix();
  const s = store(t, redis.url, prefix, log);
  const reconnectsRefused = refusedConnections(t, redis.port);
  await s.start();
  assert.equal(s.available, true);
  assert.equal(s.outages, 0);
  let returns = 0;
  s.onAvailable(() => returns++);
  const m = s.assignments('callid', { idleMs: 10_000, lingerMs: 5000 });
  m.set('ended-during-outage', 'node-0');

  await redis.stop();
  await eventually('unavailable after the server stopped', 1000, () => !s.available);
  assert.equal(s.outages, 1);

  m.set('set-during-outage-1', 'node-1');
  m.set('set-during-outage-2', 'node-2');
  m.end('ended-during-outage');
  assert.equal(m.get('set-during-outage-1'), 'node-1', 'the local tier keeps answering');
  s.nodes.publish(record);
  s.nodes.remove('n1');
  s.calls.publish('b1', new Map([['n1', 1]]));
  assert.equal(m.fetch('anything'), null, 'fetch decides at once while unavailable');
  assert.equal(await s.nodes.list(), null);
  assert.equal(await s.calls.others('b1'), null);
  assert.ok(s.failedWrites >= 6, `failed writes counted (${s.failedWrites})`);
  assert.equal(s.pendingWrites, 3, 'the three assignment writes wait for reconciliation');

  await eventually('two reconnect attempts refused', 5000, () => reconnectsRefused() >= 2);
  const warnings = lines.filter((l) => l.level === WARN);
  assert.equal(warnings.length, 1, `one warning per outage, got: ${JSON.stringify(warnings)}`);
  assert.equal(s.outages, 1);
  assert.equal(returns, 0);

  await redis.restart();
  await eventually('available again after the server came back', 3000, () => s.available);
  assert.equal(returns, 1, 'onAvailable called once');
  assert.equal(s.outages, 1);
  assert.ok(lines.some((l) => l.level === INFO && /available again/.test(l.msg)), 'one info line when back');
  await eventually('reconciled', 2000, () => s.pendingWrites === 0);

  // The restarted server was empty: what it holds now was written back from the local table.
  assert.equal(await sharedValue(t, redis.url, prefix, 'set-during-outage-1'), 'node-1');
  assert.equal(await sharedValue(t, redis.url, prefix, 'set-during-outage-2'), 'node-2');
  assert.equal(await sharedValue(t, redis.url, prefix, 'ended-during-outage'), 'node-0', 'an ended call lingers');
  const answer = m.fetch('unknown');
  assert.ok(answer !== null);
  assert.equal(await answer, undefined);
  assert.equal(lines.filter((l) => l.level === WARN).length, 1);
});

test('start() with nothing listening resolves unavailable; the store connects when the server appears', async (t) => {
  const redis = await server(t);
  await redis.stop();
  const { log, lines } = capturingLogger<LogLine>();
  const prefix = uniquePrefix();
  const s = store(t, redis.url, prefix, log);
  let returns = 0;
  s.onAvailable(() => returns++);
  const began = Date.now();
  // start() is bounded by its own limit (connect timeout 2000 ms + 500): it must settle before a
  // timer due later than that, and, the port refusing, it normally does at once.
  assert.ok(await settlesBefore(s.start(), 3000), 'start() settled before a timer due at 3000 ms');
  console.log(`start() with nothing listening settled in ${Date.now() - began} ms`);
  assert.equal(s.available, false);
  assert.equal(s.outages, 1);
  assert.equal(lines.filter((l) => l.level === WARN).length, 1);
  const m = s.assignments('callid', { idleMs: 10_000, lingerMs: 5000 });
  m.set('early', 'node-1');
  assert.equal(m.fetch('early-elsewhere'), null);
  assert.equal(await s.sharedSecret('candidate'), 'candidate', 'unavailable: the caller keeps its own secret');

  await redis.restart();
  await eventually('connected once the server is there', 3000, () => s.available);
  assert.equal(returns, 1, 'written state is reconciled after an outage at start, too');
  await eventually('reconciled', 2000, () => s.pendingWrites === 0);
  assert.equal(await sharedValue(t, redis.url, prefix, 'early'), 'node-1');
});

test('fetch() resolves undefined within readTimeoutMs when the server does not answer', async (t) => {
  const redis = await server(t);
  const prefix = uniquePrefix();
  const writer = store(t, redis.url, prefix);
  const reader = store(t, redis.url, prefix, silent, 150);
  await writer.start();
  await reader.start();
  writer.assignments('callid', { idleMs: 10_000, lingerMs: 5000 }).set('k', 'node-1');
  const m = reader.assignments('callid', { idleMs: 10_000, lingerMs: 5000 });
  await eventually('the write landed', 1000, async () => (await sharedValue(t, redis.url, prefix, 'k')) === 'node-1');

  redis.pause();
  try {
    const began = Date.now();
    const answer = m.fetch('k');
    assert.ok(answer !== null, 'still looks connected: the socket is open');
    // The read timeout is 150 ms: the fetch must settle before a timer due 100 ms after it.
    const settled = await settlesBefore(answer, 150 + 100);
    const took = Date.now() - began;
    assert.ok(settled !== null, `fetch() did not settle at its read timeout (still open after ${took} ms)`);
    assert.equal(settled.value, undefined);
    assert.ok(took >= 140, `settled after ${took} ms, before the read timeout`);
  } finally {
    redis.resume();
  }
  assert.equal(m.get('k'), undefined, 'a late answer is not cached');
  await eventually('answers again after resume', 2000, async () => (await m.fetch('k')) === 'node-1');
  assert.equal(m.get('k'), 'node-1');
});

test('a paused server is found out by the PING probe and marked available again when it answers', async (t) => {
  const redis = await server(t);
  const { log, lines } = capturingLogger<LogLine>();
  const prefix = uniquePrefix();
  const s = store(t, redis.url, prefix, log, 100);
  await s.start();
  let returns = 0;
  s.onAvailable(() => returns++);
  const m = s.assignments('callid', { idleMs: 10_000, lingerMs: 5000 });
  redis.pause();
  try {
    await eventually('unavailable while paused', 4000, () => !s.available);
    assert.equal(s.outages, 1);
    m.set('while-paused', 'node-1');
    assert.equal(m.fetch('x'), null);
  } finally {
    redis.resume();
  }
  await eventually('available after resume', 3000, () => s.available);
  assert.equal(returns, 1);
  assert.equal(lines.filter((l) => l.level === WARN).length, 1);
  await eventually('reconciled', 2000, () => s.pendingWrites === 0);
  assert.equal(await sharedValue(t, redis.url, prefix, 'while-paused'), 'node-1');
});
