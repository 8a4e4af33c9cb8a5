// The stateless forwarding rules (RFC 3261 §16, §16.11). One call per received message; every
// decision is made from the message, the cluster snapshot and the algorithm's affinity state.
// Nothing here throws on network input: a message is forwarded, answered locally, or dropped
// and counted.

import type { Logger } from 'pino';
import type { Algorithm, PickRequest, PickResult } from '../algorithms/algorithm.ts';
import type { CallTracker } from '../cluster/call-tracker.ts';
import type { SipNode } from '../cluster/node.ts';
import { egressTransport } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Transport } from '../config/types.ts';
import { MessageEdit } from '../sip/edit.ts';
import { splitCommaRanges, unfold } from '../sip/lists.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../sip/message.ts';
import { formatHost, headerParam, nameAddrUri, parseSipUri, sipUriHostPort } from '../sip/uri.ts';
import { defaultPort, parseVia, responseTarget, type Via } from '../sip/via.ts';
import type { Resolver } from '../transport/resolver.ts';
import type { Inbound, Outbound } from '../transport/types.ts';
import { loopOf, loopPart, macOf, macPart, makeBranch, viaKey, BRANCH_PREFIX } from './branch.ts';
import type { LocalAddresses, Side } from './local-addresses.ts';
import { buildLocalReply } from './local-reply.ts';
import type { ProxyStats } from './stats.ts';

/** Record-Route URI parameter that carries the node of the dialog. */
export const NODE_HINT_PARAM = 'lbnode';

/** Methods whose initial request creates a dialog, so Record-Route is added (RFC 3261, 3265, 3515). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

export interface ProxyDeps {
  addresses: LocalAddresses;
  cluster: () => ClusterSnapshot;
  algorithm: Algorithm;
  out: Outbound;
  resolver: Resolver;
  log: Logger;
  stats: ProxyStats;
  /** Key of the branch MAC; balancers that see each other's responses share it. */
  secret: string;
  /** Told about every message a node sends (passive health, proof of life). */
  passiveHealth?: { fromNode(nodeId: string, status: number): void };
  /** Active calls per node; fed from INVITE, its final responses and BYE. */
  calls?: CallTracker;
}

/** Bound on requests waiting for the shared store at once; beyond it they are dropped and counted. */
const MAX_PENDING_PICKS = 10_000;

interface NextHop {
  side: Side;
  transport: Transport;
  host: string;
  port: number;
  /** Stream transports: where to connect when no connection to host:port is open. */
  fallbackPort?: number;
}

export class SipProxy {
  private readonly d: ProxyDeps;
  private readonly debug: boolean;
  /** Requests waiting for an algorithm's answer from the shared store. */
  private pendingPicks = 0;

  constructor(deps: ProxyDeps) {
    this.d = deps;
    this.debug = deps.log.isLevelEnabled('debug');
  }

  /** Entry point for every message a transport receives. */
  onMessage(data: Buffer, src: Inbound): void {
    const msg = parseSipMessage(data, src.transport === 'udp');
    if (isParseFailure(msg)) {
      this.d.stats.unparseable++;
      if (this.debug) this.d.log.debug({ from: `${src.ip}:${src.port}`, reason: msg.failure }, 'unparseable SIP message dropped');
      return;
    }
    if (msg.isRequest) {
      this.d.stats.requestsIn++;
      this.onRequest(msg, src);
    } else {
      this.d.stats.responsesIn++;
      this.onResponse(msg, src);
    }
  }

  // ---------------------------------------------------------------- requests

