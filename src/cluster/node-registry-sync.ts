// Shares registered nodes between balancers through the StateStore: a node that heartbeats to
// any balancer is known to all. Each balancer publishes the nodes it hears itself and merges the
// records the others published. Records carry the wall-clock time of the last heartbeat, so the
// balancers' clocks must agree to well within nodeTimeout (NTP does); a record older than
// nodeTimeout is ignored, and one far older is deleted by whoever sees it. Health-check results
// stay local: each balancer probes every node it knows.
//
// Operators' drains (admin API) travel apart from the heartbeat records, one record per node id
// in the directory's admin drain map, static nodes included: a drain is written once, by the
// balancer whose API took it, and no heartbeat record overwrites it. The latest action (by its
// wall-clock time) wins everywhere; an activate is written too, as a record with drained=false,
// so that a balancer still holding the older drain gives it up, and is forgotten after a day. A
// drain this balancer took that the store lost (a Redis restart) is written again; a drain it
// only learned from the store and that is gone from it is dropped. Operators' weights travel the
// same way in a map of their own (a withdrawal, weight null, playing the activate's part).

import type { Logger } from 'pino';
import type { AdminDrainRecord, AdminWeightRecord, NodeDirectory } from '../state/store.ts';
import type { LatestAction } from './latest-actions.ts';
import type { NodeRegistry } from './node-registry.ts';

/**
 * An activate record (drained=false), or a weight's withdrawal, is kept this long: far beyond any
 * balancer's next merge.
 */
export const ADMIN_ACTIVATE_KEPT_MS = 24 * 3600 * 1000;

/** One kind of operator action shared through the directory: drains, weights, pins. */
export interface AdminActionKind<V, R extends { at: number; by: string }> {
  /** The latest action per key (a node id; a pin's pattern) known here. */
  states(): ReadonlyMap<string, LatestAction<V>>;
  /** The record of an action, as this balancer writes it. */
  record(key: string, st: LatestAction<V>, by: string): R;
  /** The key a record is for. */
  keyOf(rec: R): string;
  /** The action's value a record carries. */
  valueOf(rec: R): V;
  /** An action that only keeps older ones from winning (an activate, a withdrawal): pruned after a day, not written again when lost. */
  isUndo(value: V): boolean;
  write(rec: R): void;
  remove(key: string): void;
  list(): Promise<R[] | null>;
  merge(rec: R): void;
  forget(key: string): void;
  prune(before: number): void;
}

/** Publishes this balancer's actions of one kind and merges the others'. */
export class AdminActionSync<V, R extends { at: number; by: string }> {
  private readonly kind: AdminActionKind<V, R>;
  private readonly balancerId: string;
  private readonly now: () => number;
  /** The time of the action last written per key. */
  private readonly published = new Map<string, number>();

  constructor(kind: AdminActionKind<V, R>, balancerId: string, now: () => number) {
    this.kind = kind;
    this.balancerId = balancerId;
    this.now = now;
  }

  /** This balancer's actions not yet written. */
  publish(): void {
    for (const [id, st] of this.kind.states()) {
      if (st.origin !== 'local' || this.published.get(id) === st.at) continue;
      this.kind.write(this.kind.record(id, st, this.balancerId));
      this.published.set(id, st.at);
    }
  }

  async merge(): Promise<void> {
    const kind = this.kind;
    const records = await kind.list();
    if (records === null) return; // store unavailable: keep the actions we know
    const t = this.now();
    const stored = new Map<string, R>();
    for (const r of records) {
      if (kind.isUndo(kind.valueOf(r)) && t - r.at > ADMIN_ACTIVATE_KEPT_MS) {
        kind.remove(kind.keyOf(r));
        continue;
      }
      stored.set(kind.keyOf(r), r);
      if (r.by !== this.balancerId) kind.merge(r);
    }
    kind.prune(t - ADMIN_ACTIVATE_KEPT_MS);
    for (const [id, st] of [...kind.states()]) {
      const r = stored.get(id);
      if (st.origin === 'local') {
        // Lost by the store (or our write never landed): written again. A missing undo needs no
        // record: no record means nothing to undo.
        if (r === undefined ? !kind.isUndo(st.value) : r.at < st.at) {
          kind.write(kind.record(id, st, this.balancerId));
          this.published.set(id, st.at);
        }
      } else if (r === undefined) {
        kind.forget(id);
      }
    }
    for (const id of this.published.keys()) if (!kind.states().has(id)) this.published.delete(id);
  }
}

export interface RegistrySyncOptions {
  balancerId: string;
  nodeTimeoutMs: number;
  intervalMs: number;
  log: Logger;
  now?: () => number;
}

