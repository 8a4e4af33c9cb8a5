// What the operator surface and a reload change in the cluster view: node weights (setWeight, and
// an operator's weight: adminSetWeight, kept until withdrawn or a reload changes the node's
// weight, shared through the store like a drain), an operator's drain (adminDrain: sticky, whatever heartbeats and other balancers' heartbeat
// records say, shared through the store's node directory, latest action wins), static nodes a
// reload adds, changes or removes (putStatic, retire, removeRetired), and the live settings of
// the registry, passive health and active health checks (reconfigure). Registries run on an
// injected clock; two "balancers" share one MemoryStateStore directory, as in
// node-registry-sync.test.ts, with ticks driven by hand.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { pino } from 'pino';
import { ActiveHealthCheck } from '../../src/cluster/active-health.ts';
import { NodeRegistry, type RegistryEvent } from '../../src/cluster/node-registry.ts';
import { MAX_NODE_WEIGHT } from '../../src/config/types.ts';
import { ADMIN_ACTIVATE_KEPT_MS, RegistrySync } from '../../src/cluster/node-registry-sync.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { PassiveHealth } from '../../src/cluster/passive-health.ts';
import { WeightedRoundRobin } from '../../src/algorithms/callid-affinity.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { NodeRegistration } from '../../src/heartbeat/protocol.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import { eventually } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
const T0 = 1_700_000_000_000;
const A: SipNode = { id: '10.0.0.1:5080', ip: '10.0.0.1', ports: { udp: 5080 }, weight: 1 };
const B: SipNode = { id: '10.0.0.2:5080', ip: '10.0.0.2', ports: { udp: 5080 }, weight: 1 };
const REG_ID = '10.0.0.3:5080';

function reg(sessionId: string, ip = '10.0.0.3'): NodeRegistration {
  return { ip, ports: { udp: 5080 }, sessionId, version: '1' };
}

function registry(clock: () => number, nodeTimeoutMs = 8400): NodeRegistry {
  return new NodeRegistry({ nodeTimeoutMs, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 10, log, now: clock });
}

function single() {
  let now = T0;
  const r = registry(() => now);
  const events: RegistryEvent[] = [];
  r.onEvent((e) => events.push(e));
  return { r, events, advance: (ms: number) => { now += ms; }, now: () => now };
}

