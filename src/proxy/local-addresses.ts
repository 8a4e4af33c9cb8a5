// The addresses that mean "this balancer": where it listens, what it advertises in Via and
// Record-Route (its own or the IP load balancer's in front of it), per side and per transport,
// since Restcomm's files give each transport its own port. Route entries, Request-URIs and Vias
// naming one of them are ours.

import { networkInterfaces } from 'node:os';
import { ipLoadBalancerPort, isOnePortMode, sidePorts } from '../config/ports.ts';
import type { UsableTransports } from '../cluster/node.ts';
import type { Config, Transport } from '../config/types.ts';
import { formatHost } from '../sip/uri.ts';
import type { Side } from '../transport/types.ts';

interface TransportAddress {
  /** host:port written into our Via for this side and transport. */
  via: string;
  /** host:port written into Record-Route for this side and transport (the IP load balancer's when set). */
  recordRoute: string;
}

type SideAddresses = Record<Transport, TransportAddress>;

const WILDCARDS = new Set(['0.0.0.0', '::', '']);
const TRANSPORTS: readonly Transport[] = ['udp', 'tcp'];

export class LocalAddresses {
  readonly twoPorts: boolean;
  /** Transports the internal side can send with (the external side's with one port). */
  readonly towardsNodes: UsableTransports;
  private readonly sides: Record<Side, SideAddresses>;
  private readonly ours = new Set<string>();

  constructor(cfg: Config) {
    this.twoPorts = !isOnePortMode(cfg);
    const external = this.sideAddresses(cfg, 'external', cfg.externalHost);
    // With one port, clients and nodes share one socket and one Record-Route: both must see the
    // address clients can reach (the external IP load balancer's, when there is one).
    this.sides = { external, internal: this.twoPorts ? this.sideAddresses(cfg, 'internal', cfg.internalHost) : external };
    const nodeSide = sidePorts(cfg, this.twoPorts ? 'internal' : 'external');
    this.towardsNodes = { udp: nodeSide.udp !== null, tcp: nodeSide.tcp !== null };
  }

  via(side: Side, transport: Transport): string {
    return this.sides[side][transport].via;
  }

  recordRoute(side: Side, transport: Transport): string {
    return this.sides[side][transport].recordRoute;
  }

  /** host (lowercase, unbracketed) and port (null = default 5060) name this balancer. */
  isOurs(host: string, port: number | null): boolean {
    return this.ours.has(`${host}|${port ?? 5060}`);
  }

  private sideAddresses(cfg: Config, side: Side, bindHost: string): SideAddresses {
    const ports = sidePorts(cfg, side);
    // A transport without a listener of its own on this side is advertised with the side's
    // first port, so a Via or Record-Route is always well formed.
    const fallback = ports.udp ?? ports.tcp ?? 5060;
    const vipAddress = side === 'external' ? cfg.externalIpLoadBalancerAddress : cfg.internalIpLoadBalancerAddress;
    const advertised = formatHost(advertisedHost(bindHost));
    const out = {} as SideAddresses;
    for (const t of TRANSPORTS) {
      const listen = ports[t] ?? fallback;
      const own = `${advertised}:${listen}`;
      const vipPort = ipLoadBalancerPort(cfg, side, t, listen);
      const vip = vipAddress === null ? null : `${formatHost(vipAddress)}:${vipPort}`;
      out[t] = { via: cfg.useIpLoadBalancerAddressInViaHeaders && vip !== null ? vip : own, recordRoute: vip ?? own };
      if (ports[t] !== null) {
        if (WILDCARDS.has(bindHost)) for (const ip of interfaceAddresses()) this.add(ip, listen);
        else this.add(bindHost, listen);
      }
      if (vipAddress !== null && vipPort !== null) this.add(vipAddress, vipPort);
    }
    return out;
  }

  private add(host: string, port: number): void {
    this.ours.add(`${host.toLowerCase()}|${port}`);
  }
}

function advertisedHost(host: string): string {
  if (!WILDCARDS.has(host)) return host;
  // Bound to every interface: advertise the first non-loopback IPv4 (operators behind NAT set
  // externalIpLoadBalancerAddress instead).
  return interfaceAddresses().find((a) => a.includes('.') && !a.startsWith('127.')) ?? '127.0.0.1';
}

function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address.toLowerCase());
  return out;
}
