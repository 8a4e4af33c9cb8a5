// What every stream endpoint (TCP, TLS, WS, WSS) does alike: bind its server, and find the
// connection a message to a peer goes on.

import type net from 'node:net';
import type { Transport } from '../config/types.ts';
import { BindError } from '../core/errors.ts';
import type { ConnectionTable, StreamConnection } from './connections.ts';
import type { Side } from './types.ts';

/**
 * Binds host:port; rejects with BindError naming the transport. `reusePort`: SO_REUSEPORT, the
 * port shared with the other workers (the kernel spreads new connections over them).
 */
export function listenOn(server: net.Server, transport: Transport, host: string, port: number, reusePort = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new BindError(`cannot bind ${transport.toUpperCase()} ${host}:${port}: ${err.message}`));
    server.once('error', onError);
    server.listen({ host, port, backlog: 1024, reusePort }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * The open connection to ip:port, else to ip:fallbackPort (RFC 3261 §18.2.2: a response whose
 * connection is gone goes to the sent-by port), else a new one from `connect`.
 */
export function connectionTo(
  table: ConnectionTable, transport: Transport, side: Side, ip: string, port: number, fallbackPort: number | undefined,
  connect: (ip: string, port: number) => StreamConnection | undefined,
): StreamConnection | undefined {
  let conn = table.toPeer(transport, side, ip, port);
  if (conn === undefined && fallbackPort !== undefined && fallbackPort !== port) {
    port = fallbackPort;
    conn = table.toPeer(transport, side, ip, port);
  }
  return conn ?? connect(ip, port);
}
