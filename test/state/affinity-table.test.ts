// AffinityTable: key -> node id with idle expiry and a linger window for ended calls. Time is
// driven through the `now` parameters only (no sleeping); the background sweep is pushed far out
// so it never runs during a test.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AffinityTable } from '../../src/state/affinity-table.ts';

const NEVER = 1_000_000_000; // sweep interval (ms): longer than any test

function table(idleMs: number, lingerMs: number): AffinityTable {
  return new AffinityTable(idleMs, lingerMs, Number.MAX_SAFE_INTEGER, NEVER);
}

function withTable(idleMs: number, lingerMs: number, fn: (t: AffinityTable) => void): void {
  const t = table(idleMs, lingerMs);
  try {
    fn(t);
  } finally {
    t.clear();
  }
}

describe('AffinityTable', () => {
  test('set then get; unknown keys are undefined', () => {
    withTable(1000, 300, (t) => {
      assert.equal(t.get('a', 0), undefined);
      t.set('a', 'node-1', 0);
      t.set('b', 'node-2', 0);
      assert.equal(t.get('a', 10), 'node-1');
      assert.equal(t.get('b', 10), 'node-2');
      assert.equal(t.get('c', 10), undefined);
      assert.equal(t.size, 2);
    });
  });

  test('set on an existing key replaces its node', () => {
    withTable(1000, 300, (t) => {
      t.set('a', 'node-1', 0);
      t.set('a', 'node-2', 10);
      assert.equal(t.get('a', 20), 'node-2');
      assert.equal(t.size, 1);
    });
  });

  test('idle expiry: usable just before idleMs since the last use, gone just after', () => {
    withTable(1000, 300, (t) => {
      t.set('a', 'node-1', 0);
      t.set('b', 'node-1', 0);
      assert.equal(t.get('a', 999), 'node-1');
      assert.equal(t.get('b', 1001), undefined);
      assert.equal(t.get('b', 1002), undefined, 'an expired entry stays expired');
    });
  });

  test('every use restarts the idle time', () => {
    withTable(1000, 300, (t) => {
      t.set('a', 'node-1', 0);
      for (let now = 900; now <= 9000; now += 900) assert.equal(t.get('a', now), 'node-1', `at ${now}`);
      assert.equal(t.get('a', 9000 + 1001), undefined);
    });
  });

  test('an expired key can be set again', () => {
    withTable(1000, 300, (t) => {
      t.set('a', 'node-1', 0);
      assert.equal(t.get('a', 5000), undefined);
      t.set('a', 'node-2', 5000);
      assert.equal(t.get('a', 5500), 'node-2');
    });
  });

  test('close (call ended): kept for the linger window, then forgotten', () => {
    withTable(10_000, 300, (t) => {
      t.set('a', 'node-1', 0);
      t.set('b', 'node-1', 0);
      t.close('a', 100);
      assert.equal(t.get('a', 200), 'node-1');
      assert.equal(t.get('a', 399), 'node-1', 'retransmissions within the window still find the node');
      assert.equal(t.get('a', 401), undefined, 'forgotten after the window although idleMs is far longer');
      assert.equal(t.get('b', 401), 'node-1', 'an open call is unaffected');
    });
  });

  test('lookups during the linger window do not extend it', () => {
    withTable(10_000, 300, (t) => {
      t.set('a', 'node-1', 0);
      t.close('a', 0);
      assert.equal(t.get('a', 250), 'node-1');
      assert.equal(t.get('a', 299), 'node-1');
      assert.equal(t.get('a', 301), undefined);
    });
  });

  test('close of an unknown key does nothing', () => {
    withTable(1000, 300, (t) => {
      t.close('nope', 0);
      assert.equal(t.size, 0);
      assert.equal(t.get('nope', 1), undefined);
    });
  });

  test('set after close makes the call live again with the full idle time', () => {
    withTable(1000, 300, (t) => {
      t.set('a', 'node-1', 0);
      t.close('a', 100);
      t.set('a', 'node-2', 200);
      assert.equal(t.get('a', 1100), 'node-2');
      assert.equal(t.size, 1);
    });
  });

  test('sweep removes expired and finished entries, keeps the rest (size shrinks)', () => {
    withTable(1000, 300, (t) => {
      t.set('idle', 'node-1', 0);
      t.set('used', 'node-1', 0);
      t.set('ended', 'node-2', 0);
      t.set('fresh', 'node-2', 1400);
      assert.equal(t.get('used', 900), 'node-1');
      t.close('ended', 100);
      assert.equal(t.size, 4);
      t.sweep(1500);
      assert.equal(t.size, 2, 'idle (unused for 1500 ms) and ended (closed 1400 ms ago) removed');
      assert.equal(t.get('used', 1500), 'node-1');
      assert.equal(t.get('fresh', 1500), 'node-2');
      assert.equal(t.get('idle', 1500), undefined);
      assert.equal(t.get('ended', 1500), undefined);
      // Nobody uses them any more: both are gone once 2 * idleMs have passed.
      t.sweep(1500 + 2001);
      assert.equal(t.size, 0);
    });
  });

  test('sweep over many entries keeps exactly those used within idleMs', () => {
    withTable(50, 10, (t) => {
      for (let i = 0; i < 100; i++) t.set(`k${i}`, 'node-1', i);
      t.sweep(120);
      assert.equal(t.size, 30, 'entries set at 70..99 remain');
      for (let i = 70; i < 100; i++) assert.equal(t.get(`k${i}`, 120), 'node-1', `k${i}`);
      t.sweep(10_000);
      assert.equal(t.size, 0);
    });
  });

  test('sweep does not remove entries still in use', () => {
    withTable(1000, 300, (t) => {
      t.set('a', 'node-1', 0);
      for (let now = 500; now <= 10_000; now += 500) {
        assert.equal(t.get('a', now), 'node-1', `at ${now}`);
        t.sweep(now);
        assert.equal(t.size, 1, `at ${now}`);
      }
    });
  });

  test('clear empties the table', () => {
    const t = table(1000, 300);
    t.set('a', 'node-1', 0);
    t.set('b', 'node-1', 0);
    t.close('b', 0);
    t.clear();
    assert.equal(t.size, 0);
    assert.equal(t.get('a', 1), undefined);
  });
});

