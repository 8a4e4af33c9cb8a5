// A test double of the Redis tier for algorithm tests: what several balancers share (assignments
// by namespace and key, with expiry), each balancer's StateStore over it with a local table of its
// own, following the AssignmentMap contract (write-through set, fetch after a local miss, atomic
// claim). Commands take effect in the order they are sent, as on one Redis server, and answers
// arrive on a later turn of the event loop (setImmediate), as from a socket, so that two
// balancers' picks of one moment really do race. test/state/store-contract.test.ts holds the
// real stores to the same contract.

import { LocalAssignmentMap, MemoryStateStore } from '../../src/state/memory-store.ts';
import type { AssignmentMap, AssignmentOptions, CallCountBoard, NodeDirectory, StateStore } from '../../src/state/store.ts';

interface Entry {
  nodeId: string;
  expiresAt: number;
}

export class FakeSharedTier {
  readonly entries = new Map<string, Entry>();
  /** False: every balancer's store is unavailable (fetch and claim answer null at once). */
  available = true;
  /** True: commands are sent but never answered (a stalled server); claims time out. */
  stalled = false;
  /** The stores' read timeout, ms. */
  readTimeoutMs = 100;
  /** fetch() calls that reached the tier. */
  reads = 0;
  /** claim() calls that reached the tier. */
  claims = 0;
  /** claim() calls that changed what the tier holds (took a free key, or replaced). */
  claimWrites = 0;

  /** One balancer's store over this tier. */
  store(): StateStore {
    return new FakeSharedStore(this);
  }

  /** What the tier holds for a namespace's key now. */
  held(namespace: string, key: string): string | undefined {
    const e = this.entries.get(`${namespace}\u0000${key}`);
    return e !== undefined && e.expiresAt >= Date.now() ? e.nodeId : undefined;
  }
}

class FakeSharedMap implements AssignmentMap {
  private readonly tier: FakeSharedTier;
  private readonly prefix: string;
  private readonly opts: AssignmentOptions;
  private readonly local: LocalAssignmentMap;

  constructor(tier: FakeSharedTier, namespace: string, opts: AssignmentOptions) {
    this.tier = tier;
    this.prefix = `${namespace}\u0000`;
    this.opts = opts;
    this.local = new LocalAssignmentMap(opts);
  }

  get size(): number {
    return this.local.size;
  }

  get evicted(): number {
    return this.local.evicted;
  }

  get(key: string): string | undefined {
    return this.local.get(key);
  }

  fetch(key: string): Promise<string | undefined> | null {
    const tier = this.tier;
    if (!tier.available) return null;
    tier.reads++;
    if (tier.stalled) return new Promise((resolve) => setTimeout(resolve, tier.readTimeoutMs, undefined));
    const found = this.shared(key);
    return new Promise((resolve) => setImmediate(() => {
      // A local set() while the read was out is newer than what the tier said.
      const local = this.local.get(key);
      if (local !== undefined) return resolve(local);
      if (found !== undefined) this.local.set(key, found);
      resolve(found);
    }));
  }

  set(key: string, nodeId: string): void {
    this.local.set(key, nodeId);
    if (this.tier.available && !this.tier.stalled) this.tier.entries.set(this.prefix + key, { nodeId, expiresAt: Date.now() + this.opts.idleMs });
  }

  claim(key: string, nodeId: string, replacing?: string): Promise<string> | null {
    const tier = this.tier;
    if (!tier.available) return null;
    tier.claims++;
    if (tier.stalled) {
      return new Promise((resolve) => setTimeout(() => {
        this.local.set(key, nodeId);
        resolve(nodeId);
      }, tier.readTimeoutMs));
    }
    let winner = this.shared(key);
    if (winner === undefined || winner === replacing) {
      tier.entries.set(this.prefix + key, { nodeId, expiresAt: Date.now() + this.opts.idleMs });
      tier.claimWrites++;
      winner = nodeId;
    }
    const held = winner;
    return new Promise((resolve) => setImmediate(() => {
      this.local.set(key, held);
      resolve(held);
    }));
  }

  end(key: string): void {
    this.local.end(key);
    const e = this.tier.entries.get(this.prefix + key);
    if (e !== undefined && this.tier.available) e.expiresAt = Date.now() + this.opts.lingerMs;
  }

  close(): void {
    this.local.close();
  }

  private shared(key: string): string | undefined {
    const e = this.tier.entries.get(this.prefix + key);
    return e !== undefined && e.expiresAt >= Date.now() ? e.nodeId : undefined;
  }
}

/** One balancer's StateStore over a FakeSharedTier; node directory and call board in memory. */
class FakeSharedStore implements StateStore {
  readonly kind = 'redis';
  readonly outages = 0;
  readonly latencyMs = null;
  readonly nodes: NodeDirectory;
  readonly calls: CallCountBoard;
  private readonly tier: FakeSharedTier;
  private readonly maps: AssignmentMap[] = [];

  constructor(tier: FakeSharedTier) {
    this.tier = tier;
    const memory = new MemoryStateStore();
    this.nodes = memory.nodes;
    this.calls = memory.calls;
  }

  get available(): boolean {
    return this.tier.available;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  assignments(namespace: string, opts: AssignmentOptions): AssignmentMap {
    const m = new FakeSharedMap(this.tier, namespace, opts);
    this.maps.push(m);
    return m;
  }

  sharedSecret(candidate: string): Promise<string> {
    return Promise.resolve(candidate);
  }

  onAvailable(): void {
    // The test switches availability itself.
  }

  close(): Promise<void> {
    for (const m of this.maps) m.close();
    return Promise.resolve();
  }
}
