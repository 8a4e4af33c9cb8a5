// The node registry: every node siplb knows (static ones from `nodes=`, registered ones from
// heartbeats) with the flags that health sources set. It is the only writer of cluster state;
// each change rebuilds one immutable ClusterSnapshot that the data path reads.
//
// A node's state in the snapshot follows from its flags:
//   down      active health check failing
//   draining  graceful shutdown announced, drained by an operator (admin API, possibly on
//             another balancer sharing the store), removed from `nodes=` by a reload while it
//             still has calls, passive health tripped (error responses, or requests left
//             unanswered), or an older version while a newer one is live: keeps the calls it
//             has, takes no new ones
//   active    everything else
// Registered nodes that go silent for nodeTimeout are removed (their calls fail over).
//
// An operator's drain is a flag of its own (adminDrained), kept by node id rather than on the
// entry alone: heartbeats, a node's re-registration and other balancers' heartbeat records never
// clear it, only an activate does (here, or on a balancer sharing the store: the latest action
// wins, node-registry-sync.ts).

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { isNodeWeight, type HostPort } from '../config/types.ts';
import { RegistrationError } from '../core/errors.ts';
import { registrationPort, type NodeRegistration } from '../heartbeat/protocol.ts';
import { LatestActions, type LatestAction } from './latest-actions.ts';
import { nodeId, type HttpTarget, type SipNode } from './node.ts';
import { ClusterSnapshot, type NodeState, type NodeView } from './snapshot.ts';

export interface NodeEntry {
  /** Replaced (never mutated) when its weight or a static node's spec changes. */
  node: SipNode;
  /**
   * The weight `nodes=` gives a static node (1 for a registered one): what the node goes back to
   * when an operator's weight (node.weight then) is withdrawn.
   */
  configuredWeight: number;
  /** A static node removed from `nodes=` while it is registered becomes a heartbeat one. */
  source: 'static' | 'heartbeat';
  readonly sessionId: string | null;
  readonly version: string;
  readonly registration: NodeRegistration | null;
  lastHeard: number;
  joinedAt: number;
  /** The node's own drain (heartbeat `shutdown`, or its record from another balancer). */
  draining: boolean;
  /** Drained by an operator (admin API here or on a balancer sharing the store); only activate clears it. */
  adminDrained: boolean;
  /** A static node a reload removed from `nodes=`: takes no new calls, leaves once its calls end. */
  retiring: boolean;
  /** Set by active health checks; a node starts healthy. */
  healthy: boolean;
  /** Set by passive health; cleared by a good probe or a new session. */
  passiveDown: boolean;
  /**
   * Why passive health took the node out, null while it has not. A node out for silence also
   * comes back when it answers again; one out for error responses does not, since its answers
   * are the very problem.
   */
  passiveCause: PassiveCause | null;
  /**
   * Registered nodes: whether this balancer heard the node itself (local) or only learned of it
   * from another balancer through the shared store (remote).
   */
  origin: 'local' | 'remote';
}

/** errors: too many error responses; silence: too many requests left unanswered for too long. */
/**
 * errors: error responses; silence: requests left unanswered; unreachable: ICMP port unreachable
 * from the node's SIP address (its port is closed: its calls are lost there too, so it is down,
 * not only out of new-call selection).
 */
export type PassiveCause = 'errors' | 'silence' | 'unreachable';

export interface RegistryOptions {
  nodeTimeoutMs: number;
  extraServerNodes: readonly HostPort[];
  /** Ramp-up: a (re)joined node's share of new calls grows by `rampUpPercent` every period. */
  rampUpPeriodMs: number;
  rampUpPercent: number;
  log: Logger;
  now?: () => number;
}

/**
 * added, replaced (a new session), removed; state: a flag changed; updated: the same entry has a
 * new SipNode (its weight, or a static node's spec after a reload).
 */
export type RegistryEvent = { type: 'added' | 'replaced' | 'removed' | 'state' | 'updated'; nodeId: string; detail?: string };

/** An operator's latest drain (value true) or activate (false) of one node id, here or on another balancer. */
export type AdminDrainState = LatestAction<boolean>;