describe('NodeRegistry.setWeight', () => {
  test('a new weight makes a new snapshot with a new SipNode and an updated event; the old snapshot keeps the old weight', () => {
    const { r, events } = single();
    r.addStatic([A, B]);
    const before = r.snapshot();
    events.length = 0;
    assert.equal(r.setWeight(A.id, 5), true);
    const after = r.snapshot();
    assert.notEqual(after, before, 'a new snapshot');
    assert.equal(after.weightOf(after.get(A.id) as SipNode), 5);
    assert.equal(before.weightOf(before.get(A.id) as SipNode), 1, 'a snapshot is immutable');
    assert.notEqual(r.get(A.id)?.node, A, 'a new SipNode, never the old one mutated');
    assert.equal(A.weight, 1);
    assert.deepEqual(events, [{ type: 'updated', nodeId: A.id, detail: 'weight 1 -> 5' }]);
    assert.equal(after.stateOf(A.id), 'active', 'flags untouched');
  });

  const INVALID: { name: string; id: string; weight: number }[] = [
    { name: 'unknown node', id: '10.9.9.9:5060', weight: 2 },
    { name: 'zero', id: A.id, weight: 0 },
    { name: 'negative', id: A.id, weight: -3 },
    { name: 'fraction', id: A.id, weight: 1.5 },
    { name: 'over the maximum', id: A.id, weight: MAX_NODE_WEIGHT + 1 },
    { name: 'NaN', id: A.id, weight: Number.NaN },
  ];
  for (const c of INVALID) {
    test(`refused, nothing changes: ${c.name}`, () => {
      const { r, events } = single();
      r.addStatic([A]);
      const snap = r.snapshot();
      events.length = 0;
      assert.equal(r.setWeight(c.id, c.weight), false);
      assert.equal(r.snapshot(), snap);
      assert.deepEqual(events, []);
    });
  }

  test('the same weight again: true, no new snapshot, no event', () => {
    const { r, events } = single();
    r.addStatic([A]);
    r.setWeight(A.id, 7);
    const snap = r.snapshot();
    events.length = 0;
    assert.equal(r.setWeight(A.id, 7), true);
    assert.equal(r.snapshot(), snap);
    assert.deepEqual(events, []);
  });

  test('a registered node keeps its weight when it registers again with a new session', () => {
    const { r } = single();
    r.start(reg('s1'));
    r.setWeight(REG_ID, 9);
    r.start(reg('s2'));
    assert.equal(r.get(REG_ID)?.node.weight, 9);
  });

  test('weighted round robin follows the new weight on the next picks', () => {
    const { r } = single();
    r.addStatic([A, B]);
    const wrr = new WeightedRoundRobin({ config: defaultConfig(), store: new MemoryStateStore(), loads: { activeCalls: () => 0 }, log });
    const count = (): Map<string, number> => {
      const out = new Map<string, number>();
      for (let i = 0; i < 40; i++) {
        const n = (wrr as unknown as { choose(k: string, c: ReturnType<NodeRegistry['snapshot']>): SipNode | null }).choose('', r.snapshot());
        out.set(n?.id ?? 'none', (out.get(n?.id ?? 'none') ?? 0) + 1);
      }
      return out;
    };
    assert.deepEqual(count(), new Map([[A.id, 20], [B.id, 20]]));
    r.setWeight(A.id, 3);
    assert.deepEqual(count(), new Map([[A.id, 30], [B.id, 10]]));
    wrr.close();
  });
});

describe('NodeRegistry.adminDrain: sticky', () => {
  test('drain takes the node out of new-call selection (it keeps its calls); activate brings it back', () => {
    const { r, events } = single();
    r.addStatic([A, B]);
    events.length = 0;
    assert.equal(r.adminDrain(A.id, true), true);
    const snap = r.snapshot();
    assert.equal(snap.stateOf(A.id), 'draining');
    assert.equal(snap.isAlive(snap.get(A.id) as SipNode), true);
    assert.equal(r.get(A.id)?.adminDrained, true);
    assert.equal(r.get(A.id)?.draining, false, 'the node\'s own drain flag is another thing');
    assert.equal(r.adminDrain(A.id, false), true);
    assert.equal(r.snapshot().stateOf(A.id), 'active');
    assert.deepEqual(events.map((e) => [e.type, e.detail]), [
      ['state', 'drained by an operator (admin API)'], ['state', 'activated by an operator (admin API)'],
    ]);
    assert.equal(r.adminDrain('10.9.9.9:5060', true), false, 'unknown node');
  });

  const KEEPS: { name: string; act: (r: NodeRegistry, advance: (ms: number) => void, now: () => number) => void }[] = [
    { name: 'heartbeats', act: (r) => { r.heartbeat('s1'); r.heartbeat('s1'); } },
    { name: 'a newer heartbeat record without drain from another balancer', act: (r, advance, now) => { advance(500); r.merge(reg('s1'), now(), false); } },
    { name: 'a re-registration with a new session', act: (r) => { r.start(reg('s2')); } },
    { name: 'the node\'s own undrain flag', act: (r) => { r.setDraining(REG_ID, false); } },
    {
      name: 'expiry and a later registration',
      act: (r, advance) => {
        advance(10_000);
        assert.deepEqual(r.expire(), [REG_ID]);
        r.start(reg('s3'));
      },
    },
  ];
  for (const c of KEEPS) {
    test(`a drained registered node stays drained after ${c.name}`, () => {
      const { r, advance, now } = single();
      r.start(reg('s1'));
      r.adminDrain(REG_ID, true);
      c.act(r, advance, now);
      assert.equal(r.get(REG_ID)?.adminDrained, true);
      assert.equal(r.snapshot().stateOf(REG_ID), 'draining');
    });
  }

  test('activate also ends the node\'s own drain (shutdown), as before', () => {
    const { r } = single();
    r.start(reg('s1'));
    r.shutdown('s1');
    assert.equal(r.snapshot().stateOf(REG_ID), 'draining');
    r.adminDrain(REG_ID, false);
    assert.equal(r.snapshot().stateOf(REG_ID), 'active');
  });

  test('a drained node is not the version that decides the rolling upgrade', () => {
    const { r } = single();
    r.start({ ...reg('s1'), version: '2' });
    r.start({ ...reg('s2', '10.0.0.4'), version: '1' });
    assert.equal(r.snapshot().stateOf('10.0.0.4:5080'), 'draining', 'older version');
    r.adminDrain(REG_ID, true);
    assert.equal(r.snapshot().stateOf('10.0.0.4:5080'), 'active', 'the newer one takes no calls: the older one does');
  });
});

