// One connected UDP socket per node (per node address and port), for what the proxy sends to
// nodes over UDP.
//
// Why: a send on a connected socket skips the per-datagram route and address look-ups (in the
// kernel, and dgram's lookup in Node), and, more important, a connected UDP socket is told of
// ICMP errors about what it sent: a node whose SIP port has closed (its process died, its stack
// stopped) answers with ICMP port unreachable, which the kernel reports on the socket as
// ECONNREFUSED. An unconnected socket, the listener, hears nothing of it, and siplb would keep
// choosing the node for new calls until a probe or nodeTimeout noticed. With these sockets it
// is taken out at the first such error (onUnreachable).
//
// Each socket is bound to the listener's address with a port of its own (the listener's port
// cannot be shared without SO_REUSEADDR, which would let a second process take over the port
// silently). The Via siplb adds still names the listener, so nodes that answer by the Via
// (RFC 3261 §18.2.2) answer there; nodes that answer to the source port (sipp, rport-style
// stacks) answer to this socket, which hands what it receives to the same handler as the
// listener, as coming from the listener's side. Node-originated requests go to the Record-Route
// address, the listener.
//
// A socket is made on the first send to an address the wiring says is a node's, is used once
// connected (meanwhile, and whenever it cannot be, the listener sends), and is closed after a
// quiet period or when the address stops being a node's. Their number is bounded.

import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { rateLimit } from '../core/log.ts';
import { DEFAULT_UDP_RECEIVE_BUFFER, SEND_BUFFER_BYTES } from './udp.ts';
import { EAGAIN, ECONNREFUSED, NativeUdpSocket } from './udp-native.ts';
import type { MessageHandler, Side } from './types.ts';

export interface UdpPeersOptions {
  readonly log: Logger;
  readonly onMessage: MessageHandler;
  readonly maxMessageSize: number;
  /** Bytes asked for each socket's receive queue, as for the listeners (default DEFAULT_UDP_RECEIVE_BUFFER). */
  readonly receiveBufferBytes?: number;
  /** Read and send through native/udp.c where it can (default true; IPv4 only). */
  readonly nativeIo?: boolean;
  /** Whether ip:port is a node's SIP address (only those get a socket of their own). */
  readonly isPeer: (ip: string, port: number) => boolean;
  /** ICMP port unreachable came back for what was sent to ip:port (at most once a second per peer). */
  readonly onUnreachable: (ip: string, port: number) => void;
  /** Most sockets at once (default 1024); beyond, the listener sends. */
  readonly maxPeers?: number;
  /** A socket unused this long is closed (default 5 minutes). */
  readonly idleMs?: number;
  /** How often idle sockets and addresses no longer nodes' are looked for (default 60 s). */
  readonly sweepMs?: number;
}

/** The listener a peer socket stands beside: its bound address and its side. */
export interface ListenerInfo {
  /** Bound address (IPv4/IPv6 literal, 0.0.0.0 or ::). */
  readonly host: string;
  readonly side: Side;
}


class Peer {
  readonly socket: dgram.Socket;
  /** Once connected, when native/udp.c reads and sends for it. */
  native: NativeUdpSocket | null = null;
  connected = false;
  closed = false;
  lastUse: number;
  readonly unreachableGate = rateLimit(1000);

  constructor(socket: dgram.Socket, now: number) {
    this.socket = socket;
    this.lastUse = now;
  }
}

export class UdpPeers {
  private readonly opts: UdpPeersOptions;
  /** ip -> port -> socket. Two levels: the ip string of a node is the same object every time, so no key is built per send. */
  private readonly peers = new Map<string, Map<number, Peer>>();
  private count = 0;
  private readonly maxPeers: number;
  private readonly idleMs: number;
  private readonly timer: NodeJS.Timeout;
  private readonly errorLogGate = rateLimit(10_000);
  /** ICMP port unreachable errors seen, all peers. */
  unreachable = 0;
  /** Other socket errors, all peers. */
  errors = 0;
  /** Datagrams sent on a peer's own socket. */
  sent = 0;

  constructor(opts: UdpPeersOptions) {
    this.opts = opts;
    this.maxPeers = opts.maxPeers ?? 1024;
    this.idleMs = opts.idleMs ?? 300_000;
    this.timer = setInterval(() => this.sweep(Date.now()), opts.sweepMs ?? 60_000);
    this.timer.unref();
  }

  get size(): number {
    return this.count;
  }

  /**
   * Sends on ip:port's own socket and returns true, or returns false: the caller sends through
   * the listener (not a node's address, the socket is still connecting, or too many sockets).
   */
  send(listener: ListenerInfo, ip: string, port: number, data: Buffer): boolean {
    let byPort = this.peers.get(ip);
    let peer = byPort?.get(port);
    if (peer === undefined) {
      if (this.count >= this.maxPeers || !this.opts.isPeer(ip, port)) return false;
      const made = this.open(listener, ip, port);
      if (made === null) return false;
      if (byPort === undefined) {
        byPort = new Map();
        this.peers.set(ip, byPort);
      }
      byPort.set(port, made);
      this.count++;
      peer = made;
    }
    if (!peer.connected) return false;
    peer.lastUse = Date.now();
    const native = peer.native;
    if (native !== null) {
      const errno = native.send(data);
      if (errno === 0) {
        this.sent++;
        return true;
      }
      if (errno === ECONNREFUSED) {
        // An earlier datagram met a closed port; this one was not sent either.
        this.unreachableFrom(peer, ip, port);
        return true;
      }
      if (errno !== EAGAIN) {
        this.failed(peer, ip, port, `errno ${errno}`);
        return false;
      }
      // Would block: dgram queues it.
    }
    try {
      peer.socket.send(data);
      this.sent++;
      return true;
    } catch {
      // Closed under us (a sweep racing a send): the listener sends instead.
      return false;
    }
  }

