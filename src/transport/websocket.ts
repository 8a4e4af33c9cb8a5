// SIP over WebSocket (RFC 7118), WS and WSS, for one side. A browser opens the connection (an HTTP
// upgrade offering the `sip` subprotocol) and every SIP message then travels as one WebSocket
// message; the connection is the only way back to the client, whose Via and Contact name
// nothing reachable (`*.invalid`). Towards peers siplb dials (a node's WS port), it is the
// WebSocket client.
//
// What a production edge needs beyond the RFC: the handshake refuses anything but `sip` (400) and
// origins not on wsAllowedOrigins (403), and must finish within tlsHandshakeTimeout; a message
// larger than maxMessageSize closes the connection (1009); fragmented messages are reassembled
// by the ws library up to that size; CRLF keep-alives (RFC 5626 §3.5.1, sent by some clients as
// WebSocket messages) get a CRLF back and never reach the parser; a quiet connection is pinged
// every wsPingInterval and closed after two pings go unanswered, so a browser that vanished
// without a close frame does not hold its slot for ever.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../core/node-http.ts';
import https from 'node:https';
import type net from 'node:net';
import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { rateLimit } from '../core/log.ts';
import type { ConnectionTable, StreamConnection } from './connections.ts';
import { normaliseIp } from './ip.ts';
import { SourceLimits } from './source-limits.ts';
import { reusePortFor } from './port-sharing.ts';
import { connectionTo, listenOn } from './stream-endpoint.ts';
import { secureServerOptions, type TlsFiles } from './tls-files.ts';
import type { EndpointOptions, Inbound, MessageTransport, Side, TlsSettings, WebSocketSettings } from './types.ts';

/** What a peer that stops reading may make us buffer, as for TCP. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 5_000;
/** The RFC 7118 subprotocol. */
const SIP_PROTOCOL = 'sip';

type WsTransport = 'ws' | 'wss';

export class WebSocketEndpoint implements MessageTransport {
  readonly transport: WsTransport;
  readonly side: Side;
  private readonly opts: EndpointOptions;
  private readonly ws: WebSocketSettings;
  private readonly tls: TlsSettings | null;
  private reloaded: TlsFiles | null = null;
  private readonly server: Server | https.Server;
  private readonly upgrades: WebSocketServer;
  private readonly limits: SourceLimits;
  private readonly open = new Set<WsConnection>();
  /** Every socket peers opened that is still open, handshakes in progress included (closed with the endpoint). */
  private readonly raw = new Set<net.Socket>();
  private readonly pinger: NodeJS.Timeout;
  private readonly refusalLogGate = rateLimit(10_000);
  /** connect(), bound once rather than per message sent. */
  private readonly dial = (ip: string, port: number): WsConnection | undefined => this.connect(ip, port);
  /** Handshakes refused (no `sip`, an origin not allowed, not an upgrade). */
  handshakesRefused = 0;
  /** Connections closed for two unanswered pings. */
  pingTimeouts = 0;

