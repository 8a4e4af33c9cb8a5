// The node registry: every node siplb knows (static ones from `nodes=`, registered ones from
// heartbeats) with the flags that health sources set. It is the only writer of cluster state;
// each change rebuilds one immutable ClusterSnapshot that the data path reads.
//
// A node's state in the snapshot follows from its flags:
//   down      active health check failing
//   draining  graceful shutdown announced, passive health tripped (error responses, or requests
//             left unanswered), or an older version while a newer one is live: keeps the calls
//             it has, takes no new ones
//   active    everything else
// Registered nodes that go silent for nodeTimeout are removed (their calls fail over).

import type { Logger } from 'pino';
import type { HostPort } from '../config/types.ts';
import { RegistrationError } from '../core/errors.ts';
import { registrationPort, type NodeRegistration } from '../heartbeat/protocol.ts';
import { nodeId, type HttpTarget, type SipNode } from './node.ts';
import { ClusterSnapshot, type NodeState, type NodeView } from './snapshot.ts';

export interface NodeEntry {
  readonly node: SipNode;
  readonly source: 'static' | 'heartbeat';
  readonly sessionId: string | null;
  readonly version: string;
  readonly registration: NodeRegistration | null;
  lastHeard: number;
  joinedAt: number;
  draining: boolean;
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
export type PassiveCause = 'errors' | 'silence';

export interface RegistryOptions {
  nodeTimeoutMs: number;
  extraServerNodes: readonly HostPort[];
  /** Ramp-up: a (re)joined node's share of new calls grows by `rampUpPercent` every period. */
  rampUpPeriodMs: number;
  rampUpPercent: number;
  log: Logger;
  now?: () => number;
}

export type RegistryEvent = { type: 'added' | 'replaced' | 'removed' | 'state'; nodeId: string; detail?: string };

export class NodeRegistry {
  private readonly entries = new Map<string, NodeEntry>();
  private readonly bySession = new Map<string, string>();
  private snap: ClusterSnapshot;
  /** The current snapshot gives some node less than its full share. */
  private snapshotRamping = false;
  private readonly opts: RegistryOptions;
  private readonly now: () => number;
  private readonly listeners: ((e: RegistryEvent) => void)[] = [];

  constructor(opts: RegistryOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
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

  addStatic(nodes: readonly SipNode[]): void {
    const t = this.now();
    for (const node of nodes) {
      this.entries.set(node.id, {
        node, source: 'static', sessionId: null, version: '0', registration: null,
        lastHeard: t, joinedAt: t, draining: false, healthy: true, passiveDown: false, passiveCause: null, origin: 'local',
      });
    }
    this.rebuild();
    for (const node of nodes) this.emit({ type: 'added', nodeId: node.id, detail: 'static' });
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
      node: { id, ip: reg.ip, ports: { ...reg.ports }, weight: old?.node.weight ?? 1, ...httpOf(reg, old?.node.http) },
      source: old?.source === 'static' ? 'static' : 'heartbeat',
      sessionId: reg.sessionId, version: reg.version, registration: reg,
      lastHeard: t, joinedAt: t, draining: false, healthy: true, passiveDown: false, passiveCause: null, origin: 'local',
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

  /** Drain or undrain any node (admin). */
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

  setHealthy(id: string, healthy: boolean, detail: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    const changed = e.healthy !== healthy || (healthy && e.passiveDown);
    e.healthy = healthy;
    if (healthy) {
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
    this.emit({ type: 'state', nodeId: id, detail: `out of new-call selection (${detail})` });
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

  private remove(id: string, why: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
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
      if (e.healthy && !e.draining && !e.passiveDown && (top === null || compareVersions(e.version, top) > 0)) top = e.version;
    }
    const views: NodeView[] = [];
    let ramping = false;
    for (const e of this.entries.values()) {
      let state: NodeState;
      if (!e.healthy) state = 'down';
      else if (e.draining || e.passiveDown || (top !== null && compareVersions(e.version, top) < 0)) state = 'draining';
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
