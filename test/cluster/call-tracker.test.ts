// CallTracker: active calls per node from the call events the proxy reports (initial INVITE
// forwarded, 2xx, final error, BYE, a request of the call going to a node), idle expiry, the
// table bound, and the counts other balancers share through the store.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CallTracker } from '../../src/cluster/call-tracker.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import { eventually } from '../helpers/wait.ts';

const A = '10.0.1.1:5080';
const B = '10.0.1.2:5080';
const C = '10.0.1.3:5080';
const ALL = [A, B, C];

/** A sweep interval that never fires during a test: these tests drive sweep(now) themselves. */
const NO_BACKGROUND_SWEEP = 3_600_000;

function tracker(t: TestContext, idleMs = 60_000, maxCalls?: number): CallTracker {
  const c = new CallTracker(idleMs, maxCalls, NO_BACKGROUND_SWEEP);
  t.after(() => c.close());
  return c;
}

/** activeCalls for every node, as an object without the zero counts. */
function counts(c: CallTracker): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ALL) if (c.activeCalls(id) !== 0) out[id] = c.activeCalls(id);
  return out;
}

type Event =
  | ['started', string, string]
  | ['touch', string, string]
  | ['confirmed', string]
  | ['failed', string]
  | ['ended', string];

function apply(c: CallTracker, events: readonly Event[]): void {
  for (const e of events) {
    switch (e[0]) {
      case 'started': c.started(e[1], e[2]); break;
      case 'touch': c.touch(e[1], e[2]); break;
      case 'confirmed': c.confirmed(e[1]); break;
      case 'failed': c.failed(e[1]); break;
      case 'ended': c.ended(e[1]); break;
    }
  }
}

describe('CallTracker: call events -> active calls per node', () => {
  const CASES: { name: string; events: Event[]; expected: Record<string, number>; size: number }[] = [
    { name: 'nothing happened', events: [], expected: {}, size: 0 },
    { name: 'one call started', events: [['started', 'c1', A]], expected: { [A]: 1 }, size: 1 },
    {
      name: 'calls on several nodes',
      events: [['started', 'c1', A], ['started', 'c2', B], ['started', 'c3', A], ['started', 'c4', C], ['started', 'c5', A]],
      expected: { [A]: 3, [B]: 1, [C]: 1 }, size: 5,
    },
    { name: 'retransmitted INVITE does not double count', events: [['started', 'c1', A], ['started', 'c1', A], ['started', 'c1', A]], expected: { [A]: 1 }, size: 1 },
    { name: 'INVITE re-sent to another node (failover) moves the count', events: [['started', 'c1', A], ['started', 'c1', B]], expected: { [B]: 1 }, size: 1 },
    { name: 'touch on the same node changes nothing', events: [['started', 'c1', A], ['touch', 'c1', A]], expected: { [A]: 1 }, size: 1 },
    { name: 'touch with another node moves the count', events: [['started', 'c1', A], ['started', 'c2', A], ['touch', 'c1', C]], expected: { [A]: 1, [C]: 1 }, size: 2 },
    { name: 'touch of an unknown call counts nothing', events: [['touch', 'nope', A]], expected: {}, size: 0 },
    { name: 'ended', events: [['started', 'c1', A], ['started', 'c2', A], ['ended', 'c1']], expected: { [A]: 1 }, size: 1 },
    { name: 'ended twice counts down once', events: [['started', 'c1', A], ['started', 'c2', A], ['ended', 'c1'], ['ended', 'c1']], expected: { [A]: 1 }, size: 1 },
    { name: 'confirmed then ended', events: [['started', 'c1', B], ['confirmed', 'c1'], ['ended', 'c1']], expected: {}, size: 0 },
    { name: 'failed before confirmation ends the call', events: [['started', 'c1', B], ['failed', 'c1']], expected: {}, size: 0 },
    { name: 'failed after confirmed (failed re-INVITE) keeps the call', events: [['started', 'c1', B], ['confirmed', 'c1'], ['failed', 'c1']], expected: { [B]: 1 }, size: 1 },
    {
      name: 'failed re-INVITE, then BYE ends the call',
      events: [['started', 'c1', B], ['confirmed', 'c1'], ['failed', 'c1'], ['ended', 'c1']], expected: {}, size: 0,
    },
    { name: 'confirmed of an unknown call does not protect a later one', events: [['confirmed', 'c1'], ['started', 'c1', A], ['failed', 'c1']], expected: {}, size: 0 },
    { name: 'failed and ended of unknown calls count nothing down', events: [['started', 'c1', A], ['failed', 'x'], ['ended', 'y']], expected: { [A]: 1 }, size: 1 },
    { name: 'a moved call ends on the node it moved to', events: [['started', 'c1', A], ['started', 'c2', B], ['touch', 'c1', B], ['ended', 'c1']], expected: { [B]: 1 }, size: 1 },
    { name: 'a call id reused after its end is a new call', events: [['started', 'c1', A], ['ended', 'c1'], ['started', 'c1', C]], expected: { [C]: 1 }, size: 1 },
  ];
  for (const c of CASES) {
    test(c.name, (t) => {
      const tr = tracker(t);
      apply(tr, c.events);
      assert.deepEqual(counts(tr), c.expected);
      assert.deepEqual(Object.fromEntries(tr.localCounts()), c.expected, 'localCounts holds no zero or negative counts');
      assert.equal(tr.size, c.size);
      assert.equal(tr.expired, 0);
    });
  }
});

