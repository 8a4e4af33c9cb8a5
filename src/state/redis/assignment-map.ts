// One namespace of assignments over the shared tier: answered from a local AffinityTable so the
// data path never waits for Redis, written through without awaiting, read from Redis only after
// a local miss (bounded by the read timeout), claimed in Redis where balancers must agree (also
// bounded), and able to redo a write Redis missed (rewrite()) from the local entry when it is back.

import type { SetOptions } from 'redis';
import type { AssignmentMap, AssignmentOptions } from '../store.ts';
import { TableBackedMap } from '../table-backed-map.ts';
import { compareAndSet } from './compare-and-set.ts';
import type { RewritableMap, SharedTier } from './shared-tier.ts';

export class RedisAssignmentMap extends TableBackedMap implements AssignmentMap, RewritableMap {
  private readonly tier: SharedTier;
  /** Redis key of local key k: base + k. */
  private readonly base: string;
  private readonly lingerMs: number;
  /** A used entry whose last shared write is older than this is written again (TTL refresh). */
  private readonly refreshMs: number;
  private readonly idleSet: SetOptions;
  /** set()'s expiry, only if the key is absent: a claim without `replacing`. */
  private readonly claimSet: SetOptions;
  /** The same expiry as the compare-and-set script's argument. */
  private readonly idleText: string;

  constructor(tier: SharedTier, base: string, opts: AssignmentOptions) {
    super(opts);
    this.tier = tier;
    this.base = base;
    this.lingerMs = opts.lingerMs;
    this.refreshMs = opts.idleMs / 2;
    this.idleSet = { expiration: { type: 'PX', value: opts.idleMs } };
    this.claimSet = { expiration: { type: 'PX', value: opts.idleMs }, condition: 'NX' };
    this.idleText = String(opts.idleMs);
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

  claim(key: string, nodeId: string, replacing?: string): Promise<string> | null {
    const tier = this.tier;
    if (!tier.available) return null;
    const redisKey = this.base + key;
    return new Promise((resolve) => {
      let settled = false;
      // `held`: what Redis holds now; null when the command failed, so this balancer's choice
      // stands and is written again the way a failed set() is (when Redis is back).
      const answered = (held: string | null): void => {
        if (settled) {
          // Past the timeout this balancer went with its own choice; only a write that failed
          // is worth redoing, a different holder can no longer be followed.
          if (held === null) tier.missed(redisKey, this);
          return;
        }
        settled = true;
        clearTimeout(timer);
        const winner = held ?? nodeId;
        const now = Date.now();
        const local = this.table.peek(key, now);
        // The holder wrote it just now (or, adopted, within its idle time): refreshed like a set().
        if (local === undefined || local.nodeId !== winner) this.table.set(key, winner, now, now);
        if (held === null) tier.missed(redisKey, this);
        resolve(winner);
      };
      const timer = setTimeout(() => {
        settled = true;
        const now = Date.now();
        // Another claim or read of the key may have answered meanwhile: its node is the better
        // guess, unless it is the very node this claim was to replace.
        const local = this.table.peek(key, now);
        if (local !== undefined && local.nodeId !== replacing) return resolve(local.nodeId);
        this.table.set(key, nodeId, now, now);
        resolve(nodeId);
      }, tier.readTimeoutMs);
      let held: Promise<string | null>;
      try {
        held = replacing === undefined
          ? this.setIfAbsent(redisKey, nodeId)
          : compareAndSet(tier.commands, redisKey, nodeId, this.idleText, replacing);
      } catch (err) {
        held = Promise.reject(err);
      }
      held.then(answered, () => answered(null));
    });
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

  /**
   * SET NX: one command when the key is free (every new call); a GET of what holds it when taken
   * (a retransmission that reached another balancer first). A key that expired between the two
   * is free again: written as set() writes.
   */
  private setIfAbsent(redisKey: string, nodeId: string): Promise<string> {
    const c = this.tier.commands;
    return c.set(redisKey, nodeId, this.claimSet).then((ok) => {
      if (ok !== null) return nodeId;
      return c.get(redisKey).then((held) => held ?? c.set(redisKey, nodeId, this.idleSet).then(() => nodeId));
    });
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
