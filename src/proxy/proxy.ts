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
//
// The Restcomm switches (policy.ts) act at four points: blockedValues before anything else (and
// right after it siplb's per-source limit of new requests, source-rate-limit.ts),
// matchingHostnameForRoute and the public addresses wherever a Route or Request-URI is asked
// whether it names us (OwnTargets), isSendTrying and publicIp in forward, the 5xx settings in
// unavailable().

import type { Algorithm, PickResult } from '../algorithms/algorithm.ts';
import { rateLimit } from '../core/log.ts';
import { egressTransport, type SipNode } from '../cluster/node.ts';
import type { Transport } from '../config/types.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../sip/message.ts';
import { headerParam, nameAddrUri, parseSipUri, sipUriHostPort } from '../sip/uri.ts';
import type { Inbound, Side } from '../transport/types.ts';
import { BRANCH_PREFIX, loopPart, macPart, makeBranch, viaKey } from './branch.ts';
import { buildLocalReply, buildTrying, isAckToLocalReply, type TopViaAsForwarded } from './local-reply.ts';
import { OwnTargets, PublicRecordRoutes, type ProxyPolicy } from './policy.ts';
import { RequestContext } from './request-context.ts';
import { UnansweredInvites } from './unanswered-invites.ts';
import { ResponsePath, type PathDeps } from './response-path.ts';
import { NODE_HINT_PARAM, needsReceived, popOwnRoutes, recordRoute, rportFor, transportParam, withReceived } from './route-headers.ts';
import { FlowTokens } from './flow-token.ts';
import type { Family } from './local-addresses.ts';
import { NodePins } from './node-pins.ts';
import { SourceRateLimit, type SourceLimitSettings } from './source-rate-limit.ts';
import { OverloadControl } from './overload.ts';

export type ProxyDeps = PathDeps;

/** Methods whose initial request creates a dialog, so Record-Route is added (RFC 3261, 3265, 3515). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/** RFC 3261 §18.1.1: beyond this many bytes a request does not go over UDP when TCP can carry it. */
const UDP_SIZE_LIMIT = 1300;
/** Roughly what forward() adds to a request: a Via and up to two Record-Route lines. */
const ADDED_BYTES_ESTIMATE = 200;

/** An `oc` parameter (RFC 7339) in a Via element, with or without a value; not oc-algo and the like. */
const OC_OFFERED = /;\s*oc\s*(;|=|$)/i;

/** What siplb's own answer to an OPTIONS for itself says it handles (RFC 3261 §11.2). */
const OPTIONS_ANSWER_HEADERS = ['Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, PRACK, UPDATE, PUBLISH', 'Accept: application/sdp'];

/** Bound on requests waiting for the shared store at once; beyond it they are dropped and counted. */
const MAX_PENDING_PICKS = 10_000;

export class SipProxy {
  private readonly d: ProxyDeps;
  private readonly algorithm: Algorithm;
  private readonly responses: ResponsePath;
  private readonly debug: boolean;
  private readonly internalErrorLogGate = rateLimit(10_000);
  // The policy and what is built from it are replaced whole by setPolicy (a reload); the data
  // path reads them as fields, as before, so a message costs the same.
  private policy: ProxyPolicy;
  /** What names us in a Route entry or Request-URI (LocalAddresses plus the policy's names). */
  private ours: OwnTargets;
  /** Public Record-Route addresses for clients behind NAT; null (one check per INVITE) when publicIp(v6) is unset. */
  private publicRecordRoutes: PublicRecordRoutes | null;
  /** Requests waiting for an algorithm's answer from the shared store. */
  private pendingPicks = 0;
  /** With isSendTrying: INVITEs forwarded and not yet answered, to place again if their node dies. */
  private readonly invites: UnansweredInvites | null;
  /** Flow tokens for the Record-Route and Path entries facing clients on stream connections. */
  private readonly flows: FlowTokens;
  /** Messages seen, for sampling the handling time. */
  private sampled = 0;
  /** A graceful stop is under way: no new calls from clients. */
  private stopping = false;
  /** OPTIONS to the balancer get 503 (a stop announced to an IP sprayer, or under way). */
  private stopAnnounced = false;
  /** Restcomm's /lbnoderegex pins, consulted for new calls before the algorithm. */
  readonly pins: NodePins;
  /** pikeRequests: new requests per source address; null when off (one null check per request). */
  private sources: SourceRateLimit | null = null;
  /** overloadControl: sheds new calls while the balancer falls behind; null when off. */
  private overload: OverloadControl | null = null;

