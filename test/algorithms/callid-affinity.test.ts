// CallIdAffinity (Restcomm's CallIDAffinityBalancerAlgorithm): round robin on the first request
// of a Call-ID, stickiness afterwards, failover (single and group), draining, idle expiry and the
// linger window after callEnded. Time-dependent cases mock Date (no sleeping).

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CallIdAffinity, WeightedRoundRobin } from '../../src/algorithms/callid-affinity.ts';
import { TRANSACTION_TIMEOUT_MS } from '../../src/sip/timers.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot } from '../../src/cluster/snapshot.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { algorithmContext, algorithmFor, CLIENT, snapshotOf as cluster, subnetNode, syncId, syncNode } from '../helpers/cluster.ts';
import { prng } from '../helpers/prng.ts';
import { invite } from '../helpers/sip.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import type { AssignmentMap, StateStore } from '../../src/state/store.ts';

const node = (n: number): SipNode => subnetNode(1, n);

const N1 = node(1);
const N2 = node(2);
const N3 = node(3);
const N4 = node(4);

const MSG: SipMessage = invite('affinity');

function algorithm(t: TestContext, groupFailover = false, maxIdleSeconds = 500): CallIdAffinity {
  return algorithmFor(t, (ctx) => new CallIdAffinity(ctx), { callIdAffinityMaxTimeInCache: maxIdleSeconds, callIdAffinityGroupFailover: groupFailover });
}

/** Node id picked for each Call-ID in turn (null when none). */
function picks(a: CallIdAffinity, c: ClusterSnapshot, callIds: string[]): (string | null)[] {
  return callIds.map((callId) => pick(a, c, callId));
}

/** With the in-memory store every answer is immediate. */
function pick(a: CallIdAffinity, c: ClusterSnapshot, callId: string, newCall = true): string | null {
  const r = a.pick({ msg: MSG, callId, newCall, src: CLIENT }, c);
  assert.ok(!(r instanceof Promise), 'the in-memory store never makes a pick wait');
  return r?.id ?? null;
}

describe('CallIdAffinity: round robin and stickiness', () => {
  const sequences = [
    { nodes: [N1, N2], expected: [N1, N2, N1, N2, N1, N2] },
    { nodes: [N1, N2, N3], expected: [N1, N2, N3, N1, N2, N3, N1] },
    { nodes: [N3, N1, N2], expected: [N1, N2, N3, N1, N2, N3] }, // order of the snapshot views does not matter
    { nodes: [N1], expected: [N1, N1, N1] },
  ];
  for (const s of sequences) {
    test(`first requests over ${s.nodes.map((n) => n.ip).join(', ')} -> ${s.expected.map((n) => n.ip).join(', ')}`, (t) => {
      const a = algorithm(t);
      const ids = s.expected.map((_, i) => `call-${i}`);
      assert.deepEqual(picks(a, cluster(s.nodes), ids), s.expected.map((n) => n.id));
    });
  }

  test('later requests of a call stick to its node and do not consume round-robin turns', (t) => {
    const a = algorithm(t);
    const c = cluster([N1, N2, N3]);
    assert.deepEqual(picks(a, c, ['c1', 'c2', 'c1', 'c1', 'c2', 'c1', 'c3', 'c4', 'c2', 'c3']), [N1.id, N2.id, N1.id, N1.id, N2.id, N1.id, N3.id, N1.id, N2.id, N3.id]);
    assert.equal(a.entries, 4);
  });

  test('stickiness holds across snapshots of the same cluster', (t) => {
    const a = algorithm(t);
    assert.equal(pick(a, cluster([N1, N2]), 'c1'), N1.id);
    assert.equal(pick(a, cluster([N1, N2]), 'c2'), N2.id);
    assert.equal(pick(a, cluster([N2, N1]), 'c1'), N1.id);
    assert.equal(pick(a, cluster([N1, N2, N3]), 'c2'), N2.id, 'a node joining does not move existing calls');
  });

  test('no selectable node -> null', (t) => {
    const a = algorithm(t);
    assert.equal(pick(a, cluster([]), 'c1'), null);
    assert.equal(pick(a, cluster([N1, N2], { [N1.id]: 'down', [N2.id]: 'down' }), 'c2'), null);
  });
});

