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
//     to the one survivor ranked first for the dead node).

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import type { AlgorithmContext, HttpPickRequest } from './algorithm.ts';
import { httpKeyReader, type HttpKeyReader } from './affinity-key.ts';
import { AssignmentAlgorithm, assignmentsOf } from './assignment-algorithm.ts';
import { hashKey, rendezvous, rendezvousBounded, snapshotWeights, type WeightOf } from './hashing.ts';
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
   * The next node in the key's own ranking, without load bounds, so that every balancer with the
   * same view moves the key to the same node whatever loads it has seen. With group failover the
   * ranking is the failed node's, so all its keys land on one survivor.
   */
  protected failover(key: string, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    const h = hashKey(this.groupFailover ? failedNodeId : key);
    return rendezvous(h, cluster.selectable, snapshotWeights(cluster).selectable, (x) => x.id !== failedNodeId);
  }

  /** The httpAffinityKey query parameter: the same assignments as SIP, so a converged session's two sides meet. */
  protected httpKeyOf(req: HttpPickRequest): string | null {
    return this.httpKey(req.url);
  }

  protected spread(cluster: ClusterSnapshot): SipNode | null {
    return this.rotation.pick(cluster.selectable, (n) => cluster.weightOf(n));
  }
}
