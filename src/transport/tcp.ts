// TCP for one side: a listening server plus the table of open connections, keyed by the peer's
// ip:port. Responses and requests to a peer reuse the connection it opened to us or we opened
// to it (RFC 3261 §18.2.2, RFC 5923 style reuse); a missing one is opened on demand and writes
// queue until it connects. Idle connections are closed; every error is contained per connection.

import net from 'node:net';
import type { Logger } from 'pino';
import type { Side } from '../proxy/local-addresses.ts';
import { StreamFramer } from '../sip/framing.ts';
import { BindError } from '../core/errors.ts';
import type { Inbound } from './types.ts';
import { normaliseIp } from './ip.ts';
import { rateLimit } from '../core/log.ts';

const IDLE_TIMEOUT_MS = 10 * 60_000;
const CONNECT_TIMEOUT_MS = 5_000;
const MAX_CONNECTIONS = 10_000;
/** A peer that stops reading must not make us buffer without bound. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

interface Connection {
  socket: net.Socket;
  connected: boolean;
  queue: Buffer[];
}

export class TcpEndpoint {
  readonly side: Side;
  private readonly server: net.Server;
  private readonly conns = new Map<string, Connection>();
  private readonly log: Logger;
  private readonly maxSize: number;
  private readonly onMessage: (data: Buffer, src: Inbound) => void;
  private readonly framingLogGate = rateLimit(10_000);
  refused = 0;
  framingErrors = 0;

  constructor(side: Side, log: Logger, maxSize: number, onMessage: (data: Buffer, src: Inbound) => void) {
    this.side = side;
    this.log = log;
    this.maxSize = maxSize;
    this.onMessage = onMessage;
    this.server = net.createServer({ noDelay: true }, (socket) => this.adopt(socket, true));
    this.server.on('error', (err) => this.log.warn({ err: err.message, side }, 'TCP server error'));
  }

  /** Where the server listens (port 0 in listen() picks a free one). */
  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  listen(host: string, port: number): Promise<void> {
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
    let key = peerKey(ip, port);
    let conn = this.conns.get(key);
    if (conn === undefined && fallbackPort !== undefined && fallbackPort !== port) {
      port = fallbackPort;
      key = peerKey(ip, port);
      conn = this.conns.get(key);
    }
    if (conn === undefined) {
      if (this.conns.size >= MAX_CONNECTIONS) {
        this.refused++;
        return;
      }
      let socket: net.Socket;
      try {
        socket = net.connect({ host: ip, port, noDelay: true });
      } catch (err) {
        // A next hop with an impossible address or port (taken from a peer's header).
        this.refused++;
        this.log.debug({ peer: key, err: (err as Error).message }, 'TCP connect refused');
        return;
      }
      socket.setTimeout(CONNECT_TIMEOUT_MS);
      conn = this.adopt(socket, false, key);
    }
    if (conn.connected) conn.socket.write(data);
    else if (queuedBytes(conn) + data.length <= MAX_QUEUED_BYTES) conn.queue.push(data);
  }

  private adopt(socket: net.Socket, accepted: boolean, knownKey?: string): Connection {
    const key = knownKey ?? peerKey(normaliseIp(socket.remoteAddress ?? ''), socket.remotePort ?? 0);
    const conn: Connection = { socket, connected: accepted, queue: [] };
    if (accepted && this.conns.size >= MAX_CONNECTIONS) {
      this.refused++;
      socket.destroy();
      return conn;
    }
    const [ip, portText] = splitKey(key);
    const src: Inbound = { transport: 'tcp', side: this.side, ip, port: Number(portText) };
    const framer = new StreamFramer(this.maxSize, {
      message: (data) => this.onMessage(data, src),
      ping: () => socket.write('\r\n'),
      error: (reason) => {
        this.framingErrors++;
        if (this.framingLogGate()) {
          this.log.warn({ peer: key, reason, framingErrorsSoFar: this.framingErrors }, 'closing TCP connection: cannot frame SIP stream (logged at most every 10 s)');
        }
        socket.destroy();
      },
    });
    // A newer connection from/to the same peer address replaces the table entry.
    this.conns.get(key)?.socket.destroy();
    this.conns.set(key, conn);
    if (accepted) socket.setTimeout(IDLE_TIMEOUT_MS);
    socket.on('connect', () => {
      conn.connected = true;
      socket.setTimeout(IDLE_TIMEOUT_MS);
      for (const b of conn.queue) socket.write(b);
      conn.queue = [];
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('timeout', () => socket.destroy());
    socket.on('error', (err) => this.log.debug({ peer: key, err: err.message }, 'TCP connection error'));
    socket.on('close', () => {
      if (this.conns.get(key) === conn) this.conns.delete(key);
    });
    return conn;
  }

  close(): Promise<void> {
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function queuedBytes(c: Connection): number {
  let n = 0;
  for (const b of c.queue) n += b.length;
  return n;
}

function peerKey(ip: string, port: number): string {
  return `${ip}|${port}`;
}

function splitKey(key: string): [string, string] {
  const i = key.lastIndexOf('|');
  return [key.slice(0, i), key.slice(i + 1)];
}
