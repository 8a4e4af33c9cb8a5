// The stateless forwarding rules (RFC 3261 §16, §16.11). One call per received message; every
// decision is made from the message, the cluster snapshot and the algorithm's affinity state.
// Nothing here throws on network input: a message is forwarded, answered locally, or dropped
// and counted, and onMessage contains whatever a bug might still throw.
//
// A request's way through this file: onMessage parses it; onRequest checks it (Via, Max-Forwards,
// Proxy-Require), builds its RequestContext, pops our Route entries and decides the direction;
// into the cluster the node comes from the dialog hint, a node named by Route or Request-URI, or
// the algorithm (intoCluster, maybe waiting for the shared store in awaitPick); out of it the
// next hop is the next Route entry or the Request-URI (outOfCluster); forward rewrites it (Via
// with the deterministic branch, Record-Route, Max-Forwards) and hands it to the router.

import type { Algorithm, PickResult } from '../algorithms/algorithm.ts';
import { rateLimit } from '../core/log.ts';
import { egressTransport, type SipNode } from '../cluster/node.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../sip/message.ts';
import { headerParam, nameAddrUri, parseSipUri, sipUriHostPort } from '../sip/uri.ts';
import type { Inbound, Side } from '../transport/types.ts';
import { BRANCH_PREFIX, loopPart, macPart, makeBranch, viaKey } from './branch.ts';
import { buildLocalReply } from './local-reply.ts';
import { RequestContext } from './request-context.ts';
import { ResponsePath, type PathDeps } from './response-path.ts';
import { NODE_HINT_PARAM, popOwnRoutes, recordRoute, withReceived } from './route-headers.ts';

export type ProxyDeps = PathDeps;

/** Methods whose initial request creates a dialog, so Record-Route is added (RFC 3261, 3265, 3515). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/** Bound on requests waiting for the shared store at once; beyond it they are dropped and counted. */
const MAX_PENDING_PICKS = 10_000;

export class SipProxy {
  private readonly d: ProxyDeps;
  private readonly algorithm: Algorithm;
  private readonly responses: ResponsePath;
  private readonly debug: boolean;
  private readonly internalErrorLogGate = rateLimit(10_000);
  /** Requests waiting for an algorithm's answer from the shared store. */
  private pendingPicks = 0;

  constructor(deps: ProxyDeps) {
    this.d = deps;
    this.algorithm = deps.algorithm;
    this.responses = new ResponsePath(deps);
    this.debug = deps.log.isLevelEnabled('debug');
  }

