// Cluster-subdomain affinity (Restcomm's ClusterSubdomainAffinityAlgorithm): Call-ID affinity
// whose failover prefers the dead node's own group from `subclusterMap`, e.g. the nodes that
// replicate each other's sessions. A group member is an IP (every node on it) or ip:port. When no
// node of the group can take calls, the call moves anywhere. Within a group the dead node's calls
// spread by rendezvous hashing, so every balancer picks the same heir.

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import type { AlgorithmContext } from './algorithm.ts';
import { CallIdAffinity } from './callid-affinity.ts';
import { hashKey, rendezvous } from './hashing.ts';

/** Group index of a node, by its exact ip:port first, then by its IP; -1 when ungrouped. */
export function subclusterIndex(groups: readonly (readonly string[])[]): (node: { id: string; ip: string }) => number {
  const byMember = new Map<string, number>();
  groups.forEach((g, i) => { for (const m of g) byMember.set(m, i); });
  return (node) => byMember.get(node.id) ?? byMember.get(node.ip) ?? -1;
}

export class SubclusterAffinity extends CallIdAffinity {
  override readonly name: string = 'subcluster';
  /** Not readonly: a reload may change subclusterMap. */
  private groupOf: (node: { id: string; ip: string }) => number;

  constructor(ctx: AlgorithmContext) {
    super(ctx);
    this.groupOf = subclusterIndex(ctx.config.subclusterMap);
  }

  /** subclusterMap (and group failover) from a reload: it only decides where later failovers go. */
  override reconfigure(config: Config): string | null {
    this.groupOf = subclusterIndex(config.subclusterMap);
    return super.reconfigure(config);
  }

  protected override failover(callId: string, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    const key = hashKey(this.groupFailover ? failedNodeId : callId);
    const failed = cluster.get(failedNodeId);
    // A node already gone from the registry is found by the address in its id.
    const group = this.groupOf(failed ?? { id: failedNodeId, ip: failedNodeId.replace(/^\[?(.*?)\]?:\d+$/, '$1') });
    const others = (n: SipNode): boolean => n.id !== failedNodeId;
    if (group !== -1) {
      const sameGroup = rendezvous(key, cluster.selectable, undefined, (n) => others(n) && this.groupOf(n) === group);
      if (sameGroup !== null) return sameGroup;
    }
    return rendezvous(key, cluster.selectable, undefined, others);
  }
}
