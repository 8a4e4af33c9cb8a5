// RedisStateStore on a real 3-master Redis Cluster (no replicas) when one master goes away:
// SIGKILLed, started before the store, paused. With cluster-require-full-coverage no, the keys of
// the two other masters must stay usable (reads, writes, the node directory and call board when
// their key is there), the dead master's keys must behave as an outage (fetch settles at once,
// writes are remembered) and be written back when it returns; with Redis's default (full coverage
// required) the store must say it is down and tell the operator why. Measured figures are printed.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { capturingLogger } from '../../helpers/log.ts';
import { pino, type Logger } from 'pino';
import { createClient } from 'redis';
import { keySlot } from '../../../src/state/redis/cluster-backend.ts';
import { RedisStateStore } from '../../../src/state/redis/store.ts';
import type { AssignmentMap, SharedNodeRecord } from '../../../src/state/store.ts';
import { eventually } from '../../helpers/wait.ts';
import { startRedisCluster, type RedisClusterServers } from '../../helpers/redis.ts';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

const WARN = 40;
const INFO = 30;
const READ_TIMEOUT_MS = 100;
const TIMES = { idleMs: 120_000, lingerMs: 5000 };
const KEYS = 300;

const silent = pino({ level: 'silent' });
let prefixes = 0;
const uniquePrefix = (): string => `cluster-outage${process.pid}-${++prefixes}:`;

/** Fails the test on any unhandled rejection while it runs (node would only warn in some setups). */
function noUnhandledRejections(t: TestContext): () => unknown[] {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => void seen.push(reason);
  process.on('unhandledRejection', onRejection);
  t.after(() => process.off('unhandledRejection', onRejection));
  return () => seen;
}

async function cluster(t: TestContext, requireFullCoverage: boolean): Promise<RedisClusterServers> {
  const c = await startRedisCluster(3, { requireFullCoverage, nodeTimeoutMs: 1000 });
  t.after(() => c.stop());
  return c;
}

function store(t: TestContext, c: RedisClusterServers, keyPrefix: string, log: Logger = silent): RedisStateStore {
  const s = new RedisStateStore({ url: 'redis://', cluster: c.seeds, keyPrefix, readTimeoutMs: READ_TIMEOUT_MS, log });
  t.after(() => s.close());
  return s;
}

/** What the test uses of a plain node-redis client. */
interface Raw {
  readonly isReady: boolean;
  get(key: string): Promise<string | null>;
  pTTL(key: string): Promise<number>;
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): void;
}

/**
 * One plain connection per master, bypassing siplb and node-redis's cluster client, and the
 * port each slot lives on (CLUSTER SLOTS): what a key's master really holds.
 */
async function rawMasters(t: TestContext, c: RedisClusterServers): Promise<{ raw: Map<number, Raw>; portOfSlot: number[] }> {
  const raw = new Map<number, Raw>();
  for (const m of c.masters) {
    const client = createClient({ socket: { host: '127.0.0.1', port: m.port, reconnectStrategy: 100 }, disableOfflineQueue: true });
    client.on('error', () => undefined);
    await client.connect();
    t.after(() => client.destroy());
    raw.set(m.port, client);
  }
  const slots = (await raw.get(c.masters[0].port)!.sendCommand(['CLUSTER', 'SLOTS'])) as [number, number, [string, number, ...unknown[]]][];
  const portOfSlot = new Array<number>(16384);
  for (const [from, to, [, port]] of slots) for (let i = from; i <= to; i++) portOfSlot[i] = Number(port);
  return { raw, portOfSlot };
}

/** The plain connection to the master on `port`, once (re)connected: a restarted master takes a moment. */
async function rawClient(raw: Map<number, Raw>, port: number): Promise<Raw> {
  const client = raw.get(port)!;
  await eventually(`raw connection to ${port}`, 5000, () => client.isReady);
  return client;
}

/** GET on the master that holds the key; undefined when it does not answer. */
async function rawGet(raw: Map<number, Raw>, port: number, key: string): Promise<string | null | undefined> {
  const client = raw.get(port)!;
  if (!client.isReady) return undefined;
  try {
    return await client.get(key);
  } catch {
    return undefined;
  }
}

