// The UDP data path through native/udp.c: a bound IPv4 dgram socket's datagrams are read in
// batches (recvmmsg) and handed to JavaScript once per batch, and sends are one sendto each,
// instead of dgram's callback, buffer, address string and sender object per datagram and
// request object per send. That was a fifth of siplb's CPU per call at 1000 calls/s
// (bench/README.md, "Native UDP I/O").
//
// dgram still creates, binds (with its options: buffer sizes, SO_REUSEPORT for workers),
// connects and closes the socket; native/udp.c watches a duplicate of its descriptor, and dgram
// is told to stop reading it. What the addon cannot do, dgram still does: IPv6 sockets, and a
// send the kernel would block (EAGAIN: dgram queues it).
//
// Without the addon, or with `udpNativeIo` false, the endpoints use dgram alone, as before.

import type dgram from 'node:dgram';
import { loadNativeAddon, type AddonResult } from '../core/native-addon.ts';

/** native/build/udp.node. */
export interface UdpAddon {
  /** Watches a dup of fd; returns a handle, or -errno. */
  open(fd: number, rx: Buffer, meta: Int32Array, slotSize: number, onBatch: (n: number) => void): object | number;
  /** sendto: 0 or the errno. */
  sendTo(handle: object, data: Buffer, ip: string, port: number): number;
  /** send on a connected socket: 0 or the errno. */
  send(handle: object, data: Buffer): number;
  close(handle: object): number;
  /** Milliseconds a readable socket waits while datagrams are dense (0: never), process-wide: 0 or EINVAL. */
  setReadDelay(ms: number): number;
}

export const EAGAIN = 11;
export const ECONNREFUSED = 111;
export const EINVAL = 22;

let loaded: AddonResult<UdpAddon> | null = null;

/** native/build/udp.node, loaded once. */
export function udpAddon(): AddonResult<UdpAddon> {
  loaded ??= loadNativeAddon<UdpAddon>('udp', ['open', 'sendTo', 'send', 'close', 'setReadDelay']);
  return loaded;
}

/**
 * How long a socket that turned readable waits, while datagrams are dense, so that one wakeup
 * reads every socket that turned readable meanwhile (`udpReadDelay`; native/udp.c says when it
 * waits). Process-wide. False without the addon (dgram reads at once anyway).
 */
export function setUdpReadDelay(ms: number): boolean {
  const { addon } = udpAddon();
  return addon !== null && addon.setReadDelay(ms) === 0;
}

/** Datagrams read per batch at most. */
const BATCH = 64;

/**
 * One receive area for every socket of the process: a batch is copied out before the callback
 * returns, and callbacks run one at a time on the event loop. Pages a datagram never reached
 * are never touched (allocUnsafeSlow: not zeroed), so a 64 KiB slot costs what it holds.
 */
interface ReceiveArea {
  readonly rx: Buffer;
  readonly meta: Int32Array;
}
const areas = new Map<number, ReceiveArea>();

function areaFor(slotSize: number): ReceiveArea {
  let area = areas.get(slotSize);
  if (area === undefined) {
    area = { rx: Buffer.allocUnsafeSlow(slotSize * BATCH), meta: new Int32Array(4 * BATCH) };
    areas.set(slotSize, area);
  }
  return area;
}

/**
 * Dotted text of the addresses datagrams came from, by their 32-bit value: the same few
 * addresses (the nodes, the sprayer, clients) send most messages. Cleared when full, so a
 * flood from spoofed sources costs a bounded map.
 */
const ipText = new Map<number, string>();
const IP_TEXT_MAX = 4096;

function textOf(a: number): string {
  let s = ipText.get(a);
  if (s === undefined) {
    // The address's bytes in network order, read as a little-endian int32.
    s = `${a & 255}.${(a >>> 8) & 255}.${(a >>> 16) & 255}.${a >>> 24}`;
    if (ipText.size >= IP_TEXT_MAX) ipText.clear();
    ipText.set(a, s);
  }
  return s;
}

/** What a native socket hands its owner: a datagram (its own copy), or an oversized one's length. */
export interface NativeReceiver {
  message(data: Buffer, ip: string, port: number): void;
  /** Longer than maxMessageSize (or than the slot): refused. */
  oversized(bytes: number, ip: string, port: number): void;
  /** recvmmsg failed: errno (ECONNREFUSED on a connected socket is ICMP port unreachable). */
  error(errno: number): void;
}

/** dgram's socket handle: its descriptor and its reading switch (not public API: checked before use). */
interface DgramHandle {
  fd: number;
  recvStop(): number;
}

function dgramHandle(socket: dgram.Socket): DgramHandle | null {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = sym === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: Partial<DgramHandle> } | undefined>)[sym];
  const handle = state?.handle;
  if (handle === undefined || typeof handle.fd !== 'number' || handle.fd < 0 || typeof handle.recvStop !== 'function') return null;
  return handle as DgramHandle;
}

/** A bound IPv4 dgram socket read and written through native/udp.c. */
export class NativeUdpSocket {
  private readonly addon: UdpAddon;
  private handle: object | null;

  private constructor(addon: UdpAddon, handle: object) {
    this.addon = addon;
    this.handle = handle;
  }

  /**
   * Takes over reading `socket` (bound, IPv4) for `receiver`; null when it cannot (no addon,
   * a dgram without the expected handle, or the addon refused: `why` says which).
   */
  static attach(socket: dgram.Socket, maxMessageSize: number, receiver: NativeReceiver): { socket: NativeUdpSocket; why: null } | { socket: null; why: string } {
    const { addon, problem } = udpAddon();
    if (addon === null) return { socket: null, why: problem };
    const handle = dgramHandle(socket);
    if (handle === null) return { socket: null, why: 'this Node.js dgram has no descriptor to hand over' };
    // One byte more than the largest accepted message, so that a longer one shows as longer.
    const slotSize = Math.min(maxMessageSize + 1, 65536);
    const { rx, meta } = areaFor(slotSize);
    const onBatch = (n: number): void => {
      if (n < 0) {
        receiver.error(-n);
        return;
      }
      for (let i = 0, k = 0; i < n; i++, k += 4) {
        const len = meta[k]!;
        const ip = textOf(meta[k + 2]!);
        const port = meta[k + 1]!;
        if (meta[k + 3] !== 0 || len > maxMessageSize) {
          receiver.oversized(len, ip, port);
          continue;
        }
        const data = Buffer.allocUnsafe(len);
        rx.copy(data, 0, i * slotSize, i * slotSize + len);
        receiver.message(data, ip, port);
      }
    };
    const opened = addon.open(handle.fd, rx, meta, slotSize, onBatch);
    if (typeof opened === 'number') return { socket: null, why: `native UDP refused the socket (errno ${-opened})` };
    // From here the addon reads; dgram would compete for the same datagrams.
    handle.recvStop();
    return { socket: new NativeUdpSocket(addon, opened), why: null };
  }

  /** sendto: 0, or the errno (EAGAIN: the caller queues through dgram; EINVAL: not an IPv4 literal). */
  sendTo(ip: string, port: number, data: Buffer): number {
    return this.handle === null ? EINVAL : this.addon.sendTo(this.handle, data, ip, port);
  }

  /** send on a connected socket: 0, or the errno. */
  send(data: Buffer): number {
    return this.handle === null ? EINVAL : this.addon.send(this.handle, data);
  }

  /** Stops reading and closes the duplicate descriptor; dgram closes its own. */
  close(): void {
    if (this.handle === null) return;
    this.addon.close(this.handle);
    this.handle = null;
  }
}