  /** Closes the socket of ip:port, if any (its node left). */
  forget(ip: string, port: number): void {
    this.drop(ip, port);
  }

  /** forget(), or with `only`: close that socket, and unlist it only if it is still ip:port's. */
  private drop(ip: string, port: number, only?: Peer): void {
    const byPort = this.peers.get(ip);
    const peer = byPort?.get(port);
    if (byPort === undefined || peer === undefined) {
      if (only !== undefined) this.closePeer(only);
      return;
    }
    if (only !== undefined && peer !== only) {
      this.closePeer(only);
      return;
    }
    byPort.delete(port);
    if (byPort.size === 0) this.peers.delete(ip);
    this.count--;
    this.closePeer(peer);
  }

  close(): void {
    clearInterval(this.timer);
    for (const byPort of this.peers.values()) for (const peer of byPort.values()) this.closePeer(peer);
    this.peers.clear();
    this.count = 0;
  }

  /** Closes sockets unused for idleMs and those of addresses that are no longer nodes'. */
  sweep(now: number): void {
    for (const [ip, byPort] of this.peers) {
      for (const [port, peer] of byPort) {
        if (now - peer.lastUse > this.idleMs || !this.opts.isPeer(ip, port)) this.forget(ip, port);
      }
    }
  }

  private open(listener: ListenerInfo, ip: string, port: number): Peer | null {
    const family = isIP(ip);
    const listenerFamily = isIP(listener.host);
    // Only beside a listener of the node's family: a dual-stack listener reaching an IPv4 node
    // through its v4-mapped form keeps doing so.
    if (family === 0 || listenerFamily !== family) return null;
    let socket: dgram.Socket;
    try {
      // The listeners' buffers: a node answering to this socket's port sends it as much as it
      // would send the listener, and a smaller queue would overflow first in a pause of the loop.
      socket = dgram.createSocket({
        type: family === 6 ? 'udp6' : 'udp4',
        recvBufferSize: this.opts.receiveBufferBytes ?? DEFAULT_UDP_RECEIVE_BUFFER, sendBufferSize: SEND_BUFFER_BYTES,
      });
    } catch {
      return null;
    }
    const peer = new Peer(socket, Date.now());
    const { side } = listener;
    const { maxMessageSize, onMessage } = this.opts;
    socket.on('message', (data, rinfo) => {
      // Connected: only ip:port's datagrams arrive here.
      if (data.length > maxMessageSize) return;
      onMessage(data, { transport: 'udp', side, ip, port: rinfo.port, connectionId: 0 });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.unreachableFrom(peer, ip, port);
      else this.failed(peer, ip, port, err.message);
    });
    try {
      socket.bind(0, listener.host, () => {
        if (peer.closed) return;
        socket.connect(port, ip, (err?: Error) => {
          if (err !== undefined && err !== null) this.drop(ip, port, peer);
          else if (!peer.closed) {
            if (this.opts.nativeIo ?? true) this.attachNative(peer, side, ip, port);
            peer.connected = true;
          }
        });
      });
    } catch {
      this.closePeer(peer);
      return null;
    }
    return peer;
  }

  /** native/udp.c takes over the connected socket, when it can (IPv4); dgram goes on otherwise. */
  private attachNative(peer: Peer, side: Side, ip: string, port: number): void {
    if (isIP(ip) !== 4) return;
    const { maxMessageSize, onMessage } = this.opts;
    peer.native = NativeUdpSocket.attach(peer.socket, maxMessageSize, {
      // Connected: only ip:port's datagrams arrive here.
      message: (data, _ip, fromPort) => onMessage(data, { transport: 'udp', side, ip, port: fromPort, connectionId: 0 }),
      oversized: () => {},
      error: (errno) => {
        if (errno === ECONNREFUSED) this.unreachableFrom(peer, ip, port);
        else this.failed(peer, ip, port, `errno ${errno}`);
      },
    }).socket;
  }

  private unreachableFrom(peer: Peer, ip: string, port: number): void {
    this.unreachable++;
    if (peer.unreachableGate()) this.opts.onUnreachable(ip, port);
  }

  private failed(peer: Peer, ip: string, port: number, why: string): void {
    this.errors++;
    if (this.errorLogGate()) this.opts.log.warn({ err: why, peer: `${ip}:${port}` }, 'UDP socket towards a node failed (logged at most every 10 s)');
    if (!peer.connected) this.drop(ip, port, peer);
  }

  private closePeer(peer: Peer): void {
    if (peer.closed) return;
    peer.closed = true;
    peer.connected = false;
    peer.native?.close();
    peer.native = null;
    try {
      peer.socket.close();
    } catch {
      // Already closed.
    }
  }
}
