// One UDP socket per side and address family. Receives datagrams for the proxy and sends
// fire-and-forget; a send error (ICMP unreachable surfaced by the kernel, no route) is counted,
// never thrown.

import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { BindError } from '../core/errors.ts';
import { rateLimit } from '../core/log.ts';
import { ipFamily, normaliseIp } from './ip.ts';
import { reusePortFor } from './port-sharing.ts';
import { EAGAIN, EINVAL, NativeUdpSocket, type NativeReceiver } from './udp-native.ts';
import type { EndpointOptions, MessageTransport, Side } from './types.ts';

/** SO_SNDBUF asked for every UDP socket (the kernel caps it at net.core.wmem_max). */
export const SEND_BUFFER_BYTES = 8 * 1024 * 1024;
/**
 * SO_RCVBUF asked for every UDP socket unless udpReceiveBuffer says otherwise (the kernel grants
 * twice the value, capped by net.core.rmem_max). Not larger: this queue is where datagrams wait
 * while siplb is busy, and past saturation a full 8 MiB queue held over a second of traffic, so
 * that calls were completed too late to count and every late message had been retransmitted
 * (bench/README.md, "Receive queue"); a short one lets the kernel drop the excess for free.
 */
export const DEFAULT_UDP_RECEIVE_BUFFER = 256 * 1024;

function literalLookup(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  const f = ipFamily(address);
  if (f === 0) callback(Object.assign(new Error(`not an IP address: ${address}`), { code: 'EINVAL' }), address, 4);
  else callback(null, address, f);
}

let nativeOffLogged = false;

export class UdpEndpoint implements MessageTransport {
  readonly transport = 'udp';
  readonly side: Side;
  private readonly host: string;
  private readonly port: number;
  private readonly socket: dgram.Socket;
  private readonly log: Logger;
  private readonly v6: boolean;
  private readonly oversizeLogGate = rateLimit(10_000);
  private readonly errorLogGate = rateLimit(10_000);
  private readonly maxSize: number;
  private readonly onMessage: EndpointOptions['onMessage'];
  private readonly nativeIo: boolean;
  /** Reads and sends once bound, when native/udp.c can (IPv4 sockets); null: dgram does. */
  private native: NativeUdpSocket | null = null;
  sendErrors = 0;
  oversized = 0;

  constructor(opts: EndpointOptions) {
    const { side, host, maxMessageSize: maxSize, onMessage } = opts;
    this.side = side;
    this.host = host;
    this.port = opts.port;
    this.log = opts.log;
    this.v6 = isIPv6(host) || host === '::';
    this.maxSize = maxSize;
    this.onMessage = onMessage;
    this.nativeIo = opts.udpNativeIo ?? true;
    this.socket = dgram.createSocket({
      type: this.v6 ? 'udp6' : 'udp4',
      recvBufferSize: opts.receiveBufferBytes ?? DEFAULT_UDP_RECEIVE_BUFFER,
      sendBufferSize: SEND_BUFFER_BYTES,
      // The proxy only ever sends to IP literals (names are resolved before); answering the
      // socket's lookup synchronously spares a dns.lookup call and a nextTick per datagram.
      lookup: literalLookup,
      // Workers of one siplb bind the same port; the kernel hashes each peer's address and port
      // to one of them, so a client's retransmissions reach the worker that saw the original.
      reusePort: reusePortFor(opts),
    });
    this.socket.on('message', (data, rinfo) => {
      if (data.length > maxSize) {
        this.refuseOversized(data.length, rinfo.address, rinfo.port);
        return;
      }
      onMessage(data, { transport: 'udp', side, ip: normaliseIp(rinfo.address), port: rinfo.port, connectionId: 0 });
    });
    this.socket.on('error', (err) => {
      this.sendErrors++;
      this.log.warn({ err: err.message, side }, 'UDP socket error');
    });
  }

  listen(): Promise<void> {
    const { host, port } = this;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new BindError(`cannot bind UDP ${host}:${port}: ${err.message}`));
      this.socket.once('error', onError);
      this.socket.bind(port, host, () => {
        this.socket.off('error', onError);
        if (this.nativeIo && !this.v6) this.attachNative();
        resolve();
      });
    });
  }

  /** Whether native/udp.c reads and sends for this socket. */
  get nativeReading(): boolean {
    return this.native !== null;
  }

  private refuseOversized(bytes: number, ip: string, port: number): void {
    this.oversized++;
    // Logged, but at most every 10 s: a flood of large datagrams must not flood the log.
    if (this.oversizeLogGate()) {
      this.log.warn({ from: `${ip}:${port}`, bytes, maxMessageSize: this.maxSize, refusedSoFar: this.oversized }, 'UDP datagram larger than maxMessageSize refused');
    }
  }

  private attachNative(): void {
    const { side, onMessage } = this;
    const receiver: NativeReceiver = {
      message: (data, ip, port) => onMessage(data, { transport: 'udp', side, ip, port, connectionId: 0 }),
      oversized: (bytes, ip, port) => this.refuseOversized(bytes, ip, port),
      error: (errno) => {
        this.sendErrors++;
        if (this.errorLogGate()) this.log.warn({ errno, side }, 'UDP socket error (logged at most every 10 s)');
      },
    };
    const attached = NativeUdpSocket.attach(this.socket, this.maxSize, receiver);
    this.native = attached.socket;
    if (attached.socket === null && !nativeOffLogged) {
      nativeOffLogged = true;
      this.log.info({ reason: attached.why }, 'UDP through dgram (native UDP I/O off)');
    }
  }

  address(): { address: string; port: number } {
    return this.socket.address();
  }

  receiveBufferBytes(): number {
    try {
      return this.socket.getRecvBufferSize();
    } catch {
      // Not bound (yet, or any more).
      return 0;
    }
  }

  send(ip: string, port: number, data: Buffer): void {
    const native = this.native;
    if (native !== null) {
      const errno = native.sendTo(ip, port, data);
      if (errno === 0) return;
      // Would block (dgram queues it) or not an IPv4 literal (dgram says why): dgram's way.
      if (errno !== EAGAIN && errno !== EINVAL) {
        this.sendErrors++;
        if (this.errorLogGate()) this.log.warn({ errno, to: `${ip}:${port}`, side: this.side }, 'UDP send failed (logged at most every 10 s)');
        return;
      }
    }
    try {
      // No callback: a failed send surfaces as the socket's 'error' event, counted there.
      // A dual-stack (::) socket reaches IPv4 peers through their v4-mapped form.
      this.socket.send(data, port, this.v6 && isIPv4(ip) ? `::ffff:${ip}` : ip);
    } catch (err) {
      // Invalid address/port from a peer's Via: count it, never crash.
      this.sendErrors++;
      this.log.debug({ err: (err as Error).message, ip, port }, 'UDP send refused');
    }
  }

  close(): Promise<void> {
    this.native?.close();
    this.native = null;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