export class RegistrySync {
  private readonly registry: NodeRegistry;
  private readonly directory: NodeDirectory;
  private readonly opts: RegistrySyncOptions;
  private readonly now: () => number;
  /** What was last published per node: heartbeat time and drain flag. */
  private readonly published = new Map<string, { heardAt: number; draining: boolean }>();
  private readonly drains: AdminActionSync<boolean, AdminDrainRecord>;
  private readonly weights: AdminActionSync<number | null, AdminWeightRecord>;
  /** Actions of kinds kept outside the registry (the proxy's pins), synced on the same ticks. */
  private readonly attached: { publish(): void; merge(): Promise<void> }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(registry: NodeRegistry, directory: NodeDirectory, opts: RegistrySyncOptions) {
    this.registry = registry;
    this.directory = directory;
    this.opts = { ...opts };
    this.now = opts.now ?? Date.now;
    registry.onEvent((e) => {
      // A node that said stop here is gone for every balancer.
      if (e.type === 'removed' && e.detail === 'stop') {
        this.directory.remove(e.nodeId);
        this.published.delete(e.nodeId);
      }
    });
    this.drains = new AdminActionSync<boolean, AdminDrainRecord>({
      states: () => registry.adminDrainStates(),
      record: (id, st, by) => ({ id, drained: st.value, at: st.at, by }),
      keyOf: (rec) => rec.id,
      valueOf: (rec) => rec.drained,
      isUndo: (drained) => !drained,
      write: (rec) => directory.setAdminDrain(rec),
      remove: (id) => directory.removeAdminDrain(id),
      list: () => directory.adminDrains(),
      merge: (rec) => registry.mergeAdminDrain(rec),
      forget: (id) => registry.forgetSharedAdminDrain(id),
      prune: (before) => registry.pruneAdminDrains(before),
    }, opts.balancerId, this.now);
    this.weights = new AdminActionSync<number | null, AdminWeightRecord>({
      states: () => registry.adminWeightStates(),
      record: (id, st, by) => ({ id, weight: st.value, at: st.at, by }),
      keyOf: (rec) => rec.id,
      valueOf: (rec) => rec.weight,
      isUndo: (weight) => weight === null,
      write: (rec) => directory.setAdminWeight(rec),
      remove: (id) => directory.removeAdminWeight(id),
      list: () => directory.adminWeights(),
      merge: (rec) => registry.mergeAdminWeight(rec),
      forget: (id) => registry.forgetSharedAdminWeight(id),
      prune: (before) => registry.pruneAdminWeights(before),
    }, opts.balancerId, this.now);
    // An operator's drain or weight goes out at once, not at the next tick: other balancers
    // should change what they send the node as soon as they can.
    registry.onAdminDrain(() => this.drains.publish());
    registry.onAdminWeight(() => this.weights.publish());
  }

  /** Another kind of action to publish and merge on every tick. */
  attach(sync: { publish(): void; merge(): Promise<void> }): void {
    this.attached.push(sync);
  }

  start(): void {
    this.schedule();
    void this.tick();
  }

  /** A reload's new nodeTimeout and the interval that follows from it. */
  reconfigure(nodeTimeoutMs: number, intervalMs: number): void {
    this.opts.nodeTimeoutMs = nodeTimeoutMs;
    if (this.opts.intervalMs === intervalMs) return;
    this.opts.intervalMs = intervalMs;
    if (this.timer !== null) this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = setInterval(() => { void this.tick(); }, this.opts.intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Publish what changed here, then merge what the others published. */
  async tick(): Promise<void> {
    if (this.running) return; // a slow store must not stack reads
    this.running = true;
    try {
      this.publish();
      this.drains.publish();
      this.weights.publish();
      await this.merge();
      await this.drains.merge();
      await this.weights.merge();
      for (const a of this.attached) {
        a.publish();
        await a.merge();
      }
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'node registry sync failed');
    } finally {
      this.running = false;
    }
  }

  private publish(): void {
    for (const e of this.registry.list()) {
      if (e.source !== 'heartbeat' || e.origin !== 'local' || e.registration === null) continue;
      const last = this.published.get(e.node.id);
      if (last !== undefined && last.heardAt === e.lastHeard && last.draining === e.draining) continue;
      this.directory.publish({ id: e.node.id, registration: e.registration, draining: e.draining, heardAt: e.lastHeard, by: this.opts.balancerId });
      this.published.set(e.node.id, { heardAt: e.lastHeard, draining: e.draining });
    }
  }

  private async merge(): Promise<void> {
    const records = await this.directory.list();
    if (records === null) return; // store unavailable: keep what we know
    const t = this.now();
    const present = new Set<string>();
    for (const r of records) {
      present.add(r.id);
      const age = t - r.heardAt;
      if (age > Math.max(10 * this.opts.nodeTimeoutMs, 60_000)) {
        this.directory.remove(r.id);
        continue;
      }
      if (r.by === this.opts.balancerId || age > this.opts.nodeTimeoutMs) continue;
      this.registry.merge(r.registration, r.heardAt, r.draining);
    }
    for (const e of this.registry.list()) {
      if (e.source === 'heartbeat' && e.origin === 'remote' && !present.has(e.node.id)) this.registry.forgetRemote(e.node.id);
    }
  }
}
