// The flow every algorithm that writes its answers down shares (Call-ID affinity and its
// variants, persistent hashing, user-based): a request's key is looked up in the assignments
// (locally, then, for a request of a call this balancer has not seen or a key that outlives
// calls, such as a user, in the shared store); an
// unknown key is placed by the algorithm's chooser and remembered; a key whose node died is moved
// by its failover rule and remembered, so every later request of the key follows it. The
// assignments live in the StateStore, so balancers sharing a store find each other's.
//
// Several balancers behind one address may each get a copy of the same request (an INVITE and
// its retransmission sprayed to two balancers) and must send both to one node. A placement is
// therefore claimed in the shared store (AssignmentMap.claim): the first balancer's choice is
// kept, the others follow it. So is a move whose rule depends on what one balancer sees (its
// load figures): claimed replacing the dead node, so the first move wins. A move by a rule every
// balancer computes alike from the key and the cluster (rendezvous hashing) is only written
// down. With no shared store (or while it is down) claim() answers null and nothing waits.
//
// A subclass supplies the hooks: which key a request has (keyOf), where a new key goes (choose),
// where a dead node's key goes (failover), and for HTTP the key of a request (httpKeyOf) and how
// requests without one are spread (spread).

import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { SipNode } from '../cluster/node.ts';
import { TRANSACTION_TIMEOUT_MS } from '../sip/timers.ts';
import type { AssignmentMap } from '../state/store.ts';
import type { Algorithm, AlgorithmContext, HttpPickRequest, PickRequest, PickResult } from './algorithm.ts';

/**
 * How long a request of a call the shared store does not know waits before asking it again. Long
 * enough for a write queued behind a loaded balancer; short beside the retransmission timers
 * (an ACK or BYE held this long is not retransmitted over UDP before T1, 500 ms).
 */
const LATE_WRITE_RETRY_MS = 250;

/**
 * Claims one placement may take in a row when each answer names a node this balancer cannot use
 * (another balancer sees the cluster differently). Past it this balancer's own choice is written
 * over, so a pick is bounded at a few round trips, each bounded by the store's read timeout.
 */
const MAX_CLAIMS = 3;

/**
 * One namespace of assignments with the configured idle expiry (callIdAffinityMaxTimeInCache
 * unless the algorithm has its own, in seconds) and bound. An ended call's entry lingers for the
 * retransmission window, so a retransmitted BYE still reaches the call's node.
 */
export function assignmentsOf(ctx: AlgorithmContext, namespace: string, idleSeconds = ctx.config.callIdAffinityMaxTimeInCache): AssignmentMap {
  return ctx.store.assignments(namespace, {
    idleMs: idleSeconds * 1000,
    lingerMs: TRANSACTION_TIMEOUT_MS,
    maxEntries: ctx.config.callIdAffinityMaxEntries,
  });
}

export abstract class AssignmentAlgorithm implements Algorithm {
  abstract readonly name: string;
  protected readonly assignments: AssignmentMap;
  /** Every key is a Call-ID, so a call's end ends its key (else keys outlive calls and expire when idle). */
  private readonly callScoped: boolean;

  protected constructor(assignments: AssignmentMap, callScoped: boolean) {
    this.assignments = assignments;
    this.callScoped = callScoped;
  }

  /** The assignment key of a request; never empty (the Call-ID is the last resort). */
  protected abstract keyOf(req: PickRequest): string;
  /** Where a key without an assignment goes, among the nodes taking new calls; null when none can. */
  protected abstract choose(key: string, cluster: ClusterSnapshot): SipNode | null;
  /** Where a key goes when its node (failedNodeId) is down or gone. */
  protected abstract failover(key: string, failedNodeId: string, cluster: ClusterSnapshot): SipNode | null;
  /**
   * failover() answers from this balancer's own figures (loads), which other balancers do not
   * share exactly: a move is then claimed in the store, replacing the dead node, so the first
   * balancer's move is the one every balancer follows. False (the default): failover() is a
   * function of the key and the cluster, the same on every balancer, and a move is only written.
   */
  protected movesNeedAgreement(): boolean {
    return false;
  }
  /** The key of an HTTP request, or null when it has none. */
  protected abstract httpKeyOf(req: HttpPickRequest): string | null;
  /** The node for an HTTP request without a key. */
  protected abstract spread(cluster: ClusterSnapshot): SipNode | null;

  pick(req: PickRequest, cluster: ClusterSnapshot): PickResult {
    const key = this.keyOf(req);
    // A key that is this very call's Call-ID was placed by an earlier request of the call (an
    // INVITE retransmission is still a "new call"), so it stays while its node is alive. A longer
    // lived key (a user, a header value) takes a new call only where new calls may go.
    const mustTakeNewCalls = req.newCall && key !== req.callId;
    const known = this.assignments.get(key);
    if (known !== undefined) return this.follow(key, known, mustTakeNewCalls, cluster);
    // Ask the shared tier before placing anew: for a request of a call this balancer has not
    // seen (another balancer placed it, or this one restarted), and for a longer lived key, which
    // another balancer may have placed on an earlier call or HTTP request. A brand-new call keyed
    // by its own Call-ID is placed at once and claimed: unknown everywhere, unless a copy of its
    // INVITE reached another balancer too, whose claim then wins (the same single round trip).
    if (!req.newCall || key !== req.callId) {
      // A request of a call under way whose Call-ID the store does not know yet: the balancer that
      // placed the call may still be writing it (its INVITE went out a moment ago, its write is
      // queued behind a busy event loop), so the store is asked once more before a new placement,
      // which would split the call over two nodes.
      const lateWriteMs = !req.newCall && key === req.callId ? LATE_WRITE_RETRY_MS : 0;
      return this.sharedOrPlace(key, mustTakeNewCalls, cluster, lateWriteMs);
    }
    return this.place(key, cluster);
  }

