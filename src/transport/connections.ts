// Every open stream connection (TCP now; TLS, WS and WSS later) of the process, by id and by
// peer. The id travels with each message (Inbound.connectionId), so a reply or a later request
// can go back on the exact connection it belongs to, which a WebSocket client (no listening
// port) or a client behind NAT needs; the peer index lets a message to ip:port reuse a
// connection the peer opened to us or we opened to it (RFC 3261 §18.2.2, RFC 5923 style).

import type { Transport } from '../config/types.ts';
import type { Side } from './types.ts';

/** A stream connection as the table and the router see it. */
export interface StreamConnection {
  /** Unique for the life of the process; never 0 (0 means "no connection", a datagram). */
  readonly id: number;
  readonly transport: Transport;
  readonly side: Side;
  /** The peer's address. */
  readonly ip: string;
  readonly port: number;
  /** Writes now, or queues until the connection is up; never throws. */
  write(data: Buffer): void;
  /** Closes at once; the owner removes it from the table when the socket has closed. */
  destroy(): void;
}

export class ConnectionTable {
  private lastId = 0;
  private readonly byId = new Map<number, StreamConnection>();
  private readonly byPeer = new Map<string, StreamConnection>();
  /** The same by side and address alone, whatever the transport. */
  private readonly byAddress = new Map<string, StreamConnection>();

  /** The id for a connection about to be added. */
  nextId(): number {
    return ++this.lastId;
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * Registers a connection. A newer connection from or to the same peer (same transport, side
   * and address) takes over the peer entry; the one it replaced is returned, for its owner to
   * close (the same peer address on a new connection means the old one is gone).
   */
  add(conn: StreamConnection): StreamConnection | undefined {
    const key = peerKey(conn.transport, conn.side, conn.ip, conn.port);
    const replaced = this.byPeer.get(key);
    this.byId.set(conn.id, conn);
    this.byPeer.set(key, conn);
    this.byAddress.set(addressKey(conn.side, conn.ip, conn.port), conn);
    return replaced;
  }

  remove(conn: StreamConnection): void {
    this.byId.delete(conn.id);
    const key = peerKey(conn.transport, conn.side, conn.ip, conn.port);
    if (this.byPeer.get(key) === conn) this.byPeer.delete(key);
    const akey = addressKey(conn.side, conn.ip, conn.port);
    if (this.byAddress.get(akey) === conn) this.byAddress.delete(akey);
  }

  get(id: number): StreamConnection | undefined {
    return this.byId.get(id);
  }

  /** The connection to send to a peer on, if one is open. */
  toPeer(transport: Transport, side: Side, ip: string, port: number): StreamConnection | undefined {
    return this.byPeer.get(peerKey(transport, side, ip, port));
  }

  /**
   * A connection with a peer at ip:port on any stream transport. A peer's Via may name another
   * transport than the one it reached us on (a TLS tunnel in front of a TCP client says TCP), and
   * the response must still go back on the connection the request came on.
   */
  atAddress(side: Side, ip: string, port: number): StreamConnection | undefined {
    return this.byAddress.get(addressKey(side, ip, port));
  }

  /** Every connection of one transport and side (to close them with their endpoint). */
  of(transport: Transport, side: Side): StreamConnection[] {
    const out: StreamConnection[] = [];
    for (const c of this.byId.values()) if (c.transport === transport && c.side === side) out.push(c);
    return out;
  }
}

function peerKey(transport: Transport, side: Side, ip: string, port: number): string {
  return `${transport}|${side}|${ip}|${port}`;
}

function addressKey(side: Side, ip: string, port: number): string {
  return `${side}|${ip}|${port}`;
}