  private onRequest(msg: SipMessage, src: Inbound): void {
    if (msg.error !== null) return this.reject(msg, src, msg.errorStatus, msg.error);
    const head = msg.head;
    const viaIdx = msg.indexOf('via');
    const viaRanges = splitCommaRanges(head, msg.valueStarts[viaIdx], msg.lineEnds[viaIdx]);
    if (viaRanges.length === 0) return this.reject(msg, src, 400, 'malformed Via');
    const topVia = parseVia(unfold(head.slice(viaRanges[0], viaRanges[1])));
    if (topVia === null) return this.reject(msg, src, 400, 'malformed Via');

    const mfIdx = msg.indexOf('max-forwards');
    const maxForwards = mfIdx === -1 ? -1 : Number(msg.value(mfIdx));
    if (maxForwards === 0) return this.reject(msg, src, 483, null);
    if (msg.indexOf('proxy-require') !== -1) {
      // RFC 3261 §16.3 step 5: siplb supports no option tags a proxy could be required to.
      const tags = msg.getAll('proxy-require').join(', ');
      return this.reject(msg, src, 420, null, [`Unsupported: ${tags}`]);
    }

    const edit = new MessageEdit(msg);
    const routes = this.popOwnRoutes(msg, edit);
    let hint = routes.hint;
    const ruri = msg.requestUri;
    if (hint === null && ruri.includes(NODE_HINT_PARAM)) {
      // A strict router upstream put our Record-Route URI into the Request-URI (RFC 3261 §16.4).
      const u = parseSipUri(ruri);
      if (u !== null && this.d.addresses.isOurs(u.host, u.port)) hint = u.params.get(NODE_HINT_PARAM) ?? null;
    }

    const cluster = this.d.cluster();
    const fromCluster = this.isFromCluster(src, cluster);
    // The node that sent it, if it came from one (found by its exact address).
    const sender = fromCluster ? cluster.nodeAt(src.ip, src.port) : undefined;
    if (sender !== undefined) this.d.passiveHealth?.fromNode(sender.id, 0);
    const callId = msg.callId;
    const fromTag = headerParam(msg.from, 'tag') ?? '';
    // Direction is part of the request's identity here: a node that proxies a request back out
    // through the balancer, unchanged, is spiralling, not looping.
    const loop = loopPart(ruri, fromTag, callId, msg.cseqNum, routes.remaining, fromCluster);
    if (head.includes(BRANCH_PREFIX + loop)) return this.reject(msg, src, 482, null);
    const toTag = headerParam(msg.to, 'tag');
    if (!fromCluster) {
      const picked = this.nodeForRequest(msg, callId, toTag, hint, routes.remaining, cluster);
      if (picked instanceof Promise) return this.awaitPick(picked, msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards);
      return this.forward(msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards, false, undefined, cluster, picked, null);
    }
    // Towards the next Route entry, else the Request-URI (RFC 3261 §16.5, §16.12).
    const targetText = routes.remaining.length > 0 ? nameAddrUri(routes.remaining[0]) : ruri;
    const target = targetText === null ? null : parseSipUri(targetText);
    if (target === null) {
      const otherScheme = targetText !== null && /^[a-z][a-z0-9+.-]*:/i.test(targetText) && !/^sips?:/i.test(targetText);
      return this.reject(msg, src, otherScheme ? 416 : 400, 'cannot route to this URI');
    }
    if (this.d.addresses.isOurs(target.host, target.port)) {
      // A node addressed the balancer itself: balance it like a client request.
      const picked = this.nodeForRequest(msg, callId, toTag, hint, routes.remaining, cluster);
      if (picked instanceof Promise) return this.awaitPick(picked, msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards);
      return this.forward(msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards, true, sender, cluster, picked, null);
    }
    const node = cluster.nodeAt(target.host, target.port ?? 5060) ?? null;
    if (node !== null) return this.forward(msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards, true, sender, cluster, node, null);
    const t = (target.params.get('transport') ?? '').toLowerCase();
    if (t !== '' && t !== 'udp' && t !== 'tcp') return this.reject(msg, src, 503, `transport ${t} not available`);
    if (target.scheme === 'sips') return this.reject(msg, src, 503, 'sips not available');
    const hop: NextHop = { side: 'external', transport: t === 'tcp' ? 'tcp' : 'udp', host: target.params.get('maddr') ?? target.host, port: target.port ?? 5060 };
    return this.forward(msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards, true, sender, cluster, null, hop);
  }

  /**
   * The algorithm needs the shared store (a request of a call placed elsewhere): finish the request
   * when it answers. The store bounds the wait; the number of requests waiting is bounded here.
   */
  private awaitPick(picked: Promise<SipNode | null>, msg: SipMessage, src: Inbound, edit: MessageEdit, topVia: Via,
    viaRanges: number[], loop: string, toTag: string | null, mfIdx: number, maxForwards: number): void {
    if (this.pendingPicks >= MAX_PENDING_PICKS) {
      this.d.stats.countDrop('pick-backlog');
      return;
    }
    this.pendingPicks++;
    picked.then((node) => {
      this.pendingPicks--;
      try {
        this.forward(msg, src, edit, topVia, viaRanges, loop, toTag, mfIdx, maxForwards, false, undefined, this.d.cluster(), node, null);
      } catch (err) {
        this.d.stats.countDrop('internal-error');
        this.d.log.error({ err }, 'internal error while forwarding after a shared-store lookup');
      }
    }, () => {
      this.pendingPicks--;
      this.d.stats.countDrop('pick-failed');
    });
  }

