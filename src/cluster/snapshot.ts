// An immutable view of the cluster at one moment. The data path reads only snapshots; membership
// sources (static list now, heartbeats and health checks later) build a new one on every change,
// so a pick never sees a half-updated registry.

import type { SipNode } from './node.ts';
import type { HostPort } from '../config/types.ts';

/** active: takes new calls; draining: keeps its calls, takes no new ones; down: takes nothing. */
export type NodeState = 'active' | 'draining' | 'down';

export interface NodeView {
  readonly node: SipNode;
  readonly state: NodeState;
  /** Ramp-up: fraction (0, 1] of its weight a freshly joined node gets; default 1. */
  readonly share?: number;
}

export class ClusterSnapshot {
  /** Nodes that may take new calls, in a stable order (by id). */
  readonly selectable: readonly SipNode[];
  /** Nodes that may take requests of calls they have (active or draining), in the same order. */
  readonly alive: readonly SipNode[];
  private readonly states: Map<string, NodeState>;
  private readonly shares: Map<string, number>;
  private readonly byId: Map<string, SipNode>;
  /**
   * Every SIP port of every known node, by IP then port, to recognise traffic from nodes. Two
   * levels rather than an "ip|port" key: asked for every message, and a key built per message
   * would be a string to allocate and hash each time.
   */
  private readonly byAddress: Map<string, Map<number, SipNode>>;
  /** IPs of nodes and of every extraServerNodes entry. */
  private readonly ips: Set<string>;
  /** extraServerNodes by host: the ports listed, or null for an entry without a port (any port). */
  private readonly extras: Map<string, Set<number> | null>;

  constructor(views: readonly NodeView[], extraServerNodes: readonly HostPort[] = []) {
    this.selectable = views.filter((v) => v.state === 'active').map((v) => v.node)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.alive = views.filter((v) => v.state !== 'down').map((v) => v.node)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.states = new Map(views.map((v) => [v.node.id, v.state]));
    this.shares = new Map(views.filter((v) => v.share !== undefined && v.share < 1).map((v) => [v.node.id, v.share as number]));
    this.byId = new Map(views.map((v) => [v.node.id, v.node]));
    this.byAddress = new Map();
    this.ips = new Set();
    for (const { node } of views) {
      this.ips.add(node.ip);
      let ports = this.byAddress.get(node.ip);
      if (ports === undefined) {
        ports = new Map();
        this.byAddress.set(node.ip, ports);
      }
      for (const port of Object.values(node.ports)) if (port !== undefined) ports.set(port, node);
    }
    this.extras = new Map();
    for (const e of extraServerNodes) {
      this.ips.add(e.host);
      const known = this.extras.get(e.host);
      if (e.port === null) this.extras.set(e.host, null);
      else if (known === undefined) this.extras.set(e.host, new Set([e.port]));
      else known?.add(e.port);
    }
  }

  get(id: string): SipNode | undefined {
    return this.byId.get(id);
  }

  /** Weight for new calls: the node's weight, scaled down while it ramps up after joining. */
  weightOf(node: SipNode): number {
    return node.weight * (this.shares.get(node.id) ?? 1);
  }

  /** Ramp-up share alone (0, 1], for algorithms that ignore configured weights. */
  shareOf(node: SipNode): number {
    return this.shares.get(node.id) ?? 1;
  }

  /** State of a known node, or undefined. */
  stateOf(id: string): NodeState | undefined {
    return this.states.get(id);
  }

  /** May take new calls. */
  isSelectable(node: SipNode): boolean {
    return this.states.get(node.id) === 'active';
  }

  /** May take requests of calls it already has (active or draining). */
  isAlive(node: SipNode): boolean {
    const s = this.states.get(node.id);
    return s === 'active' || s === 'draining';
  }

  /** The node listening on ip:port, if any. */
  nodeAt(ip: string, port: number): SipNode | undefined {
    return this.byAddress.get(ip)?.get(port);
  }

  /** Traffic from exactly this address comes from the cluster (a node or an extraServerNodes entry). */
  isClusterAddress(ip: string, port: number): boolean {
    if (this.byAddress.get(ip)?.has(port) === true) return true;
    const extra = this.extras.get(ip);
    return extra === null || (extra !== undefined && extra.has(port));
  }

  /** Some node or extraServerNodes entry lives on this IP. */
  isClusterIp(ip: string): boolean {
    return this.ips.has(ip);
  }
}