describe('NodeRegistry: static nodes a reload adds, changes and removes', () => {
  test('putStatic adds an unknown node (active, added event), leaves an identical one alone, updates a changed one', () => {
    const { r, events } = single();
    r.addStatic([A]);
    events.length = 0;
    assert.equal(r.putStatic(B), 'added');
    assert.equal(r.snapshot().stateOf(B.id), 'active');
    assert.equal(r.putStatic({ ...A, ports: { udp: 5080 } }), 'unchanged');
    assert.equal(r.putStatic({ ...A, ports: { udp: 5080, tcp: 5080 } }), 'updated');
    assert.deepEqual(r.get(A.id)?.node.ports, { udp: 5080, tcp: 5080 });
    assert.deepEqual(events.map((e) => [e.type, e.nodeId]), [['added', B.id], ['updated', A.id]]);
  });

  test('retire: draining at once; removed once it has had no call for the linger time', () => {
    const { r, advance, events } = single();
    r.addStatic([A, B]);
    let calls = 2;
    assert.equal(r.retire(A.id), true);
    assert.equal(r.get(A.id)?.retiring, true);
    const snap = r.snapshot();
    assert.equal(snap.stateOf(A.id), 'draining');
    assert.equal(snap.isAlive(snap.get(A.id) as SipNode), true, 'its calls go on');
    assert.equal(snap.isClusterAddress('10.0.0.1', 5080), true, 'its own requests still come from the cluster');
    const hasCalls = (id: string): boolean => id === A.id && calls > 0;
    assert.deepEqual(r.removeRetired(hasCalls, 1000), []);
    advance(5000);
    assert.deepEqual(r.removeRetired(hasCalls, 1000), [], 'calls left');
    calls = 0;
    assert.deepEqual(r.removeRetired(hasCalls, 1000), [], 'quiet since now');
    advance(999);
    assert.deepEqual(r.removeRetired(hasCalls, 1000), []);
    calls = 1;
    advance(1);
    assert.deepEqual(r.removeRetired(hasCalls, 1000), [], 'a call again: the quiet time starts over');
    calls = 0;
    r.removeRetired(hasCalls, 1000);
    advance(1000);
    assert.deepEqual(r.removeRetired(hasCalls, 1000), [A.id]);
    assert.equal(r.get(A.id), undefined);
    assert.equal(r.get(B.id)?.retiring, false, 'the others stay');
    assert.deepEqual(events.at(-1), { type: 'removed', nodeId: A.id, detail: 'removed from nodes= (its calls have ended)' });
  });

  test('a retiring node listed again is kept and active again', () => {
    const { r } = single();
    r.addStatic([A]);
    r.retire(A.id);
    assert.equal(r.putStatic(A), 'updated');
    assert.equal(r.get(A.id)?.retiring, false);
    assert.equal(r.snapshot().stateOf(A.id), 'active');
    assert.deepEqual(r.removeRetired(() => false, 0), []);
  });

  test('a static node that also registered becomes a registered node, judged by its heartbeats', () => {
    const { r, advance } = single();
    const node: SipNode = { id: REG_ID, ip: '10.0.0.3', ports: { udp: 5080 }, weight: 1 };
    r.addStatic([node]);
    r.start(reg('s1'));
    assert.equal(r.get(REG_ID)?.source, 'static');
    assert.equal(r.retire(REG_ID), true);
    assert.equal(r.get(REG_ID)?.source, 'heartbeat');
    assert.equal(r.get(REG_ID)?.retiring, false);
    assert.equal(r.snapshot().stateOf(REG_ID), 'active');
    advance(8401);
    assert.deepEqual(r.expire(), [REG_ID]);
  });

  test('retire refuses a node that is not static', () => {
    const { r } = single();
    r.start(reg('s1'));
    assert.equal(r.retire(REG_ID), false);
    assert.equal(r.retire('10.9.9.9:5060'), false);
  });

  test('reconfigure: a new nodeTimeout and ramp-up apply at once', () => {
    const { r, advance } = single();
    r.start(reg('s1'));
    advance(3000);
    r.reconfigure({ nodeTimeoutMs: 2000, rampUpPeriodMs: 1000, rampUpPercent: 50 });
    assert.deepEqual(r.expire(), [REG_ID]);
    r.start(reg('s2'));
    const snap = r.snapshot();
    assert.equal(snap.shareOf(snap.get(REG_ID) as SipNode), 0.5, 'a node that just joined ramps up under the new settings');
  });
});

