// Passive health: PassiveHealth over a real NodeRegistry. More than maxErrors error responses
// within windowMs take a node out of new-call selection (draining); good traffic is recorded as
// proof of life; a new session clears the trip. Time is passed explicitly (`now`), so the window
// arithmetic is exact.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { PassiveHealth } from '../../src/cluster/passive-health.ts';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';

const log = pino({ level: 'silent' });
const ID = '127.0.0.1:5080';
const OTHER = '127.0.0.1:5090';

function setup(opts: { maxErrors?: number; windowMs?: number; errorStatuses?: number[] } = {}): { registry: NodeRegistry; passiveHealth: PassiveHealth } {
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
  registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a1', version: '1' });
  registry.start({ ip: '127.0.0.1', ports: { udp: 5090 }, sessionId: 'b1', version: '1' });
  const passiveHealth = new PassiveHealth(registry, {
    errorStatuses: opts.errorStatuses ?? [503],
    maxErrors: opts.maxErrors ?? 3,
    windowMs: opts.windowMs ?? 1000,
  });
  return { registry, passiveHealth };
}

function assertPassiveDown(registry: NodeRegistry, id: string): void {
  const snap = registry.snapshot();
  const n = snap.get(id);
  assert.ok(n);
  assert.equal(snap.stateOf(id), 'draining');
  assert.equal(snap.isAlive(n), true, 'keeps the calls it has');
  assert.equal(snap.isSelectable(n), false, 'takes no new calls');
  assert.equal(registry.get(id)?.passiveDown, true);
  assert.equal(registry.get(id)?.healthy, true, 'passive health does not mark the node down');
}

function assertActive(registry: NodeRegistry, id: string): void {
  const snap = registry.snapshot();
  assert.equal(snap.stateOf(id), 'active');
  assert.ok(snap.selectable.some((n) => n.id === id));
  assert.equal(registry.get(id)?.passiveDown, false);
}

describe('PassiveHealth error window (maxErrors 3, windowMs 1000, errors = [503])', () => {
  const T0 = 1_000_000;
  const cases: { name: string; errorsAt: number[]; tripped: boolean }[] = [
    { name: '4 errors within 300 ms trip it', errorsAt: [0, 100, 200, 300], tripped: true },
    { name: '4 errors spanning 999 ms trip it', errorsAt: [0, 333, 666, 999], tripped: true },
    { name: '3 errors (not more than maxErrors) do not', errorsAt: [0, 10, 20], tripped: false },
    { name: 'the 4th error 1001 ms after the 1st does not', errorsAt: [0, 400, 800, 1001], tripped: false },
    { name: '20 errors 600 ms apart never have 4 in a window', errorsAt: Array.from({ length: 20 }, (_, i) => i * 600), tripped: false },
    { name: '20 errors 400 ms apart never have 4 in a window', errorsAt: Array.from({ length: 20 }, (_, i) => i * 400), tripped: false },
    { name: 'spread errors then a burst trips it', errorsAt: [0, 2000, 4000, 6000, 6100, 6200, 6300], tripped: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { registry, passiveHealth } = setup();
      for (const t of c.errorsAt) passiveHealth.fromNode(ID, 503, T0 + t);
      if (c.tripped) assertPassiveDown(registry, ID);
      else assertActive(registry, ID);
      assertActive(registry, OTHER);
    });
  }

  test('it trips exactly on the (maxErrors + 1)th error', () => {
    const { registry, passiveHealth } = setup();
    for (let i = 0; i < 3; i++) {
      passiveHealth.fromNode(ID, 503, T0 + i);
      assertActive(registry, ID);
    }
    passiveHealth.fromNode(ID, 503, T0 + 3);
    assertPassiveDown(registry, ID);
  });

  test('errors are counted per node', () => {
    const { registry, passiveHealth } = setup();
    for (let i = 0; i < 3; i++) {
      passiveHealth.fromNode(ID, 503, T0 + i);
      passiveHealth.fromNode(OTHER, 503, T0 + i);
    }
    assertActive(registry, ID);
    assertActive(registry, OTHER);
  });

  test('statuses not in the error list never trip it', () => {
    const { registry, passiveHealth } = setup();
    for (const status of [500, 486, 404, 408, 603, 200, 180]) {
      for (let i = 0; i < 10; i++) passiveHealth.fromNode(ID, status, T0 + i);
    }
    assertActive(registry, ID);
  });

  test('every status in the error list counts', () => {
    const { registry, passiveHealth } = setup({ errorStatuses: [500, 503, 504] });
    for (const [i, status] of [500, 503, 504, 500].entries()) passiveHealth.fromNode(ID, status, T0 + i);
    assertPassiveDown(registry, ID);
  });

  test('errors from an unknown node do not throw or add it', () => {
    const { registry, passiveHealth } = setup({ maxErrors: 0 });
    passiveHealth.fromNode('10.9.9.9:5060', 503, T0);
    assert.equal(registry.get('10.9.9.9:5060'), undefined);
    assert.equal(registry.list().length, 2);
  });
});