  constructor(deps: ProxyDeps) {
    this.d = deps;
    this.algorithm = deps.algorithm;
    this.invites = deps.policy.sendTrying ? new UnansweredInvites() : null;
    this.responses = new ResponsePath(deps, this.invites);
    this.debug = deps.log.isLevelEnabled('debug');
    this.policy = deps.policy;
    this.publicRecordRoutes = PublicRecordRoutes.of(deps.policy, deps.addresses);
    this.ours = new OwnTargets(deps.addresses, deps.policy, this.publicRecordRoutes);
    this.flows = new FlowTokens(deps.secret);
    this.pins = new NodePins(deps.affinityKey ?? 'Call-ID');
    this.setSourceLimit(deps.policy.sourceLimit);
    this.setOverloadControl(deps.policy.overloadControl);
  }

  /**
   * A new policy (a reload: blockedValues, the 5xx reply, routing rules...), for the messages
   * handled from now on. sendTrying stays as it was: whether INVITEs are tracked until answered
   * and 100s absorbed was decided at start (the response path holds it too), and a reload refuses
   * to change isSendTrying.
   */
  setPolicy(policy: ProxyPolicy): void {
    const p = policy.sendTrying === this.policy.sendTrying ? policy : { ...policy, sendTrying: this.policy.sendTrying };
    const publicRecordRoutes = PublicRecordRoutes.of(p, this.d.addresses);
    this.ours = new OwnTargets(this.d.addresses, p, publicRecordRoutes);
    this.publicRecordRoutes = publicRecordRoutes;
    this.policy = p;
    this.setSourceLimit(p.sourceLimit);
    this.setOverloadControl(p.overloadControl);
  }

  /** A reload keeps the table, so an address blocked before it stays blocked. */
  private setSourceLimit(settings: SourceLimitSettings | null): void {
    if (settings === null) {
      this.sources?.close();
      this.sources = null;
    } else if (this.sources === null) this.sources = new SourceRateLimit(settings, { stats: this.d.stats, log: this.d.log });
    else this.sources.reconfigure(settings);
  }

  /** overloadControl on or off (a reload); on keeps the running controller and its state. */
  private setOverloadControl(on: boolean): void {
    if (!on) {
      this.overload?.close();
      this.overload = null;
    } else this.overload ??= new OverloadControl(this.d.log, () => this.pendingPicks, this.d.stats.overload, true, this.d.receiveBacklog);
  }

  /** The overload controller, for metrics and the admin API; null when overloadControl is off. */
  get overloadControl(): OverloadControl | null {
    return this.overload;
  }

  /** Stops what runs on its own (the overload controller's sampler, the per-source limit's unblock timer). */
  close(): void {
    this.overload?.close();
    this.sources?.close();
  }

  /**
   * Graceful stop: from now on a client's request that would start something new (an initial
   * INVITE, an OPTIONS to the balancer, a REGISTER) gets 503, so clients and an IP sprayer probing
   * with OPTIONS go elsewhere; requests of existing dialogs and all responses still pass.
   */
  setStopping(stopping: boolean): void {
    this.stopping = stopping;
    if (stopping) this.stopAnnounced = true;
  }

  /**
   * First phase of a graceful stop behind an IP sprayer: an OPTIONS to the balancer gets 503, so
   * the sprayer's advisor takes this balancer out, while new calls that still arrive meanwhile are
   * forwarded as usual rather than refused.
   */
  announceStop(): void {
    this.stopAnnounced = true;
  }

