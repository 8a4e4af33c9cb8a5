// The HTTP node choice over cluster snapshots: stickiness by route (hit, miss, unknown), the
// order of the rules, the algorithm's pickHttp (converged affinity with a real hash algorithm),
// HTTP health, and agreement between two balancers. No sockets: the chooser is pure over its
// inputs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Algorithm, HttpPickRequest, PickResult } from '../../src/algorithms/algorithm.ts';
import { HeaderConsistentHash } from '../../src/algorithms/header-hash.ts';
import { hashKey, rendezvous } from '../../src/algorithms/hashing.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import type { ClusterSnapshot, NodeState } from '../../src/cluster/snapshot.ts';
import { HttpHealth } from '../../src/http/http-health.ts';
import { HttpNodeChooser, type RoutedRequest } from '../../src/http/node-choice.ts';
import { HttpStats } from '../../src/http/stats.ts';
import { algorithmContext, pickId, snapshotOf } from '../helpers/cluster.ts';
import { inviteWith } from '../helpers/sip.ts';

const log = pino({ level: 'silent' });

function node(n: number, http: { port?: number; jvmRoute?: string } | null = {}): SipNode {
  const base = { id: `10.0.0.${n}:5080`, ip: `10.0.0.${n}`, ports: { udp: 5080 }, weight: 1 };
  return http === null ? base : { ...base, http: { port: http.port ?? 8080, ...(http.jvmRoute === undefined ? {} : { jvmRoute: http.jvmRoute }) } };
}

const N1 = node(1, { jvmRoute: 'node1' });
const N2 = node(2, { jvmRoute: 'node2' });
const N3 = node(3, { jvmRoute: 'node3' });
const SIP_ONLY = node(4, null);

function req(url: string, cookie?: string): RoutedRequest {
  return { method: 'GET', url, cookie, header: () => undefined, remoteAddress: '192.0.2.1', sticky: false };
}

/** An algorithm whose pickHttp answers what the test says. */
function fixedAlgorithm(answer: (r: HttpPickRequest, c: ClusterSnapshot) => PickResult): Algorithm {
  return {
    name: 'fixed', pick: () => null, repick: () => null, callEnded: () => undefined, close: () => undefined,
    pickHttp: answer,
  };
}

interface Rig {
  chooser: HttpNodeChooser;
  stats: HttpStats;
  health: HttpHealth;
}

function rig(nodes: SipNode[], algorithm: Algorithm = fixedAlgorithm(() => null), affinityKey = 'appsession'): Rig {
  const stats = new HttpStats();
  const health = new HttpHealth({ maxErrors: 0, windowMs: 60_000, probeIntervalMs: 0, probeSuccesses: 1, log, probe: async () => true, cluster: () => snapshotOf(nodes) });
  const chooser = new HttpNodeChooser({ algorithm, health, stats, affinityKey, knownNodes: () => nodes });
  return { chooser, stats, health };
}

function id(r: SipNode | null | Promise<SipNode | null>): string | null {
  assert.ok(!(r instanceof Promise));
  return r === null ? null : r.id;
}

const sticky: { name: string; states: Record<string, NodeState>; url: string; cookie?: string; expected: string | null; hits?: string; misses?: string; unknown?: number }[] = [
  { name: 'cookie route of an active node: a hit', states: {}, url: '/', cookie: 'JSESSIONID=S.node2', expected: N2.id, hits: N2.id },
  { name: 'path parameter route', states: {}, url: '/a;jsessionid=S.node3', expected: N3.id, hits: N3.id },
  { name: 'query parameter route', states: {}, url: '/a?jsessionid=S.node1', expected: N1.id, hits: N1.id },
  { name: 'a draining node keeps its sessions', states: { [N2.id]: 'draining' }, url: '/', cookie: 'JSESSIONID=S.node2', expected: N2.id, hits: N2.id },
  { name: 'a down node\'s session falls through and counts a miss on it', states: { [N2.id]: 'down' }, url: '/', cookie: 'JSESSIONID=S.node2', expected: null, misses: N2.id },
  { name: 'an unknown route falls through, counted apart', states: {}, url: '/', cookie: 'JSESSIONID=S.node9', expected: null, unknown: 1 },
  { name: 'a stale cookie before a live one: the live one wins, no miss', states: { [N1.id]: 'down' }, url: '/', cookie: 'JSESSIONID=OLD.node1; JSESSIONID=NEW.node3', expected: N3.id, hits: N3.id },
  { name: 'the path parameter ranks above the cookie', states: {}, url: '/a;jsessionid=P.node1', cookie: 'JSESSIONID=C.node2', expected: N1.id, hits: N1.id },
];
for (const c of sticky) {
  test(`stickiness: ${c.name}`, () => {
    const { chooser, stats } = rig([N1, N2, N3]);
    const r = req(c.url, c.cookie);
    const got = id(chooser.choose(r, snapshotOf([N1, N2, N3], c.states)));
    if (c.expected !== null) {
      assert.equal(got, c.expected);
      assert.equal(r.sticky, true);
    } else {
      assert.notEqual(got, null, 'a request whose route missed still goes somewhere');
      assert.equal(r.sticky, false);
      if (c.states[N2.id] === 'down') assert.notEqual(got, N2.id);
    }
    if (c.hits !== undefined) assert.equal(stats.node(c.hits).stickyHits, 1);
    if (c.misses !== undefined) assert.equal(stats.node(c.misses).stickyMisses, 1);
    assert.equal(stats.local.unknownRoutes, c.unknown ?? 0);
  });
}

