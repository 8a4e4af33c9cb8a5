// Per-call records without a JavaScript object per call: numbered slots in typed arrays that
// grow by doubling, a free list of slots to reuse, and node ids interned as small integers. A
// Map<string, number> from key to slot is then all a table keeps per call besides the key
// itself: with 100,000 calls an object per call (and a boxed number per time field) cost about
// three times as much, and every one of them was traced by each full garbage collection.

/** Node id <-> small integer; ids are few (the nodes a balancer has known), so they are kept for good. */
export class NodeIds {
  private readonly ids: string[] = [];
  private readonly index = new Map<string, number>();

  of(nodeId: string): number {
    let i = this.index.get(nodeId);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(nodeId);
      this.index.set(nodeId, i);
    }
    return i;
  }

  id(i: number): string {
    return this.ids[i];
  }
}

/** Slot numbers 0..capacity-1 handed out and taken back; the owner keeps its columns in step via grow(). */
export class SlotAllocator {
  capacity: number;
  private free: Int32Array;
  private freeCount = 0;
  /** Slots ever handed out: below this, a slot is either in use or on the free list. */
  private used = 0;
  private readonly grown: (capacity: number) => void;

  constructor(initial: number, grown: (capacity: number) => void) {
    this.capacity = initial;
    this.free = new Int32Array(initial);
    this.grown = grown;
    grown(initial);
  }

  take(): number {
    if (this.freeCount > 0) return this.free[--this.freeCount];
    if (this.used === this.capacity) {
      this.capacity *= 2;
      const free = new Int32Array(this.capacity);
      free.set(this.free.subarray(0, this.freeCount));
      this.free = free;
      this.grown(this.capacity);
    }
    return this.used++;
  }

  release(slot: number): void {
    this.free[this.freeCount++] = slot;
  }

  /** Everything free again; the columns keep their size. */
  reset(): void {
    this.freeCount = 0;
    this.used = 0;
  }

  /** The owner moved its `used` slots to 0..used-1 of new columns of `capacity` (compaction). */
  rebuilt(used: number, capacity: number): void {
    this.capacity = capacity;
    this.free = new Int32Array(capacity);
    this.freeCount = 0;
    this.used = used;
  }

  /**
   * The capacity to compact to when fewer than a quarter of the slots are in use (and the columns
   * are above `initial`), else 0. Compacting to twice the slots in use leaves room to grow again
   * before the next doubling, so a table that swings does not copy back and forth.
   */
  shrinkTo(inUse: number, initial: number): number {
    if (this.capacity <= initial || inUse * 4 >= this.capacity) return 0;
    let capacity = initial;
    while (capacity < inUse * 2) capacity *= 2;
    return capacity;
  }
}

/** A copy of `a` in `capacity` slots (capacity >= a.length). */
export function grownFloat64(a: Float64Array, capacity: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(capacity);
  b.set(a);
  return b;
}

export function grownInt32(a: Int32Array, capacity: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(capacity);
  b.set(a);
  return b;
}

export function grownUint8(a: Uint8Array, capacity: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(capacity);
  b.set(a);
  return b;
}
