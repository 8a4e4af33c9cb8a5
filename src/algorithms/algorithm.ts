// The balancing algorithm contract (documented for users in docs/algorithms.md). An algorithm is
// a decision over the message and the current ClusterSnapshot. It may keep assignments, through
// the StateStore it is given, so that several balancers agree; it never blocks the data path: a
// decision it can make from local state alone is returned at once, and only a decision that needs
// the shared store may return a Promise (a read after a local miss, or a claim that makes the
// balancers agree on a placement or a move; each bounded in time).

import type { Logger } from 'pino';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { LoadView } from '../cluster/call-tracker.ts';
import type { SipNode } from '../cluster/node.ts';
import type { Config } from '../config/types.ts';
import type { SipMessage } from '../sip/message.ts';
import type { StateStore } from '../state/store.ts';
import type { Inbound } from '../transport/types.ts';

export interface PickRequest {
  readonly msg: SipMessage;
  readonly callId: string;
  /**
   * True for a request that starts something new (an initial INVITE, an out-of-dialog request):
   * it may only go to a node that takes new calls. False for requests of an existing call (a To
   * tag, ACK, CANCEL), which may also go to a draining node that has the call.
   */
  readonly newCall: boolean;
  /** Where it came from: transport, side and the peer's address (source-address affinity). */
  readonly src: Inbound;
}

/** What an HTTP balancer hands an algorithm. */
export interface HttpPickRequest {
  readonly method: string;
  /** Request target as received: path and query. */
  readonly url: string;
  /** Header value by lower-case name, or undefined. */
  header(name: string): string | undefined;
  readonly remoteAddress: string;
}

/** Everything an algorithm is built from. */
export interface AlgorithmContext {
  readonly config: Config;
  readonly store: StateStore;
  readonly loads: LoadView;
  readonly log: Logger;
}

export type { LoadView } from '../cluster/call-tracker.ts';

export type PickResult = SipNode | null | Promise<SipNode | null>;

export interface Algorithm {
  /** Canonical short name (as logged and shown by the admin surface). */
  readonly name: string;
  /**
   * Node for a request from a client that carries no usable node hint. Null when no node can take
   * it (the proxy answers 503). A Promise only when the answer needs the shared store; it never
   * rejects.
   */
  pick(req: PickRequest, cluster: ClusterSnapshot): PickResult;
  /**
   * The node that had this call (failedNodeId) is gone or down: where the call continues. Every
   * balancer with the same cluster view must give the same answer, and the calls of one dead node
   * must spread evenly over the survivors (or, with group failover, all go to one of them). A
   * Promise, under the same rules as pick's, only when the answer is agreed through the shared
   * store (a move that depends on one balancer's load figures, an election).
   */
  repick(req: PickRequest, failedNodeId: string, cluster: ClusterSnapshot): PickResult;
  /**
   * Node for an HTTP request, for the HTTP balancer (when no session cookie decides): converged
   * affinity, its key maps like the SIP key. May answer later, like pick, when the shared store
   * has to be asked. Optional: an algorithm without it leaves HTTP requests to the HTTP
   * balancer's own choice.
   */
  pickHttp?(req: HttpPickRequest, cluster: ClusterSnapshot): PickResult;
  /** Membership changes, for algorithms that keep per-node state. */
  nodeAdded?(node: SipNode, cluster: ClusterSnapshot): void;
  nodeRemoved?(nodeId: string, cluster: ClusterSnapshot): void;
  /** The call (Call-ID) is over: assignments may be released after the retransmission window. */
  callEnded(callId: string): void;
  /**
   * A reload changed parameters an algorithm may take live (hashLoadFactor,
   * callIdAffinityGroupFailover, userAffinityGroupFailover, subclusterMap): take them from
   * `config` for the requests from now on and return null, or return why not (naming the key)
   * having changed nothing. All or nothing: the reload is refused on a reason. Optional: without
   * it a change of those keys is refused (the algorithm read them once, when it was built).
   */
  reconfigure?(config: Config): string | null;
  /** Release timers and state. */
  close(): void;
}

/** What a user module (`algorithmClass=/path/to/module.js`) exports, as default or `createAlgorithm`. */
export type AlgorithmFactory = (ctx: AlgorithmContext) => Algorithm;