/** Call-IDs as they come: host parts, braces (a hash tag for Redis), non-ASCII. */
function callId(i: number): string {
  if (i % 50 === 7) return `{tag${i}}a84b4c76e66710@pc33.example.com`;
  if (i % 50 === 9) return `çàll-${i}-ñ@例え.jp`;
  return `${i}-a84b4c76e66710@10.0.0.${i % 250}`;
}

/** Milliseconds a fetch() took to settle, and its answer. */
async function timedFetch(m: AssignmentMap, key: string): Promise<{ ms: number; value: string | undefined | null }> {
  const began = performance.now();
  const p = m.fetch(key);
  const value = p === null ? null : await p;
  return { ms: performance.now() - began, value };
}

const record = (id: string): SharedNodeRecord => ({
  id,
  registration: { ip: '10.0.0.1', ports: { udp: 5060 }, sessionId: 's1', version: '1' },
  draining: false,
  heardAt: Date.now(),
  by: 'b1',
});

test('keySlot() agrees with CLUSTER KEYSLOT (hash tags, non-ASCII, empty tags)', async (t) => {
  const c = await cluster(t, false);
  const { raw } = await rawMasters(t, c);
  const client = raw.get(c.masters[0].port)!;
  const keys = ['', 'a', '{}', '{}x', 'x{}y{z}', '{a}{b}', 'a{b', 'a}b{c}', '{user1000}.following', 'siplb:a:callid:abc@host'];
  for (let i = 0; i < 200; i++) keys.push(`siplb:a:callid:${callId(i)}`);
  for (const key of keys) {
    assert.equal(keySlot(key), Number(await client.sendCommand(['CLUSTER', 'KEYSLOT', key])), `slot of ${JSON.stringify(key)}`);
  }
});

