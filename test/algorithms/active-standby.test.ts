// Active-standby (Restcomm's ActiveStandbyAlgorithm): one node takes every new call; the first
// standby by node id takes over when it stops taking calls and keeps the role (no fail-back);
// calls keep Call-ID affinity, so a draining active node finishes its own calls.
// Across balancers (last part), over one shared store (the test double of the Redis tier, and a
// real redis-server): concurrent elections end on one active node, a restarted balancer adopts
// the stored one, a balancer that has not seen the switch-over adopts it within one sync.

import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ActiveStandby } from '../../src/algorithms/active-standby.ts';
import type { PickResult } from '../../src/algorithms/algorithm.ts';
import { RedisStateStore } from '../../src/state/redis/store.ts';
import type { StateStore } from '../../src/state/store.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { FakeSharedTier } from '../helpers/shared-tier.ts';
import { eventually } from '../helpers/wait.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot, type NodeState } from '../../src/cluster/snapshot.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { algorithmContext, algorithmFor, CLIENT, snapshotOf, subnetNode, syncId } from '../helpers/cluster.ts';
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
    for (const id of calls('r', 20)) assert.equal(syncId(a.repick({ msg: MSG, callId: id, newCall: false, src: CLIENT }, N1.id, c)), N2.id);
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

