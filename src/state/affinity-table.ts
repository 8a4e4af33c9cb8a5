// Key -> node id with idle expiry, bounded by time rather than by a size cap (a size cap would
// move live calls). Two insertion-ordered Maps make expiry O(expired): `live` is ordered by
// insertion time (`since`); a lookup only refreshes `at`, and the sweep re-queues an entry that
// was touched since it was queued. `closing` holds ended calls for the retransmission window
// only, so finished calls do not sit in memory for the whole idle timeout. An idle entry is
// unusable from idleMs on and freed by 2 * idleMs at the latest. Beyond maxEntries the oldest
// queued entries are evicted, so a flood of new keys costs affinity, never the process.
// Each entry carries one number for its owner (`mark`), so a caller that mirrors the table
// elsewhere (the Redis store: when the entry was last written there) needs no second Map.

/** An entry as its owner sees it. */
export interface AffinityEntry {
  readonly nodeId: string;
  /** Last use; after close(), when it was closed. */
  readonly at: number;
  /** The call ended: the entry only lingers. */
  readonly closed: boolean;
  /** Free for the owner; the table only stores it. */
  mark: number;
}

interface Entry extends AffinityEntry {
  at: number;
  closed: boolean;
  /** When it was (re)queued in its Map; Maps iterate in this order. */
  since: number;
}

export class AffinityTable {
  private live = new Map<string, Entry>();
  private closing = new Map<string, Entry>();
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
    this.timer = setInterval(() => this.sweep(Date.now()), sweepEveryMs);
    this.timer.unref();
  }

  get size(): number {
    return this.live.size + this.closing.size;
  }

  get(key: string, now = Date.now()): string | undefined {
    return this.use(key, now)?.nodeId;
  }

  /** get() that hands back the entry itself (a use: restarts the idle time of a live entry). */
  use(key: string, now = Date.now()): AffinityEntry | undefined {
    const e = this.live.get(key);
    if (e !== undefined) {
      if (now - e.at > this.idleMs) return undefined;
      e.at = now;
      return e;
    }
    const c = this.closing.get(key);
    return c !== undefined && now - c.at <= this.lingerMs ? c : undefined;
  }

  /** The usable entry without counting as a use. */
  peek(key: string, now = Date.now()): AffinityEntry | undefined {
    const e = this.live.get(key);
    if (e !== undefined) return now - e.at > this.idleMs ? undefined : e;
    const c = this.closing.get(key);
    return c !== undefined && now - c.at <= this.lingerMs ? c : undefined;
  }

  set(key: string, nodeId: string, now = Date.now(), mark = 0): void {
    this.closing.delete(key);
    this.live.delete(key);
    this.live.set(key, { nodeId, at: now, since: now, closed: false, mark });
    if (this.live.size + this.closing.size > this.maxEntries) this.evictOldest();
  }

  private evictOldest(): void {
    // Ended calls go first; then the least recently (re)queued live entry.
    const map = this.closing.size > 0 ? this.closing : this.live;
    const oldest = map.keys().next();
    if (!oldest.done) {
      map.delete(oldest.value);
      this.evicted++;
    }
  }

  /**
   * Keep the entry only for the linger window (BYE seen: retransmissions may still come).
   * False when there was no live entry to close.
   */
  close(key: string, now = Date.now()): boolean {
    const e = this.live.get(key);
    if (e === undefined) return false;
    this.live.delete(key);
    e.at = now;
    e.since = now;
    e.closed = true;
    this.closing.set(key, e);
    return true;
  }

  sweep(now: number): void {
    const requeue: [string, Entry][] = [];
    for (const [k, e] of this.live) {
      if (now - e.since <= this.idleMs) break;
      this.live.delete(k);
      if (now - e.at <= this.idleMs) {
        e.since = now;
        requeue.push([k, e]);
      }
    }
    for (const [k, e] of requeue) this.live.set(k, e);
    for (const [k, e] of this.closing) {
      if (now - e.at <= this.lingerMs) break;
      this.closing.delete(k);
    }
  }

  clear(): void {
    clearInterval(this.timer);
    this.live.clear();
    this.closing.clear();
  }
}