test('one master of three SIGKILLed (full coverage not required): its keys fail fast and are written back when it returns, the others stay shared', async (t) => {
  const unhandled = noUnhandledRejections(t);
  const c = await cluster(t, false);
  const { raw, portOfSlot } = await rawMasters(t, c);
  const { log, lines } = capturingLogger<LogLine>();
  const prefix = uniquePrefix();
  const a = store(t, c, prefix, log);
  const b = store(t, c, prefix);
  await a.start();
  await b.start();
  assert.equal(a.available, true);
  assert.deepEqual(a.health, { state: 'up', serversUp: 3, servers: 3, serverOutages: 0 });
  let returns = 0;
  a.onAvailable(() => returns++);
  const ma = a.assignments('callid', TIMES);
  const mb = b.assignments('callid', TIMES);
  const redisKey = (k: string): string => `${prefix}a:callid:${k}`;
  const portOf = (k: string): number => portOfSlot[keySlot(redisKey(k))];

  const before = Array.from({ length: KEYS }, (_, i) => callId(i));
  for (const [i, k] of before.entries()) ma.set(k, `node-${i % 5}`);
  await eventually('every write landed', 3000, async () => {
    for (const [i, k] of before.entries()) if ((await rawGet(raw, portOf(k), redisKey(k))) !== `node-${i % 5}`) return false;
    return true;
  });
  const victim = c.masters[1];
  const onVictim = (k: string): boolean => portOf(k) === victim.port;
  const lostKeys = before.filter(onVictim);
  const keptKeys = before.filter((k) => !onVictim(k));
  assert.ok(lostKeys.length > 50 && keptKeys.length > 150, `keys spread over the masters (${lostKeys.length} on the victim)`);

  await victim.kill();
  await eventually('degraded after the master died', 2000, () => a.health?.state === 'degraded' && b.health?.state === 'degraded');
  assert.equal(a.available, true, 'available: two masters of three still serve');
  assert.deepEqual(a.health, { state: 'degraded', serversUp: 2, servers: 3, serverOutages: 1 });
  assert.equal(a.outages, 0, 'not an outage of the store');
  const masterWarnings = lines.filter((l) => l.level === WARN);
  assert.equal(masterWarnings.length, 1, `one warning: ${JSON.stringify(masterWarnings)}`);
  assert.match(masterWarnings[0].msg, /redis cluster master unavailable/);
  assert.equal(masterWarnings[0].master, `127.0.0.1:${victim.port}`);

  // B never saw these keys: every answer comes from Redis (or from nowhere).
  let found = 0;
  let keptMaxMs = 0;
  for (const [i, k] of before.entries()) {
    if (onVictim(k)) continue;
    const { ms, value } = await timedFetch(mb, k);
    keptMaxMs = Math.max(keptMaxMs, ms);
    if (value === `node-${i % 5}`) found++;
  }
  assert.equal(found, keptKeys.length, 'every key of the surviving masters is still shared');
  let lostMaxMs = 0;
  for (const k of lostKeys) {
    const { ms, value } = await timedFetch(mb, k);
    lostMaxMs = Math.max(lostMaxMs, ms);
    assert.equal(value, undefined, `${k}: its master is down, the caller places it itself`);
  }
  assert.ok(lostMaxMs < READ_TIMEOUT_MS, `fetch() on the dead master's slots settles at once (max ${lostMaxMs.toFixed(1)} ms)`);
  console.log(`fetch() with one master down: ${keptKeys.length}/${keptKeys.length} surviving keys found (max ${keptMaxMs.toFixed(1)} ms); ${lostKeys.length} keys on the dead master answered undefined in at most ${lostMaxMs.toFixed(2)} ms (read timeout ${READ_TIMEOUT_MS} ms)`);

  // New assignments: those of the surviving masters land now, the others wait for reconciliation.
  const during = Array.from({ length: KEYS }, (_, i) => `during-${callId(i)}`);
  for (const k of during) ma.set(k, 'node-new');
  const duringLost = during.filter(onVictim);
  await eventually('the writes for surviving masters landed', 3000, async () => {
    for (const k of during) if (!onVictim(k) && (await rawGet(raw, portOf(k), redisKey(k))) !== 'node-new') return false;
    return true;
  });
  assert.equal(a.pendingWrites, duringLost.length, 'exactly the writes for the dead master wait for reconciliation');
  // An ended call on the dead master: its linger is written back too.
  ma.end(lostKeys[0]);
  await eventually('the ended call waits too', 1000, () => a.pendingWrites === duringLost.length + 1);

  // The directory and the call board live on whichever master their key hashes to.
  const nodesUsable = portOfSlot[keySlot(`${prefix}nodes`)] !== victim.port;
  a.nodes.publish(record('n1'));
  const listed = await a.nodes.list();
  if (nodesUsable) {
    await eventually('the node record is listed', 1000, async () => ((await a.nodes.list()) ?? []).some((r) => r.id === 'n1'));
  } else {
    assert.equal(listed, null, 'the directory\'s master is down: unknown, not empty');
  }
  const callsUsable = portOfSlot[keySlot(`${prefix}calls`)] !== victim.port;
  a.calls.publish('b-a', new Map([['n1', 3]]));
  if (callsUsable) {
    await eventually('the counts are shared', 1000, async () => (await b.calls.others('b-b'))?.get('n1') === 3);
  } else {
    assert.equal(await b.calls.others('b-b'), null);
  }
  assert.equal(a.health?.state, 'degraded', 'a failed background read is not an outage of the store');
  assert.equal(a.outages, 0);

  const restarted = performance.now();
  await victim.restart();
  await eventually('the missed writes reconciled', 10_000, () => a.pendingWrites === 0 && a.health?.state === 'up');
  const restartedMaster = await rawClient(raw, victim.port);
  for (const k of duringLost) assert.equal(await restartedMaster.get(redisKey(k)), 'node-new', `${k} written back on the restarted master`);
  const ttl = Number(await restartedMaster.pTTL(redisKey(lostKeys[0])));
  assert.ok(ttl > 0 && ttl <= TIMES.lingerMs, `the ended call lingers (${ttl} ms left)`);
  const reconciledMs = performance.now() - restarted;
  console.log(`master restarted: store up and ${duringLost.length + 1} missed writes reconciled ${reconciledMs.toFixed(0)} ms after restart() began`);
  assert.deepEqual(a.health, { state: 'up', serversUp: 3, servers: 3, serverOutages: 1 });
  assert.equal(a.available, true);
  assert.equal(a.outages, 0);
  assert.ok(returns >= 1, 'onAvailable told of the master\'s return');
  const back = lines.filter((l) => l.level === INFO && /redis cluster master available again/.test(l.msg));
  assert.equal(back.length, 1, JSON.stringify(back));
  assert.equal(back[0].master, `127.0.0.1:${victim.port}`);
  assert.equal(lines.filter((l) => l.level === WARN).length, 1, 'no other warning');
  // B reads the restarted master's keys again once it has taken it back (its own reconnect and probe).
  await eventually('B takes the master back', 5000, () => b.health?.state === 'up');
  assert.equal(await mb.fetch(duringLost[0]), 'node-new');
  assert.deepEqual(unhandled(), []);
});

