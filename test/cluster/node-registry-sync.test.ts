// RegistrySync: registered nodes shared between balancers through the store's node directory.
// Two registries ("balancer 1" and "balancer 2") share ONE MemoryStateStore directory, the way a
// single process shares it, with one injected clock; ticks are driven by hand.
// Also NodeRegistry.merge / forgetRemote and the origin of an entry.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { NodeRegistry, type RegistryEvent } from '../../src/cluster/node-registry.ts';
import type { NodeRegistration } from '../../src/heartbeat/protocol.ts';
import { RegistrySync } from '../../src/cluster/node-registry-sync.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import type { AdminDrainRecord, AdminWeightRecord, NodeDirectory, PinRecord, SharedNodeRecord } from '../../src/state/store.ts';

const log = pino({ level: 'silent' });
const TIMEOUT = 8400;
const ID = '10.0.0.2:5080';

function reg(sessionId: string, version = '1', ip = '10.0.0.2', ports: NodeRegistration['ports'] = { udp: 5080, tcp: 5080 }): NodeRegistration {
  return { ip, ports, sessionId, version };
}

/** A directory that delegates to another but can be switched to "unavailable" (list() resolves null, writes are lost). */
class SwitchableDirectory implements NodeDirectory {
  available = true;
  private readonly inner: NodeDirectory;
  constructor(inner: NodeDirectory) {
    this.inner = inner;
  }
  publish(rec: SharedNodeRecord): void {
    if (this.available) this.inner.publish(rec);
  }
  remove(id: string): void {
    if (this.available) this.inner.remove(id);
  }
  list(): Promise<SharedNodeRecord[] | null> {
    return this.available ? this.inner.list() : Promise.resolve(null);
  }
  setAdminDrain(rec: AdminDrainRecord): void {
    if (this.available) this.inner.setAdminDrain(rec);
  }
  removeAdminDrain(id: string): void {
    if (this.available) this.inner.removeAdminDrain(id);
  }
  adminDrains(): Promise<AdminDrainRecord[] | null> {
    return this.available ? this.inner.adminDrains() : Promise.resolve(null);
  }
  setAdminWeight(rec: AdminWeightRecord): void {
    if (this.available) this.inner.setAdminWeight(rec);
  }
  removeAdminWeight(id: string): void {
    if (this.available) this.inner.removeAdminWeight(id);
  }
  adminWeights(): Promise<AdminWeightRecord[] | null> {
    return this.available ? this.inner.adminWeights() : Promise.resolve(null);
  }
  setPin(rec: PinRecord): void {
    if (this.available) this.inner.setPin(rec);
  }
  removePin(pattern: string): void {
    if (this.available) this.inner.removePin(pattern);
  }
  pins(): Promise<PinRecord[] | null> {
    return this.available ? this.inner.pins() : Promise.resolve(null);
  }
}

function setup(t: TestContext, opts: { nodeTimeoutMs?: number; directory2?: (d: NodeDirectory) => NodeDirectory } = {}) {
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? TIMEOUT;
  let now = 1_700_000_000_000;
  const clock = (): number => now;
  const store = new MemoryStateStore();
  const registry = (): NodeRegistry => new NodeRegistry({ nodeTimeoutMs, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 10, log, now: clock });
  const r1 = registry();
  const r2 = registry();
  const syncOpts = (balancerId: string) => ({ balancerId, nodeTimeoutMs, intervalMs: 1000, log, now: clock });
  const s1 = new RegistrySync(r1, store.nodes, syncOpts('balancer-1'));
  const s2 = new RegistrySync(r2, opts.directory2?.(store.nodes) ?? store.nodes, syncOpts('balancer-2'));
  t.after(async () => {
    s1.close();
    s2.close();
    await store.close();
  });
  const events2: RegistryEvent[] = [];
  r2.onEvent((e) => events2.push(e));
  return {
    r1, r2, s1, s2, store, events2,
    now: (): number => now,
    advance: (ms: number): void => { now += ms; },
    /** Balancer 1 then balancer 2 run their sync. */
    sync: async (): Promise<void> => {
      await s1.tick();
      await s2.tick();
    },
  };
}

