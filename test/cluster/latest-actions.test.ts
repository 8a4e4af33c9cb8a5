// The latest operator action per key, which drains, weights and pins share: local actions strictly
// later than what they replace, merges by time with a tie rule on the values, forgetting and pruning.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LatestActions } from '../../src/cluster/latest-actions.ts';

const T0 = 1_700_000_000_000;

/** Drains' rules: on equal times a drain (true) beats an activate; an activate is the undo. */
function drains(): { a: LatestActions<boolean>; advance: (ms: number) => void } {
  let now = T0;
  const a = new LatestActions<boolean>({ winsTie: (incoming, current) => incoming && !current, isUndo: (v) => !v }, () => now);
  return { a, advance: (ms) => { now += ms; } };
}

describe('LatestActions: this balancer\'s own actions', () => {
  test('an action takes the current time', () => {
    const { a } = drains();
    assert.deepEqual(a.setLocal('n1', true), { value: true, at: T0, origin: 'local', by: null });
    assert.equal(a.valueOf('n1'), true);
    assert.equal(a.valueOf('n2'), undefined);
  });

  test('actions within one millisecond are each strictly later than the one they replace', () => {
    const { a } = drains();
    a.setLocal('n1', true);
    a.setLocal('n1', false);
    a.setLocal('n1', true);
    assert.equal(a.get('n1')?.at, T0 + 2);
    assert.equal(a.nextAt('n1'), T0 + 3);
    assert.equal(a.nextAt('other'), T0, 'another key is not pushed');
  });

  test('an action replacing one from a balancer whose clock is ahead still comes after it', () => {
    const { a } = drains();
    a.merge('n1', true, T0 + 500, 'b2');
    assert.equal(a.setLocal('n1', false).at, T0 + 501);
  });

  test('the time nextAt gave is kept when passed back', () => {
    const { a, advance } = drains();
    const at = a.nextAt('n1');
    advance(10);
    assert.equal(a.setLocal('n1', true, at).at, T0);
  });
});

describe('LatestActions.merge: another balancer\'s action', () => {
  // [what is known, what arrives, taken?]
  const cases: { name: string; current: [boolean, number] | null; incoming: [boolean, number]; taken: boolean }[] = [
    { name: 'nothing known', current: null, incoming: [false, T0], taken: true },
    { name: 'newer', current: [true, T0], incoming: [false, T0 + 1], taken: true },
    { name: 'older', current: [false, T0], incoming: [true, T0 - 1], taken: false },
    { name: 'same time, the tie rule prefers it', current: [false, T0], incoming: [true, T0], taken: true },
    { name: 'same time, the tie rule prefers what is known', current: [true, T0], incoming: [false, T0], taken: false },
    { name: 'same time, same value', current: [true, T0], incoming: [true, T0], taken: false },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.taken ? 'taken' : 'not taken'}`, () => {
      const { a } = drains();
      if (c.current !== null) a.setShared('n1', c.current[0], c.current[1], 'b1');
      assert.equal(a.isNewer('n1', c.incoming[0], c.incoming[1]), c.taken);
      assert.equal(a.merge('n1', c.incoming[0], c.incoming[1], 'b2'), c.taken);
      const st = a.get('n1');
      if (c.taken) assert.deepEqual(st, { value: c.incoming[0], at: c.incoming[1], origin: 'shared', by: 'b2' });
      else assert.equal(st?.by, 'b1');
    });
  }

  test('two balancers merging each other\'s same-millisecond actions settle on the same one', () => {
    const one = drains().a;
    const two = drains().a;
    one.setLocal('n1', false);
    two.setLocal('n1', true);
    one.merge('n1', true, T0, 'two');
    two.merge('n1', false, T0, 'one');
    assert.equal(one.valueOf('n1'), true);
    assert.equal(two.valueOf('n1'), true);
  });
});

describe('LatestActions: forgetting', () => {
  test('forgetShared drops a shared action and returns it; a local one stays', () => {
    const { a } = drains();
    a.setLocal('mine', true);
    a.setShared('theirs', true, T0, 'b2');
    assert.equal(a.forgetShared('mine'), undefined);
    assert.deepEqual(a.forgetShared('theirs'), { value: true, at: T0, origin: 'shared', by: 'b2' });
    assert.equal(a.forgetShared('unknown'), undefined);
    assert.deepEqual([...a.states().keys()], ['mine']);
  });

  test('prune forgets undo actions older than the bound, local or shared; never the actions that do something', () => {
    const { a, advance } = drains();
    a.setLocal('old-undo', false);
    a.setShared('old-undo-shared', false, T0, 'b2');
    a.setLocal('old-drain', true);
    advance(100);
    a.setLocal('new-undo', false);
    a.prune(T0 + 50);
    assert.deepEqual([...a.states().keys()].sort(), ['new-undo', 'old-drain']);
  });
});