/** Two balancers' registries and syncs over one store directory, one clock. */
function shared(t: TestContext) {
  let now = T0;
  const clock = (): number => now;
  const store = new MemoryStateStore();
  const r1 = registry(clock);
  const r2 = registry(clock);
  const opts = (balancerId: string) => ({ balancerId, nodeTimeoutMs: 8400, intervalMs: 1000, log, now: clock });
  const s1 = new RegistrySync(r1, store.nodes, opts('balancer-1'));
  const s2 = new RegistrySync(r2, store.nodes, opts('balancer-2'));
  t.after(async () => {
    s1.close();
    s2.close();
    await store.close();
  });
  return {
    r1, r2, s1, s2, store,
    advance: (ms: number) => { now += ms; },
    sync: async (): Promise<void> => {
      await s1.tick();
      await s2.tick();
    },
  };
}

describe('admin drains shared through the store', () => {
  test('a static node drained at balancer 1 drains at balancer 2; activate at balancer 2 brings it back at both', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.r1.adminDrain(A.id, true);
    assert.deepEqual((await s.store.nodes.adminDrains())?.map((d) => [d.id, d.drained, d.by]), [[A.id, true, 'balancer-1']], 'written at once');
    await s.s2.tick();
    assert.equal(s.r2.snapshot().stateOf(A.id), 'draining');
    assert.equal(s.r2.get(A.id)?.adminDrained, true);
    s.advance(10);
    s.r2.adminDrain(A.id, false);
    await s.sync();
    assert.equal(s.r1.snapshot().stateOf(A.id), 'active');
    assert.equal(s.r2.snapshot().stateOf(A.id), 'active');
    assert.deepEqual((await s.store.nodes.adminDrains())?.map((d) => [d.id, d.drained, d.by]), [[A.id, false, 'balancer-2']]);
  });

  test('the next heartbeat record of the balancer that hears the node does not undo a drain set elsewhere', async (t) => {
    const s = shared(t);
    s.r2.start(reg('s1')); // only balancer 2 hears the node
    await s.sync();
    await s.sync();
    assert.equal(s.r1.get(REG_ID)?.origin, 'remote');
    s.r1.adminDrain(REG_ID, true);
    for (let i = 0; i < 5; i++) {
      s.advance(1000);
      s.r2.heartbeat('s1');
      await s.sync();
      assert.equal(s.r1.snapshot().stateOf(REG_ID), 'draining', `balancer 1, heartbeat ${i}`);
      assert.equal(s.r2.snapshot().stateOf(REG_ID), 'draining', `balancer 2, heartbeat ${i}`);
    }
    const records = await s.store.nodes.list();
    assert.equal(records?.[0].draining, false, 'the heartbeat record says nothing of the operator\'s drain');
  });

  test('the latest action wins: an older drain published late does not undo a newer activate', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.advance(100);
    s.r2.adminDrain(A.id, false);
    await s.s2.tick();
    // A third balancer's drain stamped before balancer 2's activate, written over it in the
    // store. Balancer 1 may take it for one round (it knows nothing newer), until balancer 2,
    // which does, writes its activate again.
    s.store.nodes.setAdminDrain({ id: A.id, drained: true, at: T0 + 50, by: 'balancer-3' });
    await s.sync();
    assert.equal(s.r2.snapshot().stateOf(A.id), 'active', 'balancer 2 knows better');
    await s.sync();
    assert.equal(s.r1.snapshot().stateOf(A.id), 'active');
    assert.equal(s.r2.snapshot().stateOf(A.id), 'active');
    assert.deepEqual((await s.store.nodes.adminDrains())?.map((d) => [d.drained, d.by]), [[false, 'balancer-2']], 'balancer 2 wrote its newer activate again');
  });

  test('a drain for a node this balancer does not know yet applies when the node appears', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r1.adminDrain(A.id, true);
    await s.sync();
    s.r2.addStatic([A]);
    assert.equal(s.r2.snapshot().stateOf(A.id), 'draining');
  });

  test('store lost its data: the balancer that drained writes it again, the others keep it meanwhile', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.r1.adminDrain(A.id, true);
    await s.sync();
    s.store.nodes.removeAdminDrain(A.id);
    await s.s1.tick();
    assert.equal((await s.store.nodes.adminDrains())?.length, 1, 'written again');
    await s.s2.tick();
    assert.equal(s.r2.snapshot().stateOf(A.id), 'draining');
  });

  test('a shared drain whose record is gone (and not written again) is dropped', async (t) => {
    const s = shared(t);
    s.r2.addStatic([A]);
    s.store.nodes.setAdminDrain({ id: A.id, drained: true, at: T0, by: 'balancer-3' });
    await s.s2.tick();
    assert.equal(s.r2.snapshot().stateOf(A.id), 'draining');
    s.store.nodes.removeAdminDrain(A.id);
    await s.s2.tick();
    assert.equal(s.r2.snapshot().stateOf(A.id), 'active');
  });

  test('an activate record is forgotten after a day, a drain is not', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A, B]);
    s.r1.adminDrain(A.id, true);
    s.r1.adminDrain(B.id, true);
    s.r1.adminDrain(B.id, false);
    await s.sync();
    s.advance(ADMIN_ACTIVATE_KEPT_MS + 10);
    await s.sync();
    assert.deepEqual((await s.store.nodes.adminDrains())?.map((d) => [d.id, d.drained]), [[A.id, true]]);
    assert.equal(s.r1.adminDrainStates().has(B.id), false);
    assert.equal(s.r1.snapshot().stateOf(A.id), 'draining');
  });

  test('the store unavailable: drains known are kept', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.r1.adminDrain(A.id, true);
    await s.sync();
    const original = s.store.nodes.adminDrains.bind(s.store.nodes);
    s.store.nodes.adminDrains = () => Promise.resolve(null);
    t.after(() => { s.store.nodes.adminDrains = original; });
    await s.s2.tick();
    assert.equal(s.r2.snapshot().stateOf(A.id), 'draining');
  });
});