describe('CallIdAffinity: node loss and draining', () => {
  test('node marked down -> its call moves to a live node and stays there', (t) => {
    const a = algorithm(t);
    assert.deepEqual(picks(a, cluster([N1, N2]), ['c1', 'c2']), [N1.id, N2.id]);
    const n1Down = cluster([N1, N2], { [N1.id]: 'down' });
    assert.equal(pick(a, n1Down, 'c1'), N2.id);
    assert.equal(pick(a, n1Down, 'c1'), N2.id);
    assert.equal(pick(a, n1Down, 'c2'), N2.id);
    assert.equal(pick(a, cluster([N1, N2]), 'c1'), N2.id, 'the call stays on the node that took it over');
  });

  test('node removed from the cluster -> its call moves', (t) => {
    const a = algorithm(t);
    assert.deepEqual(picks(a, cluster([N1, N2, N3]), ['c1', 'c2', 'c3']), [N1.id, N2.id, N3.id]);
    const without1 = cluster([N2, N3]);
    const moved = pick(a, without1, 'c1');
    assert.ok(moved === N2.id || moved === N3.id, `moved to ${moved}`);
    assert.equal(pick(a, without1, 'c1'), moved);
    assert.equal(pick(a, without1, 'c2'), N2.id);
    assert.equal(pick(a, without1, 'c3'), N3.id);
  });

  test('draining node keeps its calls but gets no new ones', (t) => {
    const a = algorithm(t);
    assert.deepEqual(picks(a, cluster([N1, N2]), ['c1', 'c2']), [N1.id, N2.id]);
    const draining = cluster([N1, N2], { [N1.id]: 'draining' });
    assert.equal(pick(a, draining, 'c1'), N1.id);
    assert.deepEqual(picks(a, draining, ['c3', 'c4', 'c5']), [N2.id, N2.id, N2.id]);
    assert.equal(pick(a, draining, 'c1'), N1.id);
  });

  test('all nodes draining: existing calls served, new calls refused', (t) => {
    const a = algorithm(t);
    assert.equal(pick(a, cluster([N1]), 'c1'), N1.id);
    const draining = cluster([N1], { [N1.id]: 'draining' });
    assert.equal(pick(a, draining, 'c1'), N1.id);
    assert.equal(pick(a, draining, 'c2'), null);
  });

  test('group failover: all calls of a dead node move to ONE node', (t) => {
    const a = algorithm(t, true);
    const all = cluster([N1, N2, N3, N4]);
    const calls = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'];
    assert.deepEqual(picks(a, all, calls), [N1, N2, N3, N4, N1, N2, N3, N4, N1].map((n) => n.id));
    const n1Down = cluster([N1, N2, N3, N4], { [N1.id]: 'down' });
    const target = pick(a, n1Down, 'c5');
    assert.ok(target !== null && target !== N1.id);
    assert.equal(pick(a, n1Down, 'c1'), target);
    assert.equal(pick(a, n1Down, 'c9'), target);
    // The other nodes' calls do not move.
    assert.deepEqual(picks(a, n1Down, ['c2', 'c3', 'c4', 'c6', 'c7', 'c8']), [N2, N3, N4, N2, N3, N4].map((n) => n.id));
  });

  test('group failover: when the takeover node dies too, its calls (own and inherited) move together again', (t) => {
    const a = algorithm(t, true);
    const calls = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'];
    assert.deepEqual(picks(a, cluster([N1, N2, N3, N4]), calls), [N1, N2, N3, N4, N1, N2, N3, N4].map((n) => n.id));
    const n1Down = cluster([N1, N2, N3, N4], { [N1.id]: 'down' });
    const first = pick(a, n1Down, 'c1');
    assert.ok(first !== null && first !== N1.id);
    assert.equal(pick(a, n1Down, 'c5'), first);
    const bothDown = cluster([N1, N2, N3, N4], { [N1.id]: 'down', [first]: 'down' });
    const firstsCalls = ['c1', 'c5', ...calls.filter((_, i) => [N1, N2, N3, N4][i % 4].id === first)];
    const second = pick(a, bothDown, firstsCalls[0]);
    assert.ok(second !== null && second !== N1.id && second !== first);
    for (const c of firstsCalls) assert.equal(pick(a, bothDown, c), second, c);
  });

  test('failover spreads a dead node\'s calls evenly over all survivors; nothing else moves', (t) => {
    const a = algorithm(t);
    const all = cluster([N1, N2, N3, N4]);
    const ids = Array.from({ length: 8000 }, (_, i) => `spread-${i}@10.9.9.9`);
    const before = new Map(ids.map((id) => [id, pick(a, all, id)]));
    const n2Down = cluster([N1, N2, N3, N4], { [N2.id]: 'down' });
    const received = new Map<string, number>();
    for (const id of ids) {
      const now = pick(a, n2Down, id, false);
      if (before.get(id) !== N2.id) assert.equal(now, before.get(id), `${id} was not on the dead node and must not move`);
      else received.set(now as string, (received.get(now as string) ?? 0) + 1);
    }
    assert.deepEqual([...received.keys()].sort(), [N1.id, N3.id, N4.id]);
    for (const [id, n] of received) assert.ok(Math.abs(n - 2000 / 3) / (2000 / 3) < 0.1, `${id} took ${n} of 2000`);
  });

  test('two balancers with the same view fail a call over to the same node', (t) => {
    for (const group of [false, true]) {
      const a = algorithm(t, group);
      const b = algorithm(t, group);
      const down = cluster([N1, N2, N3, N4], { [N3.id]: 'down' });
      for (let i = 0; i < 200; i++) {
        const req = { msg: MSG, callId: `agree-${i}`, newCall: false, src: CLIENT };
        assert.equal(syncId(a.repick(req, N3.id, down)), syncId(b.repick(req, N3.id, down)));
      }
    }
  });

  test('a call already moved keeps its new node on later failover questions', (t) => {
    const a = algorithm(t);
    const down = cluster([N1, N2, N3], { [N1.id]: 'down' });
    const req = { msg: MSG, callId: 'moved-once', newCall: false, src: CLIENT };
    const heir = syncNode(a.repick(req, N1.id, down));
    assert.ok(heir !== null);
    assert.equal(syncId(a.repick(req, N1.id, cluster([N1, N2, N3, N4], { [N1.id]: 'down' }))), heir.id, 'a node joining does not move it again');
  });
});