describe('CallTracker: idle expiry', () => {
  test('a call idle for longer than idleMs is forgotten by sweep(now); younger calls stay', (t) => {
    const tr = tracker(t, 10_000);
    tr.started('c1', A, 1_000);
    tr.started('c2', A, 2_000);
    tr.started('c3', B, 5_000);
    tr.sweep(11_000);
    assert.deepEqual(counts(tr), { [A]: 2, [B]: 1 }, 'exactly idleMs old: not yet');
    tr.sweep(11_001);
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 1 });
    assert.equal(tr.size, 2);
    assert.equal(tr.expired, 1);
    tr.sweep(15_001);
    assert.deepEqual(counts(tr), {});
    assert.equal(tr.size, 0);
    assert.equal(tr.expired, 3);
  });

  test('a touch refreshes the call: it outlives its start by the idle time after its last use', (t) => {
    const tr = tracker(t, 10_000);
    tr.started('c1', A, 0);
    tr.started('c2', A, 0);
    tr.touch('c1', A, 9_000);
    tr.sweep(10_001);
    assert.deepEqual(counts(tr), { [A]: 1 }, 'c2 expired, c1 was used at 9 s');
    tr.touch('c1', A, 18_000);
    tr.sweep(25_000);
    tr.sweep(27_999);
    assert.deepEqual(counts(tr), { [A]: 1 }, 'used at 18 s, so alive until 28 s');
    // Idle since 18 s: a later sweep frees it.
    tr.sweep(48_001);
    assert.deepEqual(counts(tr), {});
    assert.equal(tr.expired, 2);
  });

  test('a retransmitted INVITE and a request on another node both count as use', (t) => {
    const tr = tracker(t, 10_000);
    tr.started('c1', A, 0);
    tr.started('c1', A, 8_000); // retransmission
    tr.started('c2', A, 0);
    tr.touch('c2', B, 8_000); // failover
    tr.sweep(10_001);
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 1 });
    assert.equal(tr.expired, 0);
  });

  test('an expired call ends nothing twice: a late BYE for it counts nothing down', (t) => {
    const tr = tracker(t, 1_000);
    tr.started('c1', A, 0);
    tr.started('c2', A, 5_000);
    tr.sweep(2_000);
    assert.deepEqual(counts(tr), { [A]: 1 });
    tr.ended('c1');
    assert.deepEqual(counts(tr), { [A]: 1 });
  });

  test('the background sweeper expires idle calls on its own (mocked clock)', (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const tr = new CallTracker(5_000, undefined, 1_000);
    t.after(() => tr.close());
    tr.started('c1', A);
    t.mock.timers.tick(3_000);
    tr.started('c2', B);
    t.mock.timers.tick(3_000);
    assert.deepEqual(counts(tr), { [B]: 1 }, 'c1 idle for 6 s > 5 s');
    assert.equal(tr.expired, 1);
    t.mock.timers.tick(3_000);
    assert.deepEqual(counts(tr), {});
    assert.equal(tr.expired, 2);
  });
});

