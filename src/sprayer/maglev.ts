// The bucket table the sprayer hashes flows into: NBUCKETS slots, each owned by one balancer.
//
// Maglev's population (Eisenbud et al., NSDI 2016, §3.4) gives every balancer a permutation of
// the slots, derived from its name alone, and lets the balancers take turns claiming their next
// preferred free slot: each one ends with floor or ceil of M/N slots, and the table depends only
// on the set of names. Run over the healthy set alone, though, Maglev moves more than the dead
// balancer's slots: the survivors' turns shift, and a few of their slots change hands too. A
// moved bucket is a broken TCP connection (the new balancer answers it with a reset), so the
// table here is built in two steps:
//
//   1. the base table: Maglev over every configured balancer, healthy or not;
//   2. the slots of the balancers that are down are handed to the healthy ones, always to one of
//      those with the fewest slots so far, each taking its next preferred free slot in its own
//      Maglev permutation (so the orphans spread over all survivors, pseudo-randomly).
//
// The result is a pure function of (configured set, healthy set): a restarted advisor, or a
// second sprayer with the same configuration, builds the same table. It is balanced (step 2
// starts from counts that differ by at most one and always feeds a minimum). When one balancer
// goes down, only its slots move; when it comes back with the rest healthy, it takes back
// exactly its base slots and nothing else moves. With several down at once the orphans of the
// ones still down may be dealt again differently: near-minimal, as in Maglev.

import { createHash } from 'node:crypto';

/** Where a balancer's permutation starts and how it steps: slot j of it is (offset + j*skip) mod size. */
export function maglevPermutation(name: string, size: number): { offset: number; skip: number } {
  const h = createHash('sha256').update(name).digest();
  const offset = h.readUInt32BE(0) % size;
  if (size === 1) return { offset, skip: 1 };
  // A skip that shares no factor with the size visits every slot once (the paper's table size
  // is prime; here any size works, 256 by default).
  let skip = (h.readUInt32BE(4) % (size - 1)) + 1;
  while (gcd(skip, size) !== 1) skip = (skip % (size - 1)) + 1;
  return { offset, skip };
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** One balancer walking its permutation: the next slot it prefers that is still free. */
class Walker {
  readonly name: string;
  private readonly offset: number;
  private readonly skip: number;
  private readonly size: number;
  private next = 0;

  constructor(name: string, size: number) {
    this.name = name;
    this.size = size;
    ({ offset: this.offset, skip: this.skip } = maglevPermutation(name, size));
  }

  /** A free slot always exists when this is called (the caller counts them), so this ends within `size` steps. */
  claim(owners: Array<string | null>): number {
    for (;;) {
      const slot = (this.offset + this.next * this.skip) % this.size;
      this.next++;
      if (owners[slot] === null) return slot;
    }
  }
}

/** Names sorted and without repeats: the order of the command line must not change the table. */
function canonical(names: Iterable<string>): string[] {
  return [...new Set(names)].sort();
}

/** Maglev's lookup table over `names`: the owner of each of `size` slots. */
export function maglevTable(names: Iterable<string>, size: number): string[] {
  const sorted = canonical(names);
  if (sorted.length === 0) throw new RangeError('maglevTable: no names');
  if (!Number.isInteger(size) || size < sorted.length) throw new RangeError(`maglevTable: ${size} slots for ${sorted.length} names`);
  const owners: Array<string | null> = new Array<string | null>(size).fill(null);
  const walkers = sorted.map((n) => new Walker(n, size));
  let filled = 0;
  while (filled < size) {
    for (const w of walkers) {
      owners[w.claim(owners)] = w.name;
      if (++filled === size) break;
    }
  }
  return owners as string[];
}

export interface BucketTable {
  /** The balancer each bucket sends to. */
  owners: string[];
  /** No balancer is healthy: every configured one gets its base buckets (spray to all). */
  panic: boolean;
}

/**
 * The table for `healthy` among `configured` (see the top of this file). No healthy balancer is
 * panic mode: an empty map would send every packet for the VIP nowhere useful, so the base table
 * over all configured balancers is used, in case some of them still work.
 */
export function bucketTable(configured: Iterable<string>, healthy: Iterable<string>, size: number): BucketTable {
  const all = canonical(configured);
  const base = maglevTable(all, size);
  const alive = new Set(healthy);
  for (const h of alive) if (!all.includes(h)) throw new RangeError(`bucketTable: ${h} is not configured`);
  if (alive.size === 0) return { owners: base, panic: true };
  if (alive.size === all.length) return { owners: base, panic: false };

  const owners: Array<string | null> = base.map((o) => (alive.has(o) ? o : null));
  const counts = new Map<string, number>();
  for (const h of alive) counts.set(h, 0);
  let free = 0;
  for (const o of owners) {
    if (o === null) free++;
    else counts.set(o, (counts.get(o) as number) + 1);
  }
  const walkers = canonical(alive).map((n) => new Walker(n, size));
  while (free > 0) {
    let min = Infinity;
    for (const c of counts.values()) min = Math.min(min, c);
    for (const w of walkers) {
      if (free === 0) break;
      if (counts.get(w.name) !== min) continue;
      owners[w.claim(owners)] = w.name;
      counts.set(w.name, min + 1);
      free--;
    }
  }
  return { owners: owners as string[], panic: false };
}