test('without a session the nodes take turns (the algorithm returns nothing)', () => {
  const { chooser } = rig([N1, N2, N3]);
  const snap = snapshotOf([N1, N2, N3]);
  const got = Array.from({ length: 6 }, () => id(chooser.choose(req('/'), snap)));
  assert.deepEqual(got.slice().sort(), [N1.id, N1.id, N2.id, N2.id, N3.id, N3.id]);
});

test('nodes without an HTTP side are never chosen, even when the algorithm names one', () => {
  const { chooser } = rig([N1, SIP_ONLY], fixedAlgorithm(() => SIP_ONLY));
  const snap = snapshotOf([N1, SIP_ONLY]);
  for (let i = 0; i < 4; i++) assert.equal(id(chooser.choose(req('/'), snap)), N1.id);
});

test('no HTTP node taking new sessions: null (the balancer answers 503)', () => {
  const { chooser } = rig([N1, SIP_ONLY]);
  assert.equal(id(chooser.choose(req('/'), snapshotOf([N1, SIP_ONLY], { [N1.id]: 'draining' }))), null);
  assert.equal(id(chooser.choose(req('/'), snapshotOf([SIP_ONLY]))), null);
});

test('a session id without a route is hashed over the HTTP nodes: the same node on every balancer', () => {
  const snap = snapshotOf([N1, N2, N3, SIP_ONLY]);
  for (const sid of ['A1B2C3', 'FFEE00', '0123456789ABCDEF', 'x']) {
    const expected = rendezvous(hashKey(sid), [N1, N2, N3]);
    const one = rig([N1, N2, N3, SIP_ONLY]).chooser;
    const two = rig([N1, N2, N3, SIP_ONLY]).chooser;
    for (let i = 0; i < 3; i++) {
      assert.equal(id(one.choose(req('/', `JSESSIONID=${sid}`), snap)), expected?.id);
      assert.equal(id(two.choose(req(`/a;jsessionid=${sid}`), snap)), expected?.id);
    }
  }
});

test('the affinity key ranks above a routeless session id: the algorithm decides', () => {
  const { chooser } = rig([N1, N2, N3], fixedAlgorithm((r) => (r.url.includes('appsession=') ? N3 : null)));
  const snap = snapshotOf([N1, N2, N3]);
  for (let i = 0; i < 3; i++) assert.equal(id(chooser.choose(req('/?appsession=alice', 'JSESSIONID=ROUTELESS'), snap)), N3.id);
});

test('converged affinity: with the hash algorithm, ?appsession=<user> lands where the user\'s SIP key hashes', (t) => {
  const ctx = algorithmContext({ algorithmClass: 'hash', sipHeaderAffinityKey: 'from.user', httpAffinityKey: 'appsession' });
  const algorithm = new HeaderConsistentHash(ctx);
  t.after(() => algorithm.close());
  const { chooser } = rig([N1, N2, N3], algorithm);
  const snap = snapshotOf([N1, N2, N3]);
  const seen = new Set<string | null>();
  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) {
    const sipNode = pickId(algorithm, snap, inviteWith(`call-${user}`, { from: `<sip:${user}@example.org>;tag=1` }), true);
    assert.equal(id(chooser.choose(req(`/api/calls?appsession=${user}`), snap)), sipNode, user);
    seen.add(sipNode);
  }
  assert.ok(seen.size > 1, 'the users should not all hash to one node');
});

test('an algorithm that has to ask the shared store answers later; the choice follows it', async () => {
  const { chooser } = rig([N1, N2, N3], fixedAlgorithm(() => Promise.resolve(N2)));
  const r = chooser.choose(req('/?appsession=alice'), snapshotOf([N1, N2, N3]));
  assert.ok(r instanceof Promise);
  assert.equal((await r)?.id, N2.id);
});

test('HTTP health: a node that is out takes no new sessions but keeps sticky ones; with every node out, none is', () => {
  const { chooser, health } = rig([N1, N2], fixedAlgorithm(() => N1));
  const snap = snapshotOf([N1, N2]);
  health.failure(N1.id, 'status 503');
  assert.ok(health.isOut(N1.id));
  for (let i = 0; i < 4; i++) assert.equal(id(chooser.choose(req('/'), snap)), N2.id, 'new session on the node that is out');
  assert.equal(id(chooser.choose(req('/', 'JSESSIONID=S.node1'), snap)), N1.id, 'sticky request moved off the node');
  health.failure(N2.id, 'status 500');
  const both = new Set(Array.from({ length: 4 }, () => id(chooser.choose(req('/'), snap))));
  assert.deepEqual([...both].sort(), [N1.id, N2.id]);
  health.recovered(N1.id, 'test');
  health.recovered(N2.id, 'test');
  assert.equal(health.outCount, 0);
});

test('another(): a retry goes to a different node, or nowhere when there is none', () => {
  const { chooser } = rig([N1, N2]);
  const snap = snapshotOf([N1, N2]);
  for (let i = 0; i < 4; i++) assert.equal(chooser.another(N1.id, snap)?.id, N2.id);
  assert.equal(chooser.another(N1.id, snapshotOf([N1, N2], { [N2.id]: 'down' })), null);
});
