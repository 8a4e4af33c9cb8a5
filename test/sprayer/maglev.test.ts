// The bucket table: balanced (every healthy balancer within floor/ceil of buckets/healthy),
// deterministic (names only, any order), and near-minimal in what moves when the healthy set
// changes. The numbers each test asserts are in its name.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketTable, maglevPermutation, maglevTable } from '../../src/sprayer/maglev.ts';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.231.2.${i + 2}:5060`);
const counts = (owners: readonly string[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const o of owners) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
};
const moved = (a: readonly string[], b: readonly string[]): number => a.filter((o, i) => o !== b[i]).length;

function assertBalanced(owners: readonly string[], healthy: readonly string[]): void {
  const c = counts(owners);
  const lo = Math.floor(owners.length / healthy.length);
  const hi = Math.ceil(owners.length / healthy.length);
  assert.deepEqual([...c.keys()].sort(), [...healthy].sort(), 'only healthy balancers own buckets, and each owns some');
  for (const [name, n] of c) assert.ok(n >= lo && n <= hi, `${name} owns ${n}, expected ${lo}..${hi}`);
}

describe('maglev permutation', () => {
  for (const size of [1, 2, 7, 256, 1000, 65536]) {
    test(`visits each of ${size} slots once`, () => {
      for (const name of names(5)) {
        const { offset, skip } = maglevPermutation(name, size);
        const seen = new Set<number>();
        for (let j = 0; j < size; j++) seen.add((offset + j * skip) % size);
        assert.equal(seen.size, size);
      }
    });
  }
});

describe('bucket table: balance', () => {
  const cases: Array<{ balancers: number; healthy: number; buckets: number }> = [
    { balancers: 1, healthy: 1, buckets: 256 },
    { balancers: 2, healthy: 2, buckets: 256 },
    { balancers: 3, healthy: 3, buckets: 256 },
    { balancers: 3, healthy: 2, buckets: 256 },
    { balancers: 5, healthy: 3, buckets: 256 },
    { balancers: 7, healthy: 7, buckets: 256 },
    { balancers: 10, healthy: 1, buckets: 256 },
    { balancers: 10, healthy: 9, buckets: 1021 },
    { balancers: 16, healthy: 16, buckets: 16 },
  ];
  for (const c of cases) {
    test(`${c.healthy} of ${c.balancers} healthy over ${c.buckets} buckets: each within floor/ceil of ${c.buckets}/${c.healthy}`, () => {
      const all = names(c.balancers);
      const healthy = all.slice(0, c.healthy);
      const t = bucketTable(all, healthy, c.buckets);
      assert.equal(t.panic, false);
      assert.equal(t.owners.length, c.buckets);
      assertBalanced(t.owners, healthy);
    });
  }

  test('plain Maglev over 3 names and 256 slots: 85 or 86 each', () => {
    assertBalanced(maglevTable(names(3), 256), names(3));
  });
});

describe('bucket table: determinism', () => {
  test('the same sets in any order give the same table', () => {
    const all = names(5);
    const a = bucketTable(all, [all[0], all[2], all[3]], 256).owners;
    const b = bucketTable([...all].reverse(), [all[3], all[0], all[2]], 256).owners;
    assert.deepEqual(a, b);
  });

  test('a known table does not change between releases (first 8 buckets of 3 balancers)', () => {
    // A change here re-sprays every flow when sprayers of two versions run side by side: bump
    // it deliberately, never by accident.
    assert.deepEqual(bucketTable(names(3), names(3), 256).owners.slice(0, 8), GOLDEN_FIRST_8);
  });
});

describe('bucket table: disruption', () => {
  test('one of 3 goes down: only its 85-86 buckets move, spread over both survivors (each gets 42-43)', () => {
    const all = names(3);
    const before = bucketTable(all, all, 256).owners;
    const lost = all[1];
    const share = counts(before).get(lost) as number;
    assert.ok(share === 85 || share === 86);
    const after = bucketTable(all, [all[0], all[2]], 256).owners;
    assert.equal(moved(before, after), share, 'moved buckets = the dead balancer\'s share');
    for (let i = 0; i < 256; i++) if (before[i] !== lost) assert.equal(after[i], before[i], `bucket ${i} of a survivor moved`);
    const gained = counts(after.filter((_, i) => before[i] === lost));
    for (const s of [all[0], all[2]]) {
      const g = gained.get(s) ?? 0;
      assert.ok(g >= 42 && g <= 43, `${s} took ${g} of the ${share} orphans`);
    }
  });

  test('it comes back: it takes back exactly its 85-86 buckets, nothing else moves', () => {
    const all = names(3);
    const full = bucketTable(all, all, 256).owners;
    const degraded = bucketTable(all, [all[0], all[2]], 256).owners;
    const share = counts(full).get(all[1]) as number;
    assert.equal(moved(degraded, full), share);
    for (let i = 0; i < 256; i++) if (degraded[i] !== full[i]) assert.equal(full[i], all[1]);
  });

  for (const n of [5, 10]) {
    test(`one of ${n} goes down then a second: each step moves only the buckets of the one that left (first step) and at most 1.5x its share (second)`, () => {
      const all = names(n);
      const full = bucketTable(all, all, 256).owners;
      const one = bucketTable(all, all.slice(1), 256).owners;
      assert.equal(moved(full, one), counts(full).get(all[0]));
      const two = bucketTable(all, all.slice(2), 256).owners;
      const share = counts(one).get(all[1]) as number;
      const m = moved(one, two);
      assert.ok(m >= share && m <= Math.ceil(1.5 * share), `second step moved ${m}, its share was ${share}`);
      assertBalanced(two, all.slice(2));
    });
  }

  test('plain Maglev over the healthy set alone moves more (the reason for the two-step table): 90 vs 85 buckets for one of 3', () => {
    const all = names(3);
    const full = maglevTable(all, 256);
    const plain = maglevTable([all[0], all[2]], 256);
    const ours = bucketTable(all, [all[0], all[2]], 256).owners;
    assert.equal(moved(full, ours), counts(full).get(all[1]));
    assert.ok(moved(full, plain) > moved(full, ours), `plain Maglev moved ${moved(full, plain)}`);
  });
});

describe('bucket table: panic', () => {
  test('no balancer healthy: every configured one gets its base buckets, panic set', () => {
    const all = names(3);
    const t = bucketTable(all, [], 256);
    assert.equal(t.panic, true);
    assert.deepEqual(t.owners, bucketTable(all, all, 256).owners);
    assertBalanced(t.owners, all);
  });

  test('a healthy name that is not configured is a bug, not a silent table', () => {
    assert.throws(() => bucketTable(names(2), ['10.9.9.9:5060'], 256), RangeError);
  });

  test('fewer buckets than balancers is refused', () => {
    assert.throws(() => maglevTable(names(3), 2), RangeError);
  });
});

const GOLDEN_FIRST_8 = [
  '10.231.2.4:5060', '10.231.2.4:5060', '10.231.2.4:5060', '10.231.2.2:5060',
  '10.231.2.4:5060', '10.231.2.2:5060', '10.231.2.2:5060', '10.231.2.2:5060',
];
