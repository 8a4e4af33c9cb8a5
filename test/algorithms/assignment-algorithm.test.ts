// Several balancers behind one address, each given a copy of the same INVITE (a retransmission the
// sprayer sent elsewhere), must send both copies to one node. Two instances of each assigning
// algorithm, made to choose differently on their own (a rotation out of phase, different load
// figures), place the same new Call-IDs at the same moment over one store: with no shared tier they
// split, through the shared tier (the test double, and a real redis-server) they never do. Then
// the claim's cost and its fallbacks: one claim and no read per new call, nothing waits with the
// memory store or while the shared tier is down, a stalled tier costs one read timeout.

import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Algorithm, AlgorithmContext, LoadView, PickResult } from '../../src/algorithms/algorithm.ts';
import { CallIdAffinity, WeightedRoundRobin } from '../../src/algorithms/callid-affinity.ts';
import { LeastActiveCalls } from '../../src/algorithms/least-active-calls.ts';
import { PersistentConsistentHash } from '../../src/algorithms/persistent-hash.ts';
import { SubclusterAffinity } from '../../src/algorithms/subcluster-affinity.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import type { Config } from '../../src/config/types.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import { RedisStateStore } from '../../src/state/redis/store.ts';
import type { StateStore } from '../../src/state/store.ts';
import { algorithmContext, CLIENT, snapshotOf as cluster, subnetNode } from '../helpers/cluster.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { FakeSharedTier } from '../helpers/shared-tier.ts';
import { invite } from '../helpers/sip.ts';

const N1 = subnetNode(7, 1);
const N2 = subnetNode(7, 2, 2);
const N3 = subnetNode(7, 3, 3);
const NODES = [N1, N2, N3];
const C = cluster(NODES);
const CALLS = 200;

/** Fixed loads: two balancers whose call-count boards disagree. */
const loadsOf = (byNode: Record<string, number>): LoadView => ({ activeCalls: (id) => byNode[id] ?? 0 });

interface Variant {
  name: string;
  build: (ctx: AlgorithmContext) => Algorithm;
  cfg?: Partial<Config>;
  /** Loads balancer A and B know. */
  loads?: [LoadView, LoadView];
  /** Makes A's own choices differ from B's before the race (a rotation put out of phase). */
  desync?: (a: Algorithm) => Promise<unknown>;
}

/** One call placed on A alone turns its rotation one step ahead of B's. */
const outOfPhase = async (a: Algorithm): Promise<unknown> => a.pick({ msg: invite('desync'), callId: 'desync', newCall: true, src: CLIENT }, C);

const VARIANTS: Variant[] = [
  { name: 'callid', build: (ctx) => new CallIdAffinity(ctx), desync: outOfPhase },
  { name: 'wrr', build: (ctx) => new WeightedRoundRobin(ctx), desync: outOfPhase },
  { name: 'subcluster', build: (ctx) => new SubclusterAffinity(ctx), cfg: { subclusterMap: [[N1.ip, N2.ip], [N3.ip]] }, desync: outOfPhase },
  {
    name: 'least-calls', build: (ctx) => new LeastActiveCalls(ctx),
    loads: [loadsOf({ [N1.id]: 50 }), loadsOf({ [N2.id]: 100, [N3.id]: 150 })],
  },
  {
    name: 'persistent-hash (hashLoadFactor 0.1)', build: (ctx) => new PersistentConsistentHash(ctx), cfg: { hashLoadFactor: 0.1 },
    loads: [loadsOf({ [N1.id]: 200, [N2.id]: 10, [N3.id]: 10 }), loadsOf({})],
  },
];

interface StoreKind {
  name: string;
  shared: boolean;
  /** Two balancers' stores over one shared tier (or none). */
  pair(t: TestContext): Promise<[StateStore, StateStore]>;
}

const silent = pino({ level: 'silent' });
let redis: RedisServer | undefined;
let prefixes = 0;

async function redisStore(prefix: string): Promise<StateStore> {
  // A generous read timeout: a loaded test machine must not turn a slow answer into a split.
  const s = new RedisStateStore({ url: redis!.url, cluster: [], keyPrefix: prefix, readTimeoutMs: 2000, log: silent });
  await s.start();
  assert.equal(s.available, true);
  return s;
}

const STORES: StoreKind[] = [
  { name: 'memory stores (nothing shared)', shared: false, pair: () => Promise.resolve([new MemoryStateStore(), new MemoryStateStore()]) },
  {
    name: 'shared tier (test double)', shared: true,
    pair: () => {
      const tier = new FakeSharedTier();
      return Promise.resolve([tier.store(), tier.store()]);
    },
  },
  {
    name: 'redis-server', shared: true,
    async pair() {
      const prefix = `agree${process.pid}-${++prefixes}:`;
      return [await redisStore(prefix), await redisStore(prefix)];
    },
  },
];

function build(t: TestContext, v: Variant, store: StateStore, loads?: LoadView): Algorithm {
  const a = v.build(algorithmContext(v.cfg ?? {}, { store, loads }));
  t.after(async () => {
    a.close();
    await store.close();
  });
  return a;
}

const idOf = async (r: PickResult): Promise<string | null> => (await r)?.id ?? null;