describe('PassiveHealth.reconfigure', () => {
  function setup() {
    const r = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
    r.addStatic([A]);
    const p = new PassiveHealth(r, { errorStatuses: [503], maxErrors: 3, windowMs: 1000, maxUnanswered: 2, maxResponseTimeMs: 100 });
    return { r, p };
  }

  test('new statuses and a lower limit apply to the next responses', () => {
    const { r, p } = setup();
    p.fromNode(A.id, 500, undefined, 0);
    p.fromNode(A.id, 500, undefined, 1);
    assert.equal(r.get(A.id)?.passiveDown, false, '500 is not an error status yet');
    p.reconfigure({ errorStatuses: [500, 503], maxErrors: 1, windowMs: 1000 });
    p.fromNode(A.id, 500, undefined, 10);
    p.fromNode(A.id, 500, undefined, 11);
    assert.equal(r.get(A.id)?.passiveDown, true);
    assert.equal(r.get(A.id)?.passiveCause, 'errors');
  });

  test('turning unanswered-request detection off lets the node it took out back in', () => {
    const { r, p } = setup();
    for (let t = 0; t <= 300; t += 100) p.requestSent(A.id, t);
    assert.equal(r.get(A.id)?.passiveCause, 'silence');
    p.reconfigure({ errorStatuses: [503], maxErrors: 3, windowMs: 1000, maxUnanswered: null, maxResponseTimeMs: null });
    assert.equal(r.get(A.id)?.passiveDown, false);
    assert.equal(r.snapshot().stateOf(A.id), 'active');
    for (let t = 400; t <= 2000; t += 100) p.requestSent(A.id, t);
    assert.equal(r.get(A.id)?.passiveDown, false, 'off: requests are not counted');
  });
});

