// Active calls per node: what least-active-calls and bounded-load hashing balance on, and what the
// operator sees. A call starts with an initial INVITE forwarded to a node, is confirmed by a 2xx,
// and ends with a BYE, a final error before confirmation, or idle expiry (a lost BYE must not
// count forever). Each balancer counts the calls it forwarded and shares its counts through the
// store; the load of a node is this balancer's count plus the other balancers' last published
// counts, so the data path never waits for them.

// Like the affinity table, no object per call: Call-ID -> slot, and the slot's node (interned),
// confirmation and times in typed arrays (state/slots.ts).

import { grownFloat64, grownInt32, grownUint8, NodeIds, SlotAllocator } from '../state/slots.ts';
import type { CallCountBoard } from '../state/store.ts';

/** Active calls per node as this balancer knows them: its own plus other balancers' (shared store). */
export interface LoadView {
  activeCalls(nodeId: string): number;
}

const INITIAL_SLOTS = 1024;

export class CallTracker implements LoadView {
  /** Call-ID -> slot; the Map iterates in the order of `since`, which makes expiry O(expired). */
  private calls = new Map<string, number>();
  private readonly nodeIds = new NodeIds();
  // Columns, by slot. at: last request seen for the call; since: when it was (re)queued.
  private node = new Int32Array(0);
  private atMs = new Float64Array(0);
  private since = new Float64Array(0);
  private confirmedFlag = new Uint8Array(0);
  private readonly slots: SlotAllocator;
  private readonly local = new Map<string, number>();
  private remote: ReadonlyMap<string, number> = new Map();
  private readonly idleMs: number;
  private readonly maxCalls: number;
  private readonly sweeper: NodeJS.Timeout;
  private sharing: NodeJS.Timeout | null = null;
  /** Calls forgotten because they went idle or the table was full. */
  expired = 0;

