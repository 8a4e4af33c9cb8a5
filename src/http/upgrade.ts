// WebSocket handshakes (`Upgrade: websocket`): the node is chosen by the same rules as a plain
// request (a JSESSIONID cookie keeps a web client's socket on its session's node), then the
// connection is handed to the tunnel (websocket-tunnel.ts), which forwards the handshake and
// pipes both ways. A handshake offering the `sip` subprotocol (RFC 7118, SIP over WebSocket)
// goes to the node's SIP WebSocket port when it advertises one, as Restcomm does; everything else
// to its HTTP port. A draining node keeps its tunnels: nothing here closes them when the node's
// state changes.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import { headerRecord, upstreamHeaders, type ClientSide } from './forward-headers.ts';
import { answerOnSocket, RETRY_AFTER_S, unavailableLocation } from './local-answer.ts';
import type { HttpNodeChooser, RoutedRequest } from './node-choice.ts';
import type { HttpStats } from './stats.ts';
import { tunnel, type TunnelTarget } from './websocket-tunnel.ts';

export interface UpgradeContext {
  readonly chooser: HttpNodeChooser;
  readonly stats: HttpStats;
  readonly unavailableHost: string | null;
  readonly idleTimeoutMs: number;
  readonly log: Logger;
  cluster(): ClusterSnapshot;
  /** Client sockets handed to tunnels, so shutdown can close them. */
  readonly tunnelled: Set<Duplex>;
}

/** The handshake as the chooser reads it. */
class Handshake implements RoutedRequest {
  readonly method: string;
  readonly url: string;
  readonly cookie: string | undefined;
  readonly remoteAddress: string;
  sticky = false;
  private readonly req: IncomingMessage;

  constructor(req: IncomingMessage, ip: string) {
    this.req = req;
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    this.cookie = req.headers.cookie;
    this.remoteAddress = ip;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }
}

/** Node's server calls this only for `Upgrade: websocket` (shouldUpgradeCallback). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return u !== undefined && u.toLowerCase() === 'websocket';
}

/** The handshake offers the `sip` subprotocol. */
export function offersSip(protocols: string | undefined): boolean {
  if (protocols === undefined) return false;
  for (const p of protocols.split(',')) if (p.trim().toLowerCase() === 'sip') return true;
  return false;
}

/** Where a handshake to `node` goes: its SIP WebSocket port for `sip`, else its HTTP port. */
export function tunnelTarget(node: SipNode, req: IncomingMessage): TunnelTarget {
  const http = node.http;
  if (http === undefined) throw new Error(`node ${node.id} has no HTTP side`);
  const ws = http.wsPort;
  const port = ws !== undefined && offersSip(req.headers['sec-websocket-protocol']) ? ws : http.port;
  return { host: node.ip, port };
}

function forgetSocket(this: Duplex & { [kSet]?: Set<Duplex> }): void {
  this[kSet]?.delete(this);
}
const kSet = Symbol('siplb.http.tunnelled');

/**
 * One WebSocket handshake from a client. Never throws for what the client sent; a choice that has
 * to wait for the shared store continues when it is made (and its failures become a 500).
 */
export function upgrade(ctx: UpgradeContext, req: IncomingMessage, socket: Duplex, head: Buffer, client: ClientSide): void {
  const handshake = new Handshake(req, client.ip);
  const node = ctx.chooser.choose(handshake, ctx.cluster());
  if (!(node instanceof Promise)) return forward(ctx, req, socket, head, client, handshake, node);
  const failed = (err: unknown): void => {
    ctx.stats.local.internalErrors++;
    ctx.log.error({ err, url: req.url }, 'internal error in the WebSocket handshake');
    answerOnSocket(socket, 500);
  };
  void node.then((n) => {
    if (socket.destroyed) return;
    try {
      forward(ctx, req, socket, head, client, handshake, n);
    } catch (err) {
      failed(err);
    }
  }, failed);
}

function forward(ctx: UpgradeContext, req: IncomingMessage, socket: Duplex, head: Buffer, client: ClientSide, handshake: Handshake, node: SipNode | null): void {
  if (node === null) {
    ctx.stats.local.unavailable++;
    if (ctx.unavailableHost === null) answerOnSocket(socket, 503, { 'Retry-After': String(RETRY_AFTER_S) });
    else answerOnSocket(socket, 302, { Location: unavailableLocation(ctx.unavailableHost, client.proto, handshake.url) });
    return;
  }
  const counters = ctx.stats.node(node.id);
  counters.requests++;
  const target = tunnelTarget(node, req);
  const headers = headerRecord(upstreamHeaders(req.rawHeaders, client, true));
  (socket as Duplex & { [kSet]?: Set<Duplex> })[kSet] = ctx.tunnelled;
  ctx.tunnelled.add(socket);
  socket.once('close', forgetSocket);
  let open = false;
  tunnel(req, socket, head, target, {
    idleTimeoutMs: ctx.idleTimeoutMs,
    headers,
    log: ctx.log,
    onOpen() {
      open = true;
      counters.tunnels++;
      counters.tunnelsOpened++;
    },
    onClose() {
      if (!open) return;
      open = false;
      counters.tunnels--;
    },
  });
}