/** An operator's latest weight for one node id, here or on another balancer; null: withdrawn, the configured weight applies. */
export type AdminWeightState = LatestAction<number | null>;

/** The settings a reload may change. */
export type RegistrySettings = Pick<RegistryOptions, 'nodeTimeoutMs' | 'rampUpPeriodMs' | 'rampUpPercent'>;

export class NodeRegistry {
  private readonly entries = new Map<string, NodeEntry>();
  private readonly bySession = new Map<string, string>();
  private snap: ClusterSnapshot;
  /** The current snapshot gives some node less than its full share. */
  private snapshotRamping = false;
  private readonly opts: RegistryOptions;
  private readonly now: () => number;
  private readonly listeners: ((e: RegistryEvent) => void)[] = [];
  /**
   * Operators' drains by node id: they outlive an entry (a node re-registering, expiring and
   * coming back). On equal times a drain beats an activate, so balancers agree.
   */
  private readonly adminDrains: LatestActions<boolean>;
  private readonly adminDrainListeners: (() => void)[] = [];
  /** Operators' weights by node id: like drains, they outlive an entry. On equal times the higher weight wins (a withdrawal counts as none). */
  private readonly adminWeights: LatestActions<number | null>;
  private readonly adminWeightListeners: (() => void)[] = [];
  /** Retiring nodes without calls: since when. */
  private readonly quietSince = new Map<string, number>();

  constructor(opts: RegistryOptions) {
    // A copy: reconfigure() changes it.
    this.opts = { ...opts };
    this.now = opts.now ?? Date.now;
    this.adminDrains = new LatestActions<boolean>({ winsTie: (incoming, current) => incoming && !current, isUndo: (drained) => !drained }, this.now);
    this.adminWeights = new LatestActions<number | null>({ winsTie: (incoming, current) => (incoming ?? 0) > (current ?? 0), isUndo: (w) => w === null }, this.now);
    this.snap = new ClusterSnapshot([], opts.extraServerNodes);
  }

  snapshot(): ClusterSnapshot {
    return this.snap;
  }

  list(): readonly NodeEntry[] {
    return [...this.entries.values()];
  }

  get(id: string): NodeEntry | undefined {
    return this.entries.get(id);
  }