  constructor(idleMs: number, maxCalls = 2_000_000, sweepEveryMs = 1000) {
    this.idleMs = idleMs;
    this.maxCalls = maxCalls;
    this.slots = new SlotAllocator(INITIAL_SLOTS, (capacity) => {
      this.node = grownInt32(this.node, capacity);
      this.atMs = grownFloat64(this.atMs, capacity);
      this.since = grownFloat64(this.since, capacity);
      this.confirmedFlag = grownUint8(this.confirmedFlag, capacity);
    });
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepEveryMs);
    this.sweeper.unref();
  }

  /** Calls this balancer tracks. */
  get size(): number {
    return this.calls.size;
  }

  activeCalls(nodeId: string): number {
    return (this.local.get(nodeId) ?? 0) + (this.remote.get(nodeId) ?? 0);
  }

  /** This balancer's own counts. */
  localCounts(): ReadonlyMap<string, number> {
    return this.local;
  }

  /** An initial INVITE went to nodeId. A retransmission or a failover re-send just updates it. */
  started(callId: string, nodeId: string, now = Date.now()): void {
    if (this.calls.has(callId)) {
      this.touch(callId, nodeId, now);
      return;
    }
    const slot = this.slots.take();
    this.node[slot] = this.nodeIds.of(nodeId);
    this.atMs[slot] = now;
    this.since[slot] = now;
    this.confirmedFlag[slot] = 0;
    this.calls.set(callId, slot);
    this.add(nodeId, 1);
    if (this.calls.size > this.maxCalls) this.evictOldest();
  }

  /** A request of a tracked call went to nodeId: refresh it, and follow it if it moved (failover). */
  touch(callId: string, nodeId: string, now = Date.now()): void {
    const slot = this.calls.get(callId);
    if (slot === undefined) return;
    this.atMs[slot] = now;
    const to = this.nodeIds.of(nodeId);
    if (this.node[slot] !== to) {
      this.add(this.nodeIds.id(this.node[slot]), -1);
      this.add(nodeId, 1);
      this.node[slot] = to;
    }
  }

  /** A 2xx answered the initial INVITE. */
  confirmed(callId: string): void {
    const slot = this.calls.get(callId);
    if (slot !== undefined) this.confirmedFlag[slot] = 1;
  }

  /** A final error answered an INVITE: the call ends unless it was already established (a failed re-INVITE). */
  failed(callId: string): void {
    const slot = this.calls.get(callId);
    if (slot !== undefined && this.confirmedFlag[slot] === 0) this.remove(callId, slot);
  }

  ended(callId: string): void {
    const slot = this.calls.get(callId);
    if (slot !== undefined) this.remove(callId, slot);
  }

  /** Counts other balancers published (replaces the previous ones). */
  setRemote(counts: ReadonlyMap<string, number>): void {
    this.remote = counts;
  }

  /**
   * Publish this balancer's counts and read the others' every intervalMs. A failed read keeps the
   * last known remote counts rather than dropping to zero, which would pile new calls on the
   * nodes other balancers are loading.
   */
  share(board: CallCountBoard, balancerId: string, intervalMs: number): void {
    if (this.sharing !== null) clearInterval(this.sharing);
    const tick = (): void => {
      board.publish(balancerId, this.local);
      void board.others(balancerId).then((others) => { if (others !== null) this.remote = others; });
    };
    tick();
    this.sharing = setInterval(tick, intervalMs);
    this.sharing.unref();
  }

  sweep(now: number): void {
    const requeue: string[] = [];
    const requeued: number[] = [];
    for (const [id, slot] of this.calls) {
      if (now - this.since[slot] <= this.idleMs) break;
      this.calls.delete(id);
      if (now - this.atMs[slot] <= this.idleMs) {
        this.since[slot] = now;
        requeue.push(id);
        requeued.push(slot);
      } else {
        this.add(this.nodeIds.id(this.node[slot]), -1);
        this.slots.release(slot);
        this.expired++;
      }
    }
    for (let i = 0; i < requeue.length; i++) this.calls.set(requeue[i], requeued[i]);
    // After a peak: columns back to twice the calls left once under a quarter are in use.
    const capacity = this.slots.shrinkTo(this.calls.size, INITIAL_SLOTS);
    if (capacity !== 0) this.compact(capacity);
  }

  /** Slots the columns have room for (they grow and shrink with the calls). */
  get capacity(): number {
    return this.slots.capacity;
  }

  /** Moves every call to slots 0..size-1 of columns of `capacity`; the Map keeps its order. */
  private compact(capacity: number): void {
    const node = new Int32Array(capacity);
    const atMs = new Float64Array(capacity);
    const since = new Float64Array(capacity);
    const confirmedFlag = new Uint8Array(capacity);
    let n = 0;
    for (const [id, slot] of this.calls) {
      node[n] = this.node[slot];
      atMs[n] = this.atMs[slot];
      since[n] = this.since[slot];
      confirmedFlag[n] = this.confirmedFlag[slot];
      this.calls.set(id, n++);
    }
    this.node = node;
    this.atMs = atMs;
    this.since = since;
    this.confirmedFlag = confirmedFlag;
    this.slots.rebuilt(n, capacity);
  }

  close(): void {
    clearInterval(this.sweeper);
    if (this.sharing !== null) clearInterval(this.sharing);
    this.calls.clear();
    this.slots.reset();
    this.local.clear();
  }

  private remove(callId: string, slot: number): void {
    this.calls.delete(callId);
    this.add(this.nodeIds.id(this.node[slot]), -1);
    this.slots.release(slot);
  }

  private evictOldest(): void {
    const oldest = this.calls.entries().next();
    if (oldest.done) return;
    this.remove(oldest.value[0], oldest.value[1]);
    this.expired++;
  }

  private add(nodeId: string, delta: number): void {
    const n = (this.local.get(nodeId) ?? 0) + delta;
    if (n <= 0) this.local.delete(nodeId);
    else this.local.set(nodeId, n);
  }
}