describe('AffinityTable size bound', () => {
  test('beyond maxEntries the oldest entries are evicted, ended calls first', () => {
    const t = new AffinityTable(500_000, 32_000, 3, 60_000);
    try {
      t.set('a', 'n1', 0);
      t.set('b', 'n1', 1);
      t.set('c', 'n1', 2);
      t.close('b', 3);
      t.set('d', 'n2', 4); // 4 entries > 3: the ended call 'b' goes first
      assert.equal(t.size, 3);
      assert.equal(t.get('b', 5), undefined);
      assert.equal(t.get('a', 5), 'n1');
      t.set('e', 'n2', 6); // no ended call left: the oldest live entry 'a' goes
      assert.equal(t.get('a', 7), undefined);
      assert.deepEqual(['c', 'd', 'e'].map((k) => t.get(k, 7)), ['n1', 'n2', 'n2']);
      assert.equal(t.evicted, 2);
    } finally {
      t.clear();
    }
  });
});

describe('AffinityTable columns', () => {
  test('grow with the entries and, once under a quarter are in use, shrink to twice the entries left; entries keep node, times, mark and order', () => {
    const t = new AffinityTable(1000, 300, Number.MAX_SAFE_INTEGER, NEVER);
    try {
      const initial = t.capacity;
      const n = initial * 8;
      for (let i = 0; i < n; i++) t.set(`k${i}`, `node-${i % 3}`, 0, i);
      assert.equal(t.capacity, n);
      // Keep every 16th key alive (used at 900), close a few of those; the rest goes idle.
      for (let i = 0; i < n; i += 16) assert.equal(t.get(`k${i}`, 900), `node-${i % 3}`);
      for (let i = 0; i < n; i += 64) t.close(`k${i}`, 950);
      t.sweep(1001);
      const left = n / 16;
      assert.equal(t.size, left);
      assert.equal(t.capacity, left * 2, 'compacted to twice the entries left');
      for (let i = 0; i < n; i++) {
        const e = t.peek(`k${i}`, 1001);
        if (i % 16 !== 0) {
          assert.equal(e, undefined, `k${i}`);
          continue;
        }
        assert.ok(e !== undefined, `k${i}`);
        assert.equal(e.nodeId, `node-${i % 3}`);
        assert.equal(e.mark, i);
        assert.equal(e.closed, i % 64 === 0);
        assert.equal(e.at, i % 64 === 0 ? 950 : 900);
      }
      // A mark written through a view lands in the entry's (moved) slot.
      const e = t.use('k16', 1002);
      assert.ok(e !== undefined);
      e.mark = 12345;
      assert.equal(t.peek('k16', 1002)?.mark, 12345);
      // New entries after the compaction reuse the columns without clobbering the moved ones.
      for (let i = 0; i < left * 2; i++) t.set(`new${i}`, 'node-9', 1003);
      assert.equal(t.get('k16', 1003), 'node-1');
      assert.equal(t.get(`new${left * 2 - 1}`, 1003), 'node-9');
      // Order survives: closed entries still go first at the linger expiry, live ones by idle time.
      t.sweep(1003 + 300);
      assert.equal(t.get('k0', 1303), undefined, 'closed at 950, linger 300: gone');
      assert.equal(t.get('k16', 1303), 'node-1');
    } finally {
      t.clear();
    }
  });
});