  /** Second half of the request path, once the next hop is known: rewrite and send. */
  private forward(msg: SipMessage, src: Inbound, edit: MessageEdit, topVia: Via, viaRanges: number[], loop: string,
    toTag: string | null, mfIdx: number, maxForwards: number, fromCluster: boolean, sender: SipNode | undefined, cluster: ClusterSnapshot,
    node: SipNode | null, hop: NextHop | null): void {
    const head = msg.head;
    const callId = msg.callId;
    if (node !== null) {
      const transport = egressTransport(node, src.transport);
      hop = { side: 'internal', transport, host: node.ip, port: node.ports[transport] as number };
    }
    if (hop === null) return this.reject(msg, src, 503, 'no node available');
    // received/rport on the sender's Via (RFC 3261 §18.2.1, RFC 3581). Over streams they are
    // always set, so the response finds the connection the request came on.
    const stream = src.transport !== 'udp';
    const setRport = stream || topVia.rport === null;
    const setReceived = setRport || topVia.host !== src.ip;
    if (setReceived) {
      const raw = head.slice(viaRanges[0], viaRanges[1]);
      edit.replace(viaRanges[0], viaRanges[1], withReceived(raw, src.ip, setRport ? src.port : null));
      topVia.received = src.ip;
      if (setRport) topVia.rport = src.port;
    }

    const branch = makeBranch(loop, macPart(this.d.secret, viaKey(topVia), callId, msg.cseqNum));
    const egressSide = hop.side;
    const ingressSide: Side = egressSide === 'internal' ? 'external' : 'internal';
    edit.insertHeaderFirst(`Via: SIP/2.0/${hop.transport.toUpperCase()} ${this.d.addresses.side(egressSide).via};branch=${branch}`);

    if (DIALOG_CREATING.has(msg.method) && toTag === null) {
      const dialogNode = node !== null && egressSide === 'internal' ? node.id : fromCluster ? this.sourceNodeId(sender, src, topVia, cluster) : null;
      // Top entry faces the next hop, so its side's address is what that peer's route set starts
      // with. Two entries when the two sides differ in address or transport (RFC 3261 §16.6
      // step 4, double record-routing), so each peer reaches siplb the way it can.
      edit.insertHeaderFirst(this.recordRoute(egressSide, hop.transport, dialogNode));
      if (this.d.addresses.twoPorts || hop.transport !== src.transport) {
        edit.insertHeaderFirst(this.recordRoute(ingressSide, src.transport, dialogNode));
      }
    }
    if (mfIdx === -1) edit.insertHeaderFirst('Max-Forwards: 70');
    else edit.replace(msg.valueStarts[mfIdx], msg.lineEnds[mfIdx], ` ${maxForwards - 1}`);
    if (hop.transport !== 'udp' && msg.indexOf('content-length') === -1) edit.appendHeader(`Content-Length: ${msg.bodyEnd - msg.bodyStart}`);

    const calls = this.d.calls;
    if (msg.method === 'BYE') {
      this.d.algorithm.callEnded(callId);
      calls?.ended(callId);
    } else if (calls !== undefined) {
      // The call is on the node it goes to, or (sent by a node) on the node that sent it.
      const callNode = node !== null && hop.side === 'internal' ? node.id : sender?.id;
      if (callNode !== undefined) {
        if (msg.method === 'INVITE' && toTag === null) calls.started(callId, callNode);
        else calls.touch(callId, callNode);
      }
    }
    this.d.stats.requestsForwarded++;
    this.deliver(hop, edit.toBuffer());
  }

