// A SIP application server behind the balancer, as the data path sees it.

import type { Transport } from '../config/types.ts';
import { formatHost } from '../sip/uri.ts';

export interface SipNode {
  /** Stable identity, `ip:port` of the node's first SIP port; also the Record-Route hint. */
  readonly id: string;
  readonly ip: string;
  /** SIP ports by transport; at least one is present. */
  readonly ports: Readonly<Partial<Record<Transport, number>>>;
  readonly weight: number;
  /** The node's HTTP side, when it has one: only such a node is an HTTP target. */
  readonly http?: HttpTarget;
}

/** What a node serves over HTTP (from its heartbeat `start`, or `nodes=` parameters). */
export interface HttpTarget {
  /** Plain HTTP port. */
  readonly port: number;
  /** HTTPS port, if the node offers one. */
  readonly sslPort?: number;
  /** SIP over WebSocket port: a WebSocket with `Sec-WebSocket-Protocol: sip` goes there. */
  readonly wsPort?: number;
  /** Tomcat/JBoss jvmRoute: the suffix of the session ids the node issues (`<id>.<jvmRoute>`). */
  readonly jvmRoute?: string;
}

export function nodeId(ip: string, port: number): string {
  return `${formatHost(ip)}:${port}`;
}

/** The order transports are tried in when the preferred one will not do: cheapest first. */
const FALLBACK_ORDER: readonly Transport[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

/**
 * Transport to reach a node: the one the request came in on if the node has it and the balancer
 * can send it from that side (`usable`), else another the node has and the side can send, the
 * cheapest first. `secure`: only TLS or WSS will do (a sips: request, RFC 3261 §26.2.2). Null:
 * nothing in common.
 */
export function egressTransport(node: SipNode, preferred: Transport, usable: UsableTransports = ALL, secure = false): Transport | null {
  if (node.ports[preferred] !== undefined && usable[preferred] && (!secure || isSecure(preferred))) return preferred;
  for (const t of FALLBACK_ORDER) {
    if (node.ports[t] !== undefined && usable[t] && (!secure || isSecure(t))) return t;
  }
  return null;
}

export function isSecure(t: Transport): boolean {
  return t === 'tls' || t === 'wss';
}

/** Which transports the balancer has a listener (so a socket, and an address to advertise) for on one side. */
export type UsableTransports = Readonly<Record<Transport, boolean>>;

const ALL: UsableTransports = { udp: true, tcp: true, tls: true, ws: true, wss: true };