  /** Entry point for every message a transport receives. Never throws. */
  onMessage(data: Buffer, src: Inbound): void {
    try {
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
        this.responses.handle(msg, src);
      }
    } catch (err) {
      // Written not to throw on input; if it ever does, the message is lost, the process is not.
      this.internalError(err, src, data);
    }
  }

  // ---------------------------------------------------------------- requests

  private onRequest(msg: SipMessage, src: Inbound): void {
    if (msg.error !== null) return this.reject(msg, src, msg.errorStatus, msg.error);
    const ctx = RequestContext.of(msg, src, this.d.cluster());
    if (ctx === null) return this.reject(msg, src, 400, 'malformed Via');
    if (ctx.maxForwards === 0) return this.reject(msg, src, 483, null);
    if (msg.indexOf('proxy-require') !== -1) {
      // RFC 3261 §16.3 step 5: siplb supports no option tags a proxy could be required to.
      return this.reject(msg, src, 420, null, [`Unsupported: ${msg.getAll('proxy-require').join(', ')}`]);
    }
    const addresses = this.d.addresses;
    popOwnRoutes(ctx, addresses);
    const ruri = msg.requestUri;
    if (ctx.hint === null && ruri.includes(NODE_HINT_PARAM)) {
      // A strict router upstream put our Record-Route URI into the Request-URI (RFC 3261 §16.4).
      const u = parseSipUri(ruri);
      if (u !== null && addresses.isOurs(u.host, u.port)) ctx.hint = u.params.get(NODE_HINT_PARAM) ?? null;
    }
    const cluster = ctx.cluster;
    // With two ports, only the internal port hears nodes; an unknown source there is still a
    // client (never relayed outwards). With one port, only a node's exact address counts.
    ctx.fromCluster = addresses.twoPorts
      ? src.side === 'internal' && cluster.isClusterIp(src.ip)
      : cluster.isClusterAddress(src.ip, src.port);
    if (ctx.fromCluster) {
      ctx.sender = cluster.nodeAt(src.ip, src.port);
      if (ctx.sender !== undefined) this.d.passiveHealth?.fromNode(ctx.sender.id, 0);
    }
    // Direction is part of the request's identity here: a node that proxies a request back out
    // through the balancer, unchanged, is spiralling, not looping.
    const fromTag = headerParam(msg.from, 'tag') ?? '';
    ctx.loop = loopPart([ruri, fromTag, ctx.callId, ...ctx.routes], msg.cseqNum, ctx.fromCluster);
    if (msg.head.includes(BRANCH_PREFIX + ctx.loop)) return this.reject(msg, src, 482, null);
    if (!ctx.fromCluster) return this.intoCluster(ctx);
    this.outOfCluster(ctx);
  }

  /** A request from a node: towards the next Route entry, else the Request-URI (RFC 3261 §16.5, §16.12). */
  private outOfCluster(ctx: RequestContext): void {
    const { msg, src } = ctx;
    const targetText = ctx.routes.length > 0 ? nameAddrUri(ctx.routes[0]) : msg.requestUri;
    const target = targetText === null ? null : parseSipUri(targetText);
    if (target === null) {
      const otherScheme = targetText !== null && /^[a-z][a-z0-9+.-]*:/i.test(targetText) && !/^sips?:/i.test(targetText);
      return this.reject(msg, src, otherScheme ? 416 : 400, 'cannot route to this URI');
    }
    // A node addressed the balancer itself: balance it like a client request.
    if (this.d.addresses.isOurs(target.host, target.port)) return this.intoCluster(ctx);
    const node = ctx.cluster.nodeAt(target.host, target.port ?? 5060);
    if (node !== undefined) {
      ctx.node = node;
      return this.forward(ctx);
    }
    const t = (target.params.get('transport') ?? '').toLowerCase();
    if (t !== '' && t !== 'udp' && t !== 'tcp') return this.reject(msg, src, 503, `transport ${t} not available`);
    if (target.scheme === 'sips') return this.reject(msg, src, 503, 'sips not available');
    ctx.hop = { side: 'external', transport: t === 'tcp' ? 'tcp' : 'udp', host: target.params.get('maddr') ?? target.host, port: target.port ?? 5060 };
    this.forward(ctx);
  }

  /** A request for the cluster: its node is picked now, or once the shared store answers. */
  private intoCluster(ctx: RequestContext): void {
    const picked = this.nodeForRequest(ctx);
    if (picked instanceof Promise) return this.awaitPick(ctx, picked);
    ctx.node = picked;
    this.forward(ctx);
  }

  /**
   * The algorithm needs the shared store (a request of a call placed elsewhere): finish the request
   * when it answers. The store bounds the wait; the number of requests waiting is bounded here.
   */
  private awaitPick(ctx: RequestContext, picked: Promise<SipNode | null>): void {
    if (this.pendingPicks >= MAX_PENDING_PICKS) {
      this.d.stats.countDrop('pick-backlog');
      return;
    }
    this.pendingPicks++;
    picked.then((node) => {
      this.pendingPicks--;
      try {
        // The cluster may have changed while the store answered.
        ctx.cluster = this.d.cluster();
        ctx.node = node;
        this.forward(ctx);
      } catch (err) {
        this.internalError(err, ctx.src, null);
      }
    }, () => {
      this.pendingPicks--;
      this.d.stats.countDrop('pick-failed');
    });
  }

  /** Node for a request that goes into the cluster: dialog hint, a node named directly, the algorithm. */
  private nodeForRequest(ctx: RequestContext): PickResult {
    const cluster = ctx.cluster;
    if (ctx.hint !== null) {
      const n = cluster.get(ctx.hint);
      if (n !== undefined && cluster.isAlive(n)) return n;
      // The dialog's node is gone: the algorithm says where its calls continue.
      if (n !== undefined || !ctx.newCall) return this.algorithm.repick(ctx, ctx.hint, cluster);
    }
    const named = ctx.routes.length > 0 ? nameAddrUri(ctx.routes[0]) : ctx.msg.requestUri;
    if (named !== null) {
      const u = sipUriHostPort(named);
      if (u !== null && !this.d.addresses.isOurs(u.host, u.port)) {
        const n = cluster.nodeAt(u.host, u.port ?? 5060);
        if (n !== undefined && cluster.isAlive(n)) return n;
      }
    }
    return this.algorithm.pick(ctx, cluster);
  }

  /** Second half of the request path, once the next hop is known: rewrite and send. */
  private forward(ctx: RequestContext): void {
    const { msg, src, edit, topVia, node } = ctx;
    if (node !== null) {
      const transport = egressTransport(node, src.transport);
      ctx.hop = { side: 'internal', transport, host: node.ip, port: node.ports[transport] as number };
    }
    const hop = ctx.hop;
    if (hop === null) return this.reject(msg, src, 503, 'no node available');
    // received/rport on the sender's Via (RFC 3261 §18.2.1, RFC 3581). Over streams they are
    // always set, so the response finds the connection the request came on.
    const stream = src.transport !== 'udp';
    const setRport = stream || topVia.rport === null;
    const setReceived = setRport || topVia.host !== src.ip;
    if (setReceived) {
      const raw = msg.head.slice(ctx.topViaStart, ctx.topViaEnd);
      edit.replace(ctx.topViaStart, ctx.topViaEnd, withReceived(raw, src.ip, setRport ? src.port : null));
      topVia.received = src.ip;
      if (setRport) topVia.rport = src.port;
    }

    const addresses = this.d.addresses;
    const branch = makeBranch(ctx.loop, macPart(this.d.secret, viaKey(topVia), ctx.callId, msg.cseqNum));
    const egressSide = hop.side;
    edit.insertHeaderFirst(`Via: SIP/2.0/${hop.transport.toUpperCase()} ${addresses.via(egressSide, hop.transport)};branch=${branch}`);

    if (DIALOG_CREATING.has(msg.method) && ctx.toTag === null) {
      const dialogNode = node !== null && egressSide === 'internal' ? node.id : ctx.fromCluster ? this.sourceNodeId(ctx) : null;
      // Top entry faces the next hop, so its side's address is what that peer's route set starts
      // with. Two entries when the two sides differ in address or transport (RFC 3261 §16.6
      // step 4, double record-routing), so each peer reaches siplb the way it can.
      edit.insertHeaderFirst(recordRoute(addresses, egressSide, hop.transport, dialogNode));
      if (addresses.twoPorts || hop.transport !== src.transport) {
        const ingressSide: Side = egressSide === 'internal' ? 'external' : 'internal';
        edit.insertHeaderFirst(recordRoute(addresses, ingressSide, src.transport, dialogNode));
      }
    }
    if (ctx.maxForwardsIndex === -1) edit.insertHeaderFirst('Max-Forwards: 70');
    else edit.replace(msg.valueStarts[ctx.maxForwardsIndex], msg.lineEnds[ctx.maxForwardsIndex], ` ${ctx.maxForwards - 1}`);
    if (hop.transport !== 'udp' && msg.indexOf('content-length') === -1) edit.appendHeader(`Content-Length: ${msg.bodyEnd - msg.bodyStart}`);

    this.countCall(ctx);
    this.d.stats.requestsForwarded++;
    this.d.out.send(hop, edit.toBuffer());
  }

  /** Active-call accounting: the call is on the node it goes to, or (sent by a node) on the node that sent it. */
  private countCall(ctx: RequestContext): void {
    const method = ctx.msg.method;
    const calls = this.d.calls;
    if (method === 'BYE') {
      this.algorithm.callEnded(ctx.callId);
      calls?.ended(ctx.callId);
      return;
    }
    if (calls === undefined) return;
    const callNode = ctx.node !== null && ctx.hop?.side === 'internal' ? ctx.node.id : ctx.sender?.id;
    if (callNode === undefined) return;
    if (method === 'INVITE' && ctx.toTag === null) calls.started(ctx.callId, callNode);
    else calls.touch(ctx.callId, callNode);
  }

  /** The sending node, or (two ports: sent from another port of its IP) the node its Via names. */
  private sourceNodeId(ctx: RequestContext): string | null {
    const n = ctx.sender ?? ctx.cluster.nodeAt(ctx.src.ip, ctx.topVia.port ?? 5060);
    return n === undefined ? null : n.id;
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
    // Straight back to where it came from, on the connection it came on: the sender is the one
    // hop we know is listening.
    this.d.out.send({ side: src.side, transport: src.transport, host: src.ip, port: src.port, connectionId: src.connectionId }, reply);
  }

  private internalError(err: unknown, src: Inbound, data: Buffer | null): void {
    this.d.stats.countDrop('internal-error');
    if (this.internalErrorLogGate()) {
      const message = data === null ? undefined : data.toString('latin1', 0, Math.min(data.length, 2048));
      this.d.log.error({ err, from: `${src.ip}:${src.port}`, message, count: this.d.stats.dropped.get('internal-error') },
        'internal error while handling a SIP message (logged at most every 10 s)');
    }
  }
}
