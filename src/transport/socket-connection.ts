// One SIP stream over a net.Socket (TCP; a tls.TLSSocket is one too): cuts the bytes into
// messages, answers RFC 5626 keep-alive pings, queues what is sent before the connection is up
// (bounded, so a peer that never reads cannot make us buffer without limit), closes when idle,
// and keeps every socket error to itself. It registers in the ConnectionTable while open.

import type net from 'node:net';
import type { Logger } from 'pino';
import type { Transport } from '../config/types.ts';
import { rateLimit } from '../core/log.ts';
import { StreamFramer } from '../sip/framing.ts';
import type { ConnectionTable, StreamConnection } from './connections.ts';
import type { Inbound, MessageHandler, Side } from './types.ts';

/** A connection that has carried nothing for this long is closed (tcpIdleTimeout). */
export const IDLE_TIMEOUT_MS = 10 * 60_000;
/**
 * An accepted connection that has not delivered one whole message by then is closed: a SIP client
 * connects to send (a REGISTER, an INVITE), and a connection opened to sit idle is a flood's,
 * which would otherwise hold a slot for the whole idle timeout.
 */
export const FIRST_MESSAGE_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * A message begun must be complete within about this long (between half of it and all of it;
 * Kamailio's tcp_msg_read_timeout is 20 s): a peer trickling bytes holds a buffer and a
 * connection, and the idle timeout never fires for it.
 */
export const SLOW_SENDER_TIMEOUT_MS = 20_000;
/** A peer that stops reading must not make us buffer without bound. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** What the connections of one endpoint share. */
export interface StreamContext {
  readonly transport: Transport;
  readonly side: Side;
  readonly maxMessageSize: number;
  readonly log: Logger;
  readonly onMessage: MessageHandler;
  readonly connections: ConnectionTable;
  /** Counts framing errors of the endpoint and gates their log lines. */
  framingError(peer: string, reason: string): void;
  /** The connection closed and left the table. */
  closed(conn: SocketConnection): void;
  /** How long a message begun may take to arrive whole (SLOW_SENDER_TIMEOUT_MS; tests shorten it). */
  readonly slowSenderTimeoutMs: number;
  /** How long an accepted connection may wait for its first whole message (FIRST_MESSAGE_TIMEOUT_MS). */
  readonly firstMessageTimeoutMs: number;
  /** How long a connection may carry nothing before it is closed (IDLE_TIMEOUT_MS). */
  readonly idleTimeoutMs: number;
  /** An accepted connection delivered its first whole message (it is no longer a silent one). */
  spoke?(ip: string, port: number): void;
}

/** Gates "cannot frame" warnings: a flood of bad streams leaves one line per 10 s. */
export function framingErrorLog(log: Logger, transport: Transport): (peer: string, reason: string, total: number) => void {
  const gate = rateLimit(10_000);
  return (peer, reason, total) => {
    if (gate()) log.warn({ peer, reason, framingErrorsSoFar: total }, `closing ${transport.toUpperCase()} connection: cannot frame SIP stream (logged at most every 10 s)`);
  };
}

export class SocketConnection implements StreamConnection {
  readonly id: number;
  readonly transport: Transport;
  readonly side: Side;
  readonly ip: string;
  readonly port: number;
  /** The peer opened it (else siplb connected to the peer). */
  readonly accepted: boolean;
  private readonly socket: net.Socket;
  private connected: boolean;
  private queue: Buffer[] = [];
  private queuedBytes = 0;

  /** `accepted`: the peer connected to us (already up); else we are connecting to ip:port. */
  constructor(ctx: StreamContext, socket: net.Socket, peer: { ip: string; port: number }, accepted: boolean) {
    this.id = ctx.connections.nextId();
    this.transport = ctx.transport;
    this.side = ctx.side;
    this.ip = peer.ip;
    this.port = peer.port;
    this.accepted = accepted;
    this.socket = socket;
    this.connected = accepted;
    const src: Inbound = { transport: ctx.transport, side: ctx.side, ip: peer.ip, port: peer.port, connectionId: this.id };
    let silent = accepted;
    const framer = new StreamFramer(ctx.maxMessageSize, {
      message: (data) => {
        if (silent) {
          silent = false;
          socket.setTimeout(ctx.idleTimeoutMs);
          ctx.spoke?.(peer.ip, peer.port);
        }
        ctx.onMessage(data, src);
      },
      ping: () => socket.write('\r\n'),
      error: (reason) => {
        ctx.framingError(`${peer.ip}|${peer.port}`, reason);
        socket.destroy();
      },
    });
    ctx.connections.add(this)?.destroy();
    socket.setTimeout(accepted ? ctx.firstMessageTimeoutMs : CONNECT_TIMEOUT_MS);
    socket.on('connect', () => {
      this.connected = true;
      socket.setTimeout(ctx.idleTimeoutMs);
      for (const b of this.queue) socket.write(b);
      this.queue = [];
      this.queuedBytes = 0;
    });
    // One watch per connection, started the first time a chunk ends inside a message (usual
    // traffic, where chunks end on message boundaries, never starts it) and costing nothing per
    // chunk: every half deadline it looks whether a message has been pending since its last look
    // with none completed in between, and then closes the connection.
    let watch: NodeJS.Timeout | null = null;
    let pendingAtLastLook = false;
    let framedAtLastLook = 0;
    const look = (): void => {
      const pending = framer.pendingBytes > 0;
      if (pending && pendingAtLastLook && framer.framed === framedAtLastLook) {
        ctx.framingError(`${peer.ip}|${peer.port}`, `a message was not complete within ${ctx.slowSenderTimeoutMs} ms`);
        socket.destroy();
        return;
      }
      pendingAtLastLook = pending;
      framedAtLastLook = framer.framed;
    };
    socket.on('data', (chunk: Buffer) => {
      // The framer and the handler behind it are written not to throw on input; should they,
      // this stream is lost (it cannot be resynchronised), never the process.
      try {
        framer.push(chunk);
      } catch (err) {
        ctx.framingError(`${peer.ip}|${peer.port}`, `internal error: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      if (watch === null && framer.pendingBytes > 0) {
        framedAtLastLook = framer.framed;
        pendingAtLastLook = true;
        watch = setInterval(look, Math.max(1, Math.floor(ctx.slowSenderTimeoutMs / 2)));
        watch.unref();
      }
    });
    socket.on('timeout', () => socket.destroy());
    socket.on('error', (err) => ctx.log.debug({ peer: `${peer.ip}|${peer.port}`, err: err.message }, `${ctx.transport.toUpperCase()} connection error`));
    socket.on('close', () => {
      if (watch !== null) clearInterval(watch);
      ctx.connections.remove(this);
      ctx.closed(this);
    });
  }

  write(data: Buffer): void {
    if (this.connected) this.socket.write(data);
    else if (this.queuedBytes + data.length <= MAX_QUEUED_BYTES) {
      this.queue.push(data);
      this.queuedBytes += data.length;
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
