// NodeRegistry: the node states the data path sees, from the flags every health source sets.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { compareVersions, NodeRegistry } from '../../src/cluster/node-registry.ts';
import type { NodeRegistration } from '../../src/heartbeat/protocol.ts';
import type { SipNode } from '../../src/cluster/node.ts';

const log = pino({ level: 'silent' });

function registry(opts: { nodeTimeoutMs?: number; rampUpPeriodMs?: number; rampUpPercent?: number } = {}) {
  let t = 1_000_000;
  const r = new NodeRegistry({
    nodeTimeoutMs: opts.nodeTimeoutMs ?? 8400, extraServerNodes: [],
    rampUpPeriodMs: opts.rampUpPeriodMs ?? 0, rampUpPercent: opts.rampUpPercent ?? 10, log, now: () => t,
  });
  return { r, advance: (ms: number) => { t += ms; } };
}

function reg(ip: string, port: number, sessionId: string, version = '1'): NodeRegistration {
  return { ip, ports: { udp: port }, sessionId, version };
}

const STATIC_A: SipNode = { id: '10.0.0.1:5080', ip: '10.0.0.1', ports: { udp: 5080 }, weight: 1 };

describe('node states from flags', () => {
  const CASES: { name: string; act: (r: NodeRegistry) => void; state: 'active' | 'draining' | 'down' }[] = [
    { name: 'new static node', act: () => undefined, state: 'active' },
    { name: 'failed health check', act: (r) => r.setHealthy(STATIC_A.id, false, 'test'), state: 'down' },
    { name: 'drained by admin', act: (r) => r.setDraining(STATIC_A.id, true), state: 'draining' },
    { name: 'drained then undrained', act: (r) => { r.setDraining(STATIC_A.id, true); r.setDraining(STATIC_A.id, false); }, state: 'active' },
    { name: 'passive health tripped', act: (r) => r.setPassiveDown(STATIC_A.id, 'test'), state: 'draining' },
    { name: 'passive down, then a good probe', act: (r) => { r.setPassiveDown(STATIC_A.id, 'test'); r.setHealthy(STATIC_A.id, true, 'probe'); }, state: 'active' },
    { name: 'down, then healthy again', act: (r) => { r.setHealthy(STATIC_A.id, false, 'x'); r.setHealthy(STATIC_A.id, true, 'y'); }, state: 'active' },
    { name: 'out for silence', act: (r) => r.setPassiveDown(STATIC_A.id, 'test', 'silence'), state: 'draining' },
    { name: 'out for silence, then it answers', act: (r) => { r.setPassiveDown(STATIC_A.id, 'test', 'silence'); r.clearPassiveDown(STATIC_A.id, 'silence', 'answered'); }, state: 'active' },
    { name: 'out for errors: the end of silence does not bring it back', act: (r) => { r.setPassiveDown(STATIC_A.id, 'test', 'errors'); r.clearPassiveDown(STATIC_A.id, 'silence', 'answered'); }, state: 'draining' },
    { name: 'out for silence, then a good probe', act: (r) => { r.setPassiveDown(STATIC_A.id, 'test', 'silence'); r.setHealthy(STATIC_A.id, true, 'probe'); }, state: 'active' },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      const { r } = registry();
      r.addStatic([STATIC_A]);
      c.act(r);
      assert.equal(r.snapshot().stateOf(STATIC_A.id), c.state);
      const node = r.snapshot().get(STATIC_A.id)!;
      assert.equal(r.snapshot().isSelectable(node), c.state === 'active');
      assert.equal(r.snapshot().isAlive(node), c.state !== 'down');
    });
  }
});