  repick(req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot): PickResult {
    const key = this.keyOf(req);
    // A key already moved keeps its new node: a bounded-load move depends on the loads of the
    // moment, and every later request of the key must land in the same place.
    const moved = this.assignments.get(key);
    if (moved !== undefined && moved !== failedNodeId) {
      const n = cluster.get(moved);
      if (n !== undefined && cluster.isAlive(n)) return n;
    }
    return this.move(key, failedNodeId, cluster);
  }

  pickHttp(req: HttpPickRequest, cluster: ClusterSnapshot): PickResult {
    const key = this.httpKeyOf(req);
    if (key === null) return this.spread(cluster);
    const known = this.assignments.get(key);
    // An HTTP request with a key belongs to a session, which stays on a draining node. Its key
    // is the SIP side's too, which another balancer may have placed: ask the shared tier first.
    return known === undefined ? this.sharedOrPlace(key, false, cluster) : this.follow(key, known, false, cluster);
  }

  /** The shared tier's assignment of a key this balancer does not hold, else a new placement. */
  private sharedOrPlace(key: string, mustTakeNewCalls: boolean, cluster: ClusterSnapshot, retryAfterMs = 0): PickResult {
    const shared = this.assignments.fetch(key);
    if (shared === null) return this.place(key, cluster, mustTakeNewCalls);
    return shared.then(
      (id): PickResult => {
        // A local set() while the read was out is newer than what the store said.
        const local = this.assignments.get(key) ?? id;
        if (local !== undefined) return this.follow(key, local, mustTakeNewCalls, cluster);
        if (retryAfterMs <= 0) return this.place(key, cluster, mustTakeNewCalls);
        return new Promise<void>((resolve) => setTimeout(resolve, retryAfterMs).unref())
          .then(() => this.sharedOrPlace(key, mustTakeNewCalls, cluster, 0));
      },
      () => this.place(key, cluster, mustTakeNewCalls),
    );
  }

  callEnded(callId: string): void {
    // A user's or a header value's assignment is meant to outlive the call (the user's next call
    // must find the same node). With such keys the Call-ID is only the last-resort key of a
    // request that had no other, so it is ended only when held here, rather than writing to the
    // shared tier on every BYE for keys that almost never exist.
    if (this.callScoped || this.assignments.get(callId) !== undefined) this.assignments.end(callId);
  }

  close(): void {
    this.assignments.close();
  }

  /**
   * The node of an existing assignment, or the key's new node when that one cannot take it. When
   * a user's node drains, the user's next call moves the assignment, so a hint-less request of
   * an older call still on the draining node (a CANCEL of a call being set up as the drain began)
   * follows the user instead; requests inside a dialog carry the node hint and are not affected.
   * `claims`: claims this pick has already made (see MAX_CLAIMS).
   */
  private follow(key: string, nodeId: string, mustTakeNewCalls: boolean, cluster: ClusterSnapshot, claims = 0): PickResult {
    const n = cluster.get(nodeId);
    if (n !== undefined) {
      if (cluster.isSelectable(n)) return n;
      if (cluster.isAlive(n)) return mustTakeNewCalls ? this.place(key, cluster, mustTakeNewCalls, nodeId, claims) : n;
    }
    return this.move(key, nodeId, cluster, claims);
  }

  /** A new placement, claimed in place of `replacing` (the draining node a new call cannot take) or of nothing. */
  private place(key: string, cluster: ClusterSnapshot, mustTakeNewCalls = false, replacing?: string, claims = 0): PickResult {
    const n = this.choose(key, cluster);
    if (n === null) return null;
    return this.agree(key, n, replacing, mustTakeNewCalls, cluster, claims);
  }

  private move(key: string, failedNodeId: string, cluster: ClusterSnapshot, claims = 0): PickResult {
    const n = this.failover(key, failedNodeId, cluster);
    if (n === null) return null;
    if (!this.movesNeedAgreement()) {
      this.assignments.set(key, n.id);
      return n;
    }
    return this.agree(key, n, failedNodeId, false, cluster, claims);
  }

  /**
   * This balancer's choice `n` for `key`, claimed in the store: the node the store holds then is
   * the answer, followed like any assignment (a holder this balancer sees dead or draining is
   * replaced in turn). Without a shared store the choice is simply recorded, with no Promise.
   */
  private agree(key: string, n: SipNode, replacing: string | undefined, mustTakeNewCalls: boolean, cluster: ClusterSnapshot, claims: number): PickResult {
    const claimed = claims < MAX_CLAIMS ? this.assignments.claim(key, n.id, replacing) : null;
    if (claimed === null) {
      this.assignments.set(key, n.id);
      return n;
    }
    return claimed.then((held) => (held === n.id ? n : this.follow(key, held, mustTakeNewCalls, cluster, claims + 1)));
  }
}