describe('RegistrySync: a node heard by balancer 1 only', () => {
  test('appears at balancer 2 after the ticks, as a remote entry with the same id, ports and version', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1', '2.1'));
    await s.s2.tick();
    assert.equal(s.r2.get(ID), undefined, 'nothing published yet');
    await s.sync();
    const e = s.r2.get(ID);
    assert.ok(e !== undefined);
    assert.equal(e.origin, 'remote');
    assert.equal(e.source, 'heartbeat');
    assert.equal(e.sessionId, 's1');
    assert.equal(e.version, '2.1');
    assert.deepEqual(e.node, s.r1.get(ID)?.node);
    assert.deepEqual(e.node.ports, { udp: 5080, tcp: 5080 });
    assert.equal(e.lastHeard, s.now());
    assert.equal(s.r2.snapshot().stateOf(ID), 'active');
    assert.equal(s.r1.get(ID)?.origin, 'local');
    assert.deepEqual(s.events2.map((x) => [x.type, x.nodeId]), [['added', ID]]);
  });

  test('balancer 2 does not republish a node it only learned of', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1'));
    await s.sync();
    s.advance(100);
    await s.sync();
    const records = await s.store.nodes.list();
    assert.deepEqual(records?.map((r) => [r.id, r.by]), [[ID, 'balancer-1']]);
  });

  test('heartbeats at balancer 1 keep it alive at balancer 2; it expires once balancer 1 stops hearing it', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1'));
    await s.sync();
    for (let i = 0; i < 20; i++) {
      s.advance(1000);
      assert.equal(s.r1.heartbeat('s1'), true);
      await s.sync();
      assert.deepEqual(s.r2.expire(), [], `second ${i + 1}: 20 s in, far beyond nodeTimeout, still heard`);
      assert.equal(s.r2.get(ID)?.lastHeard, s.now());
    }
    // Balancer 1 hears nothing from now on.
    for (let k = 1; k <= 8; k++) {
      s.advance(1000);
      await s.sync();
      assert.deepEqual(s.r2.expire(), [], `${k} s of silence < ${TIMEOUT} ms`);
    }
    s.advance(1000);
    await s.sync();
    assert.deepEqual(s.r2.expire(), [ID], '9 s of silence');
    s.advance(1000);
    await s.sync();
    assert.equal(s.r2.get(ID), undefined, 'the stale record does not bring it back');
  });

  test('shutdown at balancer 1: draining at balancer 2', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1'));
    await s.sync();
    s.advance(500);
    s.r1.shutdown('s1');
    await s.sync();
    assert.equal(s.r2.get(ID)?.draining, true);
    assert.equal(s.r2.snapshot().stateOf(ID), 'draining');
    s.advance(500);
    s.r1.heartbeat('s1');
    await s.sync();
    assert.equal(s.r2.snapshot().stateOf(ID), 'draining', 'heartbeats while draining keep it draining');
  });

  test('stop at balancer 1: gone at balancer 2 on the next tick', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1'));
    await s.sync();
    s.advance(200);
    assert.equal(s.r1.stop('s1'), true);
    assert.deepEqual(await s.store.nodes.list(), [], 'the record left the directory');
    await s.s2.tick();
    assert.equal(s.r2.get(ID), undefined);
    assert.equal(s.r2.snapshot().stateOf(ID), undefined);
    assert.deepEqual(s.events2.at(-1), { type: 'removed', nodeId: ID, detail: 'stopped (shared store)' });
  });

  test('a new session at balancer 1 replaces the entry at balancer 2 (drain flag cleared)', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1', '1'));
    s.r1.shutdown('s1');
    await s.sync();
    assert.equal(s.r2.snapshot().stateOf(ID), 'draining');
    s.advance(1000);
    s.r1.start(reg('s2', '2'));
    await s.sync();
    const e = s.r2.get(ID);
    assert.equal(e?.sessionId, 's2');
    assert.equal(e?.version, '2');
    assert.equal(e?.origin, 'remote');
    assert.equal(e?.draining, false);
    assert.equal(s.r2.snapshot().stateOf(ID), 'active');
    assert.deepEqual(s.events2.map((x) => x.type), ['added', 'state', 'replaced']);
    assert.equal(s.r2.list().length, 1);
  });

  test('a node heard by both balancers stays local at each and is refreshed by the other\'s records', async (t) => {
    const s = setup(t);
    s.r1.start(reg('s1'));
    s.r2.start(reg('s1'));
    await s.sync();
    s.advance(1000);
    s.r1.heartbeat('s1');
    await s.sync();
    assert.equal(s.r2.get(ID)?.origin, 'local');
    assert.equal(s.r2.get(ID)?.lastHeard, s.now());
    s.advance(TIMEOUT);
    await s.sync();
    assert.equal(s.r2.get(ID)?.origin, 'local', 'a local entry is never forgotten through the directory');
  });
});