describe('two balancers place copies of one new call', () => {
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  for (const v of VARIANTS) {
    for (const kind of STORES) {
      test(`${v.name}, ${kind.name}: ${kind.shared ? 'never split' : 'split where their own choices differ'}`, async (t) => {
        const [sa, sb] = await kind.pair(t);
        const a = build(t, v, sa, v.loads?.[0]);
        const b = build(t, v, sb, v.loads?.[1]);
        await v.desync?.(a);
        let splits = 0;
        let waited = 0;
        for (let i = 0; i < CALLS; i++) {
          const callId = `race-${v.name}-${i}@host`;
          const msg = invite(callId);
          // Both copies are handled before either balancer hears from the store.
          const ra = a.pick({ msg, callId, newCall: true, src: CLIENT }, C);
          const rb = b.pick({ msg, callId, newCall: true, src: CLIENT }, C);
          if (ra instanceof Promise) waited++;
          const [x, y] = await Promise.all([idOf(ra), idOf(rb)]);
          assert.ok(x !== null && y !== null);
          if (x !== y) splits++;
          // Every later request of the call, on either balancer, is answered locally and agrees.
          const later = b.pick({ msg, callId, newCall: false, src: CLIENT }, C);
          assert.ok(!(later instanceof Promise), 'known locally once claimed');
          assert.equal(later?.id, y);
        }
        console.log(`${v.name}, ${kind.name}: ${splits} of ${CALLS} calls split`);
        if (kind.shared) {
          assert.equal(splits, 0);
          assert.equal(waited, CALLS, 'each new call waited for its claim');
        } else {
          assert.ok(splits > CALLS / 10, `the two balancers' own choices differ for ${splits} calls: the race is real`);
          assert.equal(waited, 0, 'the memory store never makes a pick wait');
        }
      });
    }

    test(`${v.name}: a copy that reaches the second balancer later follows the first`, async (t) => {
      const tier = new FakeSharedTier();
      const a = build(t, v, tier.store(), v.loads?.[0]);
      const b = build(t, v, tier.store(), v.loads?.[1]);
      await v.desync?.(a);
      const before = [tier.reads, tier.claims, tier.claimWrites];
      for (let i = 0; i < 50; i++) {
        const callId = `later-${i}@host`;
        const msg = invite(callId);
        const first = await idOf(a.pick({ msg, callId, newCall: true, src: CLIENT }, C));
        assert.equal(await idOf(b.pick({ msg, callId, newCall: true, src: CLIENT }, C)), first, callId);
      }
      assert.deepEqual([tier.reads - before[0], tier.claims - before[1], tier.claimWrites - before[2]], [0, 100, 50], 'one claim per copy, no read, one write per call');
    });
  }
});

describe('the claim of a new call: cost and fallbacks', () => {
  const callid = (t: TestContext, store: StateStore): Algorithm => build(t, VARIANTS[0], store);
  const pickNew = (a: Algorithm, callId: string): PickResult => a.pick({ msg: invite(callId), callId, newCall: true, src: CLIENT }, C);

  test('memory store: no Promise, nothing to claim; the next pick of the call is a local hit', (t) => {
    const a = callid(t, new MemoryStateStore());
    const r = pickNew(a, 'm-1');
    assert.ok(!(r instanceof Promise));
    assert.equal(r?.id, N1.id);
    assert.equal((a.pick({ msg: invite('m-1'), callId: 'm-1', newCall: false, src: CLIENT }, C) as SipNode).id, N1.id);
  });

  test('shared tier unavailable: the local choice at once, recorded locally', (t) => {
    const tier = new FakeSharedTier();
    tier.available = false;
    const a = callid(t, tier.store());
    const placed = ['u-1', 'u-2', 'u-3'].map((id) => pickNew(a, id));
    assert.ok(placed.every((r) => !(r instanceof Promise)));
    assert.deepEqual(placed.map((r) => (r as SipNode).id), [N1.id, N2.id, N3.id]);
    assert.equal(tier.claims, 0);
  });

  test('shared tier stalled: the local choice after the read timeout, recorded locally', async (t) => {
    const tier = new FakeSharedTier();
    tier.stalled = true;
    tier.readTimeoutMs = 50;
    const a = callid(t, tier.store());
    const started = performance.now();
    assert.equal(await idOf(pickNew(a, 's-1')), N1.id);
    assert.ok(performance.now() - started >= 45);
    assert.equal((a.pick({ msg: invite('s-1'), callId: 's-1', newCall: false, src: CLIENT }, C) as SipNode).id, N1.id);
  });

  test('a claim held by a node this balancer sees down: the call is moved at once, replacing it', async (t) => {
    const tier = new FakeSharedTier();
    const a = callid(t, tier.store());
    const b = callid(t, tier.store());
    // A placed the call on N1; B sees N1 down (its health checks disagree).
    assert.equal(await idOf(pickNew(a, 'd-1')), N1.id);
    const n1Down = cluster(NODES, { [N1.id]: 'down' });
    const onB = await idOf(b.pick({ msg: invite('d-1'), callId: 'd-1', newCall: true, src: CLIENT }, n1Down));
    assert.ok(onB !== null && onB !== N1.id);
    assert.equal(tier.held('callid', 'd-1'), onB, 'the move is written for the others');
  });
});
