// PersistentConsistentHash (Restcomm's PersistentConsistentHashBalancerAlgorithm): keys placed by
// rendezvous hashing and then remembered, so membership changes move nothing already placed;
// draining, failover spread, release at call end, bounded load from the LoadView, HTTP on the
// same assignments. The last part runs two balancers over one shared tier (a test double of the
// Redis tier that follows the AssignmentMap contract, test/helpers/shared-tier.ts) to exercise
// the Promise-returning fetch and claim paths, for all three hashing algorithms.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Algorithm, AlgorithmContext, LoadView, PickResult } from '../../src/algorithms/algorithm.ts';
import { TRANSACTION_TIMEOUT_MS } from '../../src/sip/timers.ts';
import { HeaderConsistentHash } from '../../src/algorithms/header-hash.ts';
import { hashKey, rendezvous } from '../../src/algorithms/hashing.ts';
import { PersistentConsistentHash } from '../../src/algorithms/persistent-hash.ts';
import { UserBased } from '../../src/algorithms/user-based.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import type { Config } from '../../src/config/types.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import type { StateStore } from '../../src/state/store.ts';
import { algorithmContext, algorithmFor, callIdsRanking, CLIENT, httpGet as http, pickId, snapshotOf as cluster, subnetNode, syncId, syncId as id, syncNode } from '../helpers/cluster.ts';
import { FakeSharedTier } from '../helpers/shared-tier.ts';
import { invite } from '../helpers/sip.ts';

const node = (n: number): SipNode => subnetNode(3, n);

const N1 = node(1);
const N2 = node(2);
const N3 = node(3);
const N4 = node(4);
const FOUR = [N1, N2, N3, N4];


function context(cfg: Partial<Config>, store?: StateStore, loads?: LoadView): AlgorithmContext {
  return algorithmContext(cfg, { store, loads });
}

const persistent = (t: TestContext, cfg: Partial<Config> = {}, loads?: LoadView): PersistentConsistentHash =>
  algorithmFor(t, (ctx) => new PersistentConsistentHash(ctx), cfg, { loads });
const pick = pickId;

describe('PersistentConsistentHash: assignments', () => {
  test('a key is placed by rendezvous hashing and stays there', (t) => {
    const a = persistent(t);
    const c = cluster(FOUR);
    for (let i = 0; i < 200; i++) {
      const msg = invite(`p-${i}@host`);
      const placed = pick(a, c, msg, true);
      assert.equal(placed, rendezvous(hashKey(msg.callId), c.selectable)?.id);
      assert.equal(pick(a, c, msg, false), placed);
      assert.equal(pick(a, c, msg, true), placed, 'a retransmitted INVITE');
    }
  });

  test('a node joining moves no placed key; new keys reach it', (t) => {
    const a = persistent(t);
    const three = cluster([N1, N2, N3]);
    const placed = new Map<string, string | null>();
    for (let i = 0; i < 2000; i++) placed.set(`j-${i}@host`, pick(a, three, invite(`j-${i}@host`), true));
    const four = cluster(FOUR);
    for (const [callId, nodeId] of placed) assert.equal(pick(a, four, invite(callId), false), nodeId);
    let onNew = 0;
    for (let i = 0; i < 2000; i++) if (pick(a, four, invite(`fresh-${i}@host`), true) === N4.id) onNew++;
    assert.ok(onNew > 400 && onNew < 600, `${onNew} of 2000 new keys on the new node`);
  });

  test('a key spec other than Call-ID: every call with the same header value shares the node', (t) => {
    const a = persistent(t, { sipHeaderAffinityKey: 'X-Tenant' });
    const c = cluster(FOUR);
    const first = pick(a, c, invite('t1', 'x', ['X-Tenant: acme']), true);
    for (let i = 0; i < 20; i++) assert.equal(pick(a, c, invite(`t-${i}`, `u${i}`, ['X-Tenant: acme']), true), first);
    assert.equal(pick(a, c, invite('no-tenant@host'), true), rendezvous(hashKey('no-tenant@host'), c.selectable)?.id, 'no header: the Call-ID is the key');
  });
});

