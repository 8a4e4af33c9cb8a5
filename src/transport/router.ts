// The one place messages leave through. The proxy names a destination (side, transport, host,
// port, maybe the connection it belongs to); the router sends on that connection while it is
// open, else through the endpoint of that transport on that side in the destination's address
// family (the external one when the side has none: with one port, both sides share it; the
// other family's when the side has only one), resolving a host name first. It owns the
// endpoints, so the composition root only says which to open.

import type { Logger } from 'pino';
import type { Transport } from '../config/types.ts';
import { ENDPOINT_FACTORIES } from './catalog.ts';
import { ConnectionTable } from './connections.ts';
import { Resolver } from './resolver.ts';
import type { TlsFiles } from './tls-files.ts';
import type { BoundUdpSocket } from './udp-backlog.ts';
import { UdpPeers, type ListenerInfo } from './udp-peers.ts';
import { setUdpReadDelay } from './udp-native.ts';
import type { Destination, MessageHandler, MessageTransport, Outbound, Side, TlsSettings, WebSocketSettings } from './types.ts';

export interface RouterOptions {
  readonly log: Logger;
  readonly maxMessageSize: number;
  /** UDP sockets: bytes asked for each receive queue (default DEFAULT_UDP_RECEIVE_BUFFER). */
  readonly udpReceiveBuffer?: number;
  /** UDP sockets: read and send through native/udp.c where it can (default true). */
  readonly udpNativeIo?: boolean;
  /** Native UDP reads: ms a readable socket waits while datagrams are dense (setUdpReadDelay; default 0). */
  readonly udpReadDelay?: number;
  /** Stream endpoints: connections one address may open to each (default 1000). */
  readonly maxConnectionsPerSource?: number;
  /** TCP and TLS endpoints: connections each holds in all, and the deadlines of a connection (socket-connection.ts). */
  readonly streams?: { maxConnections: number; firstMessageTimeoutMs: number; slowSenderTimeoutMs: number; idleTimeoutMs: number };
  /** Every message any endpoint receives. */
  readonly onMessage: MessageHandler;
  /** A message that could not be sent, by reason (no endpoint for its transport, unresolvable host). */
  readonly onDrop: (reason: string) => void;
  readonly resolver?: Resolver;
  /** TLS and WSS endpoints: certificates and handshake policy. */
  readonly tls?: TlsSettings;
  /** WS and WSS endpoints. */
  readonly ws?: WebSocketSettings;
  /**
   * UDP to nodes on a connected socket per node (udp-peers.ts): which addresses are nodes', and
   * what to do when one answers with ICMP port unreachable. Absent: the listeners send everything.
   */
  readonly nodeSockets?: {
    isNode(ip: string, port: number): boolean;
    onUnreachable(ip: string, port: number): void;
  };
}

/** One endpoint to open. */
export interface Listener {
  readonly side: Side;
  readonly transport: Transport;
  readonly host: string;
  readonly port: number;
}

export class TransportRouter implements Outbound {
  readonly connections = new ConnectionTable();
  private readonly opts: RouterOptions;
  private readonly resolver: Resolver;
  /** Connected sockets towards nodes; null when off. */
  readonly peers: UdpPeers | null;
  /** Each endpoint's configured address and side, for the node sockets beside it. */
  private readonly listeners = new Map<MessageTransport, ListenerInfo>();
  /** By family (4, 6), then side, then transport. */
  private readonly endpoints: Record<4 | 6, Record<Side, Partial<Record<Transport, MessageTransport>>>> = {
    4: { external: {}, internal: {} },
    6: { external: {}, internal: {} },
  };

  constructor(opts: RouterOptions) {
    this.opts = opts;
    this.setUdpReadDelay(opts.udpReadDelay ?? 0);
    this.resolver = opts.resolver ?? new Resolver();
    const n = opts.nodeSockets;
    this.peers = n === undefined ? null : new UdpPeers({
      log: opts.log, onMessage: opts.onMessage, maxMessageSize: opts.maxMessageSize, receiveBufferBytes: opts.udpReceiveBuffer,
      nativeIo: opts.udpNativeIo, isPeer: (ip, port) => n.isNode(ip, port), onUnreachable: (ip, port) => n.onUnreachable(ip, port),
    });
  }

