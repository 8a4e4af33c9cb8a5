// How far the UDP sockets are behind: the bytes waiting in their kernel receive queues and the
// datagrams the kernel has dropped because a queue was full, read from /proc/net/udp and
// /proc/net/udp6 (Linux). This is the overload signal that tells "busy" from "falling behind":
// an event loop can be busy all the time and still keep its queues empty, and under a CPU quota
// (a container's limit) the loop's utilisation reads high long before anything waits.
//
// Node gives no ioctl(FIONREAD) or socket inode for a dgram socket, so sockets are found by
// their bound address and port. Elsewhere than Linux the reader answers null and overload
// control falls back to the loop's utilisation alone.

import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { ipBytes } from '../core/ip.ts';

export interface UdpBacklog {
  /** Bytes (kernel accounting, per-datagram overhead included) queued unread, all sockets. */
  readonly queuedBytes: number;
  /** Datagrams dropped on arrival since each socket opened, all sockets. */
  readonly drops: number;
  /** What the queues may hold before the kernel drops (SO_RCVBUF as the kernel set it), all sockets. */
  readonly bufferBytes: number;
}

export interface BoundUdpSocket {
  readonly address: string;
  readonly port: number;
  /** SO_RCVBUF as the kernel set it (getRecvBufferSize), 0 if unknown. */
  readonly receiveBufferBytes: number;
}

/**
 * The kernel's hex form of a local address in /proc/net/udp{,6}: each 32-bit word of the address
 * as the CPU holds it (little-endian here), printed as 8 hex digits. 127.0.0.1 → 0100007F.
 */
export function procAddress(address: string): string | null {
  const zone = address.indexOf('%');
  const bytes = ipBytes(zone === -1 ? address : address.slice(0, zone));
  if (bytes === null) return null;
  let out = '';
  for (let w = 0; w < bytes.length; w += 4) {
    for (let b = 3; b >= 0; b--) out += bytes[w + b].toString(16).padStart(2, '0');
  }
  return out.toUpperCase();
}

/**
 * Sums rx_queue and drops over the lines of a /proc/net/udp{,6} text whose local address is one
 * of `wanted` ("ADDRHEX:PORTHEX").
 */
export function sumBacklog(text: string, wanted: ReadonlySet<string>, into: { queuedBytes: number; drops: number }): void {
  let start = text.indexOf('\n') + 1;   // past the header line
  while (start > 0 && start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const fields = text.slice(start, end).trim().split(/\s+/);
    start = end + 1;
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
    if (fields.length < 13 || !wanted.has(fields[1])) continue;
    const queues = fields[4].split(':');
    const rx = parseInt(queues[1] ?? '', 16);
    const drops = Number(fields[12]);
    if (Number.isFinite(rx)) into.queuedBytes += rx;
    if (Number.isFinite(drops)) into.drops += drops;
  }
}

/** Reads the backlog of some bound sockets; null where /proc/net/udp cannot be read. */
export class UdpBacklogReader {
  private readonly sockets: () => readonly BoundUdpSocket[];
  private unavailable = false;

  constructor(sockets: () => readonly BoundUdpSocket[]) {
    this.sockets = sockets;
  }

  read(): UdpBacklog | null {
    if (this.unavailable) return null;
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    let bufferBytes = 0;
    for (const s of this.sockets()) {
      bufferBytes += s.receiveBufferBytes;
      const hex = procAddress(s.address);
      if (hex === null) continue;
      const key = `${hex}:${s.port.toString(16).padStart(4, '0').toUpperCase()}`;
      (isIPv6(s.address) ? v6 : v4).add(key);
    }
    if (v4.size === 0 && v6.size === 0) return null;
    const sum = { queuedBytes: 0, drops: 0 };
    try {
      if (v4.size > 0) sumBacklog(readFileSync('/proc/net/udp', 'latin1'), v4, sum);
      if (v6.size > 0) sumBacklog(readFileSync('/proc/net/udp6', 'latin1'), v6, sum);
    } catch {
      // Not Linux, or /proc not mounted: never try again, the loop's utilisation must do.
      this.unavailable = true;
      return null;
    }
    return { ...sum, bufferBytes };
  }
}
