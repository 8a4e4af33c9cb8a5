// Restcomm's HeaderConsistentHashBalancerAlgorithm: the node is a hash of the request's key
// (sipHeaderAffinityKey: the Call-ID by default, or the From/To user, or any header), so every
// request with the same key reaches the same node on every balancer without any shared state.
// siplb hashes by rendezvous (hashing.ts): when a node leaves, only its keys move and they spread
// over all survivors; when one joins it takes only the keys it now wins. A request without the
// key hashes by its Call-ID. HTTP requests hash the httpAffinityKey query parameter and go round
// robin without it.
//
// Draining is where a pure hash is not enough. A new call hashes over the active nodes and an
// in-call request over the active and draining ones, so a draining node keeps the calls it has.
// But a call that starts while its key's first node drains goes to the second one, and its
// in-call requests (a CANCEL, the ACK of a failure) would hash back to the draining node. So
// exactly those calls, and only while some node drains, are written down by Call-ID ("detours",
// in the StateStore so other balancers find them). With no node draining nothing is stored.
//
// A dead node's calls (repick) go to the key's next node among the survivors: a hash again, the
// same on every balancer, nothing stored. With group failover (callIdAffinityGroupFailover) the
// ranking is the dead node's own, so all its calls go to one survivor. With bounded load
// (hashLoadFactor, and no group failover) a survivor whose active calls reached its cap is
// passed over; the loads differ a little between balancers, so that move is recorded as a detour
// claimed in the store in place of the dead node: the first balancer's move stands and the
// others follow it. New calls are not bounded: a bounded placement would land calls off their
// hash, each to be recorded and looked up by every balancer, which is what persistent-hash does.

import type { Algorithm, AlgorithmContext, HttpPickRequest, PickRequest, PickResult } from './algorithm.ts';
import { affinityKeyReader, httpKeyReader, type HttpKeyReader, type SipKeyReader } from './affinity-key.ts';
import { assignmentsOf } from './assignment-algorithm.ts';
import { configuredWeight, hashKey, rendezvous, rendezvousBounded, snapshotWeights } from './hashing.ts';
import { SmoothWeightedRoundRobin } from './smooth-round-robin.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import type { SipNode } from '../cluster/node.ts';
import type { AssignmentMap } from '../state/store.ts';

export class HeaderConsistentHash implements Algorithm {
  readonly name = 'hash';
  private readonly key: SipKeyReader;
  private readonly httpKey: HttpKeyReader;
  private readonly detours: AssignmentMap;
  private readonly rotation = new SmoothWeightedRoundRobin();
  private readonly loadOf: (n: SipNode) => number;
  // Not readonly: a reload may change hashLoadFactor and callIdAffinityGroupFailover.
  private factor: number;
  private groupFailover: boolean;

  constructor(ctx: AlgorithmContext) {
    const cfg = ctx.config;
    this.key = affinityKeyReader(cfg.sipHeaderAffinityKey);
    this.httpKey = httpKeyReader(cfg.httpAffinityKey);
    this.detours = assignmentsOf(ctx, 'hash-detour');
    const loads = ctx.loads;
    this.loadOf = (n) => loads.activeCalls(n.id);
    this.factor = cfg.hashLoadFactor;
    this.groupFailover = cfg.callIdAffinityGroupFailover;
  }

  pick(req: PickRequest, cluster: ClusterSnapshot): PickResult {
    const h = hashKey(this.key(req.msg) ?? req.callId);
    const weights = snapshotWeights(cluster);
    if (req.newCall) {
      const chosen = rendezvous(h, cluster.selectable, weights.selectable);
      // Filtering nodes out keeps the others' order, so the hash over all live nodes differs from
      // this one only when its winner is a draining node.
      if (chosen !== null && cluster.alive.length !== cluster.selectable.length) {
        const first = rendezvous(h, cluster.alive, weights.alive);
        if (first !== chosen) this.detours.set(req.callId, chosen.id);
      }
      return chosen;
    }
    // A call this balancer detoured or moved (bounded failover) follows its record. The table is
    // empty unless a node drains or a bounded failover happened: one size check otherwise.
    const known = this.detours.size > 0 ? this.detours.get(req.callId) : undefined;
    if (known !== undefined) return this.detour(known, h, cluster);
    const first = rendezvous(h, cluster.alive, weights.alive);
    if (first === null || cluster.isSelectable(first)) return first;
    // `first` drains: the call is there unless it started while it drained.
    const shared = this.detours.fetch(req.callId);
    if (shared === null) return first;
    return shared.then((id) => (id === undefined ? first : this.detour(id, h, cluster)), () => first);
  }

  repick(req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot): PickResult {
    const others = (n: SipNode): boolean => n.id !== failedNodeId;
    // By configured weight: a ramp-up share differs between balancers, the heir must not.
    if (this.groupFailover) return rendezvous(hashKey(failedNodeId), cluster.selectable, configuredWeight, others);
    const h = hashKey(this.key(req.msg) ?? req.callId);
    if (!(this.factor > 0)) return rendezvous(h, cluster.selectable, snapshotWeights(cluster).selectable, others);
    const moved = this.detours.get(req.callId);
    if (moved !== undefined && moved !== failedNodeId) {
      const n = cluster.get(moved);
      if (n !== undefined && cluster.isAlive(n)) return n;
    }
    const heir = rendezvousBounded(h, cluster.selectable.filter(others), configuredWeight, this.loadOf, this.factor);
    if (heir === null) return null;
    const claimed = this.detours.claim(req.callId, heir.id, failedNodeId);
    if (claimed === null) {
      this.detours.set(req.callId, heir.id);
      return heir;
    }
    return claimed.then((id) => (id === heir.id ? heir : this.detour(id, h, cluster)));
  }

  pickHttp(req: HttpPickRequest, cluster: ClusterSnapshot): SipNode | null {
    const key = this.httpKey(req.url);
    if (key === null) return this.rotation.pick(cluster.selectable, (n) => cluster.weightOf(n));
    return rendezvous(hashKey(key), cluster.selectable, snapshotWeights(cluster).selectable);
  }

  /**
   * hashLoadFactor and callIdAffinityGroupFailover from a reload: they only decide where the calls
   * of a node that dies from now on go. (The key, sipHeaderAffinityKey, is refused by the reload:
   * calls in progress would hash elsewhere.)
   */
  reconfigure(config: Config): string | null {
    this.factor = config.hashLoadFactor;
    this.groupFailover = config.callIdAffinityGroupFailover;
    return null;
  }

  callEnded(callId: string): void {
    // Detours exist only for calls started during a drain or moved under bounded load; do not
    // touch the shared tier for the rest.
    if (this.detours.size > 0 && this.detours.get(callId) !== undefined) this.detours.end(callId);
  }

  close(): void {
    this.detours.close();
  }

  /** The node a detoured or moved call went to or, when that one is gone, where its key hashes now. */
  private detour(nodeId: string, h: number, cluster: ClusterSnapshot): SipNode | null {
    const n = cluster.get(nodeId);
    if (n !== undefined && cluster.isAlive(n)) return n;
    return rendezvous(h, cluster.selectable, snapshotWeights(cluster).selectable);
  }
}
