// HeaderConsistentHash (Restcomm's HeaderConsistentHashBalancerAlgorithm): stickiness by key on
// every balancer without state, the Call-ID when the key header is missing, draining (a draining
// node keeps its calls, takes no new ones, and calls started during the drain keep to where they
// went), failover spread, and HTTP hashing with and without the query parameter.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TRANSACTION_TIMEOUT_MS } from '../../src/sip/timers.ts';
import { HeaderConsistentHash } from '../../src/algorithms/header-hash.ts';
import { hashKey, rendezvous } from '../../src/algorithms/hashing.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { algorithmFor, callIdsRanking, CLIENT, httpGet as http, pickId, snapshotOf as cluster, subnetNode, syncId as id, syncNode } from '../helpers/cluster.ts';
import { invite } from '../helpers/sip.ts';

const node = (n: number): SipNode => subnetNode(2, n);

const N1 = node(1);
const N2 = node(2);
const N3 = node(3);
const N4 = node(4);
const FOUR = [N1, N2, N3, N4];


const algorithm = (t: TestContext, cfg: Partial<Config> = {}): HeaderConsistentHash => algorithmFor(t, (ctx) => new HeaderConsistentHash(ctx), cfg);
const pick = pickId;

describe('HeaderConsistentHash: keys', () => {
  test('every request with the same Call-ID goes to one node, on any balancer, in any snapshot', (t) => {
    const a = algorithm(t);
    const b = algorithm(t);
    for (let i = 0; i < 200; i++) {
      const msg = invite(`sticky-${i}@host`);
      const first = pick(a, cluster(FOUR), msg, true);
      assert.ok(first !== null);
      assert.equal(pick(a, cluster(FOUR), msg, false), first);
      assert.equal(pick(b, cluster([N4, N2, N3, N1]), msg, true), first, 'another balancer, nodes listed in another order');
    }
  });

  const keyCases: { spec: string; a: SipMessage; b: SipMessage; same: boolean }[] = [
    { spec: 'To', a: invite('k1', 'alice'), b: invite('k2', 'alice'), same: true },
    { spec: 'Call-ID', a: invite('k1', 'alice'), b: invite('k1', 'bob'), same: true },
    { spec: 'X-Tenant', a: invite('k1', 'x', ['X-Tenant: acme']), b: invite('k2', 'y', ['X-Tenant: acme']), same: true },
  ];
  for (const c of keyCases) {
    test(`key ${c.spec}: requests sharing it share the node`, (t) => {
      const a = algorithm(t, { sipHeaderAffinityKey: c.spec });
      const all = cluster(FOUR);
      assert.equal(pick(a, all, c.a, true), pick(a, all, c.b, true));
    });
  }

  test('key To: different users spread over the nodes', (t) => {
    const a = algorithm(t, { sipHeaderAffinityKey: 'To' });
    const seen = new Set<string | null>();
    for (let i = 0; i < 100; i++) seen.add(pick(a, cluster(FOUR), invite(`spread-${i}`, `user${i}`), true));
    assert.deepEqual([...seen].sort(), FOUR.map((n) => n.id));
  });

  test('a request without the key header hashes by its Call-ID', (t) => {
    const a = algorithm(t, { sipHeaderAffinityKey: 'X-Tenant' });
    const all = cluster(FOUR);
    for (let i = 0; i < 100; i++) {
      const callId = `nokey-${i}@host`;
      assert.equal(pick(a, all, invite(callId), true), rendezvous(hashKey(callId), all.selectable)?.id);
    }
  });

  test('no node -> null', (t) => {
    const a = algorithm(t);
    const msg = invite('none');
    assert.equal(pick(a, cluster([]), msg, true), null);
    assert.equal(pick(a, cluster([N1], { [N1.id]: 'down' }), msg, false), null);
    assert.equal(syncNode(a.repick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, N1.id, cluster([N1]))), null);
  });
});

