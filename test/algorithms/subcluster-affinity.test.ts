// Cluster-subdomain affinity (Restcomm's ClusterSubdomainAffinityAlgorithm): Call-ID affinity
// whose failover keeps a dead node's calls inside its subclusterMap group while the group has a
// node taking calls.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { CallIdAffinity } from '../../src/algorithms/callid-affinity.ts';
import { SubclusterAffinity, subclusterIndex } from '../../src/algorithms/subcluster-affinity.ts';
import { nodeId, type SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot, type NodeState } from '../../src/cluster/snapshot.ts';
import { loadConfigText } from '../../src/config/load.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { algorithmFor, CLIENT, snapshotOf, syncId, syncNode } from '../helpers/cluster.ts';
import { invite } from '../helpers/sip.ts';

function node(ip: string, port = 5080): SipNode {
  return { id: nodeId(ip, port), ip, ports: { udp: port }, weight: 1 };
}

describe('subclusterIndex', () => {
  const GROUPS = [['10.0.0.1', '10.0.0.2:5080'], ['[::1]:5080', '::2'], ['10.0.0.3']];
  const CASES: { name: string; node: { id: string; ip: string }; group: number }[] = [
    { name: 'ip member, its port', node: { id: '10.0.0.1:5080', ip: '10.0.0.1' }, group: 0 },
    { name: 'ip member covers every port of the IP', node: { id: '10.0.0.1:5090', ip: '10.0.0.1' }, group: 0 },
    { name: 'ip:port member', node: { id: '10.0.0.2:5080', ip: '10.0.0.2' }, group: 0 },
    { name: 'ip:port member does not cover another port', node: { id: '10.0.0.2:5090', ip: '10.0.0.2' }, group: -1 },
    { name: 'IPv6 [::1]:5080 member', node: { id: '[::1]:5080', ip: '::1' }, group: 1 },
    { name: 'IPv6 [::1]:5080 member, another port', node: { id: '[::1]:5090', ip: '::1' }, group: -1 },
    { name: 'IPv6 ip member', node: { id: '[::2]:5060', ip: '::2' }, group: 1 },
    { name: 'third group', node: { id: '10.0.0.3:5060', ip: '10.0.0.3' }, group: 2 },
    { name: 'ungrouped', node: { id: '10.0.0.9:5080', ip: '10.0.0.9' }, group: -1 },
    { name: 'ungrouped IPv6', node: { id: '[::9]:5080', ip: '::9' }, group: -1 },
  ];
  const groupOf = subclusterIndex(GROUPS);
  for (const c of CASES) test(`${c.name}: ${c.node.id} -> ${c.group}`, () => assert.equal(groupOf(c.node), c.group));

  test('an exact ip:port member wins over its IP listed in another group', () => {
    const of = subclusterIndex([['10.0.0.1'], ['10.0.0.1:5080']]);
    assert.equal(of({ id: '10.0.0.1:5080', ip: '10.0.0.1' }), 1);
    assert.equal(of({ id: '10.0.0.1:5070', ip: '10.0.0.1' }), 0);
  });

  test('the groups the config parser produces (IPv6 included) match the node ids', () => {
    const groups = loadConfigText('subclusterMap=( [0:0:0:0:0:0:0:1]:5080 , FD00::2 ) (10.0.0.3)').config.subclusterMap;
    const of = subclusterIndex(groups);
    assert.equal(of(node('::1')), 0);
    assert.equal(of(node('fd00::2', 5070)), 0);
    assert.equal(of(node('10.0.0.3')), 1);
    assert.equal(of(node('::1', 5090)), -1);
  });

  test('no groups: everything ungrouped', () => assert.equal(subclusterIndex([])({ id: '10.0.0.1:5080', ip: '10.0.0.1' }), -1));
});

const MSG: SipMessage = invite('sub');

// Group 0: A1 A2 A3; group 1: B1 (by IP) and B2 (by ip:port); C is in no group.
const A1 = node('10.0.4.1');
const A2 = node('10.0.4.2');
const A3 = node('10.0.4.3');
const B1 = node('10.0.5.1');
const B2 = node('10.0.5.2');
const C = node('10.0.6.1');
const ALL = [A1, A2, A3, B1, B2, C];
const GROUPS = [['10.0.4.1', '10.0.4.2', '10.0.4.3'], ['10.0.5.1', '10.0.5.2:5080']];

