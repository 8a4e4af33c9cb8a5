// The call count board over the shared tier: one hash field per balancer with its active calls
// per node and when it published them. A balancer that stops publishing is gone: its counts stop
// counting soon, and whoever reads them long after deletes them (no balancer is left to do it).

import type { CallCountBoard } from '../store.ts';
import { isObject, parseJson } from './connection.ts';
import type { SharedTier } from './shared-tier.ts';

/** A balancer's published counts count while this fresh... */
const CALLS_LIVE_MS = 5000;
/** ...and are deleted by whoever reads them once this stale (the balancer is gone). */
const CALLS_STALE_MS = 60_000;

interface PublishedCounts {
  at: number;
  counts: Record<string, number>;
}

function toPublishedCounts(json: string): PublishedCounts | null {
  const v = parseJson(json);
  if (!isObject(v) || typeof v.at !== 'number' || !Number.isFinite(v.at) || !isObject(v.counts)) return null;
  for (const n of Object.values(v.counts)) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return null;
  }
  return { at: v.at, counts: v.counts as Record<string, number> };
}

export class RedisCallCountBoard implements CallCountBoard {
  private readonly tier: SharedTier;
  private readonly key: string;

  constructor(tier: SharedTier, key: string) {
    this.tier = tier;
    this.key = key;
  }

  publish(balancerId: string, counts: ReadonlyMap<string, number>): void {
    const json = JSON.stringify({ at: Date.now(), counts: Object.fromEntries(counts) });
    this.tier.fire((c) => c.hSet(this.key, balancerId, json));
  }

  async others(balancerId: string): Promise<Map<string, number> | null> {
    const fields = await this.tier.read((c) => c.hGetAll(this.key), this.tier.slowReadMs);
    if (fields === null) return null;
    const now = Date.now();
    const sum = new Map<string, number>();
    for (const [id, json] of Object.entries(fields)) {
      if (id === balancerId) continue;
      const board = toPublishedCounts(json);
      if (board === null) continue;
      const age = now - board.at;
      if (age > CALLS_STALE_MS) {
        this.tier.fire((c) => c.hDel(this.key, id));
        continue;
      }
      if (age > CALLS_LIVE_MS) continue;
      for (const [node, n] of Object.entries(board.counts)) sum.set(node, (sum.get(node) ?? 0) + n);
    }
    return sum;
  }
}