test('a store started while one master is down works on the other two, and takes the master in when it comes', async (t) => {
  const unhandled = noUnhandledRejections(t);
  const c = await cluster(t, false);
  const { raw, portOfSlot } = await rawMasters(t, c);
  const victim = c.masters[2];
  await victim.kill();
  const { log, lines } = capturingLogger<LogLine>();
  const prefix = uniquePrefix();
  const s = store(t, c, prefix, log);
  const began = performance.now();
  await s.start();
  const startMs = performance.now() - began;
  console.log(`start() with one master of three down: ${startMs.toFixed(0)} ms, health ${JSON.stringify(s.health)}`);
  assert.equal(s.available, true);
  assert.equal(s.health?.state, 'degraded');
  assert.equal(s.health?.serversUp, 2);
  assert.equal(s.outages, 0);
  const connectedWarn = lines.filter((l) => l.level === WARN && /connected without every master/.test(l.msg));
  assert.equal(connectedWarn.length, 1, JSON.stringify(lines));
  assert.deepEqual(connectedWarn[0].down, [`127.0.0.1:${victim.port}`]);

  const m = s.assignments('callid', TIMES);
  const redisKey = (k: string): string => `${prefix}a:callid:${k}`;
  const portOf = (k: string): number => portOfSlot[keySlot(redisKey(k))];
  const keys = Array.from({ length: 100 }, (_, i) => callId(i));
  for (const k of keys) m.set(k, 'node-1');
  const lost = keys.filter((k) => portOf(k) === victim.port);
  await eventually('the writes for the masters up landed', 3000, async () => {
    for (const k of keys) if (portOf(k) !== victim.port && (await rawGet(raw, portOf(k), redisKey(k))) !== 'node-1') return false;
    return true;
  });
  assert.equal(s.pendingWrites, lost.length);
  const kept = keys.find((k) => portOf(k) !== victim.port)!;
  const other = store(t, c, prefix);
  await other.start();
  assert.equal(await other.assignments('callid', TIMES).fetch(kept), 'node-1', 'shared with a balancer that started the same way');

  await victim.restart();
  await eventually('up once the master answers', 10_000, () => s.health?.state === 'up' && s.pendingWrites === 0);
  const back = await rawClient(raw, victim.port);
  for (const k of lost) assert.equal(await back.get(redisKey(k)), 'node-1');
  assert.ok(lines.some((l) => l.level === INFO && /redis cluster master available again/.test(l.msg)));
  assert.deepEqual(unhandled(), []);
});

