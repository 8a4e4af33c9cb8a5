// The StateStore contract, one table of cases run against every implementation: the in-memory
// store, the Redis store on one server and the Redis store on a 3-master Redis Cluster. The Redis
// kinds also run the cases only a shared tier can pass (two balancers, key prefixes, shared TTLs).
// Expiry in the local tier runs on a mocked clock (node:test mock timers, Date); expiry in Redis
// (shared TTLs) is real time, with every wait bounded.

import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { HostPort } from '../../src/config/types.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import { RedisStateStore } from '../../src/state/redis/store.ts';
import type { AssignmentOptions, SharedNodeRecord, StateStore } from '../../src/state/store.ts';
import { execFile } from 'node:child_process';
import { allocatePort, releasePorts } from '../e2e/harness/ports.ts';
import { eventually, sleep } from '../helpers/wait.ts';
import { startRedis, startRedisCluster, type RedisClusterServers, type RedisServer } from '../helpers/redis.ts';

const IDLE_MS = 300;
const LINGER_MS = 150;
const TIMES: AssignmentOptions = { idleMs: IDLE_MS, lingerMs: LINGER_MS };
const NS = 'callid';


interface Kind {
  name: string;
  /** Balancers of one prefix share state (false: each store is a group of one). */
  shared: boolean;
  before?: () => Promise<void>;
  after?: () => Promise<void>;
  /** A started store; `prefix` selects the key space (unique per test unless shared on purpose). */
  open(prefix: string): Promise<StateStore>;
  /** A started store whose shared tier cannot be reached (shared kinds only). */
  openUnreachable?(): Promise<StateStore>;
  /** The ports of the servers behind the shared tier (shared kinds only). */
  ports?(): number[];
}

let prefixes = 0;
const uniquePrefix = (): string => `contract${process.pid}-${++prefixes}:`;

/** Opens stores that are closed when the test ends, passed or not. */
function opener(kind: Kind, t: TestContext): (prefix: string) => Promise<StateStore> {
  return async (prefix) => {
    const store = await kind.open(prefix);
    t.after(() => store.close());
    return store;
  };
}

function record(id: string, draining = false): SharedNodeRecord {
  return {
    id,
    registration: { ip: '10.0.0.1', ports: { udp: 5060, tcp: 5060 }, sessionId: `s-${id}`, version: '1.0' },
    draining,
    heardAt: 1_700_000_000_000,
    by: 'balancer-a',
  };
}

const byId = (a: SharedNodeRecord, b: SharedNodeRecord): number => a.id.localeCompare(b.id);

interface Case {
  name: string;
  run(open: (prefix: string) => Promise<StateStore>, kind: Kind, t: TestContext): Promise<void>;
}

/** The local tier's clock (Date) on mocked time from here on, continuing from the real one. */
function mockClock(t: TestContext): void {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
}