  constructor(opts: EndpointOptions, transport: WsTransport) {
    this.opts = opts;
    this.transport = transport;
    this.side = opts.side;
    this.ws = opts.ws ?? { allowedOrigins: [], pingIntervalMs: 30_000 };
    this.tls = transport === 'wss' ? (opts.tls ?? null) : null;
    if (transport === 'wss' && this.tls === null) throw new Error('a WSS endpoint needs tls settings');
    this.limits = new SourceLimits(opts.maxConnectionsPerSource);
    const handshakeMs = opts.tls?.handshakeTimeoutMs ?? 10_000;
    const serverOptions = {
      // The upgrade request must arrive whole within the handshake timeout; the check runs often
      // enough for the timeout to mean what it says.
      headersTimeout: handshakeMs, requestTimeout: handshakeMs, connectionsCheckingInterval: Math.min(1000, handshakeMs),
      maxHeaderSize: 16 * 1024,
    };
    this.server = this.tls === null
      ? http.createServer(serverOptions, (req, res) => this.notAnUpgrade(req, res))
      : https.createServer({ ...serverOptions, ...secureServerOptions(this.tls.files, this.tls.clientAuth), handshakeTimeout: handshakeMs },
        (req, res) => this.notAnUpgrade(req, res));
    this.server.on('connection', (raw: net.Socket) => {
      const ip = normaliseIp(raw.remoteAddress ?? '');
      if (!this.limits.admit(ip)) {
        raw.destroy();
        return;
      }
      raw.setNoDelay(true);
      this.raw.add(raw);
      raw.once('close', () => {
        this.raw.delete(raw);
        this.limits.release(ip);
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => this.upgrade(req, socket, head));
    // A request that never completes its head (the handshake timeout) or cannot be parsed.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      if (!socket.writable) return void socket.destroy();
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroySoon();
    });
    // With a listener of ours, closing the socket is ours too (a timed-out handshake stays open otherwise).
    this.server.on('tlsClientError', (err: Error, socket: net.Socket) => {
      socket.destroy();
      opts.log.debug({ err: err.message, side: opts.side }, 'WSS handshake failed');
    });
    this.server.on('error', (err) => opts.log.warn({ err: err.message, side: opts.side }, `${transport.toUpperCase()} server error`));
    this.upgrades = new WebSocketServer({
      noServer: true, maxPayload: opts.maxMessageSize, perMessageDeflate: false, clientTracking: false,
      // The client's own spelling goes back (a client that wrote SIP must see SIP, or it fails
      // the handshake itself); upgrade() has already refused an offer without it.
      handleProtocols: (protocols) => [...protocols].find((p) => p.toLowerCase() === SIP_PROTOCOL) ?? false,
    });
    this.pinger = setInterval(() => this.pingQuiet(), this.ws.pingIntervalMs);
    this.pinger.unref();
  }

  get refused(): number {
    return this.limits.refused;
  }

  /** Connections open now (accepted and dialled). */
  get size(): number {
    return this.open.size;
  }

  address(): { address: string; port: number } {
    return this.server.address() as net.AddressInfo;
  }

  listen(): Promise<void> {
    return listenOn(this.server, this.transport, this.opts.host, this.opts.port, reusePortFor(this.opts));
  }

  send(ip: string, port: number, data: Buffer, fallbackPort?: number): void {
    connectionTo(this.opts.connections, this.transport, this.side, ip, port, fallbackPort, this.dial)?.write(data);
  }

  reloadTls(files: TlsFiles): void {
    if (this.tls === null) return;
    this.reloaded = files;
    (this.server as https.Server).setSecureContext(secureServerOptions(files, this.tls.clientAuth));
  }

  close(): Promise<void> {
    clearInterval(this.pinger);
    for (const c of this.open) c.destroy();
    for (const s of this.raw) s.destroy();
    this.upgrades.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** A plain HTTP request to a SIP WebSocket port: it must be an upgrade. */
  private notAnUpgrade(_req: IncomingMessage, res: ServerResponse): void {
    this.handshakesRefused++;
    res.writeHead(426, { Upgrade: 'websocket', Connection: 'Upgrade, close', 'Sec-WebSocket-Protocol': SIP_PROTOCOL, 'Content-Type': 'text/plain' });
    res.end('426 Upgrade Required: this port speaks SIP over WebSocket (RFC 7118)\n');
  }

  private upgrade(req: IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return this.refuse(socket, req, 400, 'Upgrade must be websocket');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim().toLowerCase());
    if (!offered.includes(SIP_PROTOCOL)) return this.refuse(socket, req, 400, 'the WebSocket subprotocol sip is required (RFC 7118)');
    const allowed = this.ws.allowedOrigins;
    if (allowed.length > 0 && !allowed.includes((req.headers.origin ?? '').toLowerCase())) return this.refuse(socket, req, 403, 'origin not allowed');
    this.upgrades.handleUpgrade(req, socket, head, (ws) => {
      const ip = normaliseIp(socket.remoteAddress ?? '');
      this.track(new WsConnection(this.context(), ws, { ip, port: socket.remotePort ?? 0 }, true));
    });
  }

  private refuse(socket: net.Socket, req: IncomingMessage, status: 400 | 403, reason: string): void {
    this.handshakesRefused++;
    if (this.refusalLogGate()) {
      this.opts.log.info({ from: `${socket.remoteAddress}|${socket.remotePort}`, status, reason, origin: req.headers.origin, refusedSoFar: this.handshakesRefused },
        `${this.transport.toUpperCase()} handshake refused (logged at most every 10 s)`);
    }
    const text = status === 400 ? 'Bad Request' : 'Forbidden';
    const body = `${status} ${text}: ${reason}\n`;
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  private connect(ip: string, port: number): WsConnection | undefined {
    if (!this.limits.admitOutgoing()) return undefined;
    const files = this.reloaded ?? this.tls?.files;
    const host = ip.includes(':') ? `[${ip}]` : ip;
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${this.transport}://${host}:${port}/`, SIP_PROTOCOL, {
        perMessageDeflate: false, maxPayload: this.opts.maxMessageSize, handshakeTimeout: CONNECT_TIMEOUT_MS,
        ...(files === undefined ? {} : {
          cert: files.cert, key: files.key,
          ...(files.ca === undefined ? { rejectUnauthorized: false } : {
            ca: files.ca,
            // A node is named by its address: the CA chain authenticates it, not a host name.
            // (ws types this as boolean; Node's TLS wants undefined for "fine".)
            checkServerIdentity: (() => undefined) as unknown as () => boolean,
          }),
        }),
      });
    } catch (err) {
      this.limits.release(null);
      this.limits.refused++;
      this.opts.log.debug({ peer: `${ip}|${port}`, err: (err as Error).message }, `${this.transport.toUpperCase()} connect refused`);
      return undefined;
    }
    const conn = new WsConnection(this.context(), ws, { ip, port }, false);
    this.track(conn);
    return conn;
  }

  private track(conn: WsConnection): void {
    this.open.add(conn);
    conn.onClose(() => {
      this.open.delete(conn);
      if (!conn.accepted) this.limits.release(null);
    });
  }

  /** One timer for the endpoint: each quiet connection is pinged; one that missed two pings is closed. */
  private pingQuiet(): void {
    const quietSince = Date.now() - this.ws.pingIntervalMs;
    for (const c of this.open) {
      if (c.lastHeard > quietSince) continue;
      if (c.unansweredPings >= 2) {
        this.pingTimeouts++;
        c.destroy();
      } else c.ping();
    }
  }

  private context(): WsContext {
    return { transport: this.transport, side: this.side, log: this.opts.log, onMessage: this.opts.onMessage, connections: this.opts.connections };
  }
}

