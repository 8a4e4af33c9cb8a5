// Restcomm's /lbnoderegex pins: which node a new call's key is pinned to, and the actions balancers
// sharing a store exchange (the latest action on a pattern wins; pins in the order of their
// actions' times, so overlapping patterns resolve alike everywhere).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NodePins } from '../../src/proxy/node-pins.ts';
import { parseSipMessage, type SipMessage } from '../../src/sip/message.ts';

const T0 = 1_700_000_000_000;

function invite(fromUser: string): SipMessage {
  const m = parseSipMessage(Buffer.from([
    'INVITE sip:service@192.0.2.1 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-1', 'Max-Forwards: 70',
    `From: <sip:${fromUser}@example.org>;tag=1`, 'To: <sip:service@example.org>', 'Call-ID: c1', 'CSeq: 1 INVITE', 'Content-Length: 0', '', '',
  ].join('\r\n'), 'latin1'), true);
  if ('failure' in m) throw new Error(m.failure);
  return m;
}

function pins(): { p: NodePins; advance: (ms: number) => void; changes: () => number } {
  let now = T0;
  let changes = 0;
  const p = new NodePins('Call-ID', () => now);
  p.onChange(() => changes++);
  return { p, advance: (ms) => { now += ms; }, changes: () => changes };
}

describe('NodePins: set, remove, match', () => {
  test('the first pin that matches, in the order they were set; a pattern set again moves last', () => {
    const { p, advance } = pins();
    assert.equal(p.set('^vip', 'n1'), null);
    advance(1);
    assert.equal(p.set('^v', 'n2'), null);
    assert.equal(p.match(invite('vip-1')), 'n1');
    advance(1);
    p.set('^vip', 'n3');
    assert.equal(p.match(invite('vip-1')), 'n2', '^v now comes first');
    assert.equal(p.match(invite('other')), null);
  });

  const refused: { name: string; pattern: string }[] = [
    { name: 'not a regular expression', pattern: '(' },
    { name: 'longer than 512 characters', pattern: 'a'.repeat(513) },
  ];
  for (const c of refused) {
    test(`refused, nothing recorded: ${c.name}`, () => {
      const { p, changes } = pins();
      assert.match(p.set(c.pattern, 'n1') ?? '', /./);
      assert.equal(p.size, 0);
      assert.equal(p.states().size, 0);
      assert.equal(changes(), 0);
    });
  }

  test('set and remove are recorded as this balancer\'s latest actions and announced; a remove of nothing is not', () => {
    const { p, advance, changes } = pins();
    p.set('^a', 'n1');
    advance(5);
    assert.equal(p.remove('^a'), true);
    assert.equal(p.remove('^a'), false);
    assert.deepEqual(p.states().get('^a'), { value: null, at: T0 + 5, origin: 'local', by: null });
    assert.equal(changes(), 2);
  });
});

describe('NodePins.merge: actions from balancers sharing the store', () => {
  test('a newer pin is taken, an older one is not; a newer removal removes', () => {
    const { p } = pins();
    p.set('^a', 'n1');
    assert.equal(p.merge({ pattern: '^a', nodeId: 'n2', at: T0 - 1, by: 'b2' }), false);
    assert.equal(p.merge({ pattern: '^a', nodeId: 'n2', at: T0 + 1, by: 'b2' }), true);
    assert.equal(p.match(invite('a')), 'n2');
    assert.equal(p.states().get('^a')?.origin, 'shared');
    assert.equal(p.merge({ pattern: '^a', nodeId: null, at: T0 + 2, by: 'b3' }), true);
    assert.equal(p.match(invite('a')), null);
  });

  test('merged pins take their place by time, so overlapping patterns resolve as on the balancer that set them', () => {
    const { p, advance } = pins();
    advance(10);
    p.set('^vip', 'local');
    p.merge({ pattern: '^v', nodeId: 'earlier', at: T0 + 5, by: 'b2' });
    assert.equal(p.match(invite('vip-1')), 'earlier');
  });

  test('equal times: a pin wins over a removal, then the greater node id', () => {
    const { p } = pins();
    assert.equal(p.merge({ pattern: '^a', nodeId: 'n1', at: T0, by: 'b1' }), true);
    assert.equal(p.merge({ pattern: '^a', nodeId: null, at: T0, by: 'b2' }), false);
    assert.equal(p.merge({ pattern: '^a', nodeId: 'n0', at: T0, by: 'b3' }), false);
    assert.equal(p.merge({ pattern: '^a', nodeId: 'n2', at: T0, by: 'b4' }), true);
    assert.equal(p.match(invite('a')), 'n2');
  });

  test('a pattern this balancer cannot compile is left out', () => {
    const { p } = pins();
    assert.equal(p.merge({ pattern: '(', nodeId: 'n1', at: T0, by: 'b2' }), false);
    assert.equal(p.size, 0);
  });

  test('merges are not announced (only this balancer\'s own actions are written)', () => {
    const { p, changes } = pins();
    p.merge({ pattern: '^a', nodeId: 'n1', at: T0, by: 'b2' });
    assert.equal(changes(), 0);
  });

  test('prune forgets old removals only; forgetShared forgets a shared action but keeps its pin', () => {
    const { p, advance } = pins();
    p.set('^a', 'n1');
    p.set('^b', 'n1');
    p.remove('^b');
    p.merge({ pattern: '^c', nodeId: 'n2', at: T0, by: 'b2' });
    advance(100);
    p.prune(T0 + 50);
    assert.deepEqual([...p.states().keys()].sort(), ['^a', '^c']);
    p.forgetShared('^c');
    p.forgetShared('^a');
    assert.deepEqual([...p.states().keys()], ['^a'], 'a local action is not forgotten that way');
    assert.equal(p.match(invite('c')), 'n2');
  });
});