describe('CallTracker: maxCalls', () => {
  test('beyond maxCalls the oldest call is evicted and counted as expired', (t) => {
    const tr = tracker(t, 60_000, 3);
    tr.started('c1', A, 1);
    tr.started('c2', B, 2);
    tr.started('c3', A, 3);
    assert.equal(tr.expired, 0);
    tr.started('c4', B, 4);
    assert.equal(tr.size, 3);
    assert.equal(tr.expired, 1);
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 2 }, 'c1 (on A) went');
    tr.ended('c1');
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 2 }, 'ending the evicted call counts nothing down');
    tr.started('c5', C, 5);
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 1, [C]: 1 }, 'c2 (on B) went next');
    assert.equal(tr.expired, 2);
  });

  test('a retransmission of a tracked call at the bound evicts nothing', (t) => {
    const tr = tracker(t, 60_000, 2);
    tr.started('c1', A, 1);
    tr.started('c2', B, 2);
    tr.started('c1', A, 3);
    tr.started('c2', B, 4);
    assert.equal(tr.size, 2);
    assert.equal(tr.expired, 0);
  });
});

describe('CallTracker: other balancers\' counts', () => {
  test('setRemote adds the other balancers\' counts to activeCalls, not to localCounts', (t) => {
    const tr = tracker(t);
    tr.started('c1', A);
    tr.started('c2', B);
    tr.setRemote(new Map([[A, 5], [C, 2]]));
    assert.deepEqual(counts(tr), { [A]: 6, [B]: 1, [C]: 2 });
    assert.deepEqual(Object.fromEntries(tr.localCounts()), { [A]: 1, [B]: 1 });
    tr.setRemote(new Map([[B, 3]]));
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 4 }, 'a new set replaces the previous one');
    tr.setRemote(new Map());
    assert.deepEqual(counts(tr), { [A]: 1, [B]: 1 });
  });

  test('share: two balancers on one store each see the other\'s counts after a tick', async (t) => {
    const store = new MemoryStateStore();
    t.after(() => store.close());
    const one = tracker(t);
    const two = tracker(t);
    one.started('c1', A);
    one.started('c2', A);
    one.started('c3', B);
    two.started('c4', B);
    two.started('c5', C);
    one.share(store.calls, 'balancer-1', 20);
    two.share(store.calls, 'balancer-2', 20);

    // Shared every 20 ms: 2 s leaves a loaded machine a hundred periods.
    const want = (what: string, ok: () => boolean): Promise<void> => eventually(what, 2_000, ok, 5);
    await want('each sees the other', () => one.activeCalls(C) === 1 && two.activeCalls(A) === 2);
    assert.deepEqual(counts(one), { [A]: 2, [B]: 2, [C]: 1 });
    assert.deepEqual(counts(two), { [A]: 2, [B]: 2, [C]: 1 });
    assert.deepEqual(Object.fromEntries(one.localCounts()), { [A]: 2, [B]: 1 }, 'own counts stay apart');

    one.ended('c1');
    two.ended('c5');
    await want('ends reach the other balancer', () => two.activeCalls(A) === 1 && one.activeCalls(C) === 0);
    assert.deepEqual(counts(one), { [A]: 1, [B]: 2 });
    assert.deepEqual(counts(two), { [A]: 1, [B]: 2 });
  });
});

describe('CallTracker: columns', () => {
  test('grow with the calls and shrink after a peak; the calls left keep node, confirmation and idle time', (t) => {
    const tr = tracker(t, 10_000);
    const initial = tr.capacity;
    const n = initial * 8;
    for (let i = 0; i < n; i++) tr.started(`c${i}`, ALL[i % 3], 0);
    assert.equal(tr.capacity, n);
    // Every 16th call stays: confirmed and used at 9 s; the others end, or expire at the sweep.
    for (let i = 0; i < n; i += 16) {
      tr.confirmed(`c${i}`);
      tr.touch(`c${i}`, ALL[i % 3], 9_000);
    }
    for (let i = 1; i < n; i += 2) tr.ended(`c${i}`);
    tr.sweep(10_001);
    assert.equal(tr.size, n / 16);
    assert.equal(tr.capacity, n / 8, 'compacted to twice the calls left');
    assert.deepEqual(counts(tr), { [A]: Math.ceil(n / 16 / 3), [B]: Math.ceil((n / 16 - 1) / 3), [C]: Math.ceil((n / 16 - 2) / 3) });
    // Confirmation moved with the call: a failed re-INVITE keeps it.
    tr.failed('c16');
    assert.equal(tr.size, n / 16);
    // A move after the compaction counts on the right nodes; the idle time moved too.
    tr.touch('c0', B, 15_000);
    assert.equal(tr.activeCalls(A), Math.ceil(n / 16 / 3) - 1);
    tr.sweep(20_002);
    assert.equal(tr.size, 1, 'only c0, used at 15 s, is left');
    assert.equal(tr.activeCalls(B), 1);
    tr.ended('c0');
    assert.deepEqual(counts(tr), {});
  });
});
