// Everything the proxy knows about one request while it handles it, in one object that is built
// once and handed on: the message and where it came from, the edit being made to it, the parts
// already parsed (top Via, Max-Forwards, To tag, our Route entries and the node hint they
// carried), the cluster view it is routed against, the loop key, and the answer (a node or a
// hop out of the cluster). It is also what the algorithm is given (PickRequest), as Envoy hands
// its load balancer a LoadBalancerContext: an algorithm may read the message and its source.

import type { PickRequest } from '../algorithms/algorithm.ts';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import { MessageEdit } from '../sip/edit.ts';
import { splitCommaRanges, unfold } from '../sip/lists.ts';
import type { SipMessage } from '../sip/message.ts';
import { parseVia, type Via } from '../sip/via.ts';
import type { Destination, Inbound } from '../transport/types.ts';

export class RequestContext implements PickRequest {
  readonly msg: SipMessage;
  readonly src: Inbound;
  readonly callId: string;
  readonly edit: MessageEdit;
  /** The sender's Via; received/rport are filled in when the request is forwarded. */
  readonly topVia: Via;
  /** Where the top Via value starts and ends in msg.head. */
  readonly topViaStart: number;
  readonly topViaEnd: number;
  /** Header index of Max-Forwards, or -1. */
  readonly maxForwardsIndex: number;
  /** Its value, or -1 when absent. */
  readonly maxForwards: number;
  readonly toTag: string | null;
  /**
   * True for a request that starts something new (an initial INVITE, an out-of-dialog request):
   * it may only go to a node that takes new calls. ACK and CANCEL belong to the INVITE before them.
   */
  readonly newCall: boolean;
  /** The cluster view it is routed against (a fresh one after a pick that waited). */
  cluster: ClusterSnapshot;
  /** Arrived from a node or an extraServerNodes entry. */
  fromCluster = false;
  /** The node that sent it, found by its exact address. */
  sender: SipNode | undefined = undefined;
  /** Node id carried by our Record-Route entry (lbnode), popped from Route or the Request-URI. */
  hint: string | null = null;
  /** Flow token (flow-token.ts) in the user part of one of our popped Route entries. */
  flowToken: string | null = null;
  /** Route entries left after ours were popped, as text. */
  routes: string[] = [];
  /** Loop-detection part of the branch (branch.ts). */
  loop = '';
  /** The answer: the node it goes to, or a next hop out of the cluster, or neither (503). */
  node: SipNode | null = null;
  hop: Destination | null = null;

  /** `viaRanges`: where the Via values of the top Via header line start and end (splitCommaRanges). */
  private constructor(msg: SipMessage, src: Inbound, cluster: ClusterSnapshot, topVia: Via, viaRanges: readonly number[]) {
    this.msg = msg;
    this.src = src;
    this.callId = msg.callId;
    this.edit = new MessageEdit(msg);
    this.topVia = topVia;
    this.topViaStart = viaRanges[0];
    this.topViaEnd = viaRanges[1];
    this.maxForwardsIndex = msg.maxForwards === -1 ? -1 : msg.indexOf('max-forwards');
    this.maxForwards = msg.maxForwards;
    this.toTag = msg.toTag;
    const method = msg.method;
    this.newCall = this.toTag === null && method !== 'ACK' && method !== 'CANCEL';
    this.cluster = cluster;
  }

  /** The context of a valid request, or null when its top Via cannot be read. */
  static of(msg: SipMessage, src: Inbound, cluster: ClusterSnapshot): RequestContext | null {
    const viaIdx = msg.indexOf('via');
    const ranges = splitCommaRanges(msg.head, msg.valueStarts[viaIdx], msg.lineEnds[viaIdx], 1);
    if (ranges.length === 0) return null;
    const topVia = parseVia(unfold(msg.head.slice(ranges[0], ranges[1])));
    return topVia === null ? null : new RequestContext(msg, src, cluster, topVia, ranges);
  }
}
