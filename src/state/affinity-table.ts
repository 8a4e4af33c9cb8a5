// Key -> node id with idle expiry, bounded by time rather than by a size cap (a size cap would
// move live calls). Two insertion-ordered Maps make expiry O(expired): `live` is ordered by
// insertion time (`since`); a lookup only refreshes `at`, and the sweep re-queues an entry that
// was touched since it was queued. `closing` holds ended calls for the retransmission window
// only, so finished calls do not sit in memory for the whole idle timeout. An idle entry is
// unusable from idleMs on and freed by 2 * idleMs at the latest. Beyond maxEntries the oldest
// queued entries are evicted, so a flood of new keys costs affinity, never the process.
// Each entry carries one number for its owner (`mark`), so a caller that mirrors the table
// elsewhere (the Redis store: when the entry was last written there) needs no second Map.
// No object per entry (slots.ts): the Maps map a key to a slot number, and the slot's node
// (interned), times, flag and mark sit in typed arrays, about 30 bytes a slot; use() and peek()
// hand out a short-lived view of the slot. The columns double when full and, after a peak has
// passed, the sweep compacts them to twice the entries left once under a quarter are in use.

import { grownFloat64, grownInt32, grownUint8, NodeIds, SlotAllocator } from './slots.ts';

/** An entry as its owner sees it: a view of its slot, to read and mark at once, not to keep. */
export interface AffinityEntry {
  readonly nodeId: string;
  /** Last use; after close(), when it was closed. */
  readonly at: number;
  /** The call ended: the entry only lingers. */
  readonly closed: boolean;
  /** Free for the owner; the table only stores it. */
  mark: number;
}

class EntryView implements AffinityEntry {
  private readonly t: AffinityTable;
  private readonly slot: number;

  constructor(t: AffinityTable, slot: number) {
    this.t = t;
    this.slot = slot;
  }

  get nodeId(): string {
    return this.t.nodeOf(this.slot);
  }

  get at(): number {
    return this.t.atOf(this.slot);
  }

  get closed(): boolean {
    return this.t.closedOf(this.slot);
  }

  get mark(): number {
    return this.t.markOf(this.slot);
  }

  set mark(value: number) {
    this.t.setMark(this.slot, value);
  }
}

const INITIAL_SLOTS = 1024;

export class AffinityTable {
  /** Key -> slot; insertion order is the order of `since`. */
  private live = new Map<string, number>();
  private closing = new Map<string, number>();
  private readonly nodeIds = new NodeIds();
  // Columns, by slot. at: last use (after close(): when closed); since: when (re)queued in its Map.
  private node = new Int32Array(0);
  private atMs = new Float64Array(0);
  private since = new Float64Array(0);
  private marks = new Float64Array(0);
  private closedFlag = new Uint8Array(0);
  private readonly slots: SlotAllocator;
  private readonly idleMs: number;
  private readonly lingerMs: number;
  private readonly maxEntries: number;
  private readonly timer: NodeJS.Timeout;
  /** Entries dropped to stay within maxEntries. */
  evicted = 0;

  constructor(idleMs: number, lingerMs: number, maxEntries = Number.MAX_SAFE_INTEGER, sweepEveryMs = 1000) {
    this.idleMs = idleMs;
    this.lingerMs = lingerMs;
    this.maxEntries = maxEntries;
    this.slots = new SlotAllocator(INITIAL_SLOTS, (capacity) => {
      this.node = grownInt32(this.node, capacity);
      this.atMs = grownFloat64(this.atMs, capacity);
      this.since = grownFloat64(this.since, capacity);
      this.marks = grownFloat64(this.marks, capacity);
      this.closedFlag = grownUint8(this.closedFlag, capacity);
    });
    this.timer = setInterval(() => this.sweep(Date.now()), sweepEveryMs);
    this.timer.unref();
  }

  get size(): number {
    return this.live.size + this.closing.size;
  }

  get(key: string, now = Date.now()): string | undefined {
    const slot = this.usable(key, now, true);
    return slot === -1 ? undefined : this.nodeIds.id(this.node[slot]);
  }

  /** get() that hands back the entry itself (a use: restarts the idle time of a live entry). */
  use(key: string, now = Date.now()): AffinityEntry | undefined {
    const slot = this.usable(key, now, true);
    return slot === -1 ? undefined : new EntryView(this, slot);
  }

  /** The usable entry without counting as a use. */
  peek(key: string, now = Date.now()): AffinityEntry | undefined {
    const slot = this.usable(key, now, false);
    return slot === -1 ? undefined : new EntryView(this, slot);
  }

