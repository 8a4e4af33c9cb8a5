// The contract between the transport layer and what sits on it (the proxy): where a message came
// from, where one goes, and what every message transport (UDP, TCP, TLS, WS, WSS) offers.
// The proxy never sees a socket: it receives (data, Inbound) and hands (Destination, data) to
// the router, which picks the endpoint or the connection.

import type { Logger } from 'pino';
import type { Transport } from '../config/types.ts';
import type { ConnectionTable } from './connections.ts';
import type { ClientAuth, TlsFiles } from './tls-files.ts';

/** external: the clients' side; internal: the application servers' side. One port serves both when internalPort is unset. */
export type Side = 'external' | 'internal';

/** Where a message came from: the socket side it arrived on and the peer's address. */
export interface Inbound {
  readonly transport: Transport;
  readonly side: Side;
  readonly ip: string;
  readonly port: number;
  /** The stream connection it arrived on (ConnectionTable id); 0 for datagrams. */
  readonly connectionId: number;
}

/** Where a message goes. */
export interface Destination {
  readonly side: Side;
  readonly transport: Transport;
  /** IP literal or host name; the router resolves names. */
  readonly host: string;
  readonly port: number;
  /** Stream transports: send on this connection while it is open (a reply to what came on it). */
  readonly connectionId?: number;
  /** Stream transports: where to connect when no connection to host:port is open (RFC 3261 §18.2.2). */
  readonly fallbackPort?: number;
}

export type MessageHandler = (data: Buffer, src: Inbound) => void;

/** What the proxy sends through: never throws, failures are counted where they happen. */
export interface Outbound {
  send(dest: Destination, data: Buffer): void;
}

/** What TLS and WSS endpoints secure their connections with. */
export interface TlsSettings {
  readonly files: TlsFiles;
  readonly clientAuth: ClientAuth;
  /** A handshake not finished within this is abandoned (and the connection closed). */
  readonly handshakeTimeoutMs: number;
}

/** What WS and WSS endpoints need beyond a stream's options (RFC 7118). */
export interface WebSocketSettings {
  /** Origin header values a handshake may carry (lowercase); empty: any. */
  readonly allowedOrigins: readonly string[];
  /** A connection quiet this long is pinged; two pings unanswered close it. */
  readonly pingIntervalMs: number;
}

/** Everything an endpoint is built from. */
export interface EndpointOptions {
  readonly side: Side;
  /** Address to bind (IPv4 or IPv6 literal, 0.0.0.0 or ::). */
  readonly host: string;
  readonly port: number;
  /** Largest message accepted, in bytes. */
  readonly maxMessageSize: number;
  /** UDP: bytes asked for the socket's receive queue (default DEFAULT_UDP_RECEIVE_BUFFER, udp.ts). */
  readonly receiveBufferBytes?: number;
  /** UDP: read and send through native/udp.c where it can (default true; IPv4 sockets only). */
  readonly udpNativeIo?: boolean;
  readonly log: Logger;
  /** Called for every complete message received; the transport does not interpret it. */
  readonly onMessage: MessageHandler;
  /** Where stream transports register their connections. */
  readonly connections: ConnectionTable;
  /** Stream transports: connections one address may open to this endpoint (default 1000). */
  readonly maxConnectionsPerSource?: number;
  /** Stream transports: how long a message begun may take to arrive whole (default 20 s). */
  readonly slowSenderTimeoutMs?: number;
  /** TCP and TLS: how long an accepted connection may stay without a whole first message (default 30 s). */
  readonly firstMessageTimeoutMs?: number;
  /** TCP and TLS: connections the endpoint holds in all (default 10 000; tests lower it). */
  readonly maxConnections?: number;
  /** TCP and TLS: a connection that carries nothing for this long is closed (default 10 minutes). */
  readonly idleTimeoutMs?: number;
  /** TLS and WSS: certificates and handshake policy. */
  readonly tls?: TlsSettings;
  /** WS and WSS. */
  readonly ws?: WebSocketSettings;
  /**
   * Bind with SO_REUSEPORT, sharing the port with other processes that do the same (the workers
   * of one siplb); absent: the process's setting (port-sharing.ts), off unless workers > 1.
   */
  readonly reusePort?: boolean;
}

/** One listening endpoint of one transport on one side. */
export interface MessageTransport {
  readonly transport: Transport;
  readonly side: Side;
  /** Bind host:port of the options; rejects with BindError. */
  listen(): Promise<void>;
  /** Where it listens (port 0 in the options picks a free one). */
  address(): { address: string; port: number };
  /**
   * Send to an IP literal. Never throws: an impossible address, a full queue or a refused
   * connection is counted. `fallbackPort`: stream transports connect there when no connection
   * to ip:port is open.
   */
  send(ip: string, port: number, data: Buffer, fallbackPort?: number): void;
  close(): Promise<void>;
  /** UDP: SO_RCVBUF as the kernel set it (what its queue holds before it drops); 0 if unknown. */
  receiveBufferBytes?(): number;
  /** TLS and WSS: certificates for handshakes to come (SIGHUP); open connections keep theirs. */
  reloadTls?(files: TlsFiles): void;
}

export type EndpointFactory = (opts: EndpointOptions) => MessageTransport;