describe('ActiveHealthCheck.reconfigure', () => {
  /** A UDP port nothing listens on: probes are refused (ICMP port unreachable). */
  async function closedPort(): Promise<number> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    const port = s.address().port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    return port;
  }

  async function setup(t: TestContext, failures: number) {
    const port = await closedPort();
    const node: SipNode = { id: `127.0.0.1:${port}`, ip: '127.0.0.1', ports: { udp: port }, weight: 1 };
    const r = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
    r.addStatic([node]);
    const p = new PassiveHealth(r, { errorStatuses: [503], maxErrors: 5, windowMs: 1000 });
    const h = new ActiveHealthCheck(r, p, { intervalMs: 60_000, timeoutMs: 500, failures, successes: 1, bindHost: '127.0.0.1', log });
    t.after(() => h.close());
    return { r, p, h, node };
  }

  async function settledRound(h: ActiveHealthCheck): Promise<void> {
    const sent = h.probesSent;
    h.round();
    assert.equal(h.probesSent, sent + 1);
    // A refused UDP probe settles within milliseconds; the next round probes again only then.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  test('a higher failure threshold applies to the streak under way', async (t) => {
    const { r, h, node } = await setup(t, 2);
    await settledRound(h);
    assert.equal(r.get(node.id)?.healthy, true, 'one failure of two');
    h.reconfigure({ intervalMs: 60_000, timeoutMs: 500, failures: 3, successes: 1 });
    await settledRound(h);
    assert.equal(r.get(node.id)?.healthy, true, 'two failures of three');
    await settledRound(h);
    assert.equal(r.get(node.id)?.healthy, false, 'three of three');
  });

  test('a new interval starts a new round timer; 0 stops probing and lets the nodes probes took out back in', async (t) => {
    const { r, h, node } = await setup(t, 1);
    h.start();
    h.reconfigure({ intervalMs: 50, timeoutMs: 500, failures: 1, successes: 1 });
    await eventually('probes at the new interval take the node out', 3000, () => r.get(node.id)?.healthy === false);
    r.setPassiveDown(node.id, 'test', 'errors');
    h.reconfigure({ intervalMs: 0, timeoutMs: 500, failures: 1, successes: 1 });
    assert.equal(r.get(node.id)?.healthy, true);
    assert.equal(r.get(node.id)?.passiveDown, true, 'passive health\'s takeout is not the probes\' to undo');
    const sent = h.probesSent;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(h.probesSent, sent, 'no probe any more');
    assert.deepEqual(h.settings(), { intervalMs: 0, timeoutMs: 500, failures: 1, successes: 1 });
  });
});