describe('RegistrySync: records it does not take', () => {
  const AGES: { name: string; nodeTimeoutMs: number; age: number; merged: boolean; kept: boolean }[] = [
    { name: 'fresh', nodeTimeoutMs: 8400, age: 0, merged: true, kept: true },
    { name: 'exactly nodeTimeout old', nodeTimeoutMs: 8400, age: 8400, merged: true, kept: true },
    { name: 'older than nodeTimeout: ignored, left in place', nodeTimeoutMs: 8400, age: 8401, merged: false, kept: true },
    { name: '10 x nodeTimeout old: still left', nodeTimeoutMs: 8400, age: 84_000, merged: false, kept: true },
    { name: 'beyond 10 x nodeTimeout: removed', nodeTimeoutMs: 8400, age: 84_001, merged: false, kept: false },
    { name: 'short nodeTimeout: 60 s is the floor, kept at 60 s', nodeTimeoutMs: 1000, age: 60_000, merged: false, kept: true },
    { name: 'short nodeTimeout: removed beyond 60 s', nodeTimeoutMs: 1000, age: 60_001, merged: false, kept: false },
    { name: 'short nodeTimeout: stale after it', nodeTimeoutMs: 1000, age: 1001, merged: false, kept: true },
  ];
  for (const c of AGES) {
    test(`record age ${c.age} ms, nodeTimeout ${c.nodeTimeoutMs}: ${c.name}`, async (t) => {
      const s = setup(t, { nodeTimeoutMs: c.nodeTimeoutMs });
      s.store.nodes.publish({ id: ID, registration: reg('s1'), draining: false, heardAt: s.now() - c.age, by: 'balancer-3' });
      await s.s2.tick();
      assert.equal(s.r2.get(ID) !== undefined, c.merged, 'merged');
      assert.equal((await s.store.nodes.list())?.length, c.kept ? 1 : 0, 'kept in the directory');
    });
  }

  test('a record published by the same balancerId is skipped; another balancer\'s is taken', async (t) => {
    const s = setup(t);
    s.store.nodes.publish({ id: ID, registration: reg('s1'), draining: false, heardAt: s.now(), by: 'balancer-2' });
    await s.s2.tick();
    assert.equal(s.r2.get(ID), undefined);
    s.store.nodes.publish({ id: ID, registration: reg('s1'), draining: false, heardAt: s.now(), by: 'balancer-3' });
    await s.s2.tick();
    assert.equal(s.r2.get(ID)?.origin, 'remote');
  });

  test('a static node is never overwritten by a record', async (t) => {
    const s = setup(t);
    const STATIC: SipNode = { id: ID, ip: '10.0.0.2', ports: { udp: 5080 }, weight: 3 };
    s.r2.addStatic([STATIC]);
    s.r1.start(reg('s1', '9', '10.0.0.2', { udp: 5080, tcp: 5081 }));
    s.r1.shutdown('s1');
    await s.sync();
    const e = s.r2.get(ID);
    assert.equal(e?.source, 'static');
    assert.equal(e?.registration, null);
    assert.equal(e?.sessionId, null);
    assert.deepEqual(e?.node, STATIC);
    assert.equal(e?.draining, false);
    assert.equal(s.r2.snapshot().stateOf(ID), 'active');
    s.r1.stop('s1');
    await s.s2.tick();
    assert.equal(s.r2.get(ID)?.source, 'static', 'nor removed when the record goes');
  });

  test('directory unavailable (list() resolves null): remote nodes are kept, and forgotten once it answers again', async (t) => {
    let flaky: SwitchableDirectory | null = null;
    const s = setup(t, { directory2: (d) => (flaky = new SwitchableDirectory(d)) });
    const dir = flaky as unknown as SwitchableDirectory;
    s.r1.start(reg('s1'));
    await s.sync();
    assert.equal(s.r2.get(ID)?.origin, 'remote');
    dir.available = false;
    s.r1.stop('s1'); // the record goes, but balancer 2 cannot read the directory
    for (let i = 0; i < 5; i++) {
      s.advance(1000);
      await s.s2.tick();
      assert.equal(s.r2.get(ID)?.origin, 'remote', `unavailable tick ${i}: kept`);
    }
    dir.available = true;
    await s.s2.tick();
    assert.equal(s.r2.get(ID), undefined, 'the directory answers without the record: forgotten');
  });
});