describe('passive causes', () => {
  test('setPassiveDown reports whether it took the node out, and keeps the first cause', () => {
    const { r } = registry();
    r.addStatic([STATIC_A]);
    assert.equal(r.get(STATIC_A.id)?.passiveCause, null);
    assert.equal(r.setPassiveDown(STATIC_A.id, 'x', 'silence'), true);
    assert.equal(r.setPassiveDown(STATIC_A.id, 'y', 'errors'), false, 'already out');
    assert.equal(r.get(STATIC_A.id)?.passiveCause, 'silence');
    assert.equal(r.setPassiveDown('10.9.9.9:5060', 'z'), false, 'unknown node');
  });

  test('the default cause is errors', () => {
    const { r } = registry();
    r.addStatic([STATIC_A]);
    r.setPassiveDown(STATIC_A.id, 'x');
    assert.equal(r.get(STATIC_A.id)?.passiveCause, 'errors');
  });

  test('clearPassiveDown: only for the cause the node is out for; events say why', () => {
    const { r } = registry();
    r.addStatic([STATIC_A]);
    const details: (string | undefined)[] = [];
    r.onEvent((e) => details.push(e.detail));
    assert.equal(r.clearPassiveDown(STATIC_A.id, 'silence', 'answered'), false, 'not out');
    r.setPassiveDown(STATIC_A.id, '4 requests unanswered for 600 ms', 'silence');
    assert.equal(r.clearPassiveDown(STATIC_A.id, 'errors', 'x'), false);
    assert.equal(r.clearPassiveDown(STATIC_A.id, 'silence', 'answered again with 200'), true);
    assert.equal(r.get(STATIC_A.id)?.passiveDown, false);
    assert.equal(r.get(STATIC_A.id)?.passiveCause, null);
    assert.deepEqual(details, ['out of new-call selection (4 requests unanswered for 600 ms)', 'back in new-call selection (answered again with 200)']);
  });

  test('a new session clears the cause', () => {
    const { r } = registry();
    r.start(reg('10.0.0.2', 5080, 's1'));
    r.setPassiveDown('10.0.0.2:5080', 'x', 'silence');
    r.start(reg('10.0.0.2', 5080, 's2'));
    assert.equal(r.get('10.0.0.2:5080')?.passiveCause, null);
  });
});

describe('heartbeat registrations', () => {
  test('start, heartbeat, shutdown (drain), stop', () => {
    const { r } = registry();
    r.start(reg('10.0.0.2', 5080, 's1'));
    const id = '10.0.0.2:5080';
    assert.equal(r.snapshot().stateOf(id), 'active');
    assert.equal(r.heartbeat('s1'), true);
    assert.equal(r.heartbeat('nope'), false);
    assert.equal(r.shutdown('s1'), true);
    assert.equal(r.snapshot().stateOf(id), 'draining');
    assert.equal(r.stop('s1'), true);
    assert.equal(r.snapshot().stateOf(id), undefined);
    assert.equal(r.heartbeat('s1'), false);
  });

  test('a restart with a new sessionId replaces the entry and clears drain and passive flags', () => {
    const { r } = registry();
    r.start(reg('10.0.0.2', 5080, 's1'));
    r.shutdown('s1');
    r.setPassiveDown('10.0.0.2:5080', 'test');
    r.start(reg('10.0.0.2', 5080, 's2'));
    assert.equal(r.snapshot().stateOf('10.0.0.2:5080'), 'active');
    assert.equal(r.heartbeat('s1'), false, 'old session forgotten');
    assert.equal(r.heartbeat('s2'), true);
    assert.equal(r.list().length, 1);
  });

  test('silent for longer than nodeTimeout: removed; heartbeats keep it', () => {
    const { r, advance } = registry({ nodeTimeoutMs: 1000 });
    r.start(reg('10.0.0.2', 5080, 's1'));
    r.start(reg('10.0.0.3', 5080, 's2'));
    advance(800);
    r.heartbeat('s1');
    advance(800);
    assert.deepEqual(r.expire(), ['10.0.0.3:5080']);
    assert.equal(r.snapshot().stateOf('10.0.0.2:5080'), 'active');
    assert.equal(r.snapshot().stateOf('10.0.0.3:5080'), undefined);
  });

  test('a session id announced from another address moves the node: the old entry goes', () => {
    const { r } = registry();
    r.start(reg('10.0.0.2', 5080, 's1'));
    r.start(reg('10.0.0.9', 5080, 's1'));
    assert.deepEqual(r.list().map((e) => e.node.id), ['10.0.0.9:5080']);
    assert.equal(r.heartbeat('s1'), true);
    r.start(reg('10.0.0.2', 5080, 's2'));
    assert.equal(r.heartbeat('s1'), true, 'the moved node keeps its session');
  });

  test('static nodes never expire', () => {
    const { r, advance } = registry({ nodeTimeoutMs: 10 });
    r.addStatic([STATIC_A]);
    advance(10_000);
    assert.deepEqual(r.expire(), []);
  });
});