describe('operator weights (adminSetWeight), kept and withdrawn', () => {
  test('an operator weight applies at once; null gives the node back its configured weight', () => {
    const { r } = single();
    r.addStatic([{ ...A, weight: 2 }]);
    assert.equal(r.adminSetWeight(A.id, 7), true);
    assert.equal(r.snapshot().get(A.id)?.weight, 7);
    assert.equal(r.adminSetWeight(A.id, null), true);
    assert.equal(r.snapshot().get(A.id)?.weight, 2);
    assert.equal(r.adminWeightStates().get(A.id)?.value, null);
  });

  const refused: { name: string; id: string; weight: number | null }[] = [
    { name: 'unknown node', id: '10.9.9.9:5060', weight: 3 },
    { name: 'weight 0', id: A.id, weight: 0 },
    { name: `weight ${MAX_NODE_WEIGHT + 1}`, id: A.id, weight: MAX_NODE_WEIGHT + 1 },
    { name: 'weight 2.5', id: A.id, weight: 2.5 },
  ];
  for (const c of refused) {
    test(`refused, nothing recorded: ${c.name}`, () => {
      const { r } = single();
      r.addStatic([A]);
      assert.equal(r.adminSetWeight(c.id, c.weight), false);
      assert.equal(r.adminWeightStates().size, 0);
      assert.equal(r.snapshot().get(A.id)?.weight, 1);
    });
  }

  test('a reload that keeps the node\'s weight in nodes= keeps the operator\'s; one that changes it withdraws it', () => {
    const { r } = single();
    r.addStatic([A]);
    r.adminSetWeight(A.id, 5);
    r.putStatic({ ...A, ports: { udp: 5080, tcp: 5080 } });
    assert.equal(r.snapshot().get(A.id)?.weight, 5, 'spec changed, weight kept');
    r.configureWeight(A.id, 3);
    assert.equal(r.snapshot().get(A.id)?.weight, 3);
    assert.equal(r.adminWeightStates().get(A.id)?.value, null, 'withdrawn, to be shared');
    r.adminSetWeight(A.id, null);
    assert.equal(r.snapshot().get(A.id)?.weight, 3, 'the configured weight is the new one');
  });

  test('a static node a reload adds after an operator weight for it: that weight, and its own once withdrawn', () => {
    const { r } = single();
    r.mergeAdminWeight({ id: A.id, weight: 6, at: T0, by: 'balancer-3' });
    assert.equal(r.putStatic({ ...A, weight: 2 }), 'added');
    assert.equal(r.snapshot().get(A.id)?.weight, 6);
    r.adminSetWeight(A.id, null);
    assert.equal(r.snapshot().get(A.id)?.weight, 2);
  });

  test('a registered node keeps the operator\'s weight through a new session, and goes back to 1 without it', () => {
    const { r } = single();
    r.start(reg('s1'));
    r.adminSetWeight(REG_ID, 4);
    r.start(reg('s2'));
    assert.equal(r.snapshot().get(REG_ID)?.weight, 4);
    r.adminSetWeight(REG_ID, null);
    assert.equal(r.snapshot().get(REG_ID)?.weight, 1);
  });
});

