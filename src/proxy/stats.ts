// Counters of the SIP data path. Plain numbers: incremented on the hot path, read by the admin
// surface (metrics, API) and the logs.

import { overloadCounters, type OverloadCounters } from './overload.ts';
import { SIP_TRANSPORTS, type Transport } from '../config/types.ts';

/** Methods counted by name; any other is counted as 'other', so labels stay bounded. */
const COUNTED_METHODS = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'MESSAGE', 'INFO', 'PRACK', 'UPDATE', 'PUBLISH']);

export class ProxyStats {
  requestsIn = 0;
  responsesIn = 0;
  requestsForwarded = 0;
  responsesForwarded = 0;
  unparseable = 0;
  /** Initial INVITEs forwarded (a new call each). */
  callsStarted = 0;
  /** INVITEs placed again because their node went down before answering (isSendTrying). */
  invitesReplaced = 0;
  /** Addresses blocked now by the per-source limit (pikeRequests); source-rate-limit.ts keeps it. */
  sourcesBlocked = 0;
  /** The overload controller's state and what it shed (overload.ts). */
  readonly overload: OverloadCounters = overloadCounters();
  readonly localReplies = new Map<number, number>();
  readonly dropped = new Map<string, number>();
  /** Requests received, by transport, then method (COUNTED_METHODS, else 'other'). */
  readonly requestsByMethod: Record<Transport, Map<string, number>> = perTransport(() => new Map<string, number>());
  /** Responses received, by transport, then status class (index 1..6 = 1xx..6xx). */
  readonly responsesByClass: Record<Transport, number[]> = perTransport(() => [0, 0, 0, 0, 0, 0, 0]);
  /**
   * Told how long the proxy took over a sample of the messages (seconds, from receipt to the hand
   * over to the transport, a pick that waits for the store not included); null: nobody listens.
   */
  observeHandling: ((seconds: number) => void) | null = null;
  /** Messages (requests and responses) sent to each node, by node id. */
  readonly sentToNode = new Map<string, number>();
  /** Messages received from each node, by node id. */
  readonly receivedFromNode = new Map<string, number>();

  countSentTo(nodeId: string): void {
    this.sentToNode.set(nodeId, (this.sentToNode.get(nodeId) ?? 0) + 1);
  }

  countReceivedFrom(nodeId: string): void {
    this.receivedFromNode.set(nodeId, (this.receivedFromNode.get(nodeId) ?? 0) + 1);
  }

  /** A node left the cluster: its counters go (registered nodes come and go; labels stay bounded). */
  forgetNode(nodeId: string): void {
    this.sentToNode.delete(nodeId);
    this.receivedFromNode.delete(nodeId);
  }

  countRequest(transport: Transport, method: string): void {
    const m = this.requestsByMethod[transport];
    const key = COUNTED_METHODS.has(method) ? method : 'other';
    m.set(key, (m.get(key) ?? 0) + 1);
  }

  countResponse(transport: Transport, status: number): void {
    const c = Math.floor(status / 100);
    if (c >= 1 && c <= 6) this.responsesByClass[transport][c]++;
  }

  countReply(status: number): void {
    this.localReplies.set(status, (this.localReplies.get(status) ?? 0) + 1);
  }

  countDrop(reason: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  toJSON(): Record<string, unknown> {
    return {
      requestsIn: this.requestsIn, responsesIn: this.responsesIn,
      requestsForwarded: this.requestsForwarded, responsesForwarded: this.responsesForwarded,
      unparseable: this.unparseable, invitesReplaced: this.invitesReplaced, callsStarted: this.callsStarted, sourcesBlocked: this.sourcesBlocked, overload: { ...this.overload },
      localReplies: Object.fromEntries(this.localReplies), dropped: Object.fromEntries(this.dropped),
    };
  }
}

function perTransport<T>(make: () => T): Record<Transport, T> {
  const out = {} as Record<Transport, T>;
  for (const t of SIP_TRANSPORTS) out[t] = make();
  return out;
}