describe('versions: new calls go to the highest live version', () => {
  test('an older version drains while a newer one is live, and takes calls again when it is not', () => {
    const { r } = registry();
    r.start(reg('10.0.0.2', 5080, 'old', '1.9'));
    r.start(reg('10.0.0.3', 5080, 'new', '1.10'));
    assert.equal(r.snapshot().stateOf('10.0.0.2:5080'), 'draining');
    assert.equal(r.snapshot().stateOf('10.0.0.3:5080'), 'active');
    r.setHealthy('10.0.0.3:5080', false, 'died');
    assert.equal(r.snapshot().stateOf('10.0.0.2:5080'), 'active', 'the newest live version is now 1.9');
  });
  const ORDER: [string, string, number][] = [
    ['1.10', '1.9', 1], ['2', '10', -1], ['1.0', '1', 0], ['1.2.3', '1.2', 1], ['b', 'a', 1], ['1', '1', 0],
  ];
  for (const [a, b, want] of ORDER) test(`compareVersions(${a}, ${b}) = ${want}`, () => assert.equal(compareVersions(a, b), want));
});

describe('ramp-up', () => {
  test('a joined node gets trafficPercentageIncrease % more of its weight every period', () => {
    const { r, advance } = registry({ rampUpPeriodMs: 1000, rampUpPercent: 25 });
    r.start(reg('10.0.0.2', 5080, 's1'));
    const node = () => r.snapshot().get('10.0.0.2:5080')!;
    const shares: number[] = [];
    for (let i = 0; i < 5; i++) {
      r.rampUpTick();
      shares.push(r.snapshot().weightOf(node()));
      advance(1000);
    }
    assert.deepEqual(shares, [0.25, 0.5, 0.75, 1, 1]);
  });
  test('no ramp-up configured: full weight at once', () => {
    const { r } = registry();
    r.start(reg('10.0.0.2', 5080, 's1'));
    assert.equal(r.snapshot().weightOf(r.snapshot().get('10.0.0.2:5080')!), 1);
  });
});

describe('a listener is told of a change after the snapshot shows it', () => {
  // [event, act, the state (undefined: gone) snapshot() must show for the node inside the listener]
  const CASES: { name: string; act: (r: NodeRegistry, advance: (ms: number) => void) => void; node: string; state: string | undefined }[] = [
    { name: 'static node added', act: (r) => r.addStatic([{ ...STATIC_A, id: '10.0.0.2:5080', ip: '10.0.0.2' }]), node: '10.0.0.2:5080', state: 'active' },
    { name: 'registered node added', act: (r) => r.start(reg('10.0.0.3', 5080, 's3')), node: '10.0.0.3:5080', state: 'active' },
    { name: 'down', act: (r) => r.setHealthy(STATIC_A.id, false, 'probe'), node: STATIC_A.id, state: 'down' },
    { name: 'drained', act: (r) => r.setDraining(STATIC_A.id, true), node: STATIC_A.id, state: 'draining' },
    { name: 'passive down', act: (r) => r.setPassiveDown(STATIC_A.id, 'test', 'silence'), node: STATIC_A.id, state: 'draining' },
    {
      name: 'removed after nodeTimeout',
      act: (r, advance) => { r.start(reg('10.0.0.4', 5080, 's4')); advance(9000); r.expire(); },
      node: '10.0.0.4:5080', state: undefined,
    },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      const { r, advance } = registry();
      r.addStatic([STATIC_A]);
      const seen: (string | undefined)[] = [];
      r.onEvent((e) => {
        if (e.nodeId === c.node) seen.push(r.snapshot().stateOf(c.node));
      });
      c.act(r, advance);
      assert.equal(seen.at(-1), c.state);
    });
  }
});