describe('PassiveHealth lastGood', () => {
  const cases: { name: string; status: number; good: boolean }[] = [
    { name: 'a request (status 0)', status: 0, good: true },
    { name: '100 Trying', status: 100, good: true },
    { name: '180 Ringing', status: 180, good: true },
    { name: '200 OK', status: 200, good: true },
    { name: '486 Busy Here (not in the error list)', status: 486, good: true },
    { name: '500 (not in the error list)', status: 500, good: true },
    { name: '503 (in the error list)', status: 503, good: false },
  ];
  for (const c of cases) {
    test(`${c.name} ${c.good ? 'updates' : 'does not update'} lastGood`, () => {
      const { passiveHealth } = setup();
      assert.equal(passiveHealth.lastGood(ID), undefined);
      passiveHealth.fromNode(ID, 0, 1000);
      assert.equal(passiveHealth.lastGood(ID), 1000);
      passiveHealth.fromNode(ID, c.status, 2000);
      assert.equal(passiveHealth.lastGood(ID), c.good ? 2000 : 1000);
      assert.equal(passiveHealth.lastGood(OTHER), undefined, 'per node');
    });
  }

  test('the clock defaults to Date.now()', () => {
    const { passiveHealth } = setup();
    const before = Date.now();
    passiveHealth.fromNode(ID, 200);
    const at = passiveHealth.lastGood(ID);
    assert.ok(at !== undefined && at >= before && at <= Date.now());
  });

  test('forget drops what was seen', () => {
    const { passiveHealth } = setup();
    passiveHealth.fromNode(ID, 0, 1000);
    passiveHealth.forget(ID);
    assert.equal(passiveHealth.lastGood(ID), undefined);
  });
});

describe('recovery from passive down', () => {
  const T0 = 5_000_000;
  function trip(passiveHealth: PassiveHealth, at: number): void {
    for (let i = 0; i < 4; i++) passiveHealth.fromNode(ID, 503, at + i);
  }

  test('a new start session for the node clears passive down', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    assertPassiveDown(registry, ID);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a2', version: '1' });
    assertActive(registry, ID);
    assert.equal(registry.get(ID)?.sessionId, 'a2');
  });

  test('a repeated start with the same session does not clear it', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a1', version: '1' });
    assertPassiveDown(registry, ID);
  });

  test('heartbeats and good traffic alone do not clear it', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    assert.equal(registry.heartbeat('a1'), true);
    passiveHealth.fromNode(ID, 200, T0 + 10);
    passiveHealth.fromNode(ID, 0, T0 + 11);
    assertPassiveDown(registry, ID);
  });

  test('after a trip the count starts again: the next trip needs another maxErrors + 1 errors', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a2', version: '1' });
    for (let i = 0; i < 3; i++) passiveHealth.fromNode(ID, 503, T0 + 10 + i);
    assertActive(registry, ID);
    passiveHealth.fromNode(ID, 503, T0 + 20);
    assertPassiveDown(registry, ID);
  });

  test('a static node trips and shows draining too', () => {
    const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
    registry.addStatic([{ id: '127.0.0.1:5070', ip: '127.0.0.1', ports: { udp: 5070 }, weight: 1 }]);
    const passiveHealth = new PassiveHealth(registry, { errorStatuses: [503], maxErrors: 1, windowMs: 1000 });
    passiveHealth.fromNode('127.0.0.1:5070', 503, T0);
    assert.equal(registry.snapshot().stateOf('127.0.0.1:5070'), 'active');
    passiveHealth.fromNode('127.0.0.1:5070', 503, T0 + 1);
    assertPassiveDown(registry, '127.0.0.1:5070');
  });
});
