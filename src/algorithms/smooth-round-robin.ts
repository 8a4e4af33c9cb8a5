// Smooth weighted round robin (the nginx scheme): every pick adds each node's weight to its
// credit, takes the node with the most credit and charges it the total. Equal weights give plain
// rotation; weights 5:1:1 give A A B A C A A, spread out rather than bursty. Weights may be
// fractional (ramp-up shares).

import type { SipNode } from '../cluster/node.ts';

export class SmoothWeightedRoundRobin {
  private credit = new Map<string, number>();

  pick(nodes: readonly SipNode[], weightOf: (n: SipNode) => number): SipNode | null {
    if (nodes.length === 0) return null;
    if (this.credit.size > nodes.length * 2 + 16) this.credit = new Map(); // forget departed nodes
    let best: SipNode | null = null;
    let bestCredit = -Infinity;
    let total = 0;
    for (const n of nodes) {
      const w = weightOf(n);
      if (!(w > 0)) continue;
      total += w;
      const c = (this.credit.get(n.id) ?? 0) + w;
      this.credit.set(n.id, c);
      if (c > bestCredit) {
        bestCredit = c;
        best = n;
      }
    }
    if (best === null) return null;
    this.credit.set(best.id, bestCredit - total);
    return best;
  }
}