function cluster(states: Record<string, NodeState> = {}, nodes: SipNode[] = ALL): ClusterSnapshot {
  return snapshotOf(nodes, states);
}

function algorithm(t: TestContext, groupFailover = false, groups: string[][] = GROUPS): CallIdAffinity {
  return algorithmFor(t, (ctx) => new SubclusterAffinity(ctx), { callIdAffinityGroupFailover: groupFailover, subclusterMap: groups });
}

function pick(a: CallIdAffinity, c: ClusterSnapshot, callId: string, newCall = true): string {
  const r = a.pick({ msg: MSG, callId, newCall, src: CLIENT }, c);
  assert.ok(!(r instanceof Promise), 'the in-memory store never makes a pick wait');
  assert.ok(r !== null, `${callId}: no node`);
  return r.id;
}

/** Places `n` calls on `target`: the only node taking new calls at the time (the others drain). */
function callsOn(a: CallIdAffinity, target: SipNode, n: number, prefix = 'call'): string[] {
  const only = cluster(Object.fromEntries(ALL.filter((x) => x !== target).map((x) => [x.id, 'draining' as NodeState])));
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}@192.0.2.1`);
  for (const id of ids) assert.equal(pick(a, only, id), target.id);
  return ids;
}

/** Where each call goes in `c` (requests inside the call), counted per node id. */
function destinations(a: CallIdAffinity, c: ClusterSnapshot, ids: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const id of ids) {
    const to = pick(a, c, id, false);
    out.set(to, (out.get(to) ?? 0) + 1);
  }
  return out;
}

const sorted = (m: Map<string, number>): string[] => [...m.keys()].sort();

describe('subcluster: failover', () => {
  test('name; new calls are round robin over every node, groups do not matter', (t) => {
    const a = algorithm(t);
    assert.equal(a.name, 'subcluster');
    const c = cluster();
    assert.deepEqual(Array.from({ length: 6 }, (_, i) => pick(a, c, `rr-${i}`)), ALL.map((n) => n.id));
  });

  test('a dead node\'s calls stay in its group and spread over the other members (2000 calls, ±10%)', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, A1, 2000);
    const got = destinations(a, cluster({ [A1.id]: 'down' }), ids);
    assert.deepEqual(sorted(got), [A2.id, A3.id]);
    for (const [id, n] of got) assert.ok(Math.abs(n - 1000) <= 100, `${id} took ${n} of 2000`);
    // Later requests follow the move.
    const again = destinations(a, cluster({ [A1.id]: 'down' }), ids);
    assert.deepEqual(again, got);
  });

  test('other nodes\' calls do not move when a node dies', (t) => {
    const a = algorithm(t);
    const onA2 = callsOn(a, A2, 100, 'a2');
    const onB1 = callsOn(a, B1, 100, 'b1');
    const down = cluster({ [A1.id]: 'down' });
    assert.deepEqual(destinations(a, down, onA2), new Map([[A2.id, 100]]));
    assert.deepEqual(destinations(a, down, onB1), new Map([[B1.id, 100]]));
  });

  test('only one member left that takes calls: it gets them all; draining members get none', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, A1, 300);
    assert.deepEqual(destinations(a, cluster({ [A1.id]: 'down', [A2.id]: 'draining' }), ids), new Map([[A3.id, 300]]));
  });

  test('a group by ip and ip:port members: B1 dead -> B2', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, B1, 200);
    assert.deepEqual(destinations(a, cluster({ [B1.id]: 'down' }), ids), new Map([[B2.id, 200]]));
  });

  test('whole group down: the calls go anywhere else, spread', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, A1, 900);
    const got = destinations(a, cluster({ [A1.id]: 'down', [A2.id]: 'down', [A3.id]: 'down' }), ids);
    assert.deepEqual(sorted(got), [B1.id, B2.id, C.id].sort());
    for (const [id, n] of got) assert.ok(Math.abs(n - 300) <= 45, `${id} took ${n} of 900`);
  });

  test('whole group draining counts as unavailable for moved calls', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, B2, 300);
    const got = destinations(a, cluster({ [B2.id]: 'down', [B1.id]: 'draining' }), ids);
    assert.ok(!got.has(B1.id) && !got.has(B2.id), `went to ${sorted(got).join(', ')}`);
    assert.deepEqual(sorted(got), [A1.id, A2.id, A3.id, C.id].sort());
  });

  test('an ungrouped node\'s calls spread over every survivor', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, C, 1000);
    const got = destinations(a, cluster({ [C.id]: 'down' }), ids);
    assert.deepEqual(sorted(got), [A1.id, A2.id, A3.id, B1.id, B2.id].sort());
    for (const [id, n] of got) assert.ok(Math.abs(n - 200) <= 40, `${id} took ${n} of 1000`);
  });

  test('group failover: all of a dead node\'s calls go to ONE member of its group', (t) => {
    const a = algorithm(t, true);
    const ids = callsOn(a, A1, 500);
    const got = destinations(a, cluster({ [A1.id]: 'down' }), ids);
    assert.equal(got.size, 1);
    const [heir] = got.keys();
    assert.ok(heir === A2.id || heir === A3.id, `heir ${heir}`);
  });

  test('group failover with the whole group down: all to one node elsewhere', (t) => {
    const a = algorithm(t, true);
    const ids = callsOn(a, A2, 200);
    const got = destinations(a, cluster({ [A1.id]: 'down', [A2.id]: 'down', [A3.id]: 'down' }), ids);
    assert.equal(got.size, 1);
    assert.ok([B1.id, B2.id, C.id].includes([...got.keys()][0]));
  });

  test('a node removed from the snapshot entirely is still placed in its group (by the IP in its id)', (t) => {
    const a = algorithm(t);
    const ids = callsOn(a, A1, 600);
    const got = destinations(a, cluster({}, [A2, A3, B1, B2, C]), ids);
    assert.deepEqual(sorted(got), [A2.id, A3.id]);
  });

  test('removed ip:port member, and removed IPv6 members, found by their id', (t) => {
    const V1 = node('fd00::1');
    const V2 = node('fd00::2');
    const V3 = node('fd00::3', 5090);
    const W = node('fd00::9');
    const groups = [['10.0.5.2:5080', '10.0.5.1'], ['fd00::1', 'fd00::2'], ['[fd00::3]:5090', '10.0.6.1']];
    const a = algorithm(t, false, groups);
    const only = (n: SipNode, nodes: SipNode[]): ClusterSnapshot =>
      new ClusterSnapshot(nodes.map((x) => ({ node: x, state: x === n ? 'active' : 'draining' })));
    const everyone = [B1, B2, C, V1, V2, V3, W];
    const place = (n: SipNode, prefix: string): string[] => Array.from({ length: 50 }, (_, i) => {
      const id = `${prefix}-${i}`;
      assert.equal(pick(a, only(n, everyone), id), n.id);
      return id;
    });
    const onB2 = place(B2, 'b2');
    const onV1 = place(V1, 'v1');
    const onV3 = place(V3, 'v3');
    const without = (gone: SipNode): ClusterSnapshot => cluster({}, everyone.filter((x) => x !== gone));
    assert.deepEqual(destinations(a, without(B2), onB2), new Map([[B1.id, 50]]));
    assert.deepEqual(destinations(a, without(V1), onV1), new Map([[V2.id, 50]]));
    assert.deepEqual(destinations(a, without(V3), onV3), new Map([[C.id, 50]]));
  });

  test('two balancers with the same view move each call to the same member', (t) => {
    const a = algorithm(t);
    const b = algorithm(t);
    const down = cluster({ [A3.id]: 'down' });
    for (let i = 0; i < 300; i++) {
      const req = { msg: MSG, callId: `agree-${i}`, newCall: false, src: CLIENT };
      const heir = syncNode(a.repick(req, A3.id, down));
      assert.ok(heir?.id === A1.id || heir?.id === A2.id);
      assert.equal(syncId(b.repick(req, A3.id, down)), heir.id);
    }
  });
});
