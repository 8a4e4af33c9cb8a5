// The Redis StateStore: what balancers must agree on lives in one Redis (or Redis Cluster) that
// every balancer of a group points at. The data path never waits for Redis: assignments are
// answered from a local AffinityTable and written through without awaiting (node-redis pipelines
// the commands of one tick on its own); Redis is read only on a local miss, with a bounded wait.
// An outage must cost sharing, never calls: every command's failure is caught, commands fail fast
// while disconnected instead of queueing, the client reconnects in the background, and the
// assignment writes missed meanwhile are redone from the local table when Redis is back.
// This file only puts the parts together: the connection they share (shared-tier.ts) and what is
// kept in it (assignment-map.ts, node-directory.ts, call-count-board.ts).

import type {
  AssignmentMap, AssignmentOptions, CallCountBoard, NodeDirectory, SharedTierHealth, StateStore,
} from '../store.ts';
import { RedisAssignmentMap } from './assignment-map.ts';
import { RedisCallCountBoard } from './call-count-board.ts';
import { RedisNodeDirectory } from './node-directory.ts';
import { SharedTier, type SharedTierOptions } from './shared-tier.ts';

export interface RedisStoreOptions extends SharedTierOptions {
  keyPrefix: string;
}

export class RedisStateStore implements StateStore {
  readonly kind = 'redis';
  readonly nodes: NodeDirectory;
  readonly calls: CallCountBoard;
  private readonly tier: SharedTier;
  private readonly prefix: string;
  private readonly maps: RedisAssignmentMap[] = [];

  constructor(opts: RedisStoreOptions) {
    this.tier = new SharedTier(opts);
    this.prefix = opts.keyPrefix;
    this.nodes = new RedisNodeDirectory(this.tier, `${opts.keyPrefix}nodes`);
    this.calls = new RedisCallCountBoard(this.tier, `${opts.keyPrefix}calls`);
  }

  get available(): boolean {
    return this.tier.available;
  }

  get latencyMs(): number | null {
    return this.tier.lastPingMs;
  }

  get outages(): number {
    return this.tier.outages;
  }

  get health(): SharedTierHealth {
    const t = this.tier;
    return { state: t.health, serversUp: t.serversUp, servers: t.serversTotal, serverOutages: t.serverOutages };
  }

  /** Writes Redis did not take (skipped while unavailable, or failed). */
  get failedWrites(): number {
    return this.tier.failedWrites;
  }

  /** Assignment writes waiting to be redone when Redis is back. */
  get pendingWrites(): number {
    return this.tier.pending.size;
  }

  /** Missed assignment writes forgotten because more than 100,000 were waiting. */
  get reconcileDropped(): number {
    return this.tier.reconcileDropped;
  }

  start(): Promise<void> {
    return this.tier.start();
  }

  assignments(namespace: string, opts: AssignmentOptions): AssignmentMap {
    const m = new RedisAssignmentMap(this.tier, `${this.prefix}a:${namespace}:`, opts);
    this.maps.push(m);
    return m;
  }

  async sharedSecret(candidate: string): Promise<string> {
    const key = `${this.prefix}viaSecret`;
    const stored = await this.tier.read(async (c) => {
      await c.set(key, candidate, { condition: 'NX' });
      return c.get(key);
    }, this.tier.slowReadMs);
    if (typeof stored === 'string' && stored !== '') return stored;
    this.tier.log.warn(
      { key },
      'redis state store: could not read or store the shared Via branch secret; balancers may not share it',
    );
    return candidate;
  }

  onAvailable(listener: () => void): void {
    this.tier.onAvailable(listener);
  }

  async close(): Promise<void> {
    for (const m of this.maps) m.close();
    await this.tier.close();
  }
}
