// The balancing algorithm contract. An algorithm is a pure-ish decision over the message keys and
// the current ClusterSnapshot; it may keep affinity state, but it never does I/O on the data path.

import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { SipNode } from '../cluster/node.ts';
import type { SipMessage } from '../sip/message.ts';

export interface PickRequest {
  readonly msg: SipMessage;
  readonly callId: string;
}

export interface Algorithm {
  /** Canonical short name (as logged and shown by the admin surface). */
  readonly name: string;
  /**
   * Node for a request from a client that carries no usable node hint. Returns null when no
   * node can take it (the proxy answers 503).
   */
  pick(req: PickRequest, cluster: ClusterSnapshot): SipNode | null;
  /** The call (Call-ID) is over: affinity may be released after the retransmission window. */
  callEnded(callId: string): void;
  /** Release timers and state. */
  close(): void;
}
