// Least active calls (a siplb algorithm): a new call goes to the node with the fewest active
// calls per unit of weight, counting the calls every balancer sharing the store has placed
// (CallTracker). Ties rotate, so an idle cluster still spreads calls instead of filling the first
// node. A dead node's calls move to the least loaded survivors as they show up, and since each
// move counts at once, a burst of failovers spreads rather than piling on one node.

import type { LoadView } from './algorithm.ts';
import { CallIdAffinity, type CallIdAffinityOptions } from './callid-affinity.ts';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';

/** The node with the lowest load per weight among `nodes`, ties broken by rotating `turn`. */
export function leastLoaded(nodes: readonly SipNode[], cluster: ClusterSnapshot, loads: LoadView, turn: number, exclude?: string): SipNode | null {
  let best: SipNode | null = null;
  let bestLoad = Infinity;
  const n = nodes.length;
  for (let k = 0; k < n; k++) {
    const node = nodes[(turn + k) % n];
    if (node.id === exclude) continue;
    const w = cluster.weightOf(node);
    if (!(w > 0)) continue;
    const load = loads.activeCalls(node.id) / w;
    if (load < bestLoad) {
      best = node;
      bestLoad = load;
    }
  }
  return best;
}

export function leastActiveCalls(opts: Omit<CallIdAffinityOptions, 'choose' | 'failover' | 'name'>, loads: LoadView): CallIdAffinity {
  let turn = 0;
  return new CallIdAffinity({
    ...opts,
    name: 'least-calls',
    choose: (cluster) => leastLoaded(cluster.selectable, cluster, loads, turn++),
    failover: (_req, failed, cluster) => leastLoaded(cluster.selectable, cluster, loads, turn++, failed),
  });
}