  /** Entry point for every message a transport receives. Never throws. */
  onMessage(data: Buffer, src: Inbound): void {
    try {
      // A datagram and a WebSocket message are each one whole message: Content-Length may be
      // absent (RFC 3261 §18.3, RFC 7118 §5.1); a stream's framer has already required it.
      const t = src.transport;
      const msg = parseSipMessage(data, t === 'udp' || t === 'ws' || t === 'wss');
      if (isParseFailure(msg)) {
        this.d.stats.unparseable++;
        if (this.debug) this.d.log.debug({ from: `${src.ip}:${src.port}`, reason: msg.failure }, 'unparseable SIP message dropped');
        return;
      }
      const stats = this.d.stats;
      // One message in 64 is timed, when metrics listen: two clock reads and a histogram update
      // are not free, and a few thousand samples a minute describe the distribution well enough.
      const timed = stats.observeHandling !== null && (++this.sampled & 63) === 0;
      const started = timed ? performance.now() : 0;
      if (msg.isRequest) {
        stats.requestsIn++;
        stats.countRequest(t, msg.method);
        this.onRequest(msg, src);
      } else {
        stats.responsesIn++;
        stats.countResponse(t, msg.status);
        this.responses.handle(msg, src);
      }
      if (timed) stats.observeHandling?.((performance.now() - started) / 1000);
    } catch (err) {
      // Written not to throw on input; if it ever does, the message is lost, the process is not.
      this.internalError(err, src, data);
    }
  }

  // ---------------------------------------------------------------- requests

