// What the proxy needs from the transport layer, and what it is told about each message.

import type { Transport } from '../config/types.ts';
import type { Side } from '../proxy/local-addresses.ts';

/** Where a message came from: the socket side it arrived on and the peer's address. */
export interface Inbound {
  readonly transport: Transport;
  readonly side: Side;
  readonly ip: string;
  readonly port: number;
}

export interface Outbound {
  /**
   * Send bytes to ip:port from the given side's socket. Never throws: failures are logged and
   * counted by the transport (UDP is fire-and-forget; TCP reuses or opens a connection).
   */
  send(side: Side, transport: Transport, ip: string, port: number, data: Buffer, fallbackPort?: number): void;
}