  /** Opens one endpoint; rejects with BindError (the endpoint is kept, so close() releases it). */
  async listen(l: Listener): Promise<MessageTransport> {
    const ep = ENDPOINT_FACTORIES[l.transport]({
      side: l.side, host: l.host, port: l.port, maxMessageSize: this.opts.maxMessageSize,
      receiveBufferBytes: this.opts.udpReceiveBuffer, udpNativeIo: this.opts.udpNativeIo,
      maxConnectionsPerSource: this.opts.maxConnectionsPerSource,
      ...this.opts.streams,
      log: this.opts.log, onMessage: this.opts.onMessage, connections: this.connections,
      tls: this.opts.tls, ws: this.opts.ws,
    });
    this.endpoints[l.host.includes(':') ? 6 : 4][l.side][l.transport] = ep;
    this.listeners.set(ep, { host: l.host, side: l.side });
    await ep.listen();
    return ep;
  }

  send(dest: Destination, data: Buffer): void {
    if (dest.connectionId !== undefined && dest.connectionId !== 0) {
      const conn = this.connections.get(dest.connectionId);
      if (conn !== undefined) {
        conn.write(data);
        return;
      }
    }
    const ip = this.resolver.resolve(dest.host);
    if (typeof ip === 'string') {
      this.sendTo(dest, ip, data);
      return;
    }
    ip.then((resolved) => {
      if (resolved === null) {
        this.opts.onDrop('unresolvable-next-hop');
        this.opts.log.warn({ host: dest.host }, 'next hop does not resolve; message dropped');
      } else this.sendTo(dest, resolved, data);
    }, () => this.opts.onDrop('unresolvable-next-hop'));
  }

  /** Where the UDP endpoints listen: overload control reads their kernel receive queues. */
  udpSockets(): BoundUdpSocket[] {
    const out: BoundUdpSocket[] = [];
    for (const ep of this.all()) {
      if (ep.transport !== 'udp') continue;
      try {
        const { address, port } = ep.address();
        out.push({ address, port, receiveBufferBytes: ep.receiveBufferBytes?.() ?? 0 });
      } catch {
        // Not bound (yet, or any more): nothing queues there.
      }
    }
    return out;
  }

  /** The delay of native UDP reads, process-wide (nothing to do when UDP goes through dgram). */
  setUdpReadDelay(ms: number): void {
    if (this.opts.udpNativeIo !== false) setUdpReadDelay(ms);
  }

  /** Certificates for the TLS and WSS endpoints' handshakes to come; returns how many took them. */
  reloadTls(files: TlsFiles): number {
    let n = 0;
    for (const ep of this.all()) {
      if (ep.reloadTls !== undefined && (ep.transport === 'tls' || ep.transport === 'wss')) {
        ep.reloadTls(files);
        n++;
      }
    }
    return n;
  }

  close(): Promise<unknown> {
    this.peers?.close();
    return Promise.all(this.all().map((e) => e.close().catch(() => undefined)));
  }

  private sendTo(dest: Destination, ip: string, data: Buffer): void {
    if (dest.transport !== 'udp' && this.connections.toPeer(dest.transport, dest.side, ip, dest.port) === undefined) {
      // The peer's connection on another stream transport than it named (a TLS tunnel in front
      // of a TCP client): the connection wins, it is the one way back that surely works.
      const other = this.connections.atAddress(dest.side, ip, dest.port);
      if (other !== undefined) {
        other.write(data);
        return;
      }
    }
    const ep = this.endpointFor(dest.side, dest.transport, ip.includes(':') ? 6 : 4);
    if (ep === undefined) this.opts.onDrop(`no-${dest.transport}-socket`);
    else if (this.peers === null || dest.side !== 'internal' || ep.transport !== 'udp' || !this.sendToPeer(this.peers, ep, ip, dest.port, data)) {
      ep.send(ip, dest.port, data, dest.fallbackPort);
    }
  }

  private sendToPeer(peers: UdpPeers, ep: MessageTransport, ip: string, port: number, data: Buffer): boolean {
    const listener = this.listeners.get(ep);
    return listener !== undefined && peers.send(listener, ip, port, data);
  }

  private endpointFor(side: Side, transport: Transport, family: 4 | 6): MessageTransport | undefined {
    const same = this.endpoints[family];
    const other = this.endpoints[family === 4 ? 6 : 4];
    return same[side][transport] ?? same.external[transport] ?? other[side][transport] ?? other.external[transport];
  }

  private all(): MessageTransport[] {
    const out: MessageTransport[] = [];
    for (const family of [4, 6] as const) for (const side of Object.values(this.endpoints[family])) out.push(...Object.values(side));
    return out;
  }
}
