// rateLimitPerKey: the gate of log lines a peer can trigger, per source address, in bounded memory.
// Date is mocked (node:test mock timers), so the intervals are exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitPerKey } from '../../src/core/log.ts';

test('rateLimitPerKey: once per interval per key, again after the interval', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const gate = rateLimitPerKey(60_000, 10);
  const steps: { advance: number; key: string; open: boolean }[] = [
    { advance: 0, key: 'a', open: true },
    { advance: 1, key: 'a', open: false },
    { advance: 0, key: 'b', open: true },
    { advance: 59_998, key: 'a', open: false },
    { advance: 1, key: 'a', open: true },
    { advance: 0, key: 'a', open: false },
    // b passed one millisecond after a.
    { advance: 0, key: 'b', open: false },
    { advance: 1, key: 'b', open: true },
    { advance: 0, key: 'b', open: false },
  ];
  for (const [i, s] of steps.entries()) {
    t.mock.timers.tick(s.advance);
    assert.equal(gate(s.key), s.open, `step ${i}: ${s.key}`);
  }
});

test('rateLimitPerKey: at most maxKeys remembered; past them, new keys share one gate until old ones expire', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const gate = rateLimitPerKey(60_000, 3);
  assert.deepEqual(['a', 'b', 'c'].map((k) => gate(k)), [true, true, true]);
  // The table is full of fresh keys: a flood of new sources gets one line per interval in all.
  assert.deepEqual(['d', 'e', 'f'].map((k) => gate(k)), [true, false, false]);
  assert.equal(gate('a'), false, 'a is still remembered');
  t.mock.timers.tick(60_000);
  // Every entry has expired and is dropped: new keys are remembered again.
  assert.deepEqual(['d', 'e', 'f'].map((k) => gate(k)), [true, true, true]);
  assert.equal(gate('d'), false);
});
