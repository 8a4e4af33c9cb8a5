// One namespace of assignments over the shared tier: answered from a local AffinityTable so the
// data path never waits for Redis, written through without awaiting, read from Redis only after
// a local miss (bounded by the read timeout), and able to redo a write Redis missed (rewrite())
// from the local entry when it is back.

import type { SetOptions } from 'redis';
import type { AssignmentMap, AssignmentOptions } from '../store.ts';
import { TableBackedMap } from '../table-backed-map.ts';
import type { RewritableMap, SharedTier } from './shared-tier.ts';

export class RedisAssignmentMap extends TableBackedMap implements AssignmentMap, RewritableMap {
  private readonly tier: SharedTier;
  /** Redis key of local key k: base + k. */
  private readonly base: string;
  private readonly lingerMs: number;
  /** A used entry whose last shared write is older than this is written again (TTL refresh). */
  private readonly refreshMs: number;
  private readonly idleSet: SetOptions;

  constructor(tier: SharedTier, base: string, opts: AssignmentOptions) {
    super(opts);
    this.tier = tier;
    this.base = base;
    this.lingerMs = opts.lingerMs;
    this.refreshMs = opts.idleMs / 2;
    this.idleSet = { expiration: { type: 'PX', value: opts.idleMs } };
  }

  get(key: string): string | undefined {
    const now = Date.now();
    const e = this.table.use(key, now);
    if (e === undefined) return undefined;
    // The entry's mark is when it was last written to Redis. A re-SET (not PEXPIRE) also restores
    // a key whose shared TTL ran out while the call was quiet but still alive here.
    if (!e.closed && now - e.mark > this.refreshMs) {
      e.mark = now;
      this.write(key, e.nodeId, this.idleSet);
    }
    return e.nodeId;
  }

  fetch(key: string): Promise<string | undefined> | null {
    if (!this.tier.available) return null;
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        resolve(undefined);
      }, this.tier.readTimeoutMs);
      const answered = (nodeId: string | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (nodeId === null) return resolve(undefined);
        const now = Date.now();
        // A local set() while the GET was out is newer than what Redis said.
        const local = this.table.peek(key, now);
        if (local !== undefined) return resolve(local.nodeId);
        // Mark 0: the next use rewrites the key, so the balancer now serving the call keeps it shared.
        this.table.set(key, nodeId, now, 0);
        resolve(nodeId);
      };
      let get: Promise<string | null>;
      try {
        get = this.tier.commands.get(this.base + key);
      } catch (err) {
        get = Promise.reject(err);
      }
      get.then(answered, () => answered(null));
    });
  }

  set(key: string, nodeId: string): void {
    const now = Date.now();
    this.table.set(key, nodeId, now, now);
    this.write(key, nodeId, this.idleSet);
  }

  end(key: string): void {
    const closed = this.table.close(key);
    const redisKey = this.base + key;
    const tier = this.tier;
    if (!tier.available) {
      if (closed) tier.missed(redisKey, this);
      return;
    }
    // Also for keys not held here: the call is over wherever it was assigned.
    try {
      tier.commands.pExpire(redisKey, this.lingerMs).catch(() => {
        if (closed) tier.missed(redisKey, this);
        else tier.failedWrites++;
      });
    } catch {
      if (closed) tier.missed(redisKey, this);
    }
  }

  /** Reconciliation: write the local entry behind `redisKey` again; null when nothing is left to write. */
  rewrite(redisKey: string, now: number): Promise<unknown> | null {
    const e = this.table.peek(redisKey.slice(this.base.length), now);
    if (e === undefined) return null;
    let options = this.idleSet;
    if (e.closed) {
      const left = this.lingerMs - (now - e.at);
      if (left <= 0) return null;
      options = { expiration: { type: 'PX', value: Math.ceil(left) } };
    } else {
      e.mark = now;
    }
    const tier = this.tier;
    try {
      return tier.commands.set(redisKey, e.nodeId, options).catch(() => tier.missed(redisKey, this));
    } catch {
      tier.missed(redisKey, this);
      return null;
    }
  }

  private write(key: string, nodeId: string, options: SetOptions): void {
    const redisKey = this.base + key;
    const tier = this.tier;
    if (!tier.available) {
      tier.missed(redisKey, this);
      return;
    }
    try {
      tier.commands.set(redisKey, nodeId, options).catch(() => tier.missed(redisKey, this));
    } catch {
      tier.missed(redisKey, this);
    }
  }
}
