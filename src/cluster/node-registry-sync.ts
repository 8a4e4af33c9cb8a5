// Shares registered nodes between balancers through the StateStore: a node that heartbeats to
// any balancer is known to all. Each balancer publishes the nodes it hears itself and merges the
// records the others published. Records carry the wall-clock time of the last heartbeat, so the
// balancers' clocks must agree to well within nodeTimeout (NTP does); a record older than
// nodeTimeout is ignored, and one far older is deleted by whoever sees it. Health-check results
// stay local: each balancer probes every node it knows.

import type { Logger } from 'pino';
import type { NodeDirectory } from '../state/store.ts';
import type { NodeRegistry } from './node-registry.ts';

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
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(registry: NodeRegistry, directory: NodeDirectory, opts: RegistrySyncOptions) {
    this.registry = registry;
    this.directory = directory;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    registry.onEvent((e) => {
      // A node that said stop here is gone for every balancer.
      if (e.type === 'removed' && e.detail === 'stop') {
        this.directory.remove(e.nodeId);
        this.published.delete(e.nodeId);
      }
    });
  }

  start(): void {
    this.timer = setInterval(() => { void this.tick(); }, this.opts.intervalMs);
    this.timer.unref();
    void this.tick();
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
      await this.merge();
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