describe('admin weights shared through the store', () => {
  test('a weight set at balancer 1 applies at balancer 2; a withdrawal at balancer 2 applies at both', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([{ ...A, weight: 2 }]);
    s.r1.adminSetWeight(A.id, 9);
    assert.deepEqual((await s.store.nodes.adminWeights())?.map((w) => [w.id, w.weight, w.by]), [[A.id, 9, 'balancer-1']], 'written at once');
    await s.s2.tick();
    assert.equal(s.r2.snapshot().get(A.id)?.weight, 9);
    s.advance(10);
    s.r2.adminSetWeight(A.id, null);
    await s.sync();
    assert.equal(s.r1.snapshot().get(A.id)?.weight, 1, 'balancer 1\'s own nodes= weight');
    assert.equal(s.r2.snapshot().get(A.id)?.weight, 2, 'balancer 2\'s own nodes= weight');
  });

  test('a reload that changes the node\'s weight withdraws an operator weight set elsewhere', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.r1.adminSetWeight(A.id, 9);
    await s.sync();
    s.advance(10);
    s.r2.configureWeight(A.id, 4); // balancer 2's file now says ;weight=4
    s.r1.configureWeight(A.id, 4); // and balancer 1's, reloaded in turn
    await s.sync();
    await s.sync();
    assert.equal(s.r1.snapshot().get(A.id)?.weight, 4);
    assert.equal(s.r2.snapshot().get(A.id)?.weight, 4);
    assert.deepEqual((await s.store.nodes.adminWeights())?.map((w) => w.weight), [null]);
  });

  test('the latest action wins, whatever order the records are read in', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.advance(100);
    s.r2.adminSetWeight(A.id, 6);
    await s.s2.tick();
    // An older weight from a third balancer, written over the newer one in the store.
    s.store.nodes.setAdminWeight({ id: A.id, weight: 2, at: T0 + 50, by: 'balancer-3' });
    await s.sync();
    await s.sync();
    assert.equal(s.r1.snapshot().get(A.id)?.weight, 6);
    assert.equal(s.r2.snapshot().get(A.id)?.weight, 6);
    assert.deepEqual((await s.store.nodes.adminWeights())?.map((w) => [w.weight, w.by]), [[6, 'balancer-2']], 'balancer 2 wrote its newer weight again');
  });

  test('equal times: the higher weight wins at every balancer', () => {
    const { r } = single();
    r.addStatic([A]);
    assert.equal(r.mergeAdminWeight({ id: A.id, weight: 3, at: T0, by: 'b1' }), true);
    assert.equal(r.mergeAdminWeight({ id: A.id, weight: 2, at: T0, by: 'b2' }), false);
    assert.equal(r.mergeAdminWeight({ id: A.id, weight: null, at: T0, by: 'b3' }), false);
    assert.equal(r.mergeAdminWeight({ id: A.id, weight: 5, at: T0, by: 'b4' }), true);
    assert.equal(r.snapshot().get(A.id)?.weight, 5);
  });

  test('a weight for a node not known yet applies when it appears, static or registered', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r1.start(reg('s1'));
    s.r1.adminSetWeight(A.id, 8);
    s.r1.adminSetWeight(REG_ID, 3);
    await s.s2.tick();
    s.r2.addStatic([A]);
    s.r2.start(reg('s9'));
    assert.equal(s.r2.snapshot().get(A.id)?.weight, 8);
    assert.equal(s.r2.snapshot().get(REG_ID)?.weight, 3);
  });

  test('store lost its data: the balancer that set the weight writes it again', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A]);
    s.r2.addStatic([A]);
    s.r1.adminSetWeight(A.id, 8);
    await s.sync();
    s.store.nodes.removeAdminWeight(A.id);
    await s.s1.tick();
    assert.equal((await s.store.nodes.adminWeights())?.length, 1, 'written again');
    await s.s2.tick();
    assert.equal(s.r2.snapshot().get(A.id)?.weight, 8);
  });

  test('a withdrawal is forgotten after a day, a weight is not', async (t) => {
    const s = shared(t);
    s.r1.addStatic([A, B]);
    s.r1.adminSetWeight(A.id, 4);
    s.r1.adminSetWeight(B.id, 4);
    s.r1.adminSetWeight(B.id, null);
    await s.sync();
    s.advance(ADMIN_ACTIVATE_KEPT_MS + 10);
    await s.sync();
    assert.deepEqual((await s.store.nodes.adminWeights())?.map((w) => [w.id, w.weight]), [[A.id, 4]]);
    assert.equal(s.r1.adminWeightStates().has(B.id), false);
    assert.equal(s.r1.snapshot().get(A.id)?.weight, 4);
    assert.equal(s.r1.snapshot().get(B.id)?.weight, 1);
  });
});