describe('PersistentConsistentHash: draining and failover', () => {
  test('a draining node keeps its calls (retransmitted INVITEs too) and gets no new ones', (t) => {
    const a = persistent(t);
    const onN1 = callIdsRanking(N1, FOUR, 50, 'd');
    for (const callId of onN1) assert.equal(pick(a, cluster(FOUR), invite(callId), true), N1.id);
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    for (const callId of onN1) {
      assert.equal(pick(a, draining, invite(callId), false), N1.id);
      assert.equal(pick(a, draining, invite(callId), true), N1.id, 'the same Call-ID is the same call');
    }
    for (const callId of callIdsRanking(N1, FOUR, 200, 'late')) {
      const placed = pick(a, draining, invite(callId), true);
      assert.ok(placed !== null && placed !== N1.id);
      assert.equal(pick(a, draining, invite(callId), false), placed);
    }
  });

  test('a header key whose node drains: its next new call moves, and the key with it', (t) => {
    const a = persistent(t, { sipHeaderAffinityKey: 'X-Tenant' });
    const tenant = ['X-Tenant: acme'];
    const home = pick(a, cluster(FOUR), invite('old-call', 'x', tenant), true) as string;
    const draining = cluster(FOUR, { [home]: 'draining' });
    const moved = pick(a, draining, invite('new-call', 'x', tenant), true);
    assert.ok(moved !== null && moved !== home);
    assert.equal(pick(a, draining, invite('next-call', 'x', tenant), true), moved);
  });

  test("a dead node's 6000 keys spread over the 3 survivors, 1/3 each within 10 %, and stay there", (t) => {
    const a = persistent(t);
    const all = cluster(FOUR);
    const keys = callIdsRanking(N1, FOUR, 6000, 'dead');
    for (const callId of keys) assert.equal(pick(a, all, invite(callId), true), N1.id);
    const down = cluster(FOUR, { [N1.id]: 'down' });
    const counts = new Map<string, number>();
    const movedTo = new Map<string, string>();
    for (const callId of keys) {
      const msg = invite(callId);
      const to = syncNode(a.repick({ msg, callId, newCall: false, src: CLIENT }, N1.id, down));
      assert.ok(to !== null && to !== N1);
      counts.set(to.id, (counts.get(to.id) ?? 0) + 1);
      movedTo.set(callId, to.id);
    }
    const worst = Math.max(...[N2, N3, N4].map((n) => Math.abs((counts.get(n.id) ?? 0) / 2000 - 1)));
    t.diagnostic(`worst survivor deviation from 1/3: ${(worst * 100).toFixed(2)} %`);
    assert.ok(worst <= 0.1, JSON.stringify([...counts]));
    // The call follows its new node, also once the old one is back.
    for (const [callId, to] of movedTo) assert.equal(pick(a, all, invite(callId), false), to);
  });

  test('an in-call request for a key on a dead node moves it like repick would', (t) => {
    const a = persistent(t);
    const keys = callIdsRanking(N2, FOUR, 100, 'gone');
    for (const callId of keys) pick(a, cluster(FOUR), invite(callId), true);
    const without = cluster([N1, N3, N4]);
    for (const callId of keys) {
      const expected = rendezvous(hashKey(callId), without.selectable)?.id;
      assert.equal(pick(a, without, invite(callId), false), expected);
    }
  });

  test('group failover: every key of a dead node moves to the same survivor', (t) => {
    const a = persistent(t, { callIdAffinityGroupFailover: true });
    const keys = callIdsRanking(N1, FOUR, 300, 'group');
    for (const callId of keys) pick(a, cluster(FOUR), invite(callId), true);
    const down = cluster(FOUR, { [N1.id]: 'down' });
    const targets = new Set(keys.map((callId) => pick(a, down, invite(callId), false)));
    assert.equal(targets.size, 1);
    assert.ok(!targets.has(N1.id) && !targets.has(null));
  });
});