describe('RegistrySync: start and close', () => {
  test('start() syncs at once and then every interval; close() stops it', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const s = setup(t);
    const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
    s.r1.start(reg('s1'));
    s.s1.start();
    s.s2.start();
    await flush();
    assert.equal(s.r2.get(ID)?.origin, 'remote', 'the first ticks ran at start');
    s.r1.shutdown('s1');
    await flush();
    assert.equal(s.r2.snapshot().stateOf(ID), 'active', 'nothing before the interval');
    s.advance(1); // the shutdown is newer than the last heartbeat
    s.r1.heartbeat('s1');
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(s.r2.snapshot().stateOf(ID), 'draining');
    s.s2.close();
    s.advance(1000);
    s.r1.stop('s1');
    t.mock.timers.tick(5000);
    await flush();
    assert.equal(s.r2.get(ID)?.origin, 'remote', 'closed: no more ticks');
  });
});

describe('NodeRegistry.merge and forgetRemote', () => {
  function registry() {
    let now = 1_000_000;
    const r = new NodeRegistry({ nodeTimeoutMs: TIMEOUT, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 10, log, now: () => now });
    return { r, advance: (ms: number) => { now += ms; }, now: () => now };
  }

  test('an unknown node is added as remote with the record\'s heartbeat time and drain flag', () => {
    const { r, now } = registry();
    r.merge(reg('s1'), now() - 500, true);
    const e = r.get(ID);
    assert.equal(e?.origin, 'remote');
    assert.equal(e?.lastHeard, now() - 500);
    assert.equal(r.snapshot().stateOf(ID), 'draining');
    assert.equal(r.heartbeat('s1'), true, 'its session is known: a heartbeat here makes it local');
    assert.equal(r.get(ID)?.origin, 'local');
  });

  test('a newer record moves the heartbeat time and the drain flag; an older or equal one changes nothing', () => {
    const { r, now, advance } = registry();
    r.merge(reg('s1'), now(), false);
    advance(1000);
    r.merge(reg('s1'), now(), true);
    assert.equal(r.get(ID)?.lastHeard, now());
    assert.equal(r.snapshot().stateOf(ID), 'draining');
    r.merge(reg('s1'), now() - 10, false);
    assert.equal(r.snapshot().stateOf(ID), 'draining', 'an older record does not undrain');
    advance(1000);
    r.merge(reg('s1'), now(), false);
    assert.equal(r.snapshot().stateOf(ID), 'active', 'a newer one does');
  });

  test('a record older than what this balancer heard itself does not touch a local entry', () => {
    const { r, now } = registry();
    r.start(reg('s1'));
    r.merge(reg('s1'), now() - 1, true);
    assert.equal(r.get(ID)?.draining, false);
    assert.equal(r.get(ID)?.origin, 'local');
  });

  test('a registration without a SIP port is ignored', () => {
    const { r, now } = registry();
    r.merge(reg('s1', '1', '10.0.0.2', {}), now(), false);
    assert.deepEqual(r.list(), []);
  });

  test('forgetRemote removes only remote registered entries', () => {
    const { r, now } = registry();
    const STATIC: SipNode = { id: '10.0.0.1:5080', ip: '10.0.0.1', ports: { udp: 5080 }, weight: 1 };
    r.addStatic([STATIC]);
    r.start(reg('local', '1', '10.0.0.3'));
    r.merge(reg('remote'), now(), false);
    for (const id of [STATIC.id, '10.0.0.3:5080', ID]) r.forgetRemote(id);
    r.forgetRemote('10.9.9.9:5080');
    assert.deepEqual(r.list().map((e) => e.node.id).sort(), [STATIC.id, '10.0.0.3:5080']);
    assert.equal(r.heartbeat('remote'), false, 'its session went with it');
  });
});
