// Call-ID affinity (Restcomm's CallIDAffinityBalancerAlgorithm, the default) and the family of
// algorithms that share its shape: a new call is placed by a chooser, every later request with
// the same Call-ID goes to the same node while it is alive, and a call whose node died moves by a
// failover rule. The assignment table lives in the StateStore, so with Redis every balancer finds
// the calls the others placed. The variants differ only in their chooser and failover rule:
//   callid          round robin, each node's ramp-up share (node weights ignored, as Restcomm)
//   wrr             round robin weighted by node weight times ramp-up share
//   least-calls     fewest active calls per unit of weight (least-active-calls.ts)
//   active-standby  one active node takes everything (active-standby.ts)
//   subcluster      failover prefers the dead node's group (subcluster-affinity.ts)
//
// Failover is rendezvous hashing over the nodes taking new calls: keyed by Call-ID, a dead node's
// calls spread evenly over all survivors; keyed by the dead node's id (group failover), they all
// go to one survivor. Either way every balancer with the same view picks the same node without
// talking to the others.

import type { Algorithm, HttpPickRequest, PickRequest, PickResult } from './algorithm.ts';
import { hashKey, rendezvous } from './hashing.ts';
import { SmoothWeightedRoundRobin } from './smooth-round-robin.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { SipNode } from '../cluster/node.ts';
import { MemoryStateStore } from '../state/memory-store.ts';
import type { AssignmentMap, StateStore } from '../state/store.ts';

/** How long an ended call keeps its affinity: RFC 3261 Timer F/H (64*T1 = 32 s). */
export const RETRANSMISSION_WINDOW_MS = 32_000;

export type NewCallChooser = (cluster: ClusterSnapshot) => SipNode | null;
export type FailoverRule = (req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot) => SipNode | null;

export interface CallIdAffinityOptions {
  maxIdleSeconds: number;
  groupFailover: boolean;
  /** Bound on remembered Call-IDs (local tier); unbounded when absent. */
  maxEntries?: number;
  /** Where assignments are kept; a private in-memory store when absent. */
  store?: StateStore;
  name?: string;
  /** Round robin honours node weights (wrr) rather than ramp-up shares only (callid). */
  weighted?: boolean;
  /** New-call placement; round robin when absent. */
  choose?: NewCallChooser;
  /** Where a dead node's call goes; rendezvous over the nodes taking new calls when absent. */
  failover?: FailoverRule;
}

/** Rendezvous failover: by Call-ID (spread) or by the dead node's id (group failover). */
export function rendezvousFailover(groupFailover: boolean): FailoverRule {
  return (req, failedNodeId, cluster) =>
    rendezvous(hashKey(groupFailover ? failedNodeId : req.callId), cluster.selectable, undefined, (n) => n.id !== failedNodeId);
}

export class CallIdAffinity implements Algorithm {
  readonly name: string;
  private readonly table: AssignmentMap;
  private readonly ownStore: StateStore | null;
  private readonly choose: NewCallChooser;
  private readonly failover: FailoverRule;

  constructor(opts: CallIdAffinityOptions) {
    this.name = opts.name ?? 'callid';
    this.ownStore = opts.store === undefined ? new MemoryStateStore() : null;
    const store = opts.store ?? (this.ownStore as StateStore);
    this.table = store.assignments('callid', {
      idleMs: opts.maxIdleSeconds * 1000, lingerMs: RETRANSMISSION_WINDOW_MS, maxEntries: opts.maxEntries,
    });
    if (opts.choose !== undefined) this.choose = opts.choose;
    else {
      const rotation = new SmoothWeightedRoundRobin();
      this.choose = opts.weighted === true
        ? (c) => rotation.pick(c.selectable, (n) => c.weightOf(n))
        : (c) => rotation.pick(c.selectable, (n) => c.shareOf(n));
    }
    this.failover = opts.failover ?? rendezvousFailover(opts.groupFailover);
  }

  /** Call-IDs remembered locally (live and ending). */
  get entries(): number {
    return this.table.size;
  }

  pick(req: PickRequest, cluster: ClusterSnapshot): PickResult {
    const known = this.table.get(req.callId);
    if (known !== undefined) return this.follow(req, known, cluster);
    if (!req.newCall) {
      // A request of a call this balancer has not seen (another balancer placed it, or this one
      // restarted): ask the shared tier before placing it anew.
      const fetched = this.table.fetch(req.callId);
      if (fetched !== null) {
        return fetched.then((id) => (id !== undefined ? this.follow(req, id, cluster) : this.place(req.callId, cluster)));
      }
    }
    return this.place(req.callId, cluster);
  }

  repick(req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    // A call already moved keeps its new node: failover rules need not be deterministic
    // (least-calls is not), and every later request of the call must land in the same place.
    const moved = this.table.get(req.callId);
    if (moved !== undefined && moved !== failedNodeId) {
      const n = cluster.get(moved);
      if (n !== undefined && cluster.isAlive(n)) return n;
    }
    const heir = this.failover(req, failedNodeId, cluster);
    if (heir !== null) this.table.set(req.callId, heir.id);
    return heir;
  }

  pickHttp(_req: HttpPickRequest, cluster: ClusterSnapshot): SipNode | null {
    return this.choose(cluster);
  }

  callEnded(callId: string): void {
    this.table.end(callId);
  }

  close(): void {
    this.table.close();
    void this.ownStore?.close();
  }

  private follow(req: PickRequest, nodeId: string, cluster: ClusterSnapshot): SipNode | null {
    const node = cluster.get(nodeId);
    if (node !== undefined && cluster.isAlive(node)) return node;
    return this.repick(req, nodeId, cluster);
  }

  private place(callId: string, cluster: ClusterSnapshot): SipNode | null {
    const chosen = this.choose(cluster);
    if (chosen !== null) this.table.set(callId, chosen.id);
    return chosen;
  }
}
