// Active-standby (Restcomm's ActiveStandbyAlgorithm): one node takes every new call; the first
// standby by node id takes over when it stops taking calls and keeps the role (no fail-back);
// calls keep Call-ID affinity, so a draining active node finishes its own calls.
// Two balancers sharing the active node need the Redis store (the memory store shares nothing),
// so that is not tested here.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveStandby } from '../../src/algorithms/active-standby.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot, type NodeState } from '../../src/cluster/snapshot.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { algorithmFor, CLIENT, snapshotOf, subnetNode, syncId } from '../helpers/cluster.ts';
import { invite } from '../helpers/sip.ts';

const node = (n: number): SipNode => subnetNode(3, n);

const N1 = node(1);
const N2 = node(2);
const N3 = node(3);
const ALL = [N1, N2, N3];

function cluster(states: Record<string, NodeState> = {}, nodes: SipNode[] = ALL): ClusterSnapshot {
  return snapshotOf(nodes, states);
}

const MSG: SipMessage = invite('standby');

function algorithm(t: TestContext, groupFailover = false): ActiveStandby {
  return algorithmFor(t, (ctx) => new ActiveStandby(ctx), { callIdAffinityGroupFailover: groupFailover });
}

function pick(a: ActiveStandby, c: ClusterSnapshot, callId: string, newCall = true): string | null {
  const r = a.pick({ msg: MSG, callId, newCall, src: CLIENT }, c);
  assert.ok(!(r instanceof Promise), 'the in-memory store never makes a pick wait');
  return r?.id ?? null;
}

function picks(a: ActiveStandby, c: ClusterSnapshot, callIds: string[], newCall = true): (string | null)[] {
  return callIds.map((id) => pick(a, c, id, newCall));
}

const calls = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const times = (id: string, n: number): string[] => Array.from({ length: n }, () => id);

describe('active-standby', () => {
  test('name', (t) => assert.equal(algorithm(t).name, 'active-standby'));

  test('every new call goes to one node, the first by id, whatever the snapshot order', (t) => {
    const a = algorithm(t);
    const c = cluster({}, [N3, N1, N2]);
    assert.deepEqual(picks(a, c, calls('c', 10)), times(N1.id, 10));
    assert.equal(a.activeNode(c)?.id, N1.id);
    assert.equal(syncId(a.pickHttp({ method: 'GET', url: '/', header: () => undefined, remoteAddress: '192.0.2.1' }, c)), N1.id);
  });

  test('the first node by id that takes calls: a draining or down first node is passed over', (t) => {
    const a = algorithm(t);
    assert.deepEqual(picks(a, cluster({ [N1.id]: 'down', [N2.id]: 'draining' }), calls('c', 3)), times(N3.id, 3));
  });

  test('active node down: new calls go to the next; it stays active when the old one comes back', (t) => {
    const a = algorithm(t);
    assert.deepEqual(picks(a, cluster(), calls('a', 3)), times(N1.id, 3));
    const n1Down = cluster({ [N1.id]: 'down' });
    assert.deepEqual(picks(a, n1Down, calls('b', 3)), times(N2.id, 3));
    const back = cluster();
    assert.deepEqual(picks(a, back, calls('c', 3)), times(N2.id, 3), 'no fail-back to N1');
    assert.equal(a.activeNode(back)?.id, N2.id);
    // The next change of active node passes over nothing that takes calls: N1 is first again.
    assert.deepEqual(picks(a, cluster({ [N2.id]: 'down' }), calls('d', 3)), times(N1.id, 3));
    assert.deepEqual(picks(a, cluster(), calls('e', 3)), times(N1.id, 3));
  });

  test('active node removed from the cluster entirely: the next takes over', (t) => {
    const a = algorithm(t);
    assert.equal(pick(a, cluster(), 'c1'), N1.id);
    assert.deepEqual(picks(a, cluster({}, [N2, N3]), calls('x', 3)), times(N2.id, 3));
    assert.equal(pick(a, cluster({}, [N2, N3]), 'c1', false), N2.id, 'its call moved with it');
  });

  test('a draining active node keeps its calls while new calls go to the next', (t) => {
    const a = algorithm(t);
    const before = calls('old', 4);
    assert.deepEqual(picks(a, cluster(), before), times(N1.id, 4));
    const draining = cluster({ [N1.id]: 'draining' });
    assert.deepEqual(picks(a, draining, calls('new', 4)), times(N2.id, 4));
    assert.deepEqual(picks(a, draining, before, false), times(N1.id, 4), 'in-call requests stay on the draining node');
    assert.deepEqual(picks(a, draining, before, true), times(N1.id, 4), 'so do retransmitted INVITEs');
    assert.deepEqual(picks(a, cluster(), calls('later', 2)), times(N2.id, 2), 'undrained N1 does not take the role back');
  });

  for (const groupFailover of [false, true]) {
    test(`calls of a dead active node all move to the new active node (groupFailover=${groupFailover})`, (t) => {
      const a = algorithm(t, groupFailover);
      const mine = calls('m', 50);
      assert.deepEqual(picks(a, cluster(), mine), times(N1.id, 50));
      const n1Down = cluster({ [N1.id]: 'down' });
      assert.deepEqual(picks(a, n1Down, mine, false), times(N2.id, 50));
      assert.deepEqual(picks(a, n1Down, calls('n', 3)), times(N2.id, 3), 'and new calls too');
      assert.deepEqual(picks(a, cluster(), mine, false), times(N2.id, 50), 'they stay when N1 returns');
    });
  }

  test('repick answers the active node, never the failed one', (t) => {
    const a = algorithm(t);
    const c = cluster({ [N1.id]: 'down' });
    for (const id of calls('r', 20)) assert.equal(a.repick({ msg: MSG, callId: id, newCall: false, src: CLIENT }, N1.id, c)?.id, N2.id);
  });

  test('no node takes new calls: null, and a draining node still serves its calls', (t) => {
    const a = algorithm(t);
    assert.equal(pick(a, cluster({}, [N1]), 'c1'), N1.id);
    const drained = cluster({ [N1.id]: 'draining' }, [N1]);
    assert.equal(pick(a, drained, 'c2'), null);
    assert.equal(a.activeNode(drained), null);
    assert.equal(pick(a, drained, 'c1', false), N1.id);
    assert.equal(pick(a, cluster({ [N1.id]: 'down' }, [N1]), 'c1', false), null);
  });

  test('each instance elects on its own view; with the memory store they share nothing', (t) => {
    const a = algorithm(t);
    const b = algorithm(t);
    assert.equal(pick(a, cluster({ [N1.id]: 'down' }), 'x'), N2.id);
    assert.equal(pick(b, cluster(), 'y'), N1.id);
    assert.equal(pick(a, cluster(), 'z'), N2.id);
  });
});
