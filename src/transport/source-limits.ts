// Bounds on the stream connections one endpoint holds: all of them, and those one peer address
// opened. A host that opens connection after connection (a scan, a broken client, an attack)
// is refused at accept time, before it costs a handshake or a buffer.

/** Connections one endpoint may hold in all. */
export const MAX_CONNECTIONS = 10_000;
/**
 * Connections one address may hold open to an endpoint by default: enough for an SBC, a NAT with
 * many clients behind it, or a load generator opening a connection per call; not enough for one
 * host to take all 10 000.
 */
export const MAX_CONNECTIONS_PER_SOURCE = 1000;

export class SourceLimits {
  private open = 0;
  private readonly bySource = new Map<string, number>();
  private readonly perSource: number;
  private readonly total: number;
  /** Connections refused: a bound reached. */
  refused = 0;

  constructor(perSource = MAX_CONNECTIONS_PER_SOURCE, total = MAX_CONNECTIONS) {
    this.perSource = perSource;
    this.total = total;
  }

  /** The overall bound is what refuses `ip` now (not its own per-source bound). */
  fullFor(ip: string): boolean {
    return this.open >= this.total && (this.bySource.get(ip) ?? 0) < this.perSource;
  }

  get size(): number {
    return this.open;
  }

  /** A peer at `ip` connected: true if it may stay (then release() must follow its close). */
  admit(ip: string): boolean {
    const fromSource = this.bySource.get(ip) ?? 0;
    if (this.open >= this.total || fromSource >= this.perSource) {
      this.refused++;
      return false;
    }
    this.open++;
    this.bySource.set(ip, fromSource + 1);
    return true;
  }

  /** siplb opens a connection: only the overall bound applies. */
  admitOutgoing(): boolean {
    if (this.open >= this.total) {
      this.refused++;
      return false;
    }
    this.open++;
    return true;
  }

  /** A connection admitted by admit(ip) (or admitOutgoing(), ip null) closed. */
  release(ip: string | null): void {
    this.open--;
    if (ip === null) return;
    const left = (this.bySource.get(ip) ?? 1) - 1;
    if (left <= 0) this.bySource.delete(ip);
    else this.bySource.set(ip, left);
  }
}
