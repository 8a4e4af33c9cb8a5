// One node view for the workers of a multi-worker siplb (wiring/workers.ts). Worker 0 hears the
// heartbeats and runs the active health checks, so its registry is the reference: it sends a
// RegistryView (every node with the flags that decide its state, and the operators' drains) on
// every registry change and once a second (heartbeat times move without an event), and the other
// workers apply it to their own registries through the registry's public API, as they apply
// another balancer's records from a shared store. What a worker's own passive health decides
// (error responses, silence, ICMP unreachable seen on its traffic) goes the other way, as a
// PassiveReport, to worker 0, which applies it and so sends it on to all.
//
// Static nodes (`nodes=`) are in every worker's configuration; a view only carries their flags.

import type { Logger } from 'pino';
import type { NodeRegistration } from '../heartbeat/protocol.ts';
import type { NodeRegistry, PassiveCause } from './node-registry.ts';

/** One node as worker 0 sees it. */
export interface RelayedNode {
  readonly id: string;
  readonly source: 'static' | 'heartbeat';
  readonly registration: NodeRegistration | null;
  readonly lastHeard: number;
  readonly weight: number;
  readonly draining: boolean;
  readonly healthy: boolean;
  readonly passiveDown: boolean;
  readonly passiveCause: PassiveCause | null;
}

/** Worker 0's registry, as plain data for IPC. */
export interface RegistryView {
  readonly nodes: readonly RelayedNode[];
  readonly adminDrains: readonly { readonly id: string; readonly drained: boolean; readonly at: number }[];
}

/** A worker's passive health took a node out (down) or let it back (not down). */
export interface PassiveReport {
  readonly id: string;
  readonly down: boolean;
  /** down: why; back: why it had been out. */
  readonly cause: PassiveCause;
}

/** A local passive decision is not overridden by views for this long (time for its report to come back in one). */
const LOCAL_DECISION_MS = 2000;

export function viewOf(registry: NodeRegistry): RegistryView {
  return {
    nodes: registry.list().map((e) => ({
      id: e.node.id, source: e.source, registration: e.registration, lastHeard: e.lastHeard, weight: e.node.weight,
      draining: e.draining, healthy: e.healthy, passiveDown: e.passiveDown, passiveCause: e.passiveCause,
    })),
    adminDrains: [...registry.adminDrainStates()].map(([id, st]) => ({ id, drained: st.value, at: st.at })),
  };
}

/** Worker 0: a passive decision of worker `from`, applied as its own passive health's would be. */
export function applyPassiveReport(registry: NodeRegistry, report: PassiveReport, from: number): void {
  if (report.down) registry.setPassiveDown(report.id, `passive health of worker ${from}`, report.cause);
  else registry.clearPassiveDown(report.id, report.cause, `passive health of worker ${from}`);
}

/**
 * Applies views to a registry, and tells of the passive decisions its own passive health takes
 * (for worker 0). Worker 0 uses it once too, for the last view the supervisor kept, when it is
 * restarted: the registered nodes stay known until their next heartbeat.
 */
export class ViewFollower {
  private readonly registry: NodeRegistry;
  private readonly log: Logger;
  private applying = false;
  /** Passive state last seen per node (what a view or a local decision left). */
  private readonly passive = new Map<string, PassiveCause | null>();
  /** When this worker's passive health last decided about a node. */
  private readonly decidedAt = new Map<string, number>();
  private readonly reports: ((r: PassiveReport) => void)[] = [];
  /** Views applied. */
  applied = 0;

  constructor(registry: NodeRegistry, log: Logger) {
    this.registry = registry;
    this.log = log;
    for (const e of registry.list()) this.passive.set(e.node.id, e.passiveDown ? e.passiveCause : null);
    registry.onEvent((e) => {
      if (e.type === 'removed') {
        this.passive.delete(e.nodeId);
        this.decidedAt.delete(e.nodeId);
        return;
      }
      const entry = registry.get(e.nodeId);
      if (entry === undefined) return;
      const now = entry.passiveDown ? entry.passiveCause : null;
      const before = this.passive.get(e.nodeId) ?? null;
      this.passive.set(e.nodeId, now);
      if (this.applying || now === before) return;
      this.decidedAt.set(e.nodeId, Date.now());
      const report: PassiveReport = now !== null ? { id: e.nodeId, down: true, cause: now } : { id: e.nodeId, down: false, cause: before ?? 'errors' };
      for (const l of this.reports) l(report);
    });
  }

  /** Called with each passive decision this worker's own passive health takes. */
  onPassiveReport(listener: (r: PassiveReport) => void): void {
    this.reports.push(listener);
  }

  apply(view: RegistryView): void {
    this.applying = true;
    try {
      this.applyNodes(view);
      for (const d of view.adminDrains) this.registry.mergeAdminDrain({ id: d.id, drained: d.drained, at: d.at, by: 'worker 0' });
      this.applied++;
    } catch (err) {
      // A bug here must not take the worker's SIP path down; the next view tries again.
      this.log.error({ err }, 'node view from worker 0 not applied');
    } finally {
      this.applying = false;
    }
  }

  private applyNodes(view: RegistryView): void {
    const r = this.registry;
    const listed = new Set<string>();
    const t = Date.now();
    for (const v of view.nodes) {
      listed.add(v.id);
      if (v.source === 'heartbeat' && v.registration !== null) r.merge(v.registration, v.lastHeard, v.draining);
      const e = r.get(v.id);
      if (e === undefined) continue;
      if (e.node.weight !== v.weight) r.setWeight(v.id, v.weight);
      if (e.source === 'static' && e.draining !== v.draining) r.setDraining(v.id, v.draining);
      if (e.healthy !== v.healthy) r.setHealthy(v.id, v.healthy, 'probes of worker 0', true);
      // This worker's own recent decision stands until worker 0's view carries it.
      if (t - (this.decidedAt.get(v.id) ?? -Infinity) < LOCAL_DECISION_MS) continue;
      const cause = e.passiveDown ? e.passiveCause : null;
      const wanted = v.passiveDown ? v.passiveCause : null;
      if (cause === wanted) continue;
      if (cause !== null) r.clearPassiveDown(v.id, cause, 'as worker 0 sees it');
      if (wanted !== null) r.setPassiveDown(v.id, 'as worker 0 sees it', wanted);
    }
    // Registered nodes worker 0 no longer has (stopped, expired): gone here too.
    for (const e of r.list()) {
      // Learned from views, so 'remote' entries: forgetRemote takes them.
      if (e.source === 'heartbeat' && !listed.has(e.node.id)) r.forgetRemote(e.node.id);
    }
  }
}