describe('PersistentConsistentHash: release and load', () => {
  test('Call-ID keys: callEnded releases the assignment after the retransmission window', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = persistent(t);
    const [callId] = callIdsRanking(N1, FOUR, 1, 'end');
    const msg = invite(callId);
    pick(a, cluster(FOUR), msg, true);
    // Failover moves it off N1; N1 comes back, so only the assignment keeps it elsewhere.
    const moved = pick(a, cluster(FOUR, { [N1.id]: 'down' }), msg, false);
    assert.notEqual(moved, N1.id);
    a.callEnded(callId);
    t.mock.timers.tick(TRANSACTION_TIMEOUT_MS - 1000);
    assert.equal(pick(a, cluster(FOUR), msg, false), moved, 'retransmissions within the window');
    t.mock.timers.tick(2000);
    assert.equal(pick(a, cluster(FOUR), msg, true), N1.id, 'released: placed afresh');
  });

  test('header keys outlive one call: callEnded leaves them', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = persistent(t, { sipHeaderAffinityKey: 'X-Tenant' });
    const tenant = ['X-Tenant: acme'];
    const home = pick(a, cluster(FOUR), invite('c1', 'x', tenant), true) as string;
    const moved = pick(a, cluster(FOUR, { [home]: 'down' }), invite('c1', 'x', tenant), false);
    a.callEnded('c1');
    t.mock.timers.tick(TRANSACTION_TIMEOUT_MS * 2);
    assert.equal(pick(a, cluster(FOUR), invite('c2', 'x', tenant), true), moved);
  });

  test('idle keys expire after callIdAffinityMaxTimeInCache', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = persistent(t, { callIdAffinityMaxTimeInCache: 60 });
    const [callId] = callIdsRanking(N1, FOUR, 1, 'idle');
    const msg = invite(callId);
    pick(a, cluster(FOUR), msg, true);
    const moved = pick(a, cluster(FOUR, { [N1.id]: 'down' }), msg, false);
    t.mock.timers.tick(59_000);
    assert.equal(pick(a, cluster(FOUR), msg, false), moved);
    t.mock.timers.tick(61_000);
    assert.equal(pick(a, cluster(FOUR), msg, true), N1.id);
  });

  test('the user-based keys do not apply: userAffinityMaxTimeInCache and userAffinityGroupFailover are ignored', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = persistent(t, { callIdAffinityMaxTimeInCache: 60, userAffinityMaxTimeInCache: 3600, callIdAffinityGroupFailover: false, userAffinityGroupFailover: true });
    const keys = callIdsRanking(N1, FOUR, 100, 'useronly');
    for (const callId of keys) pick(a, cluster(FOUR), invite(callId), true);
    const down = cluster(FOUR, { [N1.id]: 'down' });
    assert.equal(new Set(keys.map((callId) => pick(a, down, invite(callId), false))).size, 3, 'spread, not group');
    t.mock.timers.tick(61_000);
    assert.equal(pick(a, cluster(FOUR), invite(keys[0]), true), N1.id, 'expired after 60 s, not 3600 s');
  });

  test('hashLoadFactor: new keys avoid a node the LoadView shows overloaded', (t) => {
    // Another balancer's calls pile up on N1; this balancer's placements count too.
    const counts = new Map<string, number>([[N1.id, 1000]]);
    const loads: LoadView = { activeCalls: (nodeId) => counts.get(nodeId) ?? 0 };
    const place = (a: PersistentConsistentHash, i: number): string => {
      const to = pick(a, cluster(FOUR), invite(`load-${i}@host`), true) as string;
      counts.set(to, (counts.get(to) ?? 0) + 1);
      return to;
    };
    const bounded = persistent(t, { hashLoadFactor: 0.1 }, loads);
    const first = Array.from({ length: 600 }, (_, i) => place(bounded, i));
    assert.equal(first.filter((x) => x === N1.id).length, 0, 'N1 is above (1 + 0.1) x mean until the others catch up');
    counts.clear();
    counts.set(N1.id, 1000);
    const plain = persistent(t, { hashLoadFactor: 0 }, loads);
    const second = Array.from({ length: 600 }, (_, i) => place(plain, i));
    assert.ok(second.filter((x) => x === N1.id).length > 100, 'without the bound N1 gets its hash share');
  });
});

describe('PersistentConsistentHash: HTTP', () => {
  test('the appsession value shares the assignments of SIP keys', (t) => {
    const a = persistent(t);
    const [callId] = callIdsRanking(N1, FOUR, 1, 'conv');
    pick(a, cluster(FOUR), invite(callId), true);
    const moved = pick(a, cluster(FOUR, { [N1.id]: 'down' }), invite(callId), false);
    assert.equal(id(a.pickHttp(http(`/app?appsession=${encodeURIComponent(callId)}`), cluster(FOUR))), moved);
  });

  test('a new appsession value is placed and remembered', (t) => {
    const a = persistent(t);
    const three = cluster([N1, N2, N3]);
    const placed = new Map<string, string | undefined>();
    for (let i = 0; i < 300; i++) placed.set(`s${i}`, id(a.pickHttp(http(`/app?appsession=s${i}`), three)) ?? undefined);
    for (const [s, n] of placed) {
      assert.equal(n, rendezvous(hashKey(s), three.selectable)?.id);
      assert.equal(id(a.pickHttp(http(`/app?appsession=${s}`), cluster(FOUR))), n, 'kept when a node joins');
    }
  });

  test('without the parameter: weighted round robin', (t) => {
    const a = persistent(t);
    const c = cluster([N2, N1, N3]);
    assert.deepEqual(Array.from({ length: 6 }, () => id(a.pickHttp(http('/app'), c))), [N1, N2, N3, N1, N2, N3].map((n) => n.id));
  });
});