const contract: Case[] = [
  {
    name: 'set then get; unknown keys are undefined; set replaces',
    async run(open) {
      const s = await open(uniquePrefix());
      const m = s.assignments(NS, TIMES);
      m.set('a', 'node-1');
      m.set('b', 'node-2');
      assert.equal(m.get('a'), 'node-1');
      assert.equal(m.get('b'), 'node-2');
      assert.equal(m.get('c'), undefined);
      m.set('a', 'node-3');
      assert.equal(m.get('a'), 'node-3');
      assert.equal(m.size, 2);
      assert.equal(m.evicted, 0);
    },
  },
  {
    name: 'end(): the entry answers for the linger window, then is gone',
    async run(open, _kind, t) {
      const m = (await open(uniquePrefix())).assignments(NS, TIMES);
      mockClock(t);
      m.set('a', 'node-1');
      m.end('a');
      assert.equal(m.get('a'), 'node-1', 'retransmissions right after end() still find the node');
      t.mock.timers.tick(LINGER_MS - 1);
      assert.equal(m.get('a'), 'node-1', 'still there at the end of the linger window');
      t.mock.timers.tick(2);
      assert.equal(m.get('a'), undefined);
    },
  },
  {
    name: 'idle expiry: gone after idleMs without use; every use restarts the idle time',
    async run(open, _kind, t) {
      const m = (await open(uniquePrefix())).assignments(NS, TIMES);
      mockClock(t);
      m.set('used', 'node-1');
      m.set('idle', 'node-2');
      for (let i = 0; i < 5; i++) {
        t.mock.timers.tick(IDLE_MS / 3);
        assert.equal(m.get('used'), 'node-1', `use ${i}`);
      }
      assert.equal(m.get('idle'), undefined, 'not used for 500 ms > idleMs');
      t.mock.timers.tick(IDLE_MS + 1);
      assert.equal(m.get('used'), undefined, 'gone once not used for idleMs');
    },
  },
  {
    name: 'maxEntries bounds the local tier: the oldest go first',
    async run(open) {
      const m = (await open(uniquePrefix())).assignments(NS, { ...TIMES, maxEntries: 2 });
      m.set('a', 'node-1');
      m.set('b', 'node-1');
      m.set('c', 'node-1');
      assert.equal(m.size, 2);
      assert.equal(m.evicted, 1);
      assert.equal(m.get('a'), undefined);
      assert.equal(m.get('c'), 'node-1');
    },
  },
  {
    name: 'node directory: publish, republish, list, remove',
    async run(open) {
      const s = await open(uniquePrefix());
      assert.deepEqual(await s.nodes.list(), []);
      s.nodes.publish(record('n1'));
      s.nodes.publish(record('n2'));
      s.nodes.publish(record('n1', true));
      const listed = await s.nodes.list();
      assert.ok(listed !== null);
      assert.deepEqual(listed.sort(byId), [record('n1', true), record('n2')]);
      s.nodes.remove('n1');
      assert.deepEqual(await s.nodes.list(), [record('n2')]);
    },
  },
  {
    name: 'node directory: admin drains and admin weights, each replaced per node and removed apart',
    async run(open) {
      const s = await open(uniquePrefix());
      assert.deepEqual(await s.nodes.adminDrains(), []);
      assert.deepEqual(await s.nodes.adminWeights(), []);
      s.nodes.setAdminDrain({ id: 'n1', drained: true, at: 1, by: 'b1' });
      s.nodes.setAdminWeight({ id: 'n1', weight: 7, at: 2, by: 'b1' });
      s.nodes.setAdminWeight({ id: 'n2', weight: 3, at: 3, by: 'b2' });
      s.nodes.setAdminWeight({ id: 'n2', weight: null, at: 4, by: 'b1' });
      assert.deepEqual(await s.nodes.adminDrains(), [{ id: 'n1', drained: true, at: 1, by: 'b1' }]);
      assert.deepEqual((await s.nodes.adminWeights())?.sort((x, y) => x.id.localeCompare(y.id)), [{ id: 'n1', weight: 7, at: 2, by: 'b1' }, { id: 'n2', weight: null, at: 4, by: 'b1' }]);
      s.nodes.removeAdminWeight('n1');
      assert.deepEqual(await s.nodes.adminWeights(), [{ id: 'n2', weight: null, at: 4, by: 'b1' }]);
      assert.equal((await s.nodes.adminDrains())?.length, 1, 'drains untouched');
    },
  },
  {
    name: 'node directory: pins by pattern, replaced and removed',
    async run(open) {
      const s = await open(uniquePrefix());
      assert.deepEqual(await s.nodes.pins(), []);
      s.nodes.setPin({ pattern: '^vip-(\\d+)', nodeId: 'n1', at: 1, by: 'b1' });
      s.nodes.setPin({ pattern: '^x', nodeId: 'n2', at: 2, by: 'b1' });
      s.nodes.setPin({ pattern: '^x', nodeId: null, at: 3, by: 'b2' });
      assert.deepEqual((await s.nodes.pins())?.sort((x, y) => x.pattern.localeCompare(y.pattern)), [
        { pattern: '^vip-(\\d+)', nodeId: 'n1', at: 1, by: 'b1' }, { pattern: '^x', nodeId: null, at: 3, by: 'b2' },
      ]);
      s.nodes.removePin('^x');
      assert.equal((await s.nodes.pins())?.length, 1);
    },
  },
  {
    name: 'call board: others() sums every other balancer, excludes the caller',
    async run(open) {
      const s = await open(uniquePrefix());
      assert.deepEqual(await s.calls.others('b1'), new Map());
      s.calls.publish('b1', new Map([['n1', 100]]));
      s.calls.publish('b2', new Map([['n1', 2], ['n2', 3]]));
      s.calls.publish('b3', new Map([['n1', 5]]));
      assert.deepEqual(await s.calls.others('b1'), new Map([['n1', 7], ['n2', 3]]));
      s.calls.publish('b3', new Map([['n2', 1]]));
      assert.deepEqual(await s.calls.others('b2'), new Map([['n1', 100], ['n2', 1]]), 'a publish replaces the previous one');
    },
  },
  {
    name: 'sharedSecret: the first candidate is stored; other balancers get it',
    async run(open, kind) {
      const prefix = uniquePrefix();
      const a = await open(prefix);
      assert.equal(await a.sharedSecret('first'), 'first');
      if (!kind.shared) return;
      const b = await open(prefix);
      assert.equal(await b.sharedSecret('second'), 'first');
      assert.equal(await a.sharedSecret('third'), 'first');
    },
  },
];