  private onRequest(msg: SipMessage, src: Inbound): void {
    const cluster = this.d.cluster();
    const addresses = this.d.addresses;
    // With two ports, only the internal port hears nodes; an unknown source there is still a
    // client (never relayed outwards). With one port, only a node's exact address counts.
    const fromCluster = addresses.twoPorts
      ? src.side === 'internal' && cluster.isClusterIp(src.ip)
      : cluster.isClusterAddress(src.ip, src.port);
    // First of all, before any answer (a 400 included): what scanners probe for is whether
    // anything answers. Restcomm replies 500 to them; siplb drops, so a scan of the address
    // space learns nothing, not even that a SIP server listens here.
    if (!fromCluster && this.policy.blocked !== null && this.isBlocked(msg, this.policy.blocked)) {
      this.d.stats.countDrop('blocked');
      return;
    }
    // Before anything that costs (a 400, the context, a pick): the point of the limit is that a
    // flood from one address buys almost nothing, and silence tells it nothing either. Nodes'
    // addresses, whatever port or side, are never limited: they carry everyone's traffic.
    const sources = this.sources;
    if (sources !== null && msg.method !== 'ACK' && msg.method !== 'CANCEL' && !cluster.isClusterIp(src.ip)
      && msg.toTag === null && sources.drops(src.ip, Date.now())) {
      this.d.stats.countDrop('rate-limited');
      return;
    }
    // The ACK for a final response made here (a 503 for overload first of all) stops here too:
    // cheaply, before the context, since under overload there is one for every refused call.
    if (msg.method === 'ACK' && !fromCluster && isAckToLocalReply(msg.toTag, msg.callId, msg.get('cseq'))) {
      this.d.stats.countDrop('ack-to-local-reply');
      return;
    }
    // Overload: a share of the new calls from clients is refused here, before the context and the
    // pick, so that the calls already taken keep their pace (overload.ts).
    const overload = this.overload;
    // Requests from the nodes are exempt by exact address (fromCluster), not by IP: clients on a
    // node's host (a test bed, a co-located softswitch) are clients like any other.
    if (overload !== null && overload.state !== 'normal' && msg.method !== 'ACK' && msg.method !== 'CANCEL'
      && !fromCluster && msg.toTag === null && msg.error === null) {
      const verdict = overload.verdict(msg.callId, src.transport !== 'udp');
      if (verdict === 'drop') {
        this.d.stats.countDrop('overload');
        return;
      }
      if (verdict === 'reject') {
        // RFC 7339: a client that offers `oc` in its Via learns the reduction, not only this 503.
        const oc = OC_OFFERED.test((msg.get('via') ?? '').split(',')[0]) ? overload.viaParams() : '';
        return this.reject(msg, src, 503, 'overloaded', [`Retry-After: ${overload.retryAfter()}`], oc);
      }
    }
    if (msg.error !== null) return this.reject(msg, src, msg.errorStatus, msg.error);
    const ctx = RequestContext.of(msg, src, cluster);
    if (ctx === null) return this.reject(msg, src, 400, 'malformed Via');
    if (ctx.maxForwards === 0) return this.reject(msg, src, 483, null);
    if (msg.indexOf('proxy-require') !== -1) {
      // RFC 3261 §16.3 step 5: siplb supports no option tags a proxy could be required to.
      return this.reject(msg, src, 420, null, [`Unsupported: ${msg.getAll('proxy-require').join(', ')}`]);
    }
    popOwnRoutes(ctx, this.ours);
    const ruri = msg.requestUri;
    if (ctx.hint === null && ruri.includes(NODE_HINT_PARAM)) {
      // A strict router upstream put our Record-Route URI into the Request-URI (RFC 3261 §16.4).
      const u = parseSipUri(ruri);
      if (u !== null && this.ours.isOurs(u.host, u.port)) ctx.hint = u.params.get(NODE_HINT_PARAM) ?? null;
    }
    ctx.fromCluster = fromCluster;
    if (fromCluster) {
      ctx.sender = cluster.nodeAt(src.ip, src.port);
      if (ctx.sender !== undefined) {
        this.d.stats.countReceivedFrom(ctx.sender.id);
        this.d.passiveHealth?.fromNode(ctx.sender.id, 0);
      }
    }
    if (this.stopping && !fromCluster && ctx.newCall) return this.reject(msg, src, 503, 'balancer stopping');
    // An OPTIONS for the balancer itself (no user part, no Route left): an IP sprayer's advisor,
    // a peer's keep-alive or a monitoring probe asks whether this balancer can take calls. It is
    // answered here, at once: 200 with a node to send calls to, 503 without one.
    if (msg.method === 'OPTIONS' && ctx.routes.length === 0 && ctx.toTag === null && this.namesUs(ruri)) {
      if (this.stopAnnounced) return this.reject(msg, src, 503, 'balancer stopping');
      if (cluster.selectable.length === 0) return this.reject(msg, src, 503, 'no node available');
      return this.reject(msg, src, 200, null, OPTIONS_ANSWER_HEADERS);
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
    if (ctx.flowToken !== null) return this.alongFlow(ctx, ctx.flowToken);
    const targetText = ctx.routes.length > 0 ? nameAddrUri(ctx.routes[0]) : msg.requestUri;
    const target = targetText === null ? null : parseSipUri(targetText);
    if (target === null) {
      const otherScheme = targetText !== null && /^[a-z][a-z0-9+.-]*:/i.test(targetText) && !/^sips?:/i.test(targetText);
      return this.reject(msg, src, otherScheme ? 416 : 400, 'cannot route to this URI');
    }
    // A node addressed the balancer itself: balance it like a client request.
    if (this.ours.isOurs(target.host, target.port)) return this.intoCluster(ctx);
    const node = ctx.cluster.nodeAt(target.host, target.port ?? 5060);
    if (node !== undefined) {
      ctx.node = node;
      return this.forward(ctx);
    }
    const t = (target.params.get('transport') ?? '').toLowerCase();
    const transport = uriTransport(target.scheme === 'sips', t);
    if (transport === null) return this.unavailable(msg, src, `transport ${t} not available`);
    if (!this.d.addresses.listens('external', transport)) return this.unavailable(msg, src, `no ${transport} listener towards clients`);
    const host = target.params.get('maddr') ?? target.host;
    // RFC 7118 §5.2 / RFC 5626: such a host names no place; only the client's flow reaches it.
    if (host.endsWith('.invalid')) return this.reject(msg, src, 480, 'reachable only through its flow: no flow token in Route');
    ctx.hop = { side: 'external', transport, host, port: target.port ?? (transport === 'tls' || transport === 'wss' ? 5061 : 5060) };
    this.forward(ctx);
  }

  /**
   * A node's request whose Route carried our entry with a flow token: it goes out on the client's
   * connection that token names (RFC 5626 §5.3), or is answered 430 when that connection is gone
   * and 403 when the token is not one of ours.
   */
  private alongFlow(ctx: RequestContext, token: string): void {
    const { msg, src } = ctx;
    const check = this.flows.check(token);
    if (check.kind === 'forged') {
      this.d.stats.countDrop('forged-flow-token');
      return this.reject(msg, src, 403, 'flow token does not verify');
    }
    const conn = check.kind === 'here' ? this.d.connections?.get(check.connectionId) : undefined;
    if (conn === undefined) {
      this.d.stats.countDrop('flow-failed');
      return this.reject(msg, src, 430, null);
    }
    ctx.hop = { side: conn.side, transport: conn.transport, host: conn.ip, port: conn.port, connectionId: conn.id };
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
      if (u !== null && !this.ours.isOurs(u.host, u.port)) {
        const n = cluster.nodeAt(u.host, u.port ?? 5060);
        if (n !== undefined && cluster.isAlive(n)) return n;
      }
    }
    if (this.pins.size > 0 && ctx.newCall) {
      const pinned = this.pins.match(ctx.msg);
      const n = pinned === null ? undefined : cluster.get(pinned);
      if (n !== undefined && cluster.isAlive(n)) return n;
    }
    return this.algorithm.pick(ctx, cluster);
  }

