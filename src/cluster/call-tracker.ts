// Active calls per node: what least-active-calls and bounded-load hashing balance on, and what the
// operator sees. A call starts with an initial INVITE forwarded to a node, is confirmed by a 2xx,
// and ends with a BYE, a final error before confirmation, or idle expiry (a lost BYE must not
// count forever). Each balancer counts the calls it forwarded and shares its counts through the
// store; the load of a node is this balancer's count plus the other balancers' last published
// counts, so the data path never waits for them.

import type { CallCountBoard } from '../state/store.ts';

/** Active calls per node as this balancer knows them: its own plus other balancers' (shared store). */
export interface LoadView {
  activeCalls(nodeId: string): number;
}

interface Call {
  nodeId: string;
  confirmed: boolean;
  /** Last request seen for the call. */
  at: number;
  /** When it was (re)queued; the Map iterates in this order, which makes expiry O(expired). */
  since: number;
}

export class CallTracker implements LoadView {
  private calls = new Map<string, Call>();
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
    const c = this.calls.get(callId);
    if (c !== undefined) {
      this.touch(callId, nodeId, now);
      return;
    }
    this.calls.set(callId, { nodeId, confirmed: false, at: now, since: now });
    this.add(nodeId, 1);
    if (this.calls.size > this.maxCalls) this.evictOldest();
  }

  /** A request of a tracked call went to nodeId: refresh it, and follow it if it moved (failover). */
  touch(callId: string, nodeId: string, now = Date.now()): void {
    const c = this.calls.get(callId);
    if (c === undefined) return;
    c.at = now;
    if (c.nodeId !== nodeId) {
      this.add(c.nodeId, -1);
      this.add(nodeId, 1);
      c.nodeId = nodeId;
    }
  }

  /** A 2xx answered the initial INVITE. */
  confirmed(callId: string): void {
    const c = this.calls.get(callId);
    if (c !== undefined) c.confirmed = true;
  }

  /** A final error answered an INVITE: the call ends unless it was already established (a failed re-INVITE). */
  failed(callId: string): void {
    const c = this.calls.get(callId);
    if (c !== undefined && !c.confirmed) this.remove(callId, c);
  }

  ended(callId: string): void {
    const c = this.calls.get(callId);
    if (c !== undefined) this.remove(callId, c);
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
    const requeue: [string, Call][] = [];
    for (const [id, c] of this.calls) {
      if (now - c.since <= this.idleMs) break;
      this.calls.delete(id);
      if (now - c.at <= this.idleMs) {
        c.since = now;
        requeue.push([id, c]);
      } else {
        this.add(c.nodeId, -1);
        this.expired++;
      }
    }
    for (const [id, c] of requeue) this.calls.set(id, c);
  }

  close(): void {
    clearInterval(this.sweeper);
    if (this.sharing !== null) clearInterval(this.sharing);
    this.calls.clear();
    this.local.clear();
  }

  private remove(callId: string, c: Call): void {
    this.calls.delete(callId);
    this.add(c.nodeId, -1);
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