/** Keeps every server of `kind` busy for `ms` (a Lua loop: answers nothing meanwhile, connections stay open). */
async function stallServers(kind: Kind, ms: number): Promise<() => Promise<void>> {
  const ports = kind.ports?.() ?? [];
  const loop = `local t0 = redis.call('TIME') local s = tonumber(t0[1]) * 1000000 + tonumber(t0[2])
while true do local t = redis.call('TIME') if tonumber(t[1]) * 1000000 + tonumber(t[2]) - s > ${ms * 1000} then break end end return 1`;
  const done = ports.map((port) => new Promise<void>((resolve) => {
    execFile('redis-cli', ['-p', String(port), 'EVAL', loop, '0'], { timeout: ms + 5000 }, () => resolve());
  }));
  // The script is running once a second client waits behind it: give redis-cli its head start.
  await sleep(100);
  return async () => {
    await Promise.all(done);
  };
}

/** claim(): the compare-and-set balancers agree through (memory: nothing to agree with, null). */
const claims: Case[] = [
  {
    name: 'claim() of an absent key takes it: resolves to our node, recorded locally, seen by others',
    async run(open, kind) {
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, TIMES);
      const claimed = a.claim('call-1', 'node-1');
      if (!kind.shared) {
        assert.equal(claimed, null, 'no shared tier: null, the caller records with set()');
        assert.equal(a.get('call-1'), undefined, 'and claim() recorded nothing');
        return;
      }
      assert.ok(claimed instanceof Promise);
      assert.equal(await claimed, 'node-1');
      assert.equal(a.get('call-1'), 'node-1');
      const b = (await open(prefix)).assignments(NS, TIMES);
      assert.equal(await b.fetch('call-1'), 'node-1');
    },
  },
  {
    name: 'claim() of a key another balancer holds: resolves to its node, cached locally; the store keeps it',
    async run(open, kind) {
      if (!kind.shared) return assert.equal((await open(uniquePrefix())).assignments(NS, TIMES).claim('k', 'node-2'), null);
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, TIMES);
      const b = (await open(prefix)).assignments(NS, TIMES);
      assert.equal(await a.claim('call-1', 'node-1'), 'node-1');
      assert.equal(await b.claim('call-1', 'node-2'), 'node-1', 'the first claim stands');
      assert.equal(b.get('call-1'), 'node-1', 'the holder is cached locally');
      a.set('call-2', 'node-3');
      await eventually('the set() landed', 1000, async () => (await (await open(prefix)).assignments(NS, TIMES).fetch('call-2')) === 'node-3');
      assert.equal(await b.claim('call-2', 'node-4'), 'node-3', 'a set() holds the key as a claim does');
      const reader = (await open(prefix)).assignments(NS, TIMES);
      assert.equal(await reader.fetch('call-1'), 'node-1');
    },
  },
  {
    name: 'claim() with replacing: taken when the store holds exactly that node, else the holder answers',
    async run(open, kind) {
      if (!kind.shared) return assert.equal((await open(uniquePrefix())).assignments(NS, TIMES).claim('k', 'node-2', 'node-1'), null);
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, TIMES);
      const b = (await open(prefix)).assignments(NS, TIMES);
      assert.equal(await a.claim('active', 'node-1'), 'node-1');
      // Both replace node-1 at once: one compare-and-set wins, the other gets its node.
      const [x, y] = await Promise.all([a.claim('active', 'node-2', 'node-1'), b.claim('active', 'node-3', 'node-1')]);
      assert.equal(x, y, 'one winner');
      assert.ok(x === 'node-2' || x === 'node-3');
      assert.equal(await b.claim('active', 'node-4', 'node-1'), x, 'a mismatch does not write');
      assert.equal(await a.claim('active', 'node-5', x), 'node-5', 'a match does');
      assert.equal(b.get('active'), x, 'b has not asked since');
      assert.equal(await b.claim('active', 'node-9', 'node-9'), 'node-5', 'confirming a stale node adopts the holder');
      assert.equal(b.get('active'), 'node-5');
      assert.equal(await b.claim('absent', 'node-6', 'node-1'), 'node-6', 'replacing takes an absent key too');
    },
  },
  {
    name: "claim() writes set()'s expiry: gone after idleMs; end() shortens it to lingerMs",
    async run(open, kind) {
      if (!kind.shared) return;
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, { idleMs: 400, lingerMs: LINGER_MS });
      const long = (await open(prefix)).assignments(NS, { idleMs: 10_000, lingerMs: LINGER_MS });
      const reader = (await open(prefix)).assignments(NS, TIMES);
      assert.equal(await a.claim('idle', 'node-1'), 'node-1');
      assert.equal(await a.claim('cas', 'node-1', 'node-0'), 'node-1');
      assert.equal(await long.claim('ended', 'node-2'), 'node-2');
      long.end('ended');
      await eventually('the ended claim expired after lingerMs', 2000, async () => (await reader.fetch('ended')) === undefined, 25);
      assert.equal(await reader.fetch('idle'), 'node-1', 'still there before idleMs');
      await eventually('both idle claims expired after idleMs', 3000, async () => (await reader.fetch('idle')) === undefined && (await reader.fetch('cas')) === undefined, 50);
    },
  },
  {
    name: 'claim() with the shared tier unreachable: null at once, nothing recorded',
    async run(_open, kind, t) {
      const store = await kind.openUnreachable?.();
      if (store === undefined) return assert.equal(kind.shared, false);
      t.after(() => store.close());
      assert.equal(store.available, false);
      const m = store.assignments(NS, TIMES);
      assert.equal(m.claim('call-1', 'node-1'), null);
      assert.equal(m.claim('call-1', 'node-1', 'node-0'), null);
      assert.equal(m.get('call-1'), undefined);
    },
  },
  {
    name: 'claim() of a server that does not answer: our node after the read timeout, recorded locally',
    async run(open, kind) {
      if (!kind.shared) return;
      const m = (await open(uniquePrefix())).assignments(NS, TIMES);
      const released = await stallServers(kind, 700);
      try {
        const started = performance.now();
        const [plain, cas] = await Promise.all([m.claim('slow', 'node-1'), m.claim('slow-cas', 'node-2', 'node-0')]);
        const waited = performance.now() - started;
        assert.deepEqual([plain, cas], ['node-1', 'node-2']);
        assert.ok(waited >= READ_TIMEOUT_MS - 20 && waited < 600, `resolved after ${waited.toFixed(0)} ms, the read timeout is ${READ_TIMEOUT_MS}`);
        assert.equal(m.get('slow'), 'node-1');
        assert.equal(m.get('slow-cas'), 'node-2');
      } finally {
        await released();
      }
    },
  },
];