describe('CallIdAffinity: weights', () => {
  const heavy: SipNode = { ...N2, weight: 3 };
  const weighted = cluster([N1, heavy]);
  test('callid ignores node weights (Restcomm); wrr honours them', (t) => {
    const plain = algorithm(t);
    const wrr = new WeightedRoundRobin(algorithmContext());
    t.after(() => wrr.close());
    const ids = Array.from({ length: 400 }, (_, i) => `w-${i}`);
    const count = (a: CallIdAffinity): number => picks(a, weighted, ids).filter((id) => id === heavy.id).length;
    assert.equal(count(plain), 200);
    assert.equal(count(wrr), 300);
  });
});

describe('failover spread by weight: wrr by configured weight, callid evenly', () => {
  const W = [subnetNode(1, 1, 1), subnetNode(1, 2, 2), subnetNode(1, 3, 3), subnetNode(1, 4, 4)];
  const cases: { name: string; make: (ctx: ReturnType<typeof algorithmContext>) => CallIdAffinity; shares: number[] }[] = [
    { name: 'wrr', make: (ctx) => new WeightedRoundRobin(ctx), shares: [1 / 6, 2 / 6, 3 / 6] },
    { name: 'callid', make: (ctx) => new CallIdAffinity(ctx), shares: [1 / 3, 1 / 3, 1 / 3] },
  ];
  for (const c of cases) {
    test(`${c.name}: the dead node's calls go to the survivors in shares ${c.shares.map((x) => x.toFixed(3)).join(' / ')}, the same on two balancers`, (t) => {
      const a = c.make(algorithmContext());
      const b = c.make(algorithmContext());
      t.after(() => {
        a.close();
        b.close();
      });
      const all = cluster(W);
      // Call-IDs as user agents make them (random hex): a structured sequence picked by a
      // rotation (every tenth, say) is a biased sample of any hash.
      const rnd = prng(7);
      const ids = Array.from({ length: 30_000 }, () => `${Math.floor(rnd() * 2 ** 32).toString(16)}${Math.floor(rnd() * 2 ** 32).toString(16)}@10.9.9.9`);
      const onDead = ids.filter((id) => pick(a, all, id) === W[3].id);
      // Rendezvous ignores ramp-up shares: a node still ramping up on one balancer only changes nothing.
      const down = snapshotOf4Down(W);
      const moved = new Map<string, number>();
      let agreed = 0;
      for (const id of onDead) {
        const heir = pick(a, down, id, false) as string;
        if (syncId(b.repick({ msg: MSG, callId: id, newCall: false, src: CLIENT }, W[3].id, down)) === heir) agreed++;
        moved.set(heir, (moved.get(heir) ?? 0) + 1);
      }
      const shares = W.slice(0, 3).map((n) => (moved.get(n.id) ?? 0) / onDead.length);
      console.log(`${c.name} failover of ${onDead.length} calls, weights 1/2/3: shares ${shares.map((x) => x.toFixed(3)).join(' / ')}; agreed on ${agreed}`);
      assert.equal(agreed, onDead.length);
      c.shares.forEach((want, i) => assert.ok(Math.abs(shares[i] - want) / want < 0.06, `${W[i].id}: ${shares[i]} against ${want}`));
    });
  }

  /** W with its last node down, and the first still ramping up on this balancer (share 0.2). */
  function snapshotOf4Down(nodes: SipNode[]): ClusterSnapshot {
    return new ClusterSnapshot(nodes.map((node, i) => ({ node, state: i === 3 ? 'down' : 'active', share: i === 0 ? 0.2 : 1 })));
  }
});

