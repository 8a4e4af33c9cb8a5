// What the persistent-hash and user-based algorithms share: consistent hashing whose answers are
// written down (the flow is AssignmentAlgorithm's). A key (a Call-ID, a user, a header value) is
// placed once by rendezvous hashing, optionally with bounded load, and the assignment is kept in
// the StateStore, so that
//   - nodes joining or leaving do not move keys that are already placed (a pure hash would move
//     the keys a new node now wins, and with them the users' registrations and sessions);
//   - every balancer sharing the store sees the same assignment, and before the shared tier has
//     it, they still mostly agree because the first placement is itself a deterministic hash;
//   - a key whose node died moves to the next node in its own ranking, so the dead node's keys
//     spread over all survivors, the same way on every balancer (or, with group failover, all go
//     to the one survivor ranked first for the dead node). With bounded load the next node under
//     its cap, which depends on the loads each balancer knows: that move is claimed in the store
//     in place of the dead node, so the first balancer's move is the one all follow.
// Failover ranks survivors by configured weight, without ramp-up shares (see configuredWeight).

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import type { AlgorithmContext, HttpPickRequest } from './algorithm.ts';
import { httpKeyReader, type HttpKeyReader } from './affinity-key.ts';
import { AssignmentAlgorithm, assignmentsOf } from './assignment-algorithm.ts';
import { configuredWeight, hashKey, rendezvous, rendezvousBounded, snapshotWeights, type WeightOf } from './hashing.ts';
import { SmoothWeightedRoundRobin } from './smooth-round-robin.ts';

const unit: WeightOf = () => 1;

/** How long an idle assignment is kept, and whether a dead node's keys all move to one survivor. */
export interface AssignmentPolicy {
  idleSeconds: number;
  groupFailover: boolean;
}

export abstract class AssignedHash extends AssignmentAlgorithm {
  // Not readonly: a reload may change hashLoadFactor and the group failover setting.
  private factor: number;
  private groupFailover: boolean;
  private readonly loadOf: (n: SipNode) => number;
  private readonly httpKey: HttpKeyReader;
  private readonly rotation = new SmoothWeightedRoundRobin();

  /**
   * `callScoped`: every key is a Call-ID (the key spec reads the Call-ID). `policy`: the idle
   * expiry (seconds) and failover rule of this algorithm's table when it has its own keys for
   * them; by default callIdAffinityMaxTimeInCache and callIdAffinityGroupFailover.
   */
  protected constructor(ctx: AlgorithmContext, namespace: string, callScoped: boolean, policy?: AssignmentPolicy) {
    const cfg = ctx.config;
    super(assignmentsOf(ctx, namespace, policy?.idleSeconds ?? cfg.callIdAffinityMaxTimeInCache), callScoped);
    this.factor = cfg.hashLoadFactor;
    this.groupFailover = policy?.groupFailover ?? cfg.callIdAffinityGroupFailover;
    const loads = ctx.loads;
    this.loadOf = (n) => loads.activeCalls(n.id);
    this.httpKey = httpKeyReader(cfg.httpAffinityKey);
  }

  /**
   * hashLoadFactor and the group failover setting from a reload. Both only decide where keys not
   * yet placed, or whose node died, go next: placed keys are written down and stay.
   */
  reconfigure(config: Config): string | null {
    this.factor = config.hashLoadFactor;
    this.groupFailover = this.groupFailoverOf(config);
    return null;
  }

  /** The group failover setting this algorithm follows (callIdAffinityGroupFailover unless it has its own). */
  protected groupFailoverOf(config: Config): boolean {
    return config.callIdAffinityGroupFailover;
  }

  /** First placement: bounded-load rendezvous over the nodes taking new calls. */
  protected choose(key: string, cluster: ClusterSnapshot): SipNode | null {
    return rendezvousBounded(hashKey(key), cluster.selectable, snapshotWeights(cluster).selectable ?? unit, this.loadOf, this.factor);
  }

  /**
   * The next node in the key's own ranking among the survivors; with bounded load, the first of
   * them under its cap (the move is then claimed, movesNeedAgreement). With group failover the
   * ranking is the failed node's, so all its keys land on one survivor, whatever the loads: the
   * operator asked for them to stay together (a survivor that replicates the dead node's sessions).
   */
  protected failover(key: string, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    const others = (x: SipNode): boolean => x.id !== failedNodeId;
    if (this.groupFailover) return rendezvous(hashKey(failedNodeId), cluster.selectable, configuredWeight, others);
    if (!(this.factor > 0)) return rendezvous(hashKey(key), cluster.selectable, configuredWeight, others);
    return rendezvousBounded(hashKey(key), cluster.selectable.filter(others), configuredWeight, this.loadOf, this.factor);
  }

  /** A bounded move depends on this balancer's load figures: the first balancer's move stands. */
  protected override movesNeedAgreement(): boolean {
    return this.factor > 0 && !this.groupFailover;
  }

  /** The httpAffinityKey query parameter: the same assignments as SIP, so a converged session's two sides meet. */
  protected httpKeyOf(req: HttpPickRequest): string | null {
    return this.httpKey(req.url);
  }

  protected spread(cluster: ClusterSnapshot): SipNode | null {
    return this.rotation.pick(cluster.selectable, (n) => cluster.weightOf(n));
  }
}