describe('HeaderConsistentHash: draining', () => {
  test('a draining node keeps the calls it has but gets no new ones', (t) => {
    const a = algorithm(t);
    const onN1 = callIdsRanking(N1, FOUR, 50, 'before');
    for (const callId of onN1) assert.equal(pick(a, cluster(FOUR), invite(callId), true), N1.id);
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    for (const callId of onN1) assert.equal(pick(a, draining, invite(callId), false), N1.id, 'in-call request of an existing call');
    for (let i = 0; i < 1000; i++) assert.notEqual(pick(a, draining, invite(`new-${i}@host`), true), N1.id);
  });

  test('a call started during the drain keeps to the node it went to', (t) => {
    const a = algorithm(t);
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    for (const callId of callIdsRanking(N1, FOUR, 50, 'during')) {
      const msg = invite(callId);
      const placed = pick(a, draining, msg, true);
      assert.ok(placed !== null && placed !== N1.id);
      assert.equal(placed, rendezvous(hashKey(callId), [N2, N3, N4])?.id, 'the next node in its ranking');
      assert.equal(pick(a, draining, msg, false), placed, 'its CANCEL or ACK follows it');
    }
  });

  test('calls of a draining node that were never detoured are not affected by detours of others', (t) => {
    const a = algorithm(t);
    const [old, late] = callIdsRanking(N1, FOUR, 2, 'mix');
    assert.equal(pick(a, cluster(FOUR), invite(old), true), N1.id);
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    const placed = pick(a, draining, invite(late), true);
    assert.notEqual(placed, N1.id);
    assert.equal(pick(a, draining, invite(old), false), N1.id);
    assert.equal(pick(a, draining, invite(late), false), placed);
  });

  test('a detoured call whose node dies goes where its key hashes among active nodes', (t) => {
    const a = algorithm(t);
    const [callId] = callIdsRanking(N1, FOUR, 1, 'dies');
    const placed = pick(a, cluster(FOUR, { [N1.id]: 'draining' }), invite(callId), true) as string;
    const after = cluster(FOUR, { [N1.id]: 'draining', [placed]: 'down' });
    const expected = rendezvous(hashKey(callId), after.selectable)?.id;
    assert.ok(expected !== undefined && expected !== N1.id && expected !== placed);
    assert.equal(pick(a, after, invite(callId), false), expected);
  });

  test('callEnded releases a detour after the retransmission window', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = algorithm(t);
    const draining = cluster(FOUR, { [N1.id]: 'draining' });
    const [callId] = callIdsRanking(N1, FOUR, 1, 'ended');
    const msg = invite(callId);
    const placed = pick(a, draining, msg, true);
    a.callEnded(callId);
    t.mock.timers.tick(TRANSACTION_TIMEOUT_MS - 1000);
    assert.equal(pick(a, draining, msg, false), placed, 'a retransmitted BYE within the window');
    t.mock.timers.tick(2000);
    assert.equal(pick(a, draining, msg, false), N1.id, 'forgotten: the plain hash answers again');
  });
});

