// TCP for one side: a listening server, and connections to peers opened on demand. A message to a
// peer goes on the connection the peer opened to us or we opened to it (RFC 3261 §18.2.2, RFC
// 5923 style reuse); without one, a new connection is opened and the message waits for it.
// Connections live in the process's ConnectionTable; every error is contained per connection.
// TLS (tls.ts) is this with a secure server and secure dialling.

import net from 'node:net';
import type { Logger } from 'pino';
import type { Transport } from '../config/types.ts';
import { normaliseIp } from './ip.ts';
import { FIRST_MESSAGE_TIMEOUT_MS, framingErrorLog, IDLE_TIMEOUT_MS, SLOW_SENDER_TIMEOUT_MS, SocketConnection, type StreamContext } from './socket-connection.ts';
import { SourceLimits } from './source-limits.ts';
import { reusePortFor } from './port-sharing.ts';
import { connectionTo, listenOn } from './stream-endpoint.ts';
import type { EndpointOptions, MessageTransport, Side } from './types.ts';

export { MAX_CONNECTIONS_PER_SOURCE } from './source-limits.ts';

export class TcpEndpoint implements MessageTransport {
  readonly transport: Transport;
  readonly side: Side;
  protected readonly opts: EndpointOptions;
  protected readonly server: net.Server;
  protected readonly log: Logger;
  private readonly ctx: StreamContext;
  private readonly limits: SourceLimits;
  /** Every socket peers opened that is still open, handshakes in progress included (closed with the endpoint). */
  private readonly raw = new Set<net.Socket>();
  /**
   * Accepted sockets that have not delivered a whole SIP message yet, oldest first, by peer
   * ip|port, with the release of their slot: when the endpoint is full, the oldest of them makes
   * room for a new peer, so a flood of idle connections cannot lock clients out.
   */
  private readonly silent = new Map<string, { socket: net.Socket; release: () => void }>();
  /** Silent connections closed to make room for a new peer. */
  evictedSilent = 0;
  framingErrors = 0;
  /** connect(), bound once rather than per message sent. */
  private readonly dialNew = (ip: string, port: number): SocketConnection | undefined => this.connect(ip, port);

  constructor(opts: EndpointOptions, transport: 'tcp' | 'tls' = 'tcp') {
    this.opts = opts;
    this.transport = transport;
    this.side = opts.side;
    this.log = opts.log;
    this.limits = new SourceLimits(opts.maxConnectionsPerSource, opts.maxConnections);
    const logFramingError = framingErrorLog(opts.log, transport);
    this.ctx = {
      transport, side: opts.side, maxMessageSize: opts.maxMessageSize, log: opts.log,
      onMessage: opts.onMessage, connections: opts.connections,
      framingError: (peer, reason) => logFramingError(peer, reason, ++this.framingErrors),
      // Accepted sockets are released by admit()'s close listener, whatever became of them.
      closed: (conn) => { if (!conn.accepted) this.limits.release(null); },
      slowSenderTimeoutMs: opts.slowSenderTimeoutMs ?? SLOW_SENDER_TIMEOUT_MS,
      firstMessageTimeoutMs: opts.firstMessageTimeoutMs ?? FIRST_MESSAGE_TIMEOUT_MS,
      idleTimeoutMs: opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      spoke: (ip, port) => { this.silent.delete(`${ip}|${port}`); },
    };
    this.server = this.createServer();
    this.server.on('error', (err) => this.log.warn({ err: err.message, side: opts.side }, `${transport.toUpperCase()} server error`));
  }

  /** Connections refused: a bound reached, or an impossible peer address. */
  get refused(): number {
    return this.limits.refused;
  }

  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  listen(): Promise<void> {
    return listenOn(this.server, this.transport, this.opts.host, this.opts.port, reusePortFor(this.opts));
  }

  send(ip: string, port: number, data: Buffer, fallbackPort?: number): void {
    connectionTo(this.opts.connections, this.transport, this.side, ip, port, fallbackPort, this.dialNew)?.write(data);
  }

  close(): Promise<void> {
    for (const c of this.opts.connections.of(this.transport, this.side)) c.destroy();
    for (const s of this.raw) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The listening server; each accepted, usable socket goes to accept(). */
  protected createServer(): net.Server {
    return net.createServer({ noDelay: true }, (socket) => {
      if (this.admit(socket)) this.accept(socket);
    });
  }

  /** Opens the socket to a peer; throws on an impossible address or port. */
  protected dial(ip: string, port: number): net.Socket {
    return net.connect({ host: ip, port, noDelay: true });
  }

  /**
   * Counts a new peer socket (the raw TCP one, before any handshake) against the bounds and
   * releases it when it closes; closes it at once when over them.
   */
  protected admit(socket: net.Socket): boolean {
    const ip = normaliseIp(socket.remoteAddress ?? '');
    if (!this.limits.admit(ip) && !(this.limits.fullFor(ip) && this.evictSilent() && this.limits.admit(ip))) {
      socket.destroy();
      return false;
    }
    const key = `${ip}|${socket.remotePort ?? 0}`;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.limits.release(ip);
    };
    this.raw.add(socket);
    this.silent.set(key, { socket, release });
    socket.once('close', () => {
      this.raw.delete(socket);
      if (this.silent.get(key)?.socket === socket) this.silent.delete(key);
      release();
    });
    return true;
  }

  /** Closes the oldest connection that has said nothing yet and frees its slot at once; false if there is none. */
  private evictSilent(): boolean {
    for (const [key, oldest] of this.silent) {
      this.silent.delete(key);
      oldest.release();
      oldest.socket.destroy();
      this.evictedSilent++;
      return true;
    }
    return false;
  }

  /** An admitted socket is ready for SIP. */
  protected accept(socket: net.Socket, ip = normaliseIp(socket.remoteAddress ?? ''), port = socket.remotePort ?? 0): void {
    new SocketConnection(this.ctx, socket, { ip, port }, true);
  }

  private connect(ip: string, port: number): SocketConnection | undefined {
    if (!this.limits.admitOutgoing()) return undefined;
    let socket: net.Socket;
    try {
      socket = this.dial(ip, port);
    } catch (err) {
      // A next hop with an impossible address or port (taken from a peer's header).
      this.limits.release(null);
      this.limits.refused++;
      this.log.debug({ peer: `${ip}|${port}`, err: (err as Error).message }, `${this.transport.toUpperCase()} connect refused`);
      return undefined;
    }
    return new SocketConnection(this.ctx, socket, { ip, port }, false);
  }
}
