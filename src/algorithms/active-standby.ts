// Active-standby (Restcomm's ActiveStandbyAlgorithm): one node, the active one, takes every new
// call; the others stand by. When the active node stops taking calls the first standby (in node
// id order) becomes active, and stays active when the old one comes back, so calls never flap
// between the two. Calls keep Call-ID affinity, so a draining active node finishes its calls while
// new ones go to its successor.
//
// Several balancers must use one active node. It is kept in the store, and every change of it is
// an election there rather than a local decision written over the others':
//   - a balancer that holds no active node (just started, or restarted after a switch-over) claims
//     its candidate without `replacing`: the store keeps the node it holds, which the balancer
//     adopts, and takes the candidate only when it holds none;
//   - a balancer whose active node stops taking calls claims its candidate replacing that node (a
//     compare-and-set): of several balancers electing at the same moment the first wins and the
//     others adopt its choice, so they converge on one successor even when their candidates differ;
//   - once a second every balancer confirms its active node the same way (a claim replacing it by
//     itself), which adopts a successor another balancer elected meanwhile, while this one still
//     sees the old active node taking calls, and writes the node back if the store lost it.
// Picks that need the active node wait for an election under way (one round trip, bounded by the
// store's read timeout). With the in-memory store there is nobody to agree with: the election is
// local and nothing waits.

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { AssignmentMap } from '../state/store.ts';
import type { AlgorithmContext, HttpPickRequest, PickRequest, PickResult } from './algorithm.ts';
import { CallIdAffinity } from './callid-affinity.ts';

const KEY = 'active';
const SYNC_MS = 1000;
const DAY_MS = 86_400_000;
/**
 * Claims one election may take in a row when each answer names a node this balancer sees down (its
 * health checks disagree with another balancer's). Past it this balancer's candidate is written
 * over, so an election is bounded; the next sync or election of the other side settles it again.
 */
const MAX_CLAIMS = 3;

export class ActiveStandby extends CallIdAffinity {
  override readonly name: string = 'active-standby';
  private readonly current: AssignmentMap;
  private readonly sync: NodeJS.Timeout;
  /** The election under way through the store; picks that need the active node wait for it. */
  private electing: Promise<void> | null = null;

  constructor(ctx: AlgorithmContext) {
    super(ctx);
    this.current = ctx.store.assignments('active-standby', { idleMs: DAY_MS, lingerMs: DAY_MS });
    this.sync = setInterval(() => this.confirm(), SYNC_MS);
    this.sync.unref();
  }

  /**
   * The active node as this balancer knows it now: the agreed one while it takes calls, else the
   * first node that does (the candidate of the next election). Never waits; records nothing.
   */
  activeNode(cluster: ClusterSnapshot): SipNode | null {
    return this.agreed(cluster) ?? cluster.selectable[0] ?? null;
  }

  override pick(req: PickRequest, cluster: ClusterSnapshot): PickResult {
    const elected = this.elected(cluster);
    return elected === null ? super.pick(req, cluster) : elected.then(() => super.pick(req, cluster));
  }

  override repick(req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot): PickResult {
    const elected = this.elected(cluster);
    return elected === null ? super.repick(req, failedNodeId, cluster) : elected.then(() => super.repick(req, failedNodeId, cluster));
  }

  override pickHttp(req: HttpPickRequest, cluster: ClusterSnapshot): PickResult {
    const elected = this.elected(cluster);
    return elected === null ? super.pickHttp(req, cluster) : elected.then(() => super.pickHttp(req, cluster));
  }

  protected override choose(_key: string, cluster: ClusterSnapshot): SipNode | null {
    return this.activeNode(cluster);
  }

  protected override failover(_callId: string, _failedNodeId: string, cluster: ClusterSnapshot): SipNode | null {
    return this.activeNode(cluster);
  }

  override close(): void {
    clearInterval(this.sync);
    this.current.close();
    super.close();
  }

  /** The stored active node this balancer holds, while it takes calls. */
  private agreed(cluster: ClusterSnapshot): SipNode | null {
    const id = this.current.get(KEY);
    if (id === undefined) return null;
    const n = cluster.get(id);
    return n !== undefined && cluster.isSelectable(n) ? n : null;
  }

  /** Null when no election is needed (or none is possible, or it ended at once); else the election to wait for. */
  private elected(cluster: ClusterSnapshot): Promise<void> | null {
    if (this.electing !== null) return this.electing;
    return this.agreed(cluster) === null ? this.elect(cluster, 0) : null;
  }

  private elect(cluster: ClusterSnapshot, claims: number): Promise<void> | null {
    const candidate = cluster.selectable[0];
    if (candidate === undefined) return null;
    // What this balancer holds is a node that stopped taking calls (replace exactly that one), or
    // nothing (then the store's node, if any, is adopted rather than replaced).
    const held = this.current.get(KEY);
    const claimed = claims < MAX_CLAIMS ? this.current.claim(KEY, candidate.id, held) : null;
    if (claimed === null) {
      this.current.set(KEY, candidate.id);
      return null;
    }
    const election = claimed.then((stored): Promise<void> | undefined => {
      this.electing = null;
      if (stored === candidate.id) return undefined;
      const n = cluster.get(stored);
      if (n !== undefined && cluster.isSelectable(n)) return undefined;
      // Another balancer elected a node this one sees down: elect again, replacing it.
      return this.elect(cluster, claims + 1) ?? undefined;
    });
    this.electing = election;
    return election;
  }

  /**
   * Once a second: the store confirms this balancer's active node or names the one another
   * balancer elected since (either is kept locally). Without one, the store's is read.
   */
  private confirm(): void {
    if (this.electing !== null) return;
    const held = this.current.get(KEY);
    if (held === undefined) void this.current.fetch(KEY);
    else void this.current.claim(KEY, held, held);
  }
}