describe('HeaderConsistentHash: failover', () => {
  test("a dead node's 6000 calls spread over the 3 survivors, 1/3 each within 10 %", (t) => {
    const a = algorithm(t);
    const down = cluster(FOUR, { [N1.id]: 'down' });
    const counts = new Map<string, number>();
    for (const callId of callIdsRanking(N1, FOUR, 6000, 'fail')) {
      const msg = invite(callId);
      const req = { msg, callId, newCall: false, src: CLIENT };
      const to = syncNode(a.repick(req, N1.id, cluster(FOUR)));
      assert.ok(to !== null && to !== N1);
      assert.equal(id(a.pick(req, down)), to.id, 'an in-call request after the node is marked down agrees with repick');
      counts.set(to.id, (counts.get(to.id) ?? 0) + 1);
    }
    const worst = Math.max(...[N2, N3, N4].map((n) => Math.abs((counts.get(n.id) ?? 0) / 2000 - 1)));
    t.diagnostic(`worst survivor deviation from 1/3: ${(worst * 100).toFixed(2)} %`);
    assert.ok(worst <= 0.1, JSON.stringify([...counts]));
  });

  test('group failover, set at start or by a reload: every call of the dead node goes to one survivor', (t) => {
    const heirsOf = (a: HeaderConsistentHash): Set<string | null> => new Set(callIdsRanking(N1, FOUR, 300, 'group').map((callId) =>
      id(a.repick({ msg: invite(callId), callId, newCall: false, src: CLIENT }, N1.id, cluster(FOUR, { [N1.id]: 'down' })))));
    const spread = algorithm(t);
    assert.equal(heirsOf(spread).size, 3, 'without it: spread over the 3 survivors');
    const grouped = heirsOf(algorithm(t, { callIdAffinityGroupFailover: true }));
    assert.equal(grouped.size, 1);
    assert.ok(!grouped.has(N1.id) && !grouped.has(null));
    assert.equal(spread.reconfigure({ ...defaultConfig(), callIdAffinityGroupFailover: true }), null);
    assert.deepEqual(heirsOf(spread), grouped, 'the same survivor on every balancer');
  });

  test('hashLoadFactor: a moved call is recorded, so it stays where it went when the loads change', (t) => {
    const load = new Map<string, number>();
    const a = algorithmFor(t, (ctx) => new HeaderConsistentHash(ctx), { hashLoadFactor: 0.1 }, { loads: { activeCalls: (n) => load.get(n) ?? 0 } });
    const down = cluster(FOUR, { [N1.id]: 'down' });
    const calls = callIdsRanking(N1, FOUR, 200, 'bounded');
    // N2 is far above its cap: no call of N1 goes there.
    load.set(N2.id, 1000);
    const heirs = calls.map((callId) => id(a.repick({ msg: invite(callId), callId, newCall: false, src: CLIENT }, N1.id, down)));
    assert.ok(heirs.every((h) => h === N3.id || h === N4.id), heirs.join(', '));
    // N2 idle now, N3 and N4 loaded: the calls stay; hint-less requests find them too.
    load.set(N2.id, 0);
    load.set(N3.id, 1000);
    load.set(N4.id, 1000);
    calls.forEach((callId, i) => {
      assert.equal(id(a.repick({ msg: invite(callId), callId, newCall: false, src: CLIENT }, N1.id, down)), heirs[i]);
      assert.equal(pick(a, down, invite(callId), false), heirs[i]);
    });
  });

  test('calls of surviving nodes do not move', (t) => {
    const a = algorithm(t);
    const down = cluster(FOUR, { [N1.id]: 'down' });
    for (let i = 0; i < 2000; i++) {
      const msg = invite(`stay-${i}@host`);
      const before = pick(a, cluster(FOUR), msg, true);
      if (before !== N1.id) assert.equal(pick(a, down, msg, false), before);
    }
  });
});

describe('HeaderConsistentHash: HTTP', () => {
  test('with the appsession parameter: a hash of its value over the active nodes', (t) => {
    const a = algorithm(t);
    const c = cluster(FOUR, { [N2.id]: 'draining' });
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const n = a.pickHttp(http(`/app/x?appsession=s${i}&y=1`), c);
      assert.equal(n, rendezvous(hashKey(`s${i}`), c.selectable));
      assert.equal(a.pickHttp(http(`/other?appsession=s${i}`), c), n, 'same session, same node');
      seen.add((n as SipNode).id);
    }
    assert.deepEqual([...seen].sort(), [N1.id, N3.id, N4.id]);
  });

  test('without it: weighted round robin', (t) => {
    const a = algorithm(t);
    const c = cluster([N3, N1, N2]);
    const seq = Array.from({ length: 6 }, () => a.pickHttp(http('/app/x?other=1'), c)?.id);
    assert.deepEqual(seq, [N1, N2, N3, N1, N2, N3].map((n) => n.id));
  });

  test('httpAffinityKey names the parameter', (t) => {
    const a = algorithm(t, { httpAffinityKey: 'sid' });
    const c = cluster(FOUR);
    assert.equal(a.pickHttp(http('/x?sid=abc'), c), rendezvous(hashKey('abc'), c.selectable));
  });
});