  /** The slot of the usable entry for key, or -1; `touch`: count it as a use. */
  private usable(key: string, now: number, touch: boolean): number {
    const e = this.live.get(key);
    if (e !== undefined) {
      if (now - this.atMs[e] > this.idleMs) return -1;
      if (touch) this.atMs[e] = now;
      return e;
    }
    const c = this.closing.get(key);
    return c !== undefined && now - this.atMs[c] <= this.lingerMs ? c : -1;
  }

  set(key: string, nodeId: string, now = Date.now(), mark = 0): void {
    let slot = this.closing.get(key);
    if (slot !== undefined) {
      this.closing.delete(key);
    } else {
      slot = this.live.get(key);
      if (slot !== undefined) this.live.delete(key);
      else slot = this.slots.take();
    }
    this.node[slot] = this.nodeIds.of(nodeId);
    this.atMs[slot] = now;
    this.since[slot] = now;
    this.marks[slot] = mark;
    this.closedFlag[slot] = 0;
    this.live.set(key, slot);
    if (this.live.size + this.closing.size > this.maxEntries) this.evictOldest();
  }

  private evictOldest(): void {
    // Ended calls go first; then the least recently (re)queued live entry.
    const map = this.closing.size > 0 ? this.closing : this.live;
    const oldest = map.entries().next();
    if (!oldest.done) {
      map.delete(oldest.value[0]);
      this.slots.release(oldest.value[1]);
      this.evicted++;
    }
  }

  /**
   * Keep the entry only for the linger window (BYE seen: retransmissions may still come).
   * False when there was no live entry to close.
   */
  close(key: string, now = Date.now()): boolean {
    const slot = this.live.get(key);
    if (slot === undefined) return false;
    this.live.delete(key);
    this.atMs[slot] = now;
    this.since[slot] = now;
    this.closedFlag[slot] = 1;
    this.closing.set(key, slot);
    return true;
  }

  sweep(now: number): void {
    const requeue: string[] = [];
    const requeued: number[] = [];
    for (const [k, slot] of this.live) {
      if (now - this.since[slot] <= this.idleMs) break;
      this.live.delete(k);
      if (now - this.atMs[slot] <= this.idleMs) {
        this.since[slot] = now;
        requeue.push(k);
        requeued.push(slot);
      } else {
        this.slots.release(slot);
      }
    }
    for (let i = 0; i < requeue.length; i++) this.live.set(requeue[i], requeued[i]);
    for (const [k, slot] of this.closing) {
      if (now - this.atMs[slot] <= this.lingerMs) break;
      this.closing.delete(k);
      this.slots.release(slot);
    }
    const capacity = this.slots.shrinkTo(this.size, INITIAL_SLOTS);
    if (capacity !== 0) this.compact(capacity);
  }

  /** Slots the columns have room for (they grow and shrink with the entries). */
  get capacity(): number {
    return this.slots.capacity;
  }

  /** Moves every entry to slots 0..size-1 of columns of `capacity`; the Maps keep their order. */
  private compact(capacity: number): void {
    const node = new Int32Array(capacity);
    const atMs = new Float64Array(capacity);
    const since = new Float64Array(capacity);
    const marks = new Float64Array(capacity);
    const closedFlag = new Uint8Array(capacity);
    let n = 0;
    for (const map of [this.live, this.closing]) {
      for (const [k, slot] of map) {
        node[n] = this.node[slot];
        atMs[n] = this.atMs[slot];
        since[n] = this.since[slot];
        marks[n] = this.marks[slot];
        closedFlag[n] = this.closedFlag[slot];
        map.set(k, n++);
      }
    }
    this.node = node;
    this.atMs = atMs;
    this.since = since;
    this.marks = marks;
    this.closedFlag = closedFlag;
    this.slots.rebuilt(n, capacity);
  }

  clear(): void {
    clearInterval(this.timer);
    this.live.clear();
    this.closing.clear();
    this.slots.reset();
    const capacity = this.slots.shrinkTo(0, INITIAL_SLOTS);
    if (capacity !== 0) this.compact(capacity);
  }

  /** For EntryView. */
  nodeOf(slot: number): string {
    return this.nodeIds.id(this.node[slot]);
  }

  atOf(slot: number): number {
    return this.atMs[slot];
  }

  closedOf(slot: number): boolean {
    return this.closedFlag[slot] === 1;
  }

  markOf(slot: number): number {
    return this.marks[slot];
  }

  setMark(slot: number, value: number): void {
    this.marks[slot] = value;
  }
}
