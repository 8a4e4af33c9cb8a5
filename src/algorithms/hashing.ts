// Rendezvous (highest random weight) hashing. Every (key, node) pair gets a pseudo-random score
// and the key goes to the live node with the highest one. That gives exactly the properties an
// operator wants from a hash balancer, with no ring to tune:
//   - removing a node moves only the keys it had, and each of them goes to whichever survivor
//     scored second for it, so they spread evenly over all survivors (a ring without enough
//     virtual nodes, or Kamailio's "next node", dumps them on one neighbour);
//   - adding a node moves to it only the keys it now wins; nothing moves between old nodes;
//   - every balancer with the same node set computes the same answer, with no coordination.
// Weighted nodes use the logarithmic method (score = -w / ln(u)), which keeps both properties and
// gives each node a share proportional to its weight. The cost is one integer mix per node.
//
// Bounded load (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads"): with a
// factor e > 0 a node whose load would exceed ceil((1 + e) * (total + 1) * w / W) is skipped and
// the key goes to the next node in its own ranking, so the spill is spread too.

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';

/** 32-bit FNV-1a over UTF-16 code units, finished with murmur3's fmix32 for avalanche. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** murmur3 finaliser: a bijection on 32-bit integers in which every input bit flips half the output bits. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const nodeSeeds = new WeakMap<SipNode, number>();

function seedOf(node: SipNode): number {
  let s = nodeSeeds.get(node);
  if (s === undefined) {
    s = hashKey(node.id);
    nodeSeeds.set(node, s);
  }
  return s;
}

/** Score of a node for a key; higher wins. Unweighted scores are plain 32-bit integers. */
function rawScore(keyHash: number, node: SipNode): number {
  return fmix32((keyHash ^ seedOf(node)) + 0x9e3779b9);
}

function weightedScore(keyHash: number, node: SipNode, weight: number): number {
  // u in (0, 1); -ln(u) > 0; a larger weight makes a larger score for the same u.
  const u = (rawScore(keyHash, node) + 0.5) / 4294967296;
  return -weight / Math.log(u);
}

export type WeightOf = (node: SipNode) => number;

/**
 * A node's configured weight alone, without its ramp-up share. Failover ranks by it: a ramp-up
 * share grows from the moment this balancer saw the node join, which differs between balancers,
 * so a ranking that used it would move a dead node's call to different survivors on different
 * balancers while a node ramps up.
 */
export const configuredWeight: WeightOf = (node) => node.weight;

/** All nodes weigh the same (so rendezvous may rank them unweighted). */
export function allEqual(nodes: readonly SipNode[], weightOf: WeightOf | undefined): boolean {
  if (weightOf === undefined || nodes.length < 2) return true;
  const w0 = weightOf(nodes[0]);
  for (let i = 1; i < nodes.length; i++) if (weightOf(nodes[i]) !== w0) return false;
  return true;
}

/**
 * The node the key goes to among `nodes` (the highest score), or null when none qualifies.
 * `accept` filters candidates without changing anyone's score, so filtering a node out moves only
 * its own keys. Ties (equal integer scores) go to the smaller node id, the same on every balancer.
 */
export function rendezvous(
  keyHash: number, nodes: readonly SipNode[], weightOf?: WeightOf, accept?: (n: SipNode) => boolean,
): SipNode | null {
  const equal = allEqual(nodes, weightOf);
  let best: SipNode | null = null;
  let bestScore = -1;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (accept !== undefined && !accept(n)) continue;
    let s: number;
    if (equal) s = rawScore(keyHash, n);
    else {
      const w = (weightOf as WeightOf)(n);
      if (!(w > 0)) continue;
      s = weightedScore(keyHash, n, w);
    }
    if (s > bestScore || (s === bestScore && best !== null && n.id < best.id)) {
      best = n;
      bestScore = s;
    }
  }
  return best;
}

/** All qualifying nodes, best first: the order in which a key falls back. */
export function rendezvousRanking(keyHash: number, nodes: readonly SipNode[], weightOf?: WeightOf): SipNode[] {
  const equal = allEqual(nodes, weightOf);
  const scored: { n: SipNode; s: number }[] = [];
  for (const n of nodes) {
    if (equal) scored.push({ n, s: rawScore(keyHash, n) });
    else {
      const w = (weightOf as WeightOf)(n);
      if (w > 0) scored.push({ n, s: weightedScore(keyHash, n, w) });
    }
  }
  scored.sort((a, b) => b.s - a.s || (a.n.id < b.n.id ? -1 : 1));
  return scored.map((x) => x.n);
}

/**
 * Rendezvous with bounded load: the first node in the key's ranking whose load is below its cap,
 * ceil((1 + factor) * (total + 1) * w / W) where total is the load over `nodes`. At least one node
 * is always below its cap, so this returns null only when `nodes` is empty.
 */
export function rendezvousBounded(
  keyHash: number, nodes: readonly SipNode[], weightOf: WeightOf, loadOf: (n: SipNode) => number, factor: number,
): SipNode | null {
  const top = rendezvous(keyHash, nodes, weightOf);
  if (top === null || !(factor > 0)) return top;
  let total = 0;
  let weights = 0;
  for (const n of nodes) {
    const w = weightOf(n);
    if (!(w > 0)) continue;
    total += loadOf(n);
    weights += w;
  }
  const cap = (n: SipNode): number => Math.ceil(((1 + factor) * (total + 1) * weightOf(n)) / weights);
  if (loadOf(top) < cap(top)) return top;
  for (const n of rendezvousRanking(keyHash, nodes, weightOf)) {
    if (loadOf(n) < cap(n)) return n;
  }
  return top;
}

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