describe('CallIdAffinity: expiry', () => {
  test('idle expiry: a call unused for longer than maxIdleSeconds is forgotten', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = algorithm(t, false, 10);
    const c = cluster([N1, N2]);
    assert.equal(pick(a, c, 'c1'), N1.id);
    t.mock.timers.tick(9_000);
    assert.equal(pick(a, c, 'c1'), N1.id, 'used within 10 s');
    t.mock.timers.tick(9_000);
    assert.equal(pick(a, c, 'c1'), N1.id, 'the previous use restarted the idle time');
    t.mock.timers.tick(11_000);
    assert.equal(pick(a, c, 'c1'), N2.id, 'forgotten: picked afresh (next in round robin)');
  });

  test('callEnded keeps the affinity for the retransmission window, then forgets it', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const a = algorithm(t, false, 500);
    const c = cluster([N1, N2]);
    assert.equal(pick(a, c, 'c1'), N1.id);
    a.callEnded('c1');
    t.mock.timers.tick(TRANSACTION_TIMEOUT_MS - 1000);
    assert.equal(pick(a, c, 'c1'), N1.id, 'retransmitted BYE / 200 within the window');
    t.mock.timers.tick(2000);
    assert.equal(pick(a, c, 'c1'), N2.id, 'forgotten after the window, long before maxIdleSeconds');
  });

  test('callEnded of an unknown Call-ID changes nothing', (t) => {
    const a = algorithm(t);
    const c = cluster([N1, N2]);
    a.callEnded('never-seen');
    assert.equal(a.entries, 0);
    assert.deepEqual(picks(a, c, ['c1', 'c2']), [N1.id, N2.id]);
  });
});

describe('CallIdAffinity across balancers: a late write of the placing balancer', () => {
  /** A store whose shared tier is a map the test writes into, read and claimed asynchronously as Redis is. */
  function lateStore(shared: Map<string, string>, reads: string[], claims: string[] = []): StateStore {
    const memory = new MemoryStateStore();
    return {
      kind: 'redis', available: true, outages: 0, latencyMs: null, nodes: memory.nodes, calls: memory.calls,
      start: () => Promise.resolve(),
      assignments(): AssignmentMap {
        const local = new Map<string, string>();
        return {
          get: (key) => local.get(key),
          fetch: (key) => {
            reads.push(key);
            return new Promise((resolve) => setImmediate(() => resolve(shared.get(key))));
          },
          set: (key, nodeId) => { local.set(key, nodeId); },
          claim: (key, nodeId) => {
            claims.push(key);
            const held = shared.get(key) ?? nodeId;
            shared.set(key, held);
            return new Promise((resolve) => setImmediate(() => {
              local.set(key, held);
              resolve(held);
            }));
          },
          end: (key) => { local.delete(key); },
          get size() { return local.size; },
          evicted: 0,
          close: () => undefined,
        };
      },
      sharedSecret: (candidate) => Promise.resolve(candidate),
      onAvailable: () => undefined,
      close: () => Promise.resolve(),
    };
  }

  test("a request of a call under way that the store does not know yet waits for the placing balancer's write", async (t) => {
    const shared = new Map<string, string>();
    const reads: string[] = [];
    const a = algorithmFor(t, (ctx) => new CallIdAffinity(ctx), {}, { store: lateStore(shared, reads) });
    const c = cluster([N1, N2, N3]);
    // The other balancer placed the call on N3; its write lands 100 ms after this balancer's first read.
    setTimeout(() => shared.set('late-call', N3.id), 100);
    const r = a.pick({ msg: MSG, callId: 'late-call', newCall: false, src: CLIENT }, c);
    assert.ok(r instanceof Promise);
    assert.equal((await r)?.id, N3.id);
    assert.deepEqual(reads, ['late-call', 'late-call'], 'asked twice: once at once, once after the wait');
  });

  test('a brand-new call is claimed without a read first; one still unknown after the wait is placed anew, claimed', async (t) => {
    const reads: string[] = [];
    const claims: string[] = [];
    const shared = new Map<string, string>();
    const a = algorithmFor(t, (ctx) => new CallIdAffinity(ctx), {}, { store: lateStore(shared, reads, claims) });
    const c = cluster([N1, N2]);
    const fresh = a.pick({ msg: MSG, callId: 'new-call', newCall: true, src: CLIENT }, c);
    assert.ok(fresh instanceof Promise, 'the claim is one round trip to the store');
    assert.equal((await fresh)?.id, N1.id);
    assert.deepEqual([reads, claims], [[], ['new-call']]);
    assert.equal(shared.get('new-call'), N1.id);
    const orphan = await a.pick({ msg: MSG, callId: 'orphan', newCall: false, src: CLIENT }, c);
    assert.equal(orphan?.id, N2.id);
    assert.deepEqual([reads, claims], [['orphan', 'orphan'], ['new-call', 'orphan']]);
    assert.equal(shared.get('orphan'), N2.id);
  });
});