interface WsContext {
  readonly transport: WsTransport;
  readonly side: Side;
  readonly log: Logger;
  readonly onMessage: EndpointOptions['onMessage'];
  readonly connections: ConnectionTable;
}

const CRLF = Buffer.from('\r\n', 'latin1');

/** One SIP WebSocket: a StreamConnection whose messages are WebSocket messages. */
class WsConnection implements StreamConnection {
  readonly id: number;
  readonly transport: WsTransport;
  readonly side: Side;
  readonly ip: string;
  readonly port: number;
  readonly accepted: boolean;
  /** When a message or a pong last came (ms since the epoch). */
  lastHeard = Date.now();
  unansweredPings = 0;
  private readonly ws: WebSocket;
  private queue: Buffer[] = [];
  private queuedBytes = 0;

  constructor(ctx: WsContext, ws: WebSocket, peer: { ip: string; port: number }, accepted: boolean) {
    this.id = ctx.connections.nextId();
    this.transport = ctx.transport;
    this.side = ctx.side;
    this.ip = peer.ip;
    this.port = peer.port;
    this.accepted = accepted;
    this.ws = ws;
    const src: Inbound = { transport: ctx.transport, side: ctx.side, ip: peer.ip, port: peer.port, connectionId: this.id };
    ctx.connections.add(this)?.destroy();
    ws.on('open', () => {
      for (const b of this.queue) this.write(b);
      this.queue = [];
      this.queuedBytes = 0;
    });
    ws.on('message', (data: RawData) => {
      this.lastHeard = Date.now();
      this.unansweredPings = 0;
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (isKeepAlive(buf)) {
        // RFC 5626 §3.5.1 over a message transport: a double CRLF is a ping, a single one a pong.
        if (buf.length >= 4) ws.send(CRLF, { binary: false });
        return;
      }
      try {
        ctx.onMessage(buf, src);
      } catch (err) {
        // The handler is written not to throw on input; should it, the message is lost, not the process.
        ctx.log.warn({ err: (err as Error).message, peer: `${peer.ip}|${peer.port}` }, 'internal error on a SIP WebSocket message');
      }
    });
    ws.on('pong', () => {
      this.lastHeard = Date.now();
      this.unansweredPings = 0;
    });
    ws.on('error', (err) => ctx.log.debug({ peer: `${peer.ip}|${peer.port}`, err: err.message }, `${ctx.transport.toUpperCase()} connection error`));
    ws.on('close', () => ctx.connections.remove(this));
  }

  /** Runs once the connection has closed. */
  onClose(fn: () => void): void {
    if (this.ws.readyState === WebSocket.CLOSED) fn();
    else this.ws.once('close', fn);
  }

  write(data: Buffer): void {
    const state = this.ws.readyState;
    if (state === WebSocket.OPEN) {
      // A text message must be UTF-8 (RFC 6455 §5.6; a browser closes on one that is not): a
      // message with other bytes in it (a binary body) goes as a binary message, which RFC 7118
      // §5 allows.
      this.ws.send(data, { binary: !isUtf8(data) });
    } else if (state === WebSocket.CONNECTING && this.queuedBytes + data.length <= MAX_QUEUED_BYTES) {
      this.queue.push(data);
      this.queuedBytes += data.length;
    }
  }

  ping(): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.unansweredPings++;
    try {
      this.ws.ping();
    } catch {
      this.ws.terminate();
    }
  }

  destroy(): void {
    this.ws.terminate();
  }
}

/** Only CR and LF: a keep-alive, never a SIP message. */
function isKeepAlive(buf: Buffer): boolean {
  if (buf.length === 0 || buf.length > 8) return false;
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 13 && buf[i] !== 10) return false;
  return true;
}
