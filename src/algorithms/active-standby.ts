// Active-standby (Restcomm's ActiveStandbyAlgorithm): one node, the active one, takes every new
// call; the others stand by. When the active node stops taking calls the first standby (in node
// id order, the same on every balancer) becomes active, and stays active when the old one comes
// back, so calls never flap between the two. Calls keep Call-ID affinity, so a draining active
// node finishes its calls while new ones go to its successor. The active node is kept in the
// store: balancers sharing Redis converge on the same one within a second, and a restarted
// balancer adopts it instead of electing its own.

import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { AssignmentMap } from '../state/store.ts';
import type { AlgorithmContext } from './algorithm.ts';
import { CallIdAffinity } from './callid-affinity.ts';

const KEY = 'active';
const SYNC_MS = 1000;
const DAY_MS = 86_400_000;

export class ActiveStandby extends CallIdAffinity {
  override readonly name: string = 'active-standby';
  private readonly current: AssignmentMap;
  private readonly sync: NodeJS.Timeout;

  constructor(ctx: AlgorithmContext) {
    super(ctx);
    this.current = ctx.store.assignments('active-standby', { idleMs: DAY_MS, lingerMs: DAY_MS });
    this.sync = setInterval(() => { void this.current.fetch(KEY); }, SYNC_MS);
    this.sync.unref();
  }

  /** The active node: the agreed one while it takes calls, else the first node that does. */
  activeNode(cluster: ClusterSnapshot): SipNode | null {
    const id = this.current.get(KEY);
    if (id !== undefined) {
      const n = cluster.get(id);
      if (n !== undefined && cluster.isSelectable(n)) return n;
    }
    const next = cluster.selectable[0] ?? null;
    if (next !== null) this.current.set(KEY, next.id);
    return next;
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
}