/** Cases only a shared tier passes: two balancers (stores) on one Redis. */
const sharedOnly: Case[] = [
  {
    name: 'admin weight fields another writer left invalid are skipped; the valid ones are read',
    async run(open, kind) {
      const prefix = uniquePrefix();
      const s = await open(prefix);
      s.nodes.setAdminWeight({ id: 'n1', weight: 5, at: 1, by: 'b1' });
      const key = `${prefix}nodes:admin-weights`;
      const bad = [
        ['n2', '{"id":"n2","weight":0,"at":1,"by":"b"}'],
        ['n3', '{"id":"n3","weight":1001,"at":1,"by":"b"}'],
        ['n4', '{"id":"n4","weight":"5","at":1,"by":"b"}'],
        ['n5', '{"id":"other","weight":5,"at":1,"by":"b"}'],
        ['n6', 'not json'],
      ];
      const port = kind.ports?.()[0];
      assert.ok(port !== undefined);
      await new Promise<void>((resolve, reject) => {
        execFile('redis-cli', ['-c', '-p', String(port), 'HSET', key, ...bad.flat()], { timeout: 5000 }, (err) => (err === null ? resolve() : reject(err)));
      });
      assert.deepEqual(await s.nodes.adminWeights(), [{ id: 'n1', weight: 5, at: 1, by: 'b1' }]);
    },
  },
  {
    name: 'a set() on balancer A is fetched by B, then answered locally by B',
    async run(open) {
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, TIMES);
      const b = (await open(prefix)).assignments(NS, TIMES);
      assert.equal(b.get('call-1'), undefined);
      a.set('call-1', 'node-7');
      await eventually('B fetches what A set', 1000, async () => (await b.fetch('call-1')) === 'node-7');
      assert.equal(b.get('call-1'), 'node-7', 'the fetched answer is kept locally');
    },
  },
  {
    name: 'fetch() of an unknown key resolves undefined',
    async run(open) {
      const b = (await open(uniquePrefix())).assignments(NS, TIMES);
      const answer = b.fetch('no-such-call');
      assert.ok(answer !== null, 'the shared tier is available');
      assert.equal(await answer, undefined);
      assert.equal(b.get('no-such-call'), undefined);
    },
  },
  {
    name: 'different key prefixes do not see each other',
    async run(open) {
      const p1 = uniquePrefix();
      const a = await open(p1);
      const sameGroup = await open(p1);
      const otherGroup = await open(uniquePrefix());
      a.assignments(NS, TIMES).set('call-1', 'node-1');
      a.nodes.publish(record('n1'));
      a.calls.publish('b1', new Map([['n1', 4]]));
      assert.equal(await a.sharedSecret('secret-1'), 'secret-1');
      await eventually('the write landed', 1000, async () => (await sameGroup.assignments(NS, TIMES).fetch('call-1')) === 'node-1');
      assert.equal(await otherGroup.assignments(NS, TIMES).fetch('call-1'), undefined);
      assert.deepEqual(await otherGroup.nodes.list(), []);
      assert.deepEqual(await otherGroup.calls.others('b2'), new Map());
      assert.equal(await otherGroup.sharedSecret('secret-2'), 'secret-2');
    },
  },
  {
    name: 'namespaces of one prefix do not see each other',
    async run(open) {
      const prefix = uniquePrefix();
      const a = await open(prefix);
      const b = await open(prefix);
      a.assignments('callid', TIMES).set('k', 'node-1');
      await eventually('the write landed', 1000, async () => (await b.assignments('callid', TIMES).fetch('k')) === 'node-1');
      assert.equal(await b.assignments('user', TIMES).fetch('k'), undefined);
    },
  },
  {
    name: 'end(): the shared entry lingers, then expires',
    async run(open) {
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, { idleMs: 10_000, lingerMs: LINGER_MS });
      const reader = await open(prefix);
      a.set('call-1', 'node-1');
      await eventually('the write landed', 1000, async () => (await reader.assignments(NS, TIMES).fetch('call-1')) === 'node-1');
      a.end('call-1');
      await eventually('the shared entry expired after lingerMs', 1000, async () => (await reader.assignments(NS, TIMES).fetch('call-1')) === undefined);
    },
  },
  {
    name: 'shared entries expire after idleMs, unless the call is used (TTL refresh)',
    async run(open) {
      // Real Redis TTLs. The busy call is used every 20 ms and its shared copy rewritten after
      // idleMs / 2 without a write, so a loaded machine may stall this process for about 480 ms
      // before the busy call could lapse.
      const times: AssignmentOptions = { idleMs: 1000, lingerMs: LINGER_MS };
      const prefix = uniquePrefix();
      const a = (await open(prefix)).assignments(NS, times);
      const reader = (await open(prefix)).assignments(NS, times);
      // 'busy' is written first: without refreshes its shared copy would expire before 'quiet's.
      a.set('busy', 'node-2');
      a.set('quiet', 'node-1');
      const use = setInterval(() => a.get('busy'), 20);
      try {
        await eventually("'quiet' (written once, PX idleMs) expired in Redis", times.idleMs + 3000, async () => (await reader.fetch('quiet')) === undefined, 50);
        assert.equal(a.get('busy'), 'node-2', 'the call in use is still known locally');
      } finally {
        clearInterval(use);
      }
      assert.equal(await reader.fetch('busy'), 'node-2', 'the call in use was kept in Redis');
    },
  },
];