test('a paused master (no socket error) is found out by its probe alone; the store stays available and catches up when it answers', async (t) => {
  const unhandled = noUnhandledRejections(t);
  const c = await cluster(t, false);
  const { raw, portOfSlot } = await rawMasters(t, c);
  const { log, lines } = capturingLogger<LogLine>();
  const prefix = uniquePrefix();
  const s = store(t, c, prefix, log);
  const reader = store(t, c, prefix);
  await s.start();
  await reader.start();
  const m = s.assignments('callid', TIMES);
  const rm = reader.assignments('callid', TIMES);
  const redisKey = (k: string): string => `${prefix}a:callid:${k}`;
  const portOf = (k: string): number => portOfSlot[keySlot(redisKey(k))];
  const victim = c.masters[0];
  const keys = Array.from({ length: 100 }, (_, i) => callId(i));
  const lost = keys.filter((k) => portOf(k) === victim.port);
  const kept = keys.filter((k) => portOf(k) !== victim.port);
  victim.pause();
  try {
    const paused = performance.now();
    await eventually('the paused master is found out', 5000, () => s.health?.state === 'degraded' && reader.health?.state === 'degraded');
    console.log(`paused master found out after ${(performance.now() - paused).toFixed(0)} ms (probe every 1000 ms, silence limit ${Math.max(1000, 10 * READ_TIMEOUT_MS)} ms)`);
    assert.equal(s.available, true);
    assert.equal(s.outages, 0);
    for (const k of keys) m.set(k, 'node-2');
    // Refused by the gate, not queued on the paused master's connection.
    await eventually('the writes for the paused master wait for reconciliation', 1000, () => s.pendingWrites === lost.length);
    let maxMs = 0;
    for (const k of lost) {
      const { ms, value } = await timedFetch(rm, k);
      maxMs = Math.max(maxMs, ms);
      assert.equal(value, undefined);
    }
    assert.ok(maxMs < READ_TIMEOUT_MS, `reads for a master known silent do not wait on it (max ${maxMs.toFixed(1)} ms)`);
    console.log(`fetch() on a paused master's slots once it is found out: at most ${maxMs.toFixed(2)} ms`);
    for (const k of kept) assert.equal(await rm.fetch(k), 'node-2', `${k}: the other masters are shared as usual`);
  } finally {
    victim.resume();
  }
  await eventually('up again once the master answers', 10_000, () => s.health?.state === 'up' && s.pendingWrites === 0);
  const resumed = await rawClient(raw, victim.port);
  for (const k of lost) assert.equal(await resumed.get(redisKey(k)), 'node-2');
  assert.equal(lines.filter((l) => l.level === WARN).length, 1, JSON.stringify(lines.filter((l) => l.level === WARN)));
  assert.equal(s.outages, 0);
  assert.deepEqual(unhandled(), []);
});

test('a store started while a master is paused (it accepts connections, never answers) comes up on the other two', async (t) => {
  const unhandled = noUnhandledRejections(t);
  const c = await cluster(t, false);
  const victim = c.masters[1];
  victim.pause();
  t.after(() => victim.resume());
  const s = store(t, c, uniquePrefix());
  const began = performance.now();
  await s.start();
  const startMs = performance.now() - began;
  await eventually('degraded: working on the two masters that answer', 20_000, () => s.health?.state === 'degraded');
  console.log(`start() with a paused master settled in ${startMs.toFixed(0)} ms; degraded (usable) after ${(performance.now() - began).toFixed(0)} ms`);
  assert.ok(startMs < 3500, `start() stays bounded (${startMs.toFixed(0)} ms)`);
  victim.resume();
  await eventually('up once it answers', 15_000, () => s.health?.state === 'up');
  assert.deepEqual(unhandled(), []);
});

test('full coverage required (Redis\'s default): a warning at start, and one master down takes the store down with the reason', async (t) => {
  const unhandled = noUnhandledRejections(t);
  const c = await cluster(t, true);
  const { log, lines } = capturingLogger<LogLine>();
  const s = store(t, c, uniquePrefix(), log);
  await s.start();
  assert.equal(s.health?.state, 'up');
  await eventually('the start-up warning', 2000, () => lines.some((l) => l.level === WARN && /cluster-require-full-coverage yes/.test(l.msg)));
  const victim = c.masters[1];
  await victim.kill();
  const killed = performance.now();
  // The other masters go on until the cluster marks the dead one failed (cluster-node-timeout).
  await eventually('down once the other masters refuse every key', 8000, () => s.health?.state === 'down');
  console.log(`full coverage required: store down ${(performance.now() - killed).toFixed(0)} ms after the kill (cluster-node-timeout 1000 ms)`);
  assert.equal(s.available, false);
  assert.equal(s.outages, 1);
  assert.equal(s.assignments('callid', TIMES).fetch('x'), null, 'unavailable: fetch decides at once');
  await eventually('the reason, once', 3000, () => lines.some((l) => l.level === WARN && /set cluster-require-full-coverage no/.test(l.msg)));
  await victim.restart();
  await eventually('up when the master is back', 10_000, () => s.health?.state === 'up');
  assert.ok(lines.some((l) => l.level === INFO && /available again/.test(l.msg)));
  assert.equal(lines.filter((l) => /set cluster-require-full-coverage no for partial/.test(l.msg)).length, 1);
  assert.deepEqual(unhandled(), []);
});
