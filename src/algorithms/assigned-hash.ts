// What the persistent-hash and user-based algorithms share: consistent hashing whose answers are
// written down. A key (a Call-ID, a user, a header value) is placed once by rendezvous hashing,
// optionally with bounded load, and the assignment is kept in the StateStore, so that
//   - nodes joining or leaving do not move keys that are already placed (a pure hash would move
//     the keys a new node now wins, and with them the users' registrations and sessions);
//   - every balancer sharing the store sees the same assignment, and before the shared tier has
//     it, they still mostly agree because the first placement is itself a deterministic hash;
//   - a key whose node died moves to the next node in its own ranking, so the dead node's keys
//     spread over all survivors, the same way on every balancer (or, with group failover, all go
//     to the one survivor ranked first for the dead node).

import type { Algorithm, AlgorithmContext, HttpPickRequest, PickRequest, PickResult } from './algorithm.ts';
import { httpKeyReader, type HttpKeyReader } from './affinity-key.ts';
import { RETRANSMISSION_WINDOW_MS } from './callid-affinity.ts';
import { allEqual, hashKey, rendezvous, rendezvousBounded, type WeightOf } from './hashing.ts';
import { SmoothWeightedRoundRobin } from './smooth-round-robin.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { SipNode } from '../cluster/node.ts';
import type { AssignmentMap } from '../state/store.ts';

export interface SnapshotWeights {
  /** Weights of the nodes taking new calls; undefined when they are all equal. */
  readonly selectable: WeightOf | undefined;
  /** The same over active and draining nodes. */
  readonly alive: WeightOf | undefined;
}

const weightsBySnapshot = new WeakMap<ClusterSnapshot, SnapshotWeights>();

/**
 * The weight functions to hash a snapshot's nodes with, worked out once per snapshot. Equal
 * weights are passed as "unweighted", which ranks the same but spares rendezvous a weight lookup
 * per node on every pick.
 */
export function snapshotWeights(cluster: ClusterSnapshot): SnapshotWeights {
  let w = weightsBySnapshot.get(cluster);
  if (w === undefined) {
    const weightOf: WeightOf = (n) => cluster.weightOf(n);
    w = {
      selectable: allEqual(cluster.selectable, weightOf) ? undefined : weightOf,
      alive: allEqual(cluster.alive, weightOf) ? undefined : weightOf,
    };
    weightsBySnapshot.set(cluster, w);
  }
  return w;
}

const unit: WeightOf = () => 1;

export abstract class AssignedHash implements Algorithm {
  abstract readonly name: string;
  protected readonly assignments: AssignmentMap;
  private readonly factor: number;
  private readonly groupFailover: boolean;
  private readonly loadOf: (n: SipNode) => number;
  private readonly httpKey: HttpKeyReader;
  private readonly rotation = new SmoothWeightedRoundRobin();
  /** Keys are (nearly always) Call-IDs, so callEnded ends the Call-ID without looking it up first. */
  private readonly callIdKeyed: boolean;

  constructor(ctx: AlgorithmContext, namespace: string, callIdKeyed: boolean) {
    const cfg = ctx.config;
    this.callIdKeyed = callIdKeyed;
    this.assignments = ctx.store.assignments(namespace, {
      idleMs: cfg.callIdAffinityMaxTimeInCache * 1000,
      lingerMs: RETRANSMISSION_WINDOW_MS,
      maxEntries: cfg.callIdAffinityMaxEntries,
    });
    this.factor = cfg.hashLoadFactor;
    this.groupFailover = cfg.callIdAffinityGroupFailover;
    const loads = ctx.loads;
    this.loadOf = (n) => loads.activeCalls(n.id);
    this.httpKey = httpKeyReader(cfg.httpAffinityKey);
  }

  /** The assignment key of a request; never null (the Call-ID is the last resort). */
  protected abstract keyOf(req: PickRequest): string;

  pick(req: PickRequest, cluster: ClusterSnapshot): PickResult {
    const key = this.keyOf(req);
    const known = this.assignments.get(key);
    // A key that is this very call's Call-ID was placed by an earlier request of the call (an
    // INVITE retransmission is still a "new call"), so it stays while its node is alive. A longer
    // lived key (a user, a header value) takes a new call only where new calls may go.
    const ownCall = key === req.callId;
    if (known !== undefined) return this.follow(key, known, req.newCall && !ownCall, cluster);
    if (!req.newCall) {
      const shared = this.assignments.fetch(key);
      if (shared !== null) {
        return shared.then(
          (id) => {
            const local = this.assignments.get(key) ?? id;
            return local === undefined ? this.place(key, cluster) : this.follow(key, local, false, cluster);
          },
          () => this.place(key, cluster),
        );
      }
    }
    return this.place(key, cluster);
  }

  repick(req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    return this.move(this.keyOf(req), failedNodeId, cluster);
  }

  pickHttp(req: HttpPickRequest, cluster: ClusterSnapshot): SipNode | null {
    const key = this.httpKey(req.url);
    if (key === null) return this.rotation.pick(cluster.selectable, (n) => cluster.weightOf(n));
    const known = this.assignments.get(key);
    // An HTTP request with a key belongs to a session, which stays on a draining node.
    return known === undefined ? this.place(key, cluster) : this.follow(key, known, false, cluster);
  }

  callEnded(callId: string): void {
    // Only Call-ID keys end with the call; a user's or a header value's assignment is meant to
    // outlive it (the next call of that user must find the same node) and expires when idle. With
    // another key spec the Call-ID is only the last-resort key of a request that had no other, so
    // it is ended only when this balancer holds it, rather than writing to the shared tier on
    // every BYE for keys that almost never exist.
    if (this.callIdKeyed) this.assignments.end(callId);
    else if (this.assignments.get(callId) !== undefined) this.assignments.end(callId);
  }

  close(): void {
    this.assignments.close();
  }

  /**
   * The node of an existing assignment, or the key's new node when that one cannot take it. When
   * a user's node drains, the user's next call moves the assignment, so a hint-less request of
   * an older call still on the draining node (a CANCEL of a call being set up as the drain began)
   * follows the user instead; requests inside a dialog carry the node hint and are not affected.
   */
  private follow(key: string, nodeId: string, mustBeSelectable: boolean, cluster: ClusterSnapshot): SipNode | null {
    const n = cluster.get(nodeId);
    if (n !== undefined) {
      if (cluster.isSelectable(n)) return n;
      if (cluster.isAlive(n)) return mustBeSelectable ? this.place(key, cluster) : n;
    }
    return this.move(key, nodeId, cluster);
  }

  /** First placement: bounded-load rendezvous over the nodes taking new calls. */
  private place(key: string, cluster: ClusterSnapshot): SipNode | null {
    const n = rendezvousBounded(hashKey(key), cluster.selectable, snapshotWeights(cluster).selectable ?? unit, this.loadOf, this.factor);
    if (n !== null) this.assignments.set(key, n.id);
    return n;
  }

  /**
   * Failover: the next node in the key's own ranking, without load bounds, so that every balancer
   * with the same view moves the key to the same node whatever loads it has seen. With group
   * failover the ranking is the failed node's, so all its keys land on one survivor.
   */
  private move(key: string, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    const h = hashKey(this.groupFailover ? failedNodeId : key);
    const n = rendezvous(h, cluster.selectable, snapshotWeights(cluster).selectable, (x) => x.id !== failedNodeId);
    if (n !== null) this.assignments.set(key, n.id);
    return n;
  }
}