  /** Second half of the request path, once the next hop is known: rewrite and send. */
  private forward(ctx: RequestContext): void {
    const { msg, src, edit, topVia, node } = ctx;
    if (node !== null) {
      // A sips: request goes on over TLS or WSS only (RFC 3261 §26.2.2), unless TLS is meant to end here.
      const secure = !this.policy.terminateTls && isSips(msg.requestUri);
      let transport = egressTransport(node, src.transport, this.d.addresses.towardsNodes, secure);
      if (transport === null) return this.unavailable(msg, src, secure ? 'sips: needs TLS or WSS to the node' : 'no transport in common with the node');
      // RFC 3261 §18.1.1: a request larger than 1300 bytes (the path MTU being unknown) goes over
      // a congestion-controlled transport. What siplb adds (Via, Record-Route) is counted in.
      if (transport === 'udp' && msg.buf.length + ADDED_BYTES_ESTIMATE > UDP_SIZE_LIMIT && node.ports.tcp !== undefined && this.d.addresses.towardsNodes.tcp) {
        transport = 'tcp';
      }
      ctx.hop = { side: 'internal', transport, host: node.ip, port: node.ports[transport] as number };
    }
    const hop = ctx.hop;
    if (hop === null) return this.unavailable(msg, src, 'no node available');
    // received/rport on the sender's Via (RFC 3261 §18.2.1, RFC 3581). Over streams they are
    // always set, so the response finds the connection the request came on.
    const senderRport = rportFor(topVia, src.port, src.transport !== 'udp');
    let viaAsForwarded: string | null = null;
    if (needsReceived(topVia, src.ip, senderRport)) {
      viaAsForwarded = withReceived(msg.head.slice(ctx.topViaStart, ctx.topViaEnd), src.ip, senderRport);
      edit.replace(ctx.topViaStart, ctx.topViaEnd, viaAsForwarded);
      topVia.received = src.ip;
      if (senderRport !== null) topVia.rport = senderRport;
    }

    const addresses = this.d.addresses;
    const branch = makeBranch(ctx.loop, macPart(this.d.secret, viaKey(topVia), ctx.callId, msg.cseqNum));
    const egressSide = hop.side;
    // IPv6 literals, and only they, contain ':'; a peer is given our address in its own family.
    const egressFamily: Family = hop.host.includes(':') ? 6 : 4;
    const ingressFamily: Family = src.ip.includes(':') ? 6 : 4;
    // With workers, a node answering to the source port reaches the worker that sent (policy.ts viaRport).
    const rport = node !== null && hop.transport === 'udp' && this.policy.viaRport ? ';rport' : '';
    edit.insertHeaderFirst(`Via: SIP/2.0/${hop.transport.toUpperCase()} ${addresses.via(egressSide, hop.transport, egressFamily)};branch=${branch}${rport}`);

    if (DIALOG_CREATING.has(msg.method) && ctx.toTag === null) {
      const dialogNode = node !== null && egressSide === 'internal' ? node.id : ctx.fromCluster ? this.sourceNodeId(ctx) : null;
      // A client behind NAT (publicIp) must be given the public address in the entry that faces
      // it, and only there: the node keeps reaching the balancer on its real address.
      const publicHostPort = this.publicRecordRoutes === null ? null : this.publicRecordRouteFor(ctx, this.publicRecordRoutes);
      const publicEgress = publicHostPort !== null && ctx.fromCluster;
      // The client's stream connection, which the entry facing it names with a flow token: the
      // one the request came on, or (a node's request) the one it goes out on.
      const clientConnection = ctx.fromCluster ? (hop.connectionId ?? 0) : src.connectionId;
      const token = clientConnection === 0 ? null : this.flows.make(clientConnection);
      // Top entry faces the next hop, so its side's address is what that peer's route set starts
      // with. Two entries when the two sides differ in address, transport or address family
      // (RFC 3261 §16.6 step 4, double record-routing), so each peer reaches siplb the way it
      // can; a public address for the client is such a difference even with one port.
      const twoEntries = addresses.twoPorts || hop.transport !== src.transport || (egressFamily !== ingressFamily && addresses.dualStack) || publicHostPort !== null;
      edit.insertHeaderFirst(recordRoute(addresses, egressSide, hop.transport, egressFamily, {
        nodeId: dialogNode, hostPort: publicEgress ? publicHostPort : null, flowToken: ctx.fromCluster || !twoEntries ? token : null,
      }));
      if (twoEntries) {
        const ingressSide: Side = egressSide === 'internal' ? 'external' : 'internal';
        edit.insertHeaderFirst(recordRoute(addresses, ingressSide, src.transport, ingressFamily, {
          nodeId: dialogNode, hostPort: publicEgress ? null : publicHostPort, flowToken: ctx.fromCluster ? null : token,
        }));
      }
    } else if (msg.method === 'REGISTER' && !ctx.fromCluster && src.connectionId !== 0 && egressSide === 'internal' && supportsPath(msg)) {
      // RFC 3327: the registrar keeps this Path with the binding and routes requests for the
      // client through it, so an INVITE for a WebSocket or NATed client finds its connection.
      edit.insertHeaderFirst(`Path: <sip:${this.flows.make(src.connectionId)}@${addresses.recordRoute('internal', hop.transport, egressFamily)}${transportParam(hop.transport)};lr>`);
    }
    if (ctx.maxForwardsIndex === -1) edit.insertHeaderFirst('Max-Forwards: 70');
    else edit.replace(msg.valueStarts[ctx.maxForwardsIndex], msg.lineEnds[ctx.maxForwardsIndex], ` ${ctx.maxForwards - 1}`);
    if (hop.transport !== 'udp' && msg.indexOf('content-length') === -1) edit.appendHeader(`Content-Length: ${msg.bodyEnd - msg.bodyStart}`);

    if (node !== null && hop.side === 'internal') {
      this.d.stats.countSentTo(node.id);
      if (msg.method !== 'ACK') this.d.passiveHealth?.requestSent?.(node.id);
    }
    this.countCall(ctx);
    if (msg.method === 'INVITE' && this.policy.sendTrying) {
      this.sendTrying(msg, src, viaAsForwarded === null ? null : { start: ctx.topViaStart, end: ctx.topViaEnd, value: viaAsForwarded });
      if (node !== null && hop.side === 'internal') this.invites?.forwarded(branch, node.id, msg.buf, src, Date.now());
    }
    this.d.stats.requestsForwarded++;
    this.d.out.send(hop, edit.toBuffer());
  }

