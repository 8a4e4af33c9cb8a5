// Next hops named by host name (Route or Request-URI of requests from nodes, Via sent-by of
// responses whose peer gave no received address). IP literals never touch DNS; names are cached
// so a dialog's requests do not each wait for a lookup.

import { lookup } from 'node:dns/promises';
import { ipFamily } from './ip.ts';

const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

export class Resolver {
  private cache = new Map<string, { ip: string | null; until: number }>();

  /** The IP for host: synchronously when known, else a promise (null when it does not resolve). */
  resolve(host: string): string | Promise<string | null> {
    if (ipFamily(host) !== 0) return host;
    const hit = this.cache.get(host);
    const now = Date.now();
    if (hit !== undefined && hit.until > now) return hit.ip ?? Promise.resolve(null);
    return lookup(host).then(
      (r) => this.remember(host, r.address),
      () => this.remember(host, null),
    );
  }

  private remember(host: string, ip: string | null): string | null {
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(host, { ip, until: Date.now() + (ip === null ? TTL_MS / 6 : TTL_MS) });
    return ip;
  }
}