// ------------------------------------------------------------ shared tier

type Build = (ctx: AlgorithmContext) => Algorithm;

/** Two balancers with their own local tables over one shared tier. */
function balancers(t: TestContext, build: Build, cfg: Partial<Config> = {}): { a: Algorithm; b: Algorithm; tier: FakeSharedTier } {
  const tier = new FakeSharedTier();
  const a = build(context(cfg, tier.store()));
  const b = build(context(cfg, tier.store()));
  t.after(() => {
    a.close();
    b.close();
  });
  return { a, b, tier };
}

async function settle(r: PickResult): Promise<{ waited: boolean; id: string | null }> {
  const waited = r instanceof Promise;
  const n = await r;
  return { waited, id: n === null ? null : n.id };
}

describe('two balancers on one shared tier (fetch on a local miss)', () => {
  const assigned: { name: string; build: Build; cfg: Partial<Config>; msg: (i: number) => SipMessage }[] = [
    { name: 'persistent hash', build: (ctx) => new PersistentConsistentHash(ctx), cfg: {}, msg: (i) => invite(`shared-${i}@host`) },
    { name: 'user-based', build: (ctx) => new UserBased(ctx), cfg: { sipHeaderAffinityKey: 'To' }, msg: (i) => invite(`shared-${i}@host`, `user${i}`) },
  ];
  for (const s of assigned) {
    test(`${s.name}: an in-call request on the other balancer waits for the shared assignment`, async (t) => {
      const { a, b, tier } = balancers(t, s.build, s.cfg);
      // A places the keys while N4 is away; B sees N4, where a fresh hash would send many of them.
      const three = cluster([N1, N2, N3]);
      const four = cluster(FOUR);
      let disagreeing = 0;
      for (let i = 0; i < 200; i++) {
        const msg = s.msg(i);
        const placed = (await settle(a.pick({ msg, callId: msg.callId, newCall: true, src: CLIENT }, three))).id;
        const onB = await settle(b.pick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, four));
        assert.ok(onB.waited, 'a local miss for an in-call request reads the shared tier');
        assert.equal(onB.id, placed);
        const again = b.pick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, four);
        assert.ok(!(again instanceof Promise), 'found once, then known locally');
        assert.equal(id(again), placed);
        if (rendezvous(hashKey(s.name === 'user-based' ? `user${i}` : msg.callId), four.selectable)?.id !== placed) disagreeing++;
      }
      assert.ok(disagreeing > 20, `the shared tier decided ${disagreeing} keys a fresh hash would have placed elsewhere`);
      // B reads each key once; A (a user's first call there) also asks before placing a user.
      assert.equal(tier.reads, s.name === 'user-based' ? 400 : 200);
    });

    test(`${s.name}: nothing shared -> a fresh placement; shared node dead -> failover`, async (t) => {
      const { a, b } = balancers(t, s.build, s.cfg);
      const all = cluster(FOUR);
      const unknown = s.msg(1000);
      const fresh = await settle(b.pick({ msg: unknown, callId: unknown.callId, newCall: false, src: CLIENT }, all));
      assert.ok(fresh.waited);
      assert.ok(fresh.id !== null);
      assert.equal(id(b.pick({ msg: unknown, callId: unknown.callId, newCall: false, src: CLIENT }, all)), fresh.id, 'placed and remembered');

      const msg = s.msg(2000);
      const placed = (await settle(a.pick({ msg, callId: msg.callId, newCall: true, src: CLIENT }, all))).id as string;
      const withoutIt = cluster(FOUR, { [placed]: 'down' });
      const moved = await settle(b.pick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, withoutIt));
      assert.ok(moved.id !== null && moved.id !== placed);
      assert.equal(moved.id, syncId(a.repick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, placed, withoutIt)), 'both balancers move it the same way');
    });

  }

  test('persistent hash: a new call keyed by its own Call-ID is claimed at once, never read first', async (t) => {
    const { b, tier } = balancers(t, (ctx) => new PersistentConsistentHash(ctx));
    const msg = invite('shared-3000@host');
    const placed = await settle(b.pick({ msg, callId: msg.callId, newCall: true, src: CLIENT }, cluster(FOUR)));
    assert.deepEqual(placed, { waited: true, id: rendezvous(hashKey(msg.callId), FOUR)?.id });
    assert.deepEqual([tier.reads, tier.claims], [0, 1], 'one claim (SET NX in Redis), no read');
    assert.equal(tier.held('hash', msg.callId), placed.id);
  });

  // A user outlives calls: the other balancer placed it on an earlier call, possibly with another
  // view of the cluster (a node has joined since), and the user's next call, or HTTP request, must
  // find that node, not a fresh hash.
  test("user-based: a user's new call and HTTP request on the other balancer find the user's node after a node joined", async (t) => {
    const { a, b, tier } = balancers(t, (ctx) => new UserBased(ctx), { sipHeaderAffinityKey: 'To' });
    const three = cluster([N1, N2, N3]);
    const four = cluster(FOUR);
    let moved = 0;
    for (let i = 0; i < 100; i++) {
      const first = invite(`u-first-${i}@host`, `user${i}`);
      const placed = (await settle(a.pick({ msg: first, callId: first.callId, newCall: true, src: CLIENT }, three))).id;
      if (rendezvous(hashKey(`user${i}`), four.selectable)?.id !== placed) moved++;
      const next = invite(`u-next-${i}@host`, `user${i}`);
      const onB = await settle(b.pick({ msg: next, callId: next.callId, newCall: true, src: CLIENT }, four));
      assert.deepEqual(onB, { waited: true, id: placed }, `user${i}: new call on B`);
      const again = invite(`u-again-${i}@host`, `user${i}`);
      assert.equal(id(b.pick({ msg: again, callId: again.callId, newCall: true, src: CLIENT }, four)), placed, 'known locally from then on');
    }
    assert.ok(moved > 10, `a fresh hash over four nodes would have moved ${moved} users`);
    assert.equal(tier.reads, 200, 'A asks once per user, B once per user; then both know it');
    const httpB = balancers(t, (ctx) => new UserBased(ctx), { sipHeaderAffinityKey: 'To', httpAffinityKey: 'appsession' });
    const first = invite('h-first@host', 'httpuser');
    const placed = (await settle(httpB.a.pick({ msg: first, callId: first.callId, newCall: true, src: CLIENT }, three))).id;
    const pickHttp = httpB.b.pickHttp?.bind(httpB.b) ?? assert.fail('user-based has pickHttp');
    assert.deepEqual(await settle(pickHttp(http('/app?appsession=httpuser'), four)), { waited: true, id: placed }, 'HTTP request for the user on B');
  });

  test('header hash: a call detoured around a draining node is found by the other balancer', async (t) => {
    const { a, b, tier } = balancers(t, (ctx) => new HeaderConsistentHash(ctx));
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    const [late] = callIdsRanking(N1, FOUR, 1, 'detour');
    const msg = invite(late);
    const placed = pick(a, draining, msg, true);
    assert.ok(placed !== null && placed !== N1.id);
    const onB = await settle(b.pick({ msg, callId: late, newCall: false, src: CLIENT }, draining));
    assert.deepEqual(onB, { waited: true, id: placed });
    // A call that was on N1 before the drain: nothing shared, the hash answers N1.
    const [old] = callIdsRanking(N1, FOUR, 2, 'detour').slice(1);
    const onB2 = await settle(b.pick({ msg: invite(old), callId: old, newCall: false, src: CLIENT }, draining));
    assert.deepEqual(onB2, { waited: true, id: N1.id });
    // With nothing draining, no request reads the shared tier.
    const reads = tier.reads;
    for (let i = 0; i < 50; i++) {
      const m = invite(`calm-${i}@host`);
      assert.ok(!(b.pick({ msg: m, callId: m.callId, newCall: false, src: CLIENT }, cluster(FOUR)) instanceof Promise));
    }
    assert.equal(tier.reads, reads);
  });
});
