// Restcomm's default (CallIDAffinityBalancerAlgorithm): the first request of a Call-ID goes
// round-robin over the nodes taking new calls; every later request with that Call-ID goes to the
// same node while it is alive. When it is not, the call moves to a new node; with group failover
// every call of the dead node moves to the same one, so the survivor can take over the dead
// node's replicated sessions as a group.

import type { Algorithm, PickRequest } from './algorithm.ts';
import { AffinityTable } from './affinity-table.ts';
import { SmoothWeightedRoundRobin } from './weighted-round-robin.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { SipNode } from '../cluster/node.ts';

/** How long an ended call keeps its affinity: RFC 3261 Timer F/H (64*T1 = 32 s). */
export const RETRANSMISSION_WINDOW_MS = 32_000;

export interface CallIdAffinityOptions {
  maxIdleSeconds: number;
  groupFailover: boolean;
  /** Bound on remembered Call-IDs; unbounded when absent. */
  maxEntries?: number;
}

export class CallIdAffinity implements Algorithm {
  readonly name = 'callid';
  private readonly table: AffinityTable;
  private readonly groupFailover: boolean;
  /** dead node id -> the node its calls moved to (group failover only). */
  private readonly failoverTo = new Map<string, string>();
  private readonly rotation = new SmoothWeightedRoundRobin();

  constructor(opts: CallIdAffinityOptions) {
    this.table = new AffinityTable(opts.maxIdleSeconds * 1000, RETRANSMISSION_WINDOW_MS, opts.maxEntries);
    this.groupFailover = opts.groupFailover;
  }

  /** Call-IDs remembered (live and ending). */
  get entries(): number {
    return this.table.size;
  }

  pick(req: PickRequest, cluster: ClusterSnapshot): SipNode | null {
    const known = this.table.get(req.callId);
    if (known !== undefined) {
      const node = cluster.get(known);
      if (node !== undefined && cluster.isAlive(node)) return node;
      if (this.groupFailover) {
        const to = this.failoverTo.get(known);
        const target = to === undefined ? undefined : cluster.get(to);
        if (target !== undefined && cluster.isSelectable(target)) {
          this.table.set(req.callId, target.id);
          return target;
        }
        const chosen = this.roundRobin(cluster);
        if (chosen !== null) {
          this.failoverTo.set(known, chosen.id);
          this.table.set(req.callId, chosen.id);
        }
        return chosen;
      }
    }
    const chosen = this.roundRobin(cluster);
    if (chosen !== null) this.table.set(req.callId, chosen.id);
    return chosen;
  }

  callEnded(callId: string): void {
    this.table.close(callId);
  }

  close(): void {
    this.table.clear();
  }

  /** Round robin over the nodes taking new calls, weighted by node weight and ramp-up share. */
  private roundRobin(cluster: ClusterSnapshot): SipNode | null {
    return this.rotation.pick(cluster.selectable, (n) => cluster.weightOf(n));
  }
}