  onEvent(listener: (e: RegistryEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Called when an operator's drain state changes (here or merged from the store), for sharing it. */
  onAdminDrain(listener: () => void): void {
    this.adminDrainListeners.push(listener);
  }

  /** Called when an operator's weight changes (here or merged from the store), for sharing it. */
  onAdminWeight(listener: () => void): void {
    this.adminWeightListeners.push(listener);
  }

  /** The settings a reload changes: heartbeat timeout and ramp-up. */
  reconfigure(settings: RegistrySettings): void {
    this.opts.nodeTimeoutMs = settings.nodeTimeoutMs;
    this.opts.rampUpPeriodMs = settings.rampUpPeriodMs;
    this.opts.rampUpPercent = settings.rampUpPercent;
    // Ramp-up shares follow the new period and step at once.
    this.rebuild();
  }

  addStatic(nodes: readonly SipNode[]): void {
    const t = this.now();
    for (const node of nodes) this.entries.set(node.id, this.staticEntry(node, t));
    this.rebuild();
    for (const node of nodes) this.emit({ type: 'added', nodeId: node.id, detail: 'static' });
  }

  /**
   * A static node as a reload lists it: added when unknown; when known, made static (it may have
   * registered first), kept (no longer retiring) and given this SipNode if it differs. Returns
   * what happened.
   */
  putStatic(spec: SipNode): 'added' | 'updated' | 'unchanged' {
    const node = this.withAdminWeight(spec);
    const e = this.entries.get(node.id);
    if (e === undefined) {
      this.entries.set(node.id, this.staticEntry(spec, this.now()));
      this.rebuild();
      this.emit({ type: 'added', nodeId: node.id, detail: 'static (reload)' });
      return 'added';
    }
    const details: string[] = [];
    if (e.retiring) {
      e.retiring = false;
      this.quietSince.delete(node.id);
      details.push('listed in nodes= again');
    }
    if (e.source !== 'static') {
      e.source = 'static';
      details.push('now a static node');
    }
    e.configuredWeight = spec.weight;
    if (!isDeepStrictEqual(e.node, node)) {
      e.node = node;
      details.push('new nodes= entry');
    }
    if (details.length === 0) return 'unchanged';
    this.rebuild();
    this.emit({ type: 'updated', nodeId: node.id, detail: `${details.join(', ')} (reload)` });
    return 'updated';
  }

  /**
   * A static node a reload no longer lists. Removing it at once would break its calls: their
   * in-dialog requests would find no node behind their Record-Route hint and be moved to another
   * node (which knows nothing of the dialog), and its own requests would no longer be recognised
   * as coming from the cluster. So it drains ("retiring") and removeRetired() takes it out once
   * its calls have ended. A node that also registered stays, as a registered node. False when the
   * node is not a static one.
   */
  retire(id: string): boolean {
    const e = this.entries.get(id);
    if (e === undefined || e.source !== 'static') return false;
    if (e.registration !== null) {
      e.source = 'heartbeat';
      // Judged by its heartbeats from now on, starting with a full nodeTimeout.
      e.lastHeard = Math.max(e.lastHeard, this.now());
      this.rebuild();
      this.emit({ type: 'updated', nodeId: id, detail: 'removed from nodes=; stays while it sends heartbeats' });
      return true;
    }
    if (e.retiring) return true;
    e.retiring = true;
    this.rebuild();
    this.emit({ type: 'state', nodeId: id, detail: 'removed from nodes=: takes no new calls, leaves once its calls have ended' });
    return true;
  }

  /**
   * Takes out the retiring nodes that have had no call (hasCalls) for lingerMs, the time their
   * last transactions may still retransmit. Returns the ids removed.
   */
  removeRetired(hasCalls: (id: string) => boolean, lingerMs: number): string[] {
    const t = this.now();
    const gone: string[] = [];
    for (const e of this.entries.values()) {
      if (!e.retiring) continue;
      const id = e.node.id;
      if (hasCalls(id)) {
        this.quietSince.delete(id);
        continue;
      }
      const since = this.quietSince.get(id) ?? t;
      this.quietSince.set(id, since);
      if (t - since >= lingerMs) gone.push(id);
    }
    for (const id of gone) this.remove(id, 'removed from nodes= (its calls have ended)');
    return gone;
  }

  /**
   * A node's weight for new calls (admin API), from MIN_NODE_WEIGHT to MAX_NODE_WEIGHT: a new
   * SipNode and a new snapshot, which is where every weighted algorithm reads weights, and an
   * `updated` event for algorithms that keep per-node state. False for an unknown node or a
   * weight out of range.
   */
  setWeight(id: string, weight: number): boolean {
    const e = this.entries.get(id);
    if (e === undefined || !isNodeWeight(weight)) return false;
    this.applyWeight(e, weight, null);
    return true;
  }

  /**
   * An operator's weight through this balancer's admin API, or null to withdraw it (the node goes
   * back to its configured weight): kept across re-registrations and reloads that leave the
   * node's weight in `nodes=` alone, and shared through the store. False for an unknown node or
   * a weight out of range.
   */
  adminSetWeight(id: string, weight: number | null): boolean {
    const e = this.entries.get(id);
    if (e === undefined || (weight !== null && !isNodeWeight(weight))) return false;
    this.adminWeights.setLocal(id, weight);
    this.applyWeight(e, weight ?? e.configuredWeight, weight === null ? 'operator weight withdrawn, admin API' : 'admin API');
    this.emitAdmin(this.adminWeightListeners, 'admin weight');
    return true;
  }

  /**
   * The weight `nodes=` now gives a static node (a reload changed it): the file is the newer word,
   * so an operator's weight for the node is withdrawn here and, through the store, everywhere.
   */
  configureWeight(id: string, weight: number): boolean {
    const e = this.entries.get(id);
    if (e === undefined || !isNodeWeight(weight)) return false;
    e.configuredWeight = weight;
    const operators = this.adminWeights.valueOf(id);
    if (operators !== undefined && operators !== null) {
      this.adminWeights.setLocal(id, null);
      this.emitAdmin(this.adminWeightListeners, 'admin weight');
    }
    this.applyWeight(e, weight, 'nodes= (reload)');
    return true;
  }

  /**
   * Another balancer's weight or withdrawal (shared store), taken when newer than what this
   * balancer knows of the node; on equal times the higher weight wins (a withdrawal counts as
   * none), so every balancer settles on the same one. Returns whether it was taken.
   */
  mergeAdminWeight(rec: { id: string; weight: number | null; at: number; by: string }): boolean {
    if (!this.adminWeights.merge(rec.id, rec.weight, rec.at, rec.by)) return false;
    const e = this.entries.get(rec.id);
    if (e !== undefined) {
      this.applyWeight(e, rec.weight ?? e.configuredWeight, rec.weight === null
        ? `operator weight withdrawn on balancer ${rec.by}` : `admin API of balancer ${rec.by}`);
    }
    this.emitAdmin(this.adminWeightListeners, 'admin weight');
    return true;
  }

  /**
   * A weight learned from the store whose record is gone from it (the store lost its data, or an
   * old withdrawal was pruned): forgotten; the node keeps the weight it has until the next action.
   */
  forgetSharedAdminWeight(id: string): void {
    this.adminWeights.forgetShared(id);
  }

  /** Withdrawals older than `before`: forgotten, they only kept older weights from winning. */
  pruneAdminWeights(before: number): void {
    this.adminWeights.prune(before);
  }

  /** Every node id's latest operator weight known here. */
  adminWeightStates(): ReadonlyMap<string, AdminWeightState> {
    return this.adminWeights.states();
  }

  /** `start` from a node. A new sessionId for the same address replaces the old entry. */
  start(reg: NodeRegistration): NodeEntry {
    const firstPort = registrationPort(reg);
    if (firstPort === undefined) throw new RegistrationError(`node ${reg.ip} registered without a UDP or TCP SIP port`);
    const id = nodeId(reg.ip, firstPort);
    const t = this.now();
    const old = this.entries.get(id);
    if (old !== undefined && old.sessionId === reg.sessionId) {
      old.lastHeard = t;
      old.origin = 'local';
      return old;
    }
    if (old?.sessionId !== undefined && old.sessionId !== null) this.bySession.delete(old.sessionId);
    // A session id now announced from another address: the node moved, its old entry goes.
    const moved = this.bySession.get(reg.sessionId);
    if (moved !== undefined && moved !== id) this.remove(moved, `session ${reg.sessionId} re-registered as ${id}`);
    const entry: NodeEntry = {
      node: { id, ip: reg.ip, ports: { ...reg.ports }, weight: this.adminWeights.valueOf(id) ?? old?.node.weight ?? 1, ...httpOf(reg, old?.node.http) },
      configuredWeight: old?.configuredWeight ?? 1,
      source: old?.source === 'static' ? 'static' : 'heartbeat',
      sessionId: reg.sessionId, version: reg.version, registration: reg,
      lastHeard: t, joinedAt: t, draining: false, adminDrained: this.adminDrains.valueOf(id) ?? false, retiring: old?.retiring ?? false,
      healthy: true, passiveDown: false, passiveCause: null, origin: 'local',
    };
    this.entries.set(id, entry);
    this.bySession.set(reg.sessionId, id);
    this.rebuild();
    this.emit({ type: old === undefined ? 'added' : 'replaced', nodeId: id, detail: `session ${reg.sessionId} version ${reg.version}` });
    return entry;
  }

  /** A heartbeat; false when the session is unknown (the node must send start again). */
  heartbeat(sessionId: string): boolean {
    const e = this.entryOf(sessionId);
    if (e === undefined) return false;
    e.lastHeard = this.now();
    e.origin = 'local';
    return true;
  }

  /** Graceful shutdown: drain. */
  shutdown(sessionId: string): boolean {
    const e = this.entryOf(sessionId);
    if (e === undefined) return false;
    e.lastHeard = this.now();
    if (!e.draining) {
      e.draining = true;
      this.rebuild();
      this.emit({ type: 'state', nodeId: e.node.id, detail: 'draining (shutdown)' });
    }
    return true;
  }

  stop(sessionId: string): boolean {
    const e = this.entryOf(sessionId);
    if (e === undefined) return false;
    this.remove(e.node.id, 'stop');
    return true;
  }

  /**
   * A registered node as another balancer saw it (shared store). Unknown or re-registered with a
   * newer session: added as a remote entry. Known: its last heartbeat and drain flag follow the
   * record when the record is newer than what this balancer heard itself.
   */
  merge(reg: NodeRegistration, heardAt: number, draining: boolean): void {
    const firstPort = registrationPort(reg);
    if (firstPort === undefined) return;
    const id = nodeId(reg.ip, firstPort);
    const e = this.entries.get(id);
    if (e !== undefined && e.source === 'static') return;
    // Equal times still carry news: a drain announced in the same millisecond as the last heartbeat.
    if (e !== undefined && heardAt < e.lastHeard) return;
    if (e === undefined || e.sessionId !== reg.sessionId) {
      const added = this.start(reg);
      added.origin = 'remote';
      added.lastHeard = heardAt;
      if (draining) this.setDraining(id, true);
      return;
    }
    e.lastHeard = heardAt;
    if (e.draining !== draining) this.setDraining(id, draining);
  }

  /** A remote node whose record is gone from the shared store (it sent stop elsewhere). */
  forgetRemote(id: string): void {
    const e = this.entries.get(id);
    if (e !== undefined && e.source === 'heartbeat' && e.origin === 'remote') this.remove(id, 'stopped (shared store)');
  }

  /**
   * An operator's drain (true) or activate (false) through this balancer's admin API: sticky
   * until the next activate, whatever heartbeats say, and shared through the store. Activate also
   * ends the node's own drain, as it always has. False for an unknown node.
   */
  adminDrain(id: string, drained: boolean): boolean {
    const e = this.entries.get(id);
    if (e === undefined) return false;
    this.adminDrains.setLocal(id, drained);
    this.applyAdminDrain(e, drained, `${drained ? 'drained' : 'activated'} by an operator (admin API)`);
    this.emitAdmin(this.adminDrainListeners, 'admin drain');
    return true;
  }

  /**
   * Another balancer's drain or activate (shared store). Taken when it is newer than what this
   * balancer knows of the node (on equal times a drain wins, so balancers agree); the node may
   * be unknown here yet, and is drained when it appears. Returns whether it was taken.
   */
  mergeAdminDrain(rec: { id: string; drained: boolean; at: number; by: string }): boolean {
    if (!this.adminDrains.merge(rec.id, rec.drained, rec.at, rec.by)) return false;
    const e = this.entries.get(rec.id);
    if (e !== undefined) this.applyAdminDrain(e, rec.drained, `${rec.drained ? 'drained' : 'activated'} by an operator (admin API of balancer ${rec.by})`);
    this.emitAdmin(this.adminDrainListeners, 'admin drain');
    return true;
  }

  /**
   * A drain learned from the store whose record is gone from it (an old activate pruned, or the
   * store lost its data): the node is no longer drained here.
   */
  forgetSharedAdminDrain(id: string): void {
    if (this.adminDrains.forgetShared(id) === undefined) return;
    const e = this.entries.get(id);
    if (e !== undefined && e.adminDrained) this.applyAdminDrain(e, false, 'admin drain gone from the shared store');
  }

  /** Activates (not drains) older than `before`: forgotten, they only kept older drains from winning. */
  pruneAdminDrains(before: number): void {
    this.adminDrains.prune(before);
  }

  /** Every node id's latest operator action known here. */
  adminDrainStates(): ReadonlyMap<string, AdminDrainState> {
    return this.adminDrains.states();
  }

  /** Drain or undrain any node: the node's own drain flag (what `shutdown` sets). */
  setDraining(id: string, draining: boolean): boolean {
    const e = this.entries.get(id);
    if (e === undefined) return false;
    if (e.draining !== draining) {
      e.draining = draining;
      this.rebuild();
      this.emit({ type: 'state', nodeId: id, detail: draining ? 'draining' : 'undrained' });
    }
    return true;
  }

  /**
   * Set by active health checks. A good probe also ends a passive-health takeout, unless
   * `keepPassive` (health checks turned off: the node is no longer judged by probes, which proves
   * nothing about the errors passive health saw).
   */
  setHealthy(id: string, healthy: boolean, detail: string, keepPassive = false): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    const changed = e.healthy !== healthy || (healthy && e.passiveDown && !keepPassive);
    e.healthy = healthy;
    if (healthy && !keepPassive) {
      // A good probe is the recovery passive health waits for.
      e.passiveDown = false;
      e.passiveCause = null;
    }
    if (changed) {
      this.rebuild();
      this.emit({ type: 'state', nodeId: id, detail: healthy ? `healthy (${detail})` : `down (${detail})` });
    }
  }

  /** Take a node out of new-call selection; false when it is unknown or already out. */
  setPassiveDown(id: string, detail: string, cause: PassiveCause = 'errors'): boolean {
    const e = this.entries.get(id);
    if (e === undefined || e.passiveDown) return false;
    e.passiveDown = true;
    e.passiveCause = cause;
    this.rebuild();
    this.emit({ type: 'state', nodeId: id, detail: cause === 'unreachable' ? `down (${detail})` : `out of new-call selection (${detail})` });
    return true;
  }

  /**
   * Undo setPassiveDown when the node is out for `cause` (and for nothing else: a node out for
   * errors stays out when silence ends). Returns whether the node came back.
   */
  clearPassiveDown(id: string, cause: PassiveCause, detail: string): boolean {
    const e = this.entries.get(id);
    if (e === undefined || !e.passiveDown || e.passiveCause !== cause) return false;
    e.passiveDown = false;
    e.passiveCause = null;
    this.rebuild();
    this.emit({ type: 'state', nodeId: id, detail: `back in new-call selection (${detail})` });
    return true;
  }

  /** Remove registered nodes not heard from for nodeTimeout. Returns the ids removed. */
  expire(): string[] {
    const t = this.now();
    const gone: string[] = [];
    for (const e of this.entries.values()) {
      if (e.source === 'heartbeat' && t - e.lastHeard > this.opts.nodeTimeoutMs) gone.push(e.node.id);
    }
    for (const id of gone) this.remove(id, `no heartbeat for ${this.opts.nodeTimeoutMs} ms`);
    return gone;
  }

  /**
   * Rebuild while some node is ramping up, so its share grows with time; the last rebuild is the
   * one that brings it to its full share.
   */
  rampUpTick(): void {
    if (this.snapshotRamping) this.rebuild();
  }

  private rampShare(e: NodeEntry, t: number): number {
    if (this.opts.rampUpPeriodMs <= 0 || this.opts.rampUpPercent <= 0) return 1;
    const cycles = Math.floor((t - e.joinedAt) / this.opts.rampUpPeriodMs) + 1;
    return Math.min(1, (cycles * this.opts.rampUpPercent) / 100);
  }

  private staticEntry(spec: SipNode, t: number): NodeEntry {
    return {
      node: this.withAdminWeight(spec), configuredWeight: spec.weight, source: 'static', sessionId: null, version: '0', registration: null,
      lastHeard: t, joinedAt: t, draining: false, adminDrained: this.adminDrains.valueOf(spec.id) ?? false, retiring: false,
      healthy: true, passiveDown: false, passiveCause: null, origin: 'local',
    };
  }

  private applyAdminDrain(e: NodeEntry, drained: boolean, detail: string): void {
    const changed = e.adminDrained !== drained || (!drained && e.draining);
    e.adminDrained = drained;
    if (!drained) e.draining = false;
    if (!changed) return;
    this.rebuild();
    this.emit({ type: 'state', nodeId: e.node.id, detail });
  }

  private emitAdmin(listeners: readonly (() => void)[], what: string): void {
    for (const l of listeners) {
      try {
        l();
      } catch (err) {
        this.opts.log.error({ err }, `${what} listener failed`);
      }
    }
  }

  /** A static node's spec with the operator's weight in force for it, if any. */
  private withAdminWeight(spec: SipNode): SipNode {
    const w = this.adminWeights.valueOf(spec.id) ?? null;
    return w === null || w === spec.weight ? spec : { ...spec, weight: w };
  }

  private applyWeight(e: NodeEntry, weight: number, cause: string | null): void {
    const before = e.node.weight;
    if (before === weight) return;
    e.node = { ...e.node, weight };
    this.rebuild();
    this.emit({ type: 'updated', nodeId: e.node.id, detail: `weight ${before} -> ${weight}${cause === null ? '' : ` (${cause})`}` });
  }

  private remove(id: string, why: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    this.quietSince.delete(id);
    if (e.sessionId !== null) this.bySession.delete(e.sessionId);
    this.rebuild();
    this.emit({ type: 'removed', nodeId: id, detail: why });
  }

  private entryOf(sessionId: string): NodeEntry | undefined {
    const id = this.bySession.get(sessionId);
    return id === undefined ? undefined : this.entries.get(id);
  }

  private rebuild(): void {
    const t = this.now();
    // Rolling upgrade: new calls go to the highest version among nodes that could take them.
    let top: string | null = null;
    for (const e of this.entries.values()) {
      if (e.healthy && !outOfSelection(e) && (top === null || compareVersions(e.version, top) > 0)) top = e.version;
    }
    const views: NodeView[] = [];
    let ramping = false;
    for (const e of this.entries.values()) {
      let state: NodeState;
      if (!e.healthy || e.passiveCause === 'unreachable') state = 'down';
      else if (outOfSelection(e) || (top !== null && compareVersions(e.version, top) < 0)) state = 'draining';
      else state = 'active';
      const share = this.rampShare(e, t);
      if (share < 1) ramping = true;
      views.push({ node: e.node, state, share: state === 'active' ? share : 1 });
    }
    this.snapshotRamping = ramping;
    this.snap = new ClusterSnapshot(views, this.opts.extraServerNodes);
  }

  /** Called after rebuild(), so a listener's snapshot() already shows the change it is told of. */
  private emit(e: RegistryEvent): void {
    this.opts.log.info({ node: e.nodeId, event: e.type, detail: e.detail }, `node ${e.type}`);
    for (const l of this.listeners) {
      // Listeners include the algorithm, possibly a user module; what one throws must not stop
      // the others or the heartbeat request (or timer) that caused the change.
      try {
        l(e);
      } catch (err) {
        this.opts.log.error({ err, node: e.nodeId, event: e.type }, 'node registry listener failed');
      }
    }
  }
}

/** A flag keeps the node out of new-call selection (it keeps its calls). */
function outOfSelection(e: NodeEntry): boolean {
  return e.draining || e.adminDrained || e.retiring || e.passiveDown;
}

/** Dotted numeric versions compare numerically part by part ("1.10" > "1.9"); others as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * The HTTP side a registration announces (httpPort, sslPort, wsPort, jvmRoute); a static node
 * that registers keeps what `nodes=` gave it where the registration says nothing.
 */
function httpOf(reg: NodeRegistration, configured: HttpTarget | undefined): { http?: HttpTarget } {
  const port = reg.httpPort ?? configured?.port;
  if (port === undefined) return {};
  const http: { -readonly [K in keyof HttpTarget]: HttpTarget[K] } = { port };
  const sslPort = reg.sslPort ?? configured?.sslPort;
  const wsPort = reg.wsPort ?? configured?.wsPort;
  const jvmRoute = reg.jvmRoute ?? configured?.jvmRoute;
  if (sslPort !== undefined) http.sslPort = sslPort;
  if (wsPort !== undefined) http.wsPort = wsPort;
  if (jvmRoute !== undefined && jvmRoute !== '') http.jvmRoute = jvmRoute;
  return { http };
}
