// How a response finds its way back, with no transaction state (RFC 3261 §16.7, §16.11, §18.2.2,
// RFC 3581): the top Via must be ours and its branch must authenticate the Via below it (so a
// stray or forged response is dropped); ours is removed and the response goes to the next Via's
// received/rport, else its sent-by. On the way it tells passive health and the call counts what
// the node answered. A response to a request of a node that has since died goes to the node its
// calls fail over to.

import type { Logger } from 'pino';
import { rateLimit } from '../core/log.ts';
import type { Algorithm } from '../algorithms/algorithm.ts';
import type { CallTracker } from '../cluster/call-tracker.ts';
import { egressTransport, type SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import { MessageEdit } from '../sip/edit.ts';
import { splitCommaRanges, unfold } from '../sip/lists.ts';
import type { SipMessage } from '../sip/message.ts';
import { defaultPort, parseVia, responseTarget } from '../sip/via.ts';
import type { Transport } from '../config/types.ts';
import type { StreamConnection } from '../transport/connections.ts';
import type { Inbound, Outbound, Side } from '../transport/types.ts';
import type { UdpBacklog } from '../transport/udp-backlog.ts';
import { loopOf, macOf, macPart, viaKey } from './branch.ts';
import type { LocalAddresses } from './local-addresses.ts';
import type { ProxyPolicy } from './policy.ts';
import type { ProxyStats } from './stats.ts';
import type { UnansweredInvites } from './unanswered-invites.ts';

/** What both directions of the proxy are built from. */
export interface PathDeps {
  readonly addresses: LocalAddresses;
  readonly cluster: () => ClusterSnapshot;
  readonly algorithm: Algorithm;
  readonly out: Outbound;
  readonly log: Logger;
  readonly stats: ProxyStats;
  /** Key of the branch MAC; balancers that see each other's responses share it. */
  readonly secret: string;
  /** What the Restcomm switches of the configuration turn on (policy.ts). */
  readonly policy: ProxyPolicy;
  /** Told about every message a node sends (passive health, proof of life). */
  readonly passiveHealth?: { fromNode(nodeId: string, status: number, response?: SipMessage): void; requestSent?(nodeId: string): void };
  /** Active calls per node; fed from INVITE, its final responses and BYE. */
  readonly calls?: CallTracker;
  /** sipHeaderAffinityKey: what /lbnoderegex patterns are matched against (the From user for Call-ID). */
  readonly affinityKey?: string;
  /** The open stream connections, to send along a flow token's connection. */
  readonly connections?: { get(id: number): StreamConnection | undefined };
  /** The UDP sockets' kernel receive queues, for overload control; null where unreadable. */
  readonly receiveBacklog?: () => UdpBacklog | null;
}

/** Bound on responses waiting for the shared store at once; beyond it they are dropped and counted. */
const MAX_PENDING_HEIRS = 1000;

/** Via transport names (upper case, as the parser keeps them) and ours. */
const VIA_TRANSPORTS: Readonly<Record<string, Transport>> = { UDP: 'udp', TCP: 'tcp', TLS: 'tls', WS: 'ws', WSS: 'wss' };

export class ResponsePath {
  private readonly d: PathDeps;
  private readonly debug: boolean;
  private readonly absorbTrying: boolean;
  /** Responses for a dead node waiting for its heir from the shared store. */
  private pendingHeirs = 0;
  private readonly internalErrorLogGate = rateLimit(10_000);

  /** INVITEs the proxy answered with its own 100 and forwarded, until their node answers (isSendTrying). */
  private readonly invites: UnansweredInvites | null;

  constructor(deps: PathDeps, invites: UnansweredInvites | null = null) {
    this.d = deps;
    this.invites = invites;
    this.debug = deps.log.isLevelEnabled('debug');
    this.absorbTrying = deps.policy.sendTrying;
  }

  handle(msg: SipMessage, src: Inbound): void {
    if (msg.error !== null) return this.drop('malformed-response', src, msg.error);
    const head = msg.head;
    const viaIdx = msg.indexOf('via');
    const r = splitCommaRanges(head, msg.valueStarts[viaIdx], msg.lineEnds[viaIdx], 2);
    if (r.length === 0) return this.drop('malformed-response', src, 'empty Via');
    const top = parseVia(unfold(head.slice(r[0], r[1])));
    if (top === null || top.branch === null || loopOf(top.branch) === null || !this.d.addresses.isOurs(top.host, top.port)) {
      return this.drop('stray-response', src, 'top Via is not ours');
    }
    let nextText: string | null = null;
    if (r.length > 2) nextText = head.slice(r[2], r[3]);
    else {
      const j = msg.indexOf('via', viaIdx + 1);
      if (j !== -1) {
        const r2 = splitCommaRanges(head, msg.valueStarts[j], msg.lineEnds[j], 1);
        if (r2.length > 0) nextText = head.slice(r2[0], r2[1]);
      }
    }
    if (nextText === null) return this.drop('stray-response', src, 'no Via below ours');
    const next = parseVia(unfold(nextText));
    if (next === null) return this.drop('malformed-response', src, 'malformed second Via');
    if (macPart(this.d.secret, viaKey(next), msg.callId, msg.cseqNum) !== macOf(top.branch)) {
      return this.drop('forged-response', src, 'branch does not match the Via below it');
    }
    const transport = VIA_TRANSPORTS[next.transport];
    if (transport === undefined) return this.drop('unsupported-transport', src, next.transport);

    const cluster = this.d.cluster();
    const sender = cluster.nodeAt(src.ip, src.port);
    if (sender !== undefined) {
      this.d.stats.countReceivedFrom(sender.id);
      this.d.passiveHealth?.fromNode(sender.id, msg.status, msg);
    }
    // Any answer, a 100 included, means the node holds the INVITE: no need to place it again.
    if (this.invites !== null && msg.cseqMethod === 'INVITE') this.invites.answered(top.branch);
    if (msg.status === 100 && this.absorbTrying && msg.cseqMethod === 'INVITE') {
      // The proxy answered this INVITE with its own 100 before forwarding it (isSendTrying), and a
      // 100 is hop-by-hop (a proxy forwards every provisional response but 100, RFC 3261 §16.7):
      // relaying the next hop's would only repeat it.
      // Checked after the branch, so a forged 100 still counts as forged; after passive health,
      // so a node's 100 still proves it alive.
      this.d.stats.countDrop('trying-absorbed');
      return;
    }
    if (this.d.calls !== undefined && msg.status >= 200 && msg.cseqMethod === 'INVITE') {
      if (msg.status < 300) this.d.calls.confirmed(msg.callId);
      else this.d.calls.failed(msg.callId);
    }
    const edit = new MessageEdit(msg);
    if (r.length === 2) edit.removeHeader(viaIdx);
    else edit.replace(r[0], r[2], '');
    const target = responseTarget(next);
    const toNode = cluster.nodeAt(target.host, target.port);
    if (toNode !== undefined && !cluster.isAlive(toNode)) {
      // With replicated sessions the heir can take the transaction over.
      const heir = this.d.algorithm.repick({ msg, callId: msg.callId, newCall: false, src }, toNode.id, cluster);
      if (heir instanceof Promise) return this.toHeirLater(heir, edit, transport, src, toNode.id);
      return this.toHeir(heir, edit, transport, src, toNode.id);
    }
    if (toNode !== undefined) this.d.stats.countSentTo(toNode.id);
    // The response retraces the request: out of the side opposite to where it came in.
    const side: Side = this.d.addresses.twoPorts ? (src.side === 'internal' ? 'external' : 'internal') : src.side;
    // A stream response goes on the connection its request came on (found by the peer's
    // address, which received/rport recorded); failing that, to the sent-by port (§18.2.2).
    const fallbackPort = transport !== 'udp' ? (next.port ?? defaultPort(next.transport)) : undefined;
    this.d.stats.responsesForwarded++;
    this.d.out.send({ side, transport, host: target.host, port: target.port, fallbackPort }, withLength(edit, transport).toBuffer());
  }

  /** A response for a dead node goes to the node its calls continue on. */
  private toHeir(heir: SipNode | null, edit: MessageEdit, transport: Transport, src: Inbound, deadId: string): void {
    if (heir === null) return this.drop('no-live-node', src, `response for dead node ${deadId}`);
    const t = egressTransport(heir, transport, this.d.addresses.towardsNodes);
    if (t === null) return this.drop('no-live-node', src, `no transport in common with ${heir.id}`);
    this.d.stats.responsesForwarded++;
    this.d.stats.countSentTo(heir.id);
    this.d.out.send({ side: 'internal', transport: t, host: heir.ip, port: heir.ports[t] as number }, withLength(edit, t).toBuffer());
  }

  /**
   * The heir is agreed through the shared store (a bounded-load move, an election): the response
   * goes on when the store answers, which it does within its read timeout. Like the proxy's
   * waiting picks, the number waiting is bounded, and the continuation is guarded.
   */
  private toHeirLater(heir: Promise<SipNode | null>, edit: MessageEdit, transport: Transport, src: Inbound, deadId: string): void {
    if (this.pendingHeirs >= MAX_PENDING_HEIRS) return this.drop('pick-backlog', src, `response for dead node ${deadId}`);
    this.pendingHeirs++;
    heir.then((node) => {
      this.pendingHeirs--;
      try {
        this.toHeir(node, edit, transport, src, deadId);
      } catch (err) {
        this.d.stats.countDrop('internal-error');
        if (this.internalErrorLogGate()) this.d.log.error({ err, from: `${src.ip}:${src.port}` }, 'internal error forwarding a response to the heir of a dead node');
      }
    }, () => {
      this.pendingHeirs--;
      this.drop('pick-failed', src, `response for dead node ${deadId}`);
    });
  }

  private drop(reason: string, src: Inbound, detail: string): void {
    this.d.stats.countDrop(reason);
    if (this.debug) this.d.log.debug({ from: `${src.ip}:${src.port}`, reason, detail }, 'SIP message dropped');
  }
}

/**
 * A datagram may leave Content-Length out (RFC 3261 §18.3); a stream peer frames by it, and would
 * read the body of a response relayed from UDP to TCP as the start of the next message.
 */
function withLength(edit: MessageEdit, transport: Transport): MessageEdit {
  const msg = edit.msg;
  if (transport !== 'udp' && msg.indexOf('content-length') === -1) edit.appendHeader(`Content-Length: ${msg.bodyEnd - msg.bodyStart}`);
  return edit;
}
