// Call-ID affinity (Restcomm's CallIDAffinityBalancerAlgorithm, the default) and the family of
// algorithms that share its shape: a new call is placed by a chooser, every later request with
// the same Call-ID goes to the same node while it is alive, and a call whose node died moves by a
// failover rule (the flow is AssignmentAlgorithm's). The variants differ only in those two hooks:
//   callid          round robin, each node's ramp-up share (node weights ignored, as Restcomm)
//   wrr             round robin weighted by node weight times ramp-up share
//   least-calls     fewest active calls per unit of weight (least-active-calls.ts)
//   active-standby  one active node takes everything (active-standby.ts)
//   subcluster      failover prefers the dead node's group (subcluster-affinity.ts)
//
// Failover is rendezvous hashing over the nodes taking new calls: keyed by Call-ID, a dead node's
// calls spread over all survivors (evenly for callid and subcluster, by configured node weight
// for wrr and least-calls); keyed by the dead node's id (group failover), they all go to one
// survivor. Either way every balancer with the same view picks the same node without talking to
// the others, so a move is only written down. A new call's placement is a local choice (a
// rotation, a load count) that another balancer may make differently for a copy of the same
// INVITE, so it is claimed in the store (assignment-algorithm.ts).

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import type { AlgorithmContext, HttpPickRequest, PickRequest } from './algorithm.ts';
import { AssignmentAlgorithm, assignmentsOf } from './assignment-algorithm.ts';
import { configuredWeight, hashKey, rendezvous, type WeightOf } from './hashing.ts';
import { SmoothWeightedRoundRobin } from './smooth-round-robin.ts';

export class CallIdAffinity extends AssignmentAlgorithm {
  readonly name: string = 'callid';
  /** Not readonly: a reload may change callIdAffinityGroupFailover. */
  protected groupFailover: boolean;
  protected readonly rotation = new SmoothWeightedRoundRobin();
  /** What failover weighs survivors by: nothing here (callid ignores node weights, as Restcomm). */
  protected readonly failoverWeight: WeightOf | undefined = undefined;

  constructor(ctx: AlgorithmContext) {
    super(assignmentsOf(ctx, 'callid'), true);
    this.groupFailover = ctx.config.callIdAffinityGroupFailover;
  }

  /**
   * callIdAffinityGroupFailover from a reload: calls moved before keep their new node (moves are
   * written down), later failovers follow the new rule.
   */
  reconfigure(config: Config): string | null {
    this.groupFailover = config.callIdAffinityGroupFailover;
    return null;
  }

  /** Call-IDs remembered locally (live and ending). */
  get entries(): number {
    return this.assignments.size;
  }

  protected keyOf(req: PickRequest): string {
    return req.callId;
  }

  protected choose(_key: string, cluster: ClusterSnapshot): SipNode | null {
    return this.rotation.pick(cluster.selectable, (n) => cluster.shareOf(n));
  }

  /** Rendezvous over the nodes taking new calls: by Call-ID (spread) or by the dead node's id (group failover). */
  protected failover(callId: string, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    return rendezvous(hashKey(this.groupFailover ? failedNodeId : callId), cluster.selectable, this.failoverWeight, (n) => n.id !== failedNodeId);
  }

  /** HTTP requests carry no Call-ID: none is assigned, each goes where the next new call would. */
  protected httpKeyOf(_req: HttpPickRequest): string | null {
    return null;
  }

  protected spread(cluster: ClusterSnapshot): SipNode | null {
    return this.choose('', cluster);
  }
}

/**
 * Round robin weighted by node weight (times the ramp-up share), with Call-ID affinity; a dead
 * node's calls spread over the survivors by their configured weights.
 */
export class WeightedRoundRobin extends CallIdAffinity {
  override readonly name: string = 'wrr';
  protected override readonly failoverWeight: WeightOf = configuredWeight;

  protected override choose(_key: string, cluster: ClusterSnapshot): SipNode | null {
    return this.rotation.pick(cluster.selectable, (n) => cluster.weightOf(n));
  }
}