  /** Node for a request that goes into the cluster: dialog hint, a node named directly, the algorithm. */
  private nodeForRequest(msg: SipMessage, callId: string, toTag: string | null, hint: string | null, remaining: string[],
    cluster: ClusterSnapshot): PickResult {
    const req: PickRequest = { msg, callId, newCall: toTag === null && msg.method !== 'ACK' && msg.method !== 'CANCEL' };
    if (hint !== null) {
      const n = cluster.get(hint);
      if (n !== undefined && cluster.isAlive(n)) return n;
      // The dialog's node is gone: the algorithm says where its calls continue.
      if (n !== undefined || !req.newCall) return this.d.algorithm.repick(req, hint, cluster);
    }
    const named = remaining.length > 0 ? nameAddrUri(remaining[0]) : msg.requestUri;
    if (named !== null) {
      const u = sipUriHostPort(named);
      if (u !== null && !this.d.addresses.isOurs(u.host, u.port)) {
        const n = cluster.nodeAt(u.host, u.port ?? 5060);
        if (n !== undefined && cluster.isAlive(n)) return n;
      }
    }
    return this.d.algorithm.pick(req, cluster);
  }

  private isFromCluster(src: Inbound, cluster: ClusterSnapshot): boolean {
    // With two ports, only the internal port hears nodes; an unknown source there is still a
    // client (never relayed outwards). With one port, only a node's exact address counts.
    if (this.d.addresses.twoPorts) return src.side === 'internal' && cluster.isClusterIp(src.ip);
    return cluster.isClusterAddress(src.ip, src.port);
  }

  /** The sending node, or (two ports: sent from another port of its IP) the node its Via names. */
  private sourceNodeId(sender: SipNode | undefined, src: Inbound, topVia: Via, cluster: ClusterSnapshot): string | null {
    const n = sender ?? cluster.nodeAt(src.ip, topVia.port ?? 5060);
    return n === undefined ? null : n.id;
  }

  private recordRoute(side: Side, transport: Transport, nodeId: string | null): string {
    const t = transport === 'udp' ? '' : `;transport=${transport}`;
    const h = nodeId === null ? '' : `;${NODE_HINT_PARAM}=${nodeId}`;
    return `Record-Route: <sip:${this.d.addresses.side(side).recordRoute}${t};lr${h}>`;
  }

  /**
   * Remove the leading Route entries that name this balancer (RFC 3261 §16.4) and read the node
   * hint they carry. Returns the entries left, as text.
   */
  private popOwnRoutes(msg: SipMessage, edit: MessageEdit): { hint: string | null; remaining: string[] } {
    const remaining: string[] = [];
    let hint: string | null = null;
    let popping = true;
    const head = msg.head;
    for (let i = msg.indexOf('route'); i !== -1; i = msg.indexOf('route', i + 1)) {
      const r = splitCommaRanges(head, msg.valueStarts[i], msg.lineEnds[i]);
      let popped = 0;
      for (let k = 0; k < r.length; k += 2) {
        const text = unfold(head.slice(r[k], r[k + 1]));
        if (popping) {
          const uriText = nameAddrUri(text);
          const uri = uriText === null ? null : parseSipUri(uriText);
          if (uri !== null && this.d.addresses.isOurs(uri.host, uri.port)) {
            popped++;
            hint = uri.params.get(NODE_HINT_PARAM) ?? hint;
            continue;
          }
          popping = false;
        }
        remaining.push(text);
      }
      if (popped === 0) continue;
      if (popped * 2 === r.length) edit.removeHeader(i);
      else edit.replace(r[0], r[popped * 2], '');
    }
    return { hint, remaining };
  }

  private reject(msg: SipMessage, src: Inbound, status: number, detail: string | null, extra: readonly string[] = []): void {
    // Never answer an ACK (RFC 3261 §17.1.1.3); drop it.
    if (msg.method === 'ACK') {
      this.d.stats.countDrop(`ack-${status}`);
      return;
    }
    const reply = buildLocalReply(msg, status, detail, extra);
    if (reply === null) {
      this.d.stats.countDrop('unanswerable');
      return;
    }
    this.d.stats.countReply(status);
    if (this.debug) this.d.log.debug({ from: `${src.ip}:${src.port}`, status, detail }, 'request answered locally');
    // Straight back to where it came from: the sender is the one hop we know is listening.
    this.d.out.send(src.side, src.transport, src.ip, src.port, reply);
  }

  // --------------------------------------------------------------- responses

