// TCP for one side: a listening server, and connections to peers opened on demand. A message to a
// peer goes on the connection the peer opened to us or we opened to it (RFC 3261 §18.2.2, RFC
// 5923 style reuse); without one, a new connection is opened and the message waits for it.
// Connections live in the process's ConnectionTable; every error is contained per connection.

import net from 'node:net';
import type { Logger } from 'pino';
import { BindError } from '../core/errors.ts';
import { normaliseIp } from './ip.ts';
import { framingErrorLog, SLOW_SENDER_TIMEOUT_MS, SocketConnection, type StreamContext } from './socket-connection.ts';
import type { EndpointOptions, MessageTransport, Side } from './types.ts';

const MAX_CONNECTIONS = 10_000;
/**
 * Connections one address may hold open to an endpoint by default: enough for an SBC, a NAT with
 * many clients behind it, or a load generator opening a connection per call; not enough for one
 * host to take all 10 000.
 */
export const MAX_CONNECTIONS_PER_SOURCE = 1000;

export class TcpEndpoint implements MessageTransport {
  readonly transport = 'tcp';
  readonly side: Side;
  private readonly opts: EndpointOptions;
  private readonly server: net.Server;
  private readonly log: Logger;
  private readonly ctx: StreamContext;
  /** Connections of this endpoint that are open now. */
  private open = 0;
  /** Connections peers opened to us, by their address. */
  private readonly bySource = new Map<string, number>();
  /** Connections refused: the bound reached, or an impossible peer address. */
  refused = 0;
  framingErrors = 0;

  constructor(opts: EndpointOptions) {
    this.opts = opts;
    this.side = opts.side;
    this.log = opts.log;
    const logFramingError = framingErrorLog(opts.log, 'tcp');
    this.ctx = {
      transport: 'tcp', side: opts.side, maxMessageSize: opts.maxMessageSize, log: opts.log,
      onMessage: opts.onMessage, connections: opts.connections,
      framingError: (peer, reason) => logFramingError(peer, reason, ++this.framingErrors),
      closed: (conn) => this.closed(conn),
      slowSenderTimeoutMs: opts.slowSenderTimeoutMs ?? SLOW_SENDER_TIMEOUT_MS,
    };
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.warn({ err: err.message, side: opts.side }, 'TCP server error'));
  }

  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  listen(): Promise<void> {
    const { host, port } = this.opts;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new BindError(`cannot bind TCP ${host}:${port}: ${err.message}`));
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  send(ip: string, port: number, data: Buffer, fallbackPort?: number): void {
    const table = this.opts.connections;
    let conn = table.toPeer('tcp', this.side, ip, port);
    if (conn === undefined && fallbackPort !== undefined && fallbackPort !== port) {
      port = fallbackPort;
      conn = table.toPeer('tcp', this.side, ip, port);
    }
    if (conn === undefined) conn = this.connect(ip, port);
    conn?.write(data);
  }

  close(): Promise<void> {
    for (const c of this.opts.connections.of('tcp', this.side)) c.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const ip = normaliseIp(socket.remoteAddress ?? '');
    const fromSource = this.bySource.get(ip) ?? 0;
    if (this.open >= MAX_CONNECTIONS || fromSource >= (this.opts.maxConnectionsPerSource ?? MAX_CONNECTIONS_PER_SOURCE)) {
      this.refused++;
      socket.destroy();
      return;
    }
    this.open++;
    this.bySource.set(ip, fromSource + 1);
    new SocketConnection(this.ctx, socket, { ip, port: socket.remotePort ?? 0 }, true);
  }

  private closed(conn: SocketConnection): void {
    this.open--;
    if (!conn.accepted) return;
    const left = (this.bySource.get(conn.ip) ?? 1) - 1;
    if (left <= 0) this.bySource.delete(conn.ip);
    else this.bySource.set(conn.ip, left);
  }

  private connect(ip: string, port: number): SocketConnection | undefined {
    if (this.open >= MAX_CONNECTIONS) {
      this.refused++;
      return undefined;
    }
    let socket: net.Socket;
    try {
      socket = net.connect({ host: ip, port, noDelay: true });
    } catch (err) {
      // A next hop with an impossible address or port (taken from a peer's header).
      this.refused++;
      this.log.debug({ peer: `${ip}|${port}`, err: (err as Error).message }, 'TCP connect refused');
      return undefined;
    }
    this.open++;
    return new SocketConnection(this.ctx, socket, { ip, port }, false);
  }
}
