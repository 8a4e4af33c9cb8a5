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
// only learned from the store and that is gone from it is dropped.

import type { Logger } from 'pino';
import type { AdminDrainRecord, NodeDirectory } from '../state/store.ts';
import type { NodeRegistry } from './node-registry.ts';

/** An activate record (drained=false) is kept this long: far beyond any balancer's next merge. */
export const ADMIN_ACTIVATE_KEPT_MS = 24 * 3600 * 1000;

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
  /** The time of the admin drain action last published per node. */
  private readonly publishedDrains = new Map<string, number>();
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
    // An operator's drain goes out at once, not at the next tick: other balancers should stop
    // sending new calls to the node as soon as they can.
    registry.onAdminDrain(() => this.publishAdminDrains());
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
      this.publishAdminDrains();
      await this.merge();
      await this.mergeAdminDrains();
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

  /** This balancer's drains and activates not yet written. */
  private publishAdminDrains(): void {
    for (const [id, st] of this.registry.adminDrainStates()) {
      if (st.origin !== 'local' || this.publishedDrains.get(id) === st.at) continue;
      this.directory.setAdminDrain({ id, drained: st.drained, at: st.at, by: this.opts.balancerId });
      this.publishedDrains.set(id, st.at);
    }
  }

  private async mergeAdminDrains(): Promise<void> {
    const records = await this.directory.adminDrains();
    if (records === null) return; // store unavailable: keep the drains we know
    const t = this.now();
    const stored = new Map<string, AdminDrainRecord>();
    for (const r of records) {
      if (!r.drained && t - r.at > ADMIN_ACTIVATE_KEPT_MS) {
        this.directory.removeAdminDrain(r.id);
        continue;
      }
      stored.set(r.id, r);
      if (r.by !== this.opts.balancerId) this.registry.mergeAdminDrain(r);
    }
    this.registry.pruneAdminDrains(t - ADMIN_ACTIVATE_KEPT_MS);
    for (const [id, st] of [...this.registry.adminDrainStates()]) {
      const r = stored.get(id);
      if (st.origin === 'local') {
        // Lost by the store (or our write never landed): written again. A missing activate
        // needs no record: no record means not drained.
        if (r === undefined ? st.drained : r.at < st.at) {
          this.directory.setAdminDrain({ id, drained: st.drained, at: st.at, by: this.opts.balancerId });
          this.publishedDrains.set(id, st.at);
        }
      } else if (r === undefined) {
        this.registry.forgetSharedAdminDrain(id);
      }
    }
    for (const id of this.publishedDrains.keys()) if (!this.registry.adminDrainStates().has(id)) this.publishedDrains.delete(id);
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
