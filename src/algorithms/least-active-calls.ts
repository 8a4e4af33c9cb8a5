// Least active calls (a siplb algorithm): a new call goes to the node with the fewest active
// calls per unit of weight, counting the calls every balancer sharing the store has placed
// (CallTracker). Ties rotate, so an idle cluster still spreads calls instead of filling the first
// node. Each balancer's load figures lag the others' by up to a second, so two balancers given
// copies of one INVITE may choose differently: the placement is claimed in the store and the
// first one stands (assignment-algorithm.ts).
//
// A dead node's calls do not move to "the least loaded survivor now": that is a different node on
// each balancer, and the requests of one call pass several. They spread by weighted rendezvous
// hashing of the Call-ID over the survivors (CallIdAffinity's failover, by configured weight),
// which every balancer computes alike; with enough calls that is the survivors' weighted share.

import type { LoadView } from '../cluster/call-tracker.ts';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { AlgorithmContext } from './algorithm.ts';
import { CallIdAffinity } from './callid-affinity.ts';
import { configuredWeight, type WeightOf } from './hashing.ts';

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

export class LeastActiveCalls extends CallIdAffinity {
  override readonly name: string = 'least-calls';
  protected override readonly failoverWeight: WeightOf = configuredWeight;
  private readonly loads: LoadView;
  private turn = 0;

  constructor(ctx: AlgorithmContext) {
    super(ctx);
    this.loads = ctx.loads;
  }

  protected override choose(_key: string, cluster: ClusterSnapshot): SipNode | null {
    return leastLoaded(cluster.selectable, cluster, this.loads, this.turn++);
  }
}