  /**
   * Node `nodeId` went down, or was taken out for leaving requests unanswered: the INVITEs it was
   * given and never answered, whose clients siplb's 100 Trying keeps from retransmitting, are
   * received again, so the algorithm places them as it would the client's retransmission.
   * Returns how many. Never throws.
   */
  replaceUnansweredInvites(nodeId: string): number {
    if (this.invites === null) return 0;
    const invites = this.invites.takeFor(nodeId, Date.now());
    if (invites.length === 0) return 0;
    // On the next turn: the news of the node can come from inside forward() (passive health
    // counting a request), which must finish its own message first.
    setImmediate(() => {
      for (const invite of invites) {
        this.d.stats.invitesReplaced++;
        this.onMessage(invite.data, invite.src);
      }
    });
    return invites.length;
  }

  /**
   * isSendTrying (Restcomm's default): the 100 goes back at once, before the INVITE is forwarded,
   * so a UDP client stops retransmitting now rather than when a busy node's 100 comes back. A
   * stateless proxy should not generate provisional responses (RFC 3261 §16.11); siplb does it
   * because Restcomm does and operators rely on it, and it is safe because the 100 carries no
   * To tag and the response path drops the next hop's 100. INVITE only: RFC 4320 forbids an
   * immediate 100 to a non-INVITE over UDP (it stretches the client's timers to their maximum);
   * Restcomm also sends one for SUBSCRIBE, NOTIFY, MESSAGE, REFER, PUBLISH and UPDATE, siplb
   * deliberately does not. Any INVITE, whichever way it goes: a node's INVITE to a client is
   * answered to the node the same way.
   */
  private sendTrying(msg: SipMessage, src: Inbound, topVia: TopViaAsForwarded | null): void {
    this.d.stats.countReply(100);
    this.d.out.send({ side: src.side, transport: src.transport, host: src.ip, port: src.port, connectionId: src.connectionId }, buildTrying(msg, topVia));
  }

