// Key -> node id with idle expiry, bounded by time rather than by a size cap (a size cap would
// move live calls). Two insertion-ordered Maps make expiry O(expired): `live` is kept in
// last-touch order (a touch re-inserts), `closing` holds ended calls for the retransmission
// window only, so finished calls do not sit in memory for the whole idle timeout.

interface Entry {
  nodeId: string;
  at: number;
}

export class AffinityTable {
  private live = new Map<string, Entry>();
  private closing = new Map<string, Entry>();
  private readonly idleMs: number;
  private readonly lingerMs: number;
  private readonly timer: NodeJS.Timeout;

  constructor(idleMs: number, lingerMs: number, sweepEveryMs = 1000) {
    this.idleMs = idleMs;
    this.lingerMs = lingerMs;
    this.timer = setInterval(() => this.sweep(Date.now()), sweepEveryMs);
    this.timer.unref();
  }

  get size(): number {
    return this.live.size + this.closing.size;
  }

  get(key: string, now = Date.now()): string | undefined {
    const e = this.live.get(key);
    if (e !== undefined) {
      if (now - e.at > this.idleMs) return undefined;
      e.at = now;
      this.live.delete(key);
      this.live.set(key, e);
      return e.nodeId;
    }
    const c = this.closing.get(key);
    return c !== undefined && now - c.at <= this.lingerMs ? c.nodeId : undefined;
  }

  set(key: string, nodeId: string, now = Date.now()): void {
    this.closing.delete(key);
    this.live.delete(key);
    this.live.set(key, { nodeId, at: now });
  }

  /** Keep the entry only for the linger window (BYE seen: retransmissions may still come). */
  close(key: string, now = Date.now()): void {
    const e = this.live.get(key);
    if (e === undefined) return;
    this.live.delete(key);
    e.at = now;
    this.closing.set(key, e);
  }

  sweep(now: number): void {
    for (const [k, e] of this.live) {
      if (now - e.at <= this.idleMs) break;
      this.live.delete(k);
    }
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
