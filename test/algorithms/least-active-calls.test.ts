// Least active calls: new calls go to the node with the fewest active calls per unit of weight
// (a real CallTracker is the load view, fed the way the proxy feeds it), ties rotate, calls stick,
// and a dead node's calls spread over the survivors by weighted rendezvous of the Call-ID, which
// every balancer computes alike whatever loads it knows.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CallTracker } from '../../src/cluster/call-tracker.ts';
import type { CallIdAffinity } from '../../src/algorithms/callid-affinity.ts';
import { LeastActiveCalls, leastLoaded } from '../../src/algorithms/least-active-calls.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot } from '../../src/cluster/snapshot.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { prng } from '../helpers/prng.ts';
import { algorithmContext, CLIENT, snapshotOf as cluster, subnetNode, syncId } from '../helpers/cluster.ts';
import { invite } from '../helpers/sip.ts';

const node = (n: number, weight = 1): SipNode => subnetNode(2, n, weight);

const N1 = node(1);
const N2 = node(2);
const N3 = node(3);
const N4 = node(4);

const MSG: SipMessage = invite('least');

function setup(t: TestContext): { a: CallIdAffinity; loads: CallTracker } {
  const loads = new CallTracker(600_000);
  const a = new LeastActiveCalls(algorithmContext({}, { loads }));
  t.after(() => {
    a.close();
    loads.close();
  });
  return { a, loads };
}

/** Pick as the proxy does: the pick, then `started` (new call) or `touch` (a request of a call) on the tracker. */
function pick(s: { a: CallIdAffinity; loads: CallTracker }, c: ClusterSnapshot, callId: string, newCall = true): string | null {
  const r = s.a.pick({ msg: MSG, callId, newCall, src: CLIENT }, c);
  assert.ok(!(r instanceof Promise), 'the in-memory store never makes a pick wait');
  if (r === null) return null;
  if (newCall) s.loads.started(callId, r.id);
  else s.loads.touch(callId, r.id);
  return r.id;
}

function loadsOf(loads: CallTracker, nodes: SipNode[]): number[] {
  return nodes.map((n) => loads.activeCalls(n.id));
}

describe('least-calls: new calls', () => {
  test('name', (t) => assert.equal(setup(t).a.name, 'least-calls'));

  test('a new call goes to the node with the fewest active calls', (t) => {
    const s = setup(t);
    const c = cluster([N1, N2, N3]);
    for (let i = 0; i < 5; i++) s.loads.started(`pre-1-${i}`, N1.id);
    for (let i = 0; i < 2; i++) s.loads.started(`pre-2-${i}`, N2.id);
    assert.deepEqual([pick(s, c, 'c1'), pick(s, c, 'c2')], [N3.id, N3.id], 'N3 is empty, then still least at 1 against 2 and 5');
    // From now on every pick lands on a node whose load was the minimum at the time.
    for (let i = 0; i < 30; i++) {
      const before = loadsOf(s.loads, [N1, N2, N3]);
      const chosen = pick(s, c, `more-${i}`);
      const idx = [N1.id, N2.id, N3.id].indexOf(chosen as string);
      assert.equal(before[idx], Math.min(...before), `pick ${i}: ${chosen} had ${before[idx]} of ${before.join('/')}`);
    }
    assert.deepEqual(loadsOf(s.loads, [N1, N2, N3]), [13, 13, 13], '5+2+0 preloaded plus 32 new calls levelled out');
  });

  test('ties rotate: an idle cluster is filled evenly, not first node first', (t) => {
    const s = setup(t);
    const c = cluster([N3, N1, N2]);
    const ids = Array.from({ length: 9 }, (_, i) => `tie-${i}`);
    assert.deepEqual(ids.map((id) => pick(s, c, id)), [N1, N2, N3, N1, N2, N3, N1, N2, N3].map((n) => n.id));
  });

  test('ties rotate even when no load is reported (a load view that stays at zero)', (t) => {
    const zero = { activeCalls: (): number => 0 };
    const a = new LeastActiveCalls(algorithmContext({}, { loads: zero }));
    t.after(() => a.close());
    const c = cluster([N1, N2, N3]);
    const got = Array.from({ length: 6 }, (_, i) => (a.pick({ msg: MSG, callId: `z-${i}`, newCall: true, src: CLIENT }, c) as SipNode).id);
    assert.deepEqual(got, [N1, N2, N3, N1, N2, N3].map((n) => n.id));
  });

  const WEIGHTS: { weights: number[]; calls: number; expected: number[] }[] = [
    { weights: [1, 3], calls: 400, expected: [100, 300] },
    { weights: [1, 1], calls: 400, expected: [200, 200] },
    { weights: [2, 1, 1], calls: 400, expected: [200, 100, 100] },
    { weights: [1, 4], calls: 1000, expected: [200, 800] },
  ];
  for (const w of WEIGHTS) {
    test(`weights ${w.weights.join(':')} share ${w.calls} calls ${w.expected.join(':')} (each within 1)`, (t) => {
      const s = setup(t);
      const nodes = w.weights.map((weight, i) => node(i + 1, weight));
      const c = cluster(nodes);
      for (let i = 0; i < w.calls; i++) pick(s, c, `w-${i}`);
      const got = loadsOf(s.loads, nodes);
      got.forEach((n, i) => assert.ok(Math.abs(n - w.expected[i]) <= 1, `${nodes[i].id} (weight ${w.weights[i]}) has ${n}, want ${w.expected[i]}`));
    });
  }

  test('ramp-up share scales the weight like a configured weight does', (t) => {
    const s = setup(t);
    const c = new ClusterSnapshot([{ node: N1, state: 'active' }, { node: N2, state: 'active', share: 0.25 }]);
    for (let i = 0; i < 500; i++) pick(s, c, `r-${i}`);
    assert.ok(Math.abs(s.loads.activeCalls(N2.id) - 100) <= 1, `ramping node has ${s.loads.activeCalls(N2.id)} of 500`);
  });

  test('draining and down nodes get no new calls, however lightly loaded', (t) => {
    const s = setup(t);
    const c = cluster([N1, N2, N3, N4], { [N1.id]: 'draining', [N2.id]: 'down' });
    for (let i = 0; i < 10; i++) s.loads.started(`heavy-${i}`, N3.id);
    const got = new Set(Array.from({ length: 40 }, (_, i) => pick(s, c, `n-${i}`)));
    assert.deepEqual([...got].sort(), [N3.id, N4.id]);
    assert.deepEqual(loadsOf(s.loads, [N1, N2, N3, N4]), [0, 0, 25, 25]);
  });

  test('no node taking new calls -> null', (t) => {
    const s = setup(t);
    assert.equal(pick(s, cluster([]), 'x'), null);
    assert.equal(pick(s, cluster([N1, N2], { [N1.id]: 'draining', [N2.id]: 'down' }), 'y'), null);
  });
});

