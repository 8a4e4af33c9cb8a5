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

/**
 * Transport to reach a node: the one the request came in on if the node has it and the balancer
 * can send it from that side (`usable`), else another the node has and the side can send; with
 * none in common, the node's first (the router then counts the drop).
 */
export function egressTransport(node: SipNode, preferred: Transport, usable: UsableTransports = BOTH): Transport {
  if (node.ports[preferred] !== undefined && usable[preferred]) return preferred;
  if (node.ports.udp !== undefined && usable.udp) return 'udp';
  if (node.ports.tcp !== undefined && usable.tcp) return 'tcp';
  return node.ports.udp !== undefined ? 'udp' : 'tcp';
}

/** Which transports the balancer has a listener (so a socket) for on one side. */
export type UsableTransports = Readonly<Record<Transport, boolean>>;

const BOTH: UsableTransports = { udp: true, tcp: true };