  /**
   * The client of an initial request (its source coming in, its destination going out) and the
   * public host:port to record-route it with, or null: no client (node to node), or the routing
   * rules keep this client on our real address. A next hop named by host name matches only the
   * 'default' rule; rules are about addresses.
   */
  private publicRecordRouteFor(ctx: RequestContext, publicRecordRoutes: PublicRecordRoutes): string | null {
    if (!ctx.fromCluster) return publicRecordRoutes.forClient(ctx.src.ip, ctx.src.transport);
    const hop = ctx.hop;
    if (hop === null || hop.side !== 'external') return null;
    return publicRecordRoutes.forClient(hop.host, hop.transport);
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
    if (method === 'INVITE' && ctx.toTag === null) this.d.stats.callsStarted++;
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

  /**
   * A request siplb cannot forward (no node, a transport it does not speak): 503, or with
   * isSend5xxResponse the configured 5xx and an RFC 3326 Reason header.
   */
  private unavailable(msg: SipMessage, src: Inbound, detail: string): void {
    this.reject(msg, src, this.policy.unavailableStatus, detail, this.policy.unavailableHeaders);
  }

  /** A Request-URI without a user part that names this balancer (its own address or the VIP's). */
  private namesUs(ruri: string): boolean {
    const u = parseSipUri(ruri);
    return u !== null && u.user === '' && this.ours.isOurs(u.host, u.port);
  }

  /** User-Agent, From or To contains a blockedValues entry (any case). */
  private isBlocked(msg: SipMessage, blocked: RegExp): boolean {
    // A valid request has exactly one From and one To, already read by the parser; an invalid
    // one (about to get a 400) may lack them or repeat them, so its header lines are read.
    const valid = msg.error === null;
    if (valid && (blocked.test(msg.from) || blocked.test(msg.to))) return true;
    const names = msg.names;
    const head = msg.head;
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      if ((n === 'user-agent' || (!valid && (n === 'from' || n === 'to'))) && blocked.test(head.slice(msg.valueStarts[i], msg.lineEnds[i]))) return true;
    }
    return false;
  }

  private reject(msg: SipMessage, src: Inbound, status: number, detail: string | null, extra: readonly string[] = [], topViaParams = ''): void {
    // Never answer an ACK (RFC 3261 §17.1.1.3); drop it.
    if (msg.method === 'ACK') {
      this.d.stats.countDrop(`ack-${status}`);
      return;
    }
    const reply = buildLocalReply(msg, status, detail, extra, topViaParams, src);
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

/** The Request-URI is a sips: URI. */
function isSips(uri: string): boolean {
  return uri.length > 5 && (uri.charCodeAt(4) === 58 /* : */) && uri.slice(0, 4).toLowerCase() === 'sips';
}

/** The transport a URI asks for (RFC 3263 §4.1 without DNS: the parameter, else UDP, or TLS for sips:), or null: none siplb speaks. */
function uriTransport(sips: boolean, param: string): Transport | null {
  if (sips) return param === 'ws' || param === 'wss' ? 'wss' : param === '' || param === 'tcp' || param === 'tls' ? 'tls' : null;
  switch (param) {
    case '': return 'udp';
    case 'udp': case 'tcp': case 'tls': case 'ws': case 'wss': return param;
    default: return null;
  }
}

/** The request says the UA supports Path (RFC 3327 §5.1: otherwise a proxy adds none). */
function supportsPath(msg: SipMessage): boolean {
  for (const v of msg.getAll('supported')) if (/(^|[\s,])path($|[\s,])/i.test(v)) return true;
  return false;
}