describe('least-calls: calls stick', () => {
  test('in-call requests of a known call stay on its node while others become less loaded', (t) => {
    const s = setup(t);
    const c = cluster([N1, N2, N3]);
    const home = pick(s, c, 'sticky');
    for (let i = 0; i < 20; i++) s.loads.started(`pile-${i}`, home as string);
    for (let i = 0; i < 5; i++) assert.equal(pick(s, c, 'sticky', false), home);
    assert.equal(pick(s, c, 'sticky', true), home, 'a retransmitted INVITE sticks too');
    assert.equal(s.loads.activeCalls(home as string), 21, 'retransmission and in-call requests do not add calls');
  });

  test('a draining node keeps serving its calls', (t) => {
    const s = setup(t);
    assert.equal(pick(s, cluster([N1, N2]), 'c1'), N1.id);
    const draining = cluster([N1, N2], { [N1.id]: 'draining' });
    assert.equal(pick(s, draining, 'c1', false), N1.id);
    assert.equal(pick(s, draining, 'c2'), N2.id);
    assert.equal(pick(s, draining, 'c3'), N2.id);
  });
});

describe('least-calls: failover', () => {
  test('a dead node\'s calls spread over the survivors by configured weight, the same on two balancers with different loads', (t) => {
    const H2 = node(2, 1);
    const H3 = node(3, 2);
    const H4 = node(4, 3);
    const nodes = [N1, H2, H3, H4];
    const a = setup(t);
    const b = setup(t);
    // The two balancers know very different loads: A's H2 is busy, B's H4 is.
    for (let i = 0; i < 500; i++) a.loads.started(`a-busy-${i}`, H2.id);
    for (let i = 0; i < 500; i++) b.loads.started(`b-busy-${i}`, H4.id);
    const onlyN1 = cluster(nodes, { [H2.id]: 'draining', [H3.id]: 'draining', [H4.id]: 'draining' });
    const n1Calls = Array.from({ length: 3000 }, (_, i) => `dead-${i}`);
    for (const id of n1Calls) assert.equal(pick(a, onlyN1, id), N1.id);
    const n1Down = cluster(nodes, { [N1.id]: 'down' });
    const moved = new Map<string, number>();
    let agreed = 0;
    for (const id of n1Calls) {
      const heir = pick(a, n1Down, id, false);
      const onB = syncId(b.a.repick({ msg: MSG, callId: id, newCall: false, src: CLIENT }, N1.id, n1Down));
      assert.ok(heir !== null && heir !== N1.id, `${id} -> ${heir}`);
      if (onB === heir) agreed++;
      moved.set(heir, (moved.get(heir) ?? 0) + 1);
    }
    const shares = [H2, H3, H4].map((n) => (moved.get(n.id) ?? 0) / n1Calls.length);
    console.log(`least-calls failover of 3000 calls over weights 1/2/3: shares ${shares.map((x) => x.toFixed(3)).join(' / ')} (expected 0.167 / 0.333 / 0.500); balancers agreed on ${agreed} of 3000`);
    assert.equal(agreed, n1Calls.length, 'every call moved to the same node on both balancers');
    [1 / 6, 2 / 6, 3 / 6].forEach((want, i) => assert.ok(Math.abs(shares[i] - want) / want < 0.1, `share ${shares[i]} against ${want}`));
    assert.equal(a.loads.activeCalls(N1.id), 0, 'the tracker followed every move');
    // Once moved, a call stays on its heir, also when N1 comes back.
    for (const id of n1Calls.slice(0, 100)) assert.equal(pick(a, cluster(nodes), id, false), syncId(a.a.repick({ msg: MSG, callId: id, newCall: false, src: CLIENT }, N1.id, n1Down)));
  });

  test('failover never goes to a draining node', (t) => {
    const s = setup(t);
    const c = cluster([N1, N2, N3, N4], { [N1.id]: 'down', [N2.id]: 'draining' });
    for (let i = 0; i < 200; i++) {
      const heir = syncId(s.a.repick({ msg: MSG, callId: `orphan-${i}`, newCall: false, src: CLIENT }, N1.id, c));
      assert.ok(heir === N3.id || heir === N4.id, `orphan-${i} -> ${heir}`);
    }
  });

  test('repick never returns the failed node, even when it is the least loaded and still listed active', (t) => {
    const s = setup(t);
    const c = cluster([N1, N2]);
    for (let i = 0; i < 10; i++) s.loads.started(`n2-${i}`, N2.id);
    assert.equal(syncId(s.a.repick({ msg: MSG, callId: 'r', newCall: false, src: CLIENT }, N1.id, c)), N2.id);
  });

  test('group failover: all calls of the dead node go to one survivor', (t) => {
    const loads = new CallTracker(600_000);
    const a = new LeastActiveCalls(algorithmContext({ callIdAffinityGroupFailover: true }, { loads }));
    t.after(() => {
      a.close();
      loads.close();
    });
    const c = cluster([N1, N2, N3, N4], { [N1.id]: 'down' });
    const heirs = new Set(Array.from({ length: 100 }, (_, i) => syncId(a.repick({ msg: MSG, callId: `g-${i}`, newCall: false, src: CLIENT }, N1.id, c))));
    assert.equal(heirs.size, 1);
    assert.ok(!heirs.has(N1.id));
  });
});