describe('active-standby across balancers sharing a store', () => {
  const silent = pino({ level: 'silent' });
  let redis: RedisServer | undefined;
  let prefixes = 0;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  interface Tier {
    name: string;
    /** A store of the shared tier `group` names: each call is one more balancer of that group. */
    open(t: TestContext, group: string): Promise<StateStore>;
    /** What the shared tier holds as the active node. */
    stored(group: string): Promise<string | undefined>;
  }

  const fakes = new Map<string, FakeSharedTier>();
  const fakeOf = (group: string): FakeSharedTier => {
    let f = fakes.get(group);
    if (f === undefined) fakes.set(group, (f = new FakeSharedTier()));
    return f;
  };
  const TIERS: Tier[] = [
    {
      name: 'shared tier (test double)',
      open: (_t, group) => Promise.resolve(fakeOf(group).store()),
      stored: (group) => Promise.resolve(fakeOf(group).held('active-standby', 'active')),
    },
    {
      name: 'redis-server',
      async open(t, group) {
        const s = new RedisStateStore({ url: redis!.url, cluster: [], keyPrefix: `as${process.pid}-${group}:`, readTimeoutMs: 2000, log: silent });
        await s.start();
        t.after(() => s.close());
        return s;
      },
      async stored(group) {
        const s = new RedisStateStore({ url: redis!.url, cluster: [], keyPrefix: `as${process.pid}-${group}:`, readTimeoutMs: 2000, log: silent });
        await s.start();
        try {
          return (await s.assignments('active-standby', { idleMs: 1000, lingerMs: 1000 }).fetch('active')) ?? undefined;
        } finally {
          await s.close();
        }
      },
    },
  ];

  async function balancer(t: TestContext, tier: Tier, group: string): Promise<ActiveStandby> {
    const a = new ActiveStandby(algorithmContext({}, { store: await tier.open(t, group) }));
    t.after(() => a.close());
    return a;
  }

  const newCall = (a: ActiveStandby, c: ClusterSnapshot, callId: string): PickResult => a.pick({ msg: MSG, callId, newCall: true, src: CLIENT }, c);
  const idOf = async (r: PickResult): Promise<string | null> => (await r)?.id ?? null;

  for (const tier of TIERS) {
    test(`${tier.name}: two balancers electing at the same moment end on one active node`, async (t) => {
      const group = `concurrent-${++prefixes}`;
      const a = await balancer(t, tier, group);
      const b = await balancer(t, tier, group);
      assert.equal(await idOf(newCall(a, cluster(), 'first-a')), N1.id);
      assert.equal(await idOf(newCall(b, cluster(), 'first-b')), N1.id, 'B adopts the active node A elected');
      for (let round = 0; round < 3; round++) {
        // Every node but one is down in turn; both balancers elect a successor in the same tick.
        const up = ALL[round % 3];
        const view = cluster(Object.fromEntries(ALL.filter((n) => n !== up).map((n) => [n.id, 'down' as NodeState])));
        const [x, y] = await Promise.all([idOf(newCall(a, view, `a-${round}`)), idOf(newCall(b, view, `b-${round}`))]);
        assert.deepEqual([x, y], [up.id, up.id], `round ${round}`);
        assert.equal(await tier.stored(group), up.id);
      }
    });

    test(`${tier.name}: a restarted balancer adopts the stored active node, not the first by id`, async (t) => {
      const group = `restart-${++prefixes}`;
      const a = await balancer(t, tier, group);
      assert.equal(await idOf(newCall(a, cluster(), 'c1')), N1.id);
      assert.equal(await idOf(newCall(a, cluster({ [N1.id]: 'down' }), 'c2')), N2.id);
      // N1 is back; B starts (or restarts) with no local value and sees N1 first by id.
      const b = await balancer(t, tier, group);
      assert.equal(await idOf(newCall(b, cluster(), 'c3')), N2.id, 'adopted from the store');
      assert.equal(await idOf(newCall(a, cluster(), 'c4')), N2.id, 'and A keeps it: no fail-back');
      assert.equal(await tier.stored(group), N2.id);
    });

    test(`${tier.name}: a balancer that did not see the active node fail adopts the successor within one sync`, async (t) => {
      const group = `stale-${++prefixes}`;
      const a = await balancer(t, tier, group);
      t.mock.timers.enable({ apis: ['setInterval'] });
      const b = await balancer(t, tier, group);
      assert.equal(await idOf(newCall(a, cluster(), 'c1')), N1.id);
      assert.equal(await idOf(newCall(b, cluster(), 'c2')), N1.id);
      // A's health checks find N1 down; B's still see it well.
      assert.equal(await idOf(newCall(a, cluster({ [N1.id]: 'down' }), 'c3')), N2.id);
      assert.equal(await idOf(newCall(b, cluster(), 'c4')), N1.id, 'B has not synced yet');
      t.mock.timers.tick(1000);
      await eventually('B synced', 2000, () => b.activeNode(cluster())?.id === N2.id);
      assert.equal(await idOf(newCall(b, cluster(), 'c5')), N2.id);
    });
  }

  test('views that differ: the first election stands where the others can use it, else one more round settles it', async (t) => {
    const tier = TIERS[0];
    for (const aFirst of [true, false]) {
      const group = `views-${++prefixes}`;
      t.mock.timers.enable({ apis: ['setInterval'] });
      const a = await balancer(t, tier, group);
      const b = await balancer(t, tier, group);
      assert.equal(await idOf(newCall(a, cluster(), 'c1')), N1.id);
      assert.equal(await idOf(newCall(b, cluster(), 'c2')), N1.id);
      // N1 fails; A's checks also find N2 down, B's do not: their candidates are N3 and N2.
      const aView = cluster({ [N1.id]: 'down', [N2.id]: 'down' });
      const bView = cluster({ [N1.id]: 'down' });
      const [ra, rb] = aFirst ? [newCall(a, aView, 'x'), newCall(b, bView, 'y')] : [newCall(b, bView, 'y'), newCall(a, aView, 'x')].reverse();
      const [x, y] = await Promise.all([idOf(ra), idOf(rb)]);
      assert.equal(x, N3.id, 'A can only use N3');
      if (aFirst) assert.equal(y, N3.id, "A's election stands: B can use N3 too");
      else {
        assert.equal(y, N2.id, "B's election came first and B used it");
        assert.equal(fakeOf(group).held('active-standby', 'active'), N3.id, 'A, which sees N2 down, replaced it');
        t.mock.timers.tick(1000);
        await eventually('B synced', 2000, () => b.activeNode(bView)?.id === N3.id);
      }
      assert.equal(await idOf(newCall(b, bView, 'z')), N3.id, 'one active node');
      t.mock.timers.reset();
    }
  });

  test('shared tier down: each balancer elects on its own view; back up, the sync writes the node back', async (t) => {
    const group = `outage-${++prefixes}`;
    const tier = fakeOf(group);
    t.mock.timers.enable({ apis: ['setInterval'] });
    tier.available = false;
    const a = await balancer(t, TIERS[0], group);
    const r = newCall(a, cluster({ [N1.id]: 'down' }), 'c1');
    assert.ok(!(r instanceof Promise), 'nothing to wait for');
    assert.equal(r?.id, N2.id);
    assert.equal(tier.held('active-standby', 'active'), undefined);
    tier.available = true;
    t.mock.timers.tick(1000);
    assert.equal(tier.held('active-standby', 'active'), N2.id);
  });
});