const silent = pino({ level: 'silent' });
const READ_TIMEOUT_MS = 200;
let server: RedisServer | undefined;
let cluster: RedisClusterServers | undefined;

function redisStore(url: () => string, seeds: () => HostPort[]): (prefix: string) => Promise<StateStore> {
  return async (keyPrefix) => {
    const store = new RedisStateStore({ url: url(), cluster: seeds(), keyPrefix, readTimeoutMs: READ_TIMEOUT_MS, log: silent });
    await store.start();
    assert.equal(store.available, true, 'connected at start');
    return store;
  };
}

/** A Redis store pointed at a port nothing listens on (standalone or as the one cluster seed). */
async function unreachableStore(asCluster: boolean): Promise<StateStore> {
  const port = await allocatePort();
  const store = new RedisStateStore({
    url: asCluster ? 'redis://' : `redis://127.0.0.1:${port}`, cluster: asCluster ? [{ host: '127.0.0.1', port }] : [],
    keyPrefix: uniquePrefix(), readTimeoutMs: READ_TIMEOUT_MS, log: silent,
  });
  await store.start();
  releasePorts([port]);
  return store;
}

const kinds: Kind[] = [
  {
    name: 'memory',
    shared: false,
    async open() {
      const store = new MemoryStateStore();
      await store.start();
      return store;
    },
  },
  {
    name: 'redis (standalone)',
    shared: true,
    async before() {
      server = await startRedis();
    },
    async after() {
      await server?.stop();
    },
    open: redisStore(() => server!.url, () => []),
    openUnreachable: () => unreachableStore(false),
    ports: () => [server!.port],
  },
  {
    name: 'redis (3-master cluster)',
    shared: true,
    async before() {
      cluster = await startRedisCluster(3);
    },
    async after() {
      await cluster?.stop();
    },
    open: redisStore(() => 'redis://', () => cluster!.seeds),
    openUnreachable: () => unreachableStore(true),
    ports: () => cluster!.seeds.map((s) => s.port as number),
  },
];

for (const kind of kinds) {
  describe(`StateStore contract: ${kind.name}`, () => {
    if (kind.before) before(kind.before);
    if (kind.after) after(kind.after);
    for (const c of [...contract, ...claims]) test(c.name, (t) => c.run(opener(kind, t), kind, t));
    if (kind.shared) {
      for (const c of sharedOnly) test(c.name, (t) => c.run(opener(kind, t), kind, t));
    }
  });
}