describe('leastLoaded', () => {
  test('random loads and weights: the result always has the minimum load per weight', () => {
    const rnd = prng(42);
    for (let round = 0; round < 200; round++) {
      const nodes = Array.from({ length: 1 + Math.floor(rnd() * 6) }, (_, i) => node(i + 1, 1 + Math.floor(rnd() * 5)));
      const load = new Map(nodes.map((n) => [n.id, Math.floor(rnd() * 20)]));
      const view = { activeCalls: (id: string): number => load.get(id) ?? 0 };
      const c = cluster(nodes);
      const got = leastLoaded(nodes, c, view, Math.floor(rnd() * 100));
      assert.ok(got !== null);
      const min = Math.min(...nodes.map((n) => (load.get(n.id) as number) / n.weight));
      assert.equal((load.get(got.id) as number) / got.weight, min, `round ${round}`);
    }
  });

  test('zero-weight nodes are skipped; an empty or all-excluded list gives null', () => {
    const zero = { activeCalls: (): number => 0 };
    const c = new ClusterSnapshot([{ node: N1, state: 'active', share: 0 }, { node: N2, state: 'active' }]);
    assert.equal(leastLoaded([N1, N2], c, zero, 0)?.id, N2.id);
    assert.equal(leastLoaded([], c, zero, 0), null);
    assert.equal(leastLoaded([N2], c, zero, 0, N2.id), null);
  });
});