  private onResponse(msg: SipMessage, src: Inbound): void {
    if (msg.error !== null) return this.drop('malformed-response', src, msg.error);
    const head = msg.head;
    const viaIdx = msg.indexOf('via');
    const r = splitCommaRanges(head, msg.valueStarts[viaIdx], msg.lineEnds[viaIdx]);
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
        const r2 = splitCommaRanges(head, msg.valueStarts[j], msg.lineEnds[j]);
        if (r2.length > 0) nextText = head.slice(r2[0], r2[1]);
      }
    }
    if (nextText === null) return this.drop('stray-response', src, 'no Via below ours');
    const next = parseVia(unfold(nextText));
    if (next === null) return this.drop('malformed-response', src, 'malformed second Via');
    if (macPart(this.d.secret, viaKey(next), msg.callId, msg.cseqNum) !== macOf(top.branch)) {
      return this.drop('forged-response', src, 'branch does not match the Via below it');
    }
    const transport = next.transport === 'UDP' ? 'udp' : next.transport === 'TCP' ? 'tcp' : null;
    if (transport === null) return this.drop('unsupported-transport', src, next.transport);

    const cluster = this.d.cluster();
    if (this.d.passiveHealth !== undefined) {
      const sender = cluster.nodeAt(src.ip, src.port);
      if (sender !== undefined) this.d.passiveHealth.fromNode(sender.id, msg.status);
    }
    if (this.d.calls !== undefined && msg.status >= 200 && msg.cseqMethod === 'INVITE') {
      if (msg.status < 300) this.d.calls.confirmed(msg.callId);
      else this.d.calls.failed(msg.callId);
    }
    const edit = new MessageEdit(msg);
    if (r.length === 2) edit.removeHeader(viaIdx);
    else edit.replace(r[0], r[2], '');
    const target = responseTarget(next);
    // The response retraces the request: out of the side opposite to where it came in.
    const side: Side = this.d.addresses.twoPorts ? (src.side === 'internal' ? 'external' : 'internal') : src.side;
    const fallbackPort = transport === 'tcp' ? (next.port ?? defaultPort(next.transport)) : undefined;
    // A response to a request of a node that has died goes to the node its calls fail over to,
    // which (with replicated sessions) can take the transaction over.
    const toNode = cluster.nodeAt(target.host, target.port);
    if (toNode !== undefined && !cluster.isAlive(toNode)) {
      const heir = this.d.algorithm.repick({ msg, callId: msg.callId, newCall: false }, toNode.id, cluster);
      if (heir === null) return this.drop('no-live-node', src, `response for dead node ${toNode.id}`);
      const t = egressTransport(heir, transport);
      this.d.stats.responsesForwarded++;
      this.deliver({ side: 'internal', transport: t, host: heir.ip, port: heir.ports[t] as number }, edit.toBuffer());
      return;
    }
    this.d.stats.responsesForwarded++;
    this.deliver({ side, transport, host: target.host, port: target.port, fallbackPort }, edit.toBuffer());
  }

  private drop(reason: string, src: Inbound, detail: string): void {
    this.d.stats.countDrop(reason);
    if (this.debug) this.d.log.debug({ from: `${src.ip}:${src.port}`, reason, detail }, 'SIP message dropped');
  }

  private deliver(hop: NextHop, data: Buffer): void {
    const ip = this.d.resolver.resolve(hop.host);
    if (typeof ip === 'string') {
      this.d.out.send(hop.side, hop.transport, ip, hop.port, data, hop.fallbackPort);
      return;
    }
    ip.then((resolved) => {
      if (resolved === null) {
        this.d.stats.countDrop('unresolvable-next-hop');
        this.d.log.warn({ host: hop.host }, 'next hop does not resolve; message dropped');
      } else this.d.out.send(hop.side, hop.transport, resolved, hop.port, data, hop.fallbackPort);
    }, () => this.d.stats.countDrop('unresolvable-next-hop'));
  }
}

/** The Via value with received (and rport, when given) set, replacing any the sender put there. */
export function withReceived(via: string, ip: string, rport: number | null): string {
  let v = via.replace(/;\s*received\s*=\s*[^;,\s]*/gi, '');
  if (rport !== null) v = v.replace(/;\s*rport(\s*=\s*[^;,\s]*)?/gi, '');
  v = v.replace(/\s+$/, '');
  return `${v};received=${formatHost(ip).replace(/^\[|\]$/g, '')}${rport !== null ? `;rport=${rport}` : ''}`;
}
