// Nodes as the admin surface shows them (GET /api/v1/nodes, /lbinfo, the dashboard): identity,
// addresses per transport, state and why, calls held, when last heard and where the entry came
// from. The registry keeps flags; the last event it reported for a node says why in words.

import { formatHost } from '../sip/uri.ts';
import type { PassiveCause } from '../cluster/node-registry.ts';
import type { AdminTarget } from './target.ts';

/** Why passive health took a node out, as the node list says it. */
const PASSIVE_WHY: Readonly<Record<PassiveCause, string>> = {
  errors: 'error responses (passive health)',
  silence: 'leaving requests unanswered (passive health)',
  unreachable: 'its SIP port answered ICMP port unreachable (passive health)',
};

export interface NodeView {
  readonly id: string;
  readonly ip: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly http: { port: number; sslPort?: number; wsPort?: number; jvmRoute?: string } | null;
  readonly version: string;
  readonly jvmRoute: string | null;
  readonly state: 'active' | 'draining' | 'down';
  readonly why: string;
  /** Drained by an operator (here or on a balancer sharing the store): stays so until activated. */
  readonly adminDrained: boolean;
  readonly weight: number;
  readonly calls: number;
  /** ms since the epoch; null for a static node (nothing to hear). */
  readonly lastHeard: number | null;
  /** static: nodes=; registered: heartbeats to this balancer; shared: learned from another balancer. */
  readonly source: 'static' | 'registered' | 'shared';
}

export class NodeViews {
  private readonly target: AdminTarget;
  private readonly lastEvent = new Map<string, string>();

  constructor(target: AdminTarget) {
    this.target = target;
    target.registry.onEvent((e) => {
      if (e.type === 'removed') this.lastEvent.delete(e.nodeId);
      else if (e.detail !== undefined) this.lastEvent.set(e.nodeId, `${e.type === 'state' ? '' : `${e.type}: `}${e.detail}`);
    });
  }

  all(): NodeView[] {
    return this.target.registry.list().map((e) => this.view(e.node.id)).filter((v): v is NodeView => v !== null);
  }

  one(id: string): NodeView | null {
    return this.view(id);
  }

  /** The id of the node with a SIP port `port` on `ip` (any transport), or null. */
  byAddress(ip: string, port: number): string | null {
    const host = ip.replace(/^\[|\]$/g, '').toLowerCase();
    for (const e of this.target.registry.list()) {
      if (e.node.ip.toLowerCase() === host && Object.values(e.node.ports).includes(port)) return e.node.id;
    }
    return null;
  }

  private view(id: string): NodeView | null {
    const t = this.target;
    const e = t.registry.get(id);
    if (e === undefined) return null;
    const state = t.registry.snapshot().stateOf(id) ?? 'down';
    const n = e.node;
    let why: string;
    if (e.adminDrained) why = 'drained by an operator';
    else if (e.retiring) why = 'removed from nodes=: takes no new calls, leaves once its calls have ended';
    else if (e.draining) why = 'draining';
    else if (!e.healthy) why = 'failing health checks';
    else if (e.passiveDown) why = PASSIVE_WHY[e.passiveCause ?? 'errors'];
    else why = state === 'active' ? 'active' : state;
    const last = this.lastEvent.get(id);
    return {
      id, ip: n.ip, ports: { ...n.ports },
      http: n.http === undefined ? null : { ...n.http },
      version: e.version, jvmRoute: n.http?.jvmRoute ?? e.registration?.jvmRoute ?? null,
      state, why: last === undefined || why === 'active' || last.includes(why) ? why : `${why} (last: ${last})`,
      adminDrained: e.adminDrained,
      weight: n.weight, calls: t.calls.activeCalls(id),
      lastHeard: e.source === 'static' ? null : e.lastHeard,
      source: e.source === 'static' ? 'static' : e.origin === 'remote' ? 'shared' : 'registered',
    };
  }
}

/** host:port as a SIP URI writes it. */
export function hostPort(ip: string, port: number): string {
  return `${formatHost(ip)}:${port}`;
}
