// The addresses that mean "this balancer": where it listens, what it advertises in Via and
// Record-Route (its own or the IP load balancer's in front of it), per side, per transport
// (Restcomm's files give each transport its own port) and per address family (ipv6Host binds
// the same listeners on an IPv6 address; a peer is told the address of its own family). Route
// entries, Request-URIs and Vias naming one of them are ours.

import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ipLoadBalancerPort, ipv6LoadBalancerPort, isOnePortMode, sidePorts, sidePortsV6 } from '../config/ports.ts';
import type { UsableTransports } from '../cluster/node.ts';
import { SIP_TRANSPORTS, vipAddressList, type Config, type PortSet, type Transport } from '../config/types.ts';
import { formatHost } from '../sip/uri.ts';
import type { Side } from '../transport/types.ts';

export type Family = 4 | 6;

interface TransportAddress {
  /** host:port written into our Via for this side and transport. */
  via: string;
  /** host:port written into Record-Route for this side and transport (the IP load balancer's when set). */
  recordRoute: string;
}

type FamilyAddresses = Record<Transport, TransportAddress>;
interface SideAddresses {
  v4: FamilyAddresses;
  /** The side's IPv6 addresses; its IPv4 ones when it has no IPv6 address. */
  v6: FamilyAddresses;
  /** Transports the side has a listener for, in either family. */
  listens: UsableTransports;
  hasV6: boolean;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

export class LocalAddresses {
  readonly twoPorts: boolean;
  /** Transports the internal side can send with (the external side's with one port). */
  readonly towardsNodes: UsableTransports;
  /** Some side has IPv6 addresses of its own (ipv6Host, or bound to ::): the families' peers are told different addresses. */
  readonly dualStack: boolean;
  private readonly sides: Record<Side, SideAddresses>;
  /** Our hosts (lowercase) and the ports each listens on: looked up per message without building a key. */
  private readonly ours = new Map<string, number[]>();

  constructor(cfg: Config) {
    this.twoPorts = !isOnePortMode(cfg);
    const external = this.sideAddresses(cfg, 'external');
    // With one port, clients and nodes share one socket and one Record-Route: both must see the
    // address clients can reach (the external IP load balancer's, when there is one).
    this.sides = { external, internal: this.twoPorts ? this.sideAddresses(cfg, 'internal') : external };
    this.towardsNodes = this.sides.internal.listens;
    this.dualStack = this.sides.external.hasV6 || this.sides.internal.hasV6;
  }

  via(side: Side, transport: Transport, family: Family = 4): string {
    const s = this.sides[side];
    return (family === 6 ? s.v6 : s.v4)[transport].via;
  }

  recordRoute(side: Side, transport: Transport, family: Family = 4): string {
    const s = this.sides[side];
    return (family === 6 ? s.v6 : s.v4)[transport].recordRoute;
  }

  /** The side has a listener for this transport (so it can send it, and be reached on it). */
  listens(side: Side, transport: Transport): boolean {
    return this.sides[side].listens[transport];
  }

  /** host (lowercase, unbracketed) and port (null = default 5060) name this balancer. */
  isOurs(host: string, port: number | null): boolean {
    const ports = this.ours.get(host);
    return ports !== undefined && ports.includes(port ?? 5060);
  }

  private sideAddresses(cfg: Config, side: Side): SideAddresses {
    const bindHost = side === 'external' ? cfg.externalHost : cfg.internalHost;
    const ports = sidePorts(cfg, side);
    const v4Vip = side === 'external' ? cfg.externalIpLoadBalancerAddress : cfg.internalIpLoadBalancerAddress;
    const v4 = this.familyAddresses(cfg, bindHost, ports, v4Vip, (t, listen) => ipLoadBalancerPort(cfg, side, t, listen));
    const v6Host = side === 'external' ? cfg.externalIpv6Host : cfg.internalIpv6Host;
    const v6Ports = sidePortsV6(cfg, side);
    const v6Vip = side === 'external' ? cfg.externalIpv6LoadBalancerAddress : cfg.internalIpv6LoadBalancerAddress;
    let v6 = v4;
    if (v6Host !== null && v6Ports !== null) {
      v6 = this.familyAddresses(cfg, v6Host, v6Ports, v6Vip, (t, listen) => ipv6LoadBalancerPort(cfg, side, t, listen));
    } else if (bindHost === '::' || isIPv6(bindHost)) {
      // Bound dual-stack (or on IPv6 only): IPv6 peers get an IPv6 address of ours.
      v6 = this.familyAddresses(cfg, bindHost, ports, v6Vip, (t, listen) => ipv6LoadBalancerPort(cfg, side, t, listen), 6);
    }
    const listens = {} as Record<Transport, boolean>;
    for (const t of SIP_TRANSPORTS) listens[t] = ports[t] !== null || (v6Ports !== null && v6Ports[t] !== null);
    return { v4, v6, listens, hasV6: v6 !== v4 };
  }

  private familyAddresses(
    cfg: Config, bindHost: string, ports: PortSet, vipField: string | null,
    vipPortOf: (t: Transport, listen: number | null) => number | null, family: Family = isIPv6(bindHost) ? 6 : 4,
  ): FamilyAddresses {
    // Restcomm's list: the first address is advertised, any of them names this balancer.
    const vipAddresses = vipAddressList(vipField);
    const vipAddress = vipAddresses.length === 0 ? null : vipAddresses[0];
    // A transport without a listener of its own on this side is advertised with the side's
    // first port, so a Via or Record-Route is always well formed.
    const fallback = ports.udp ?? ports.tcp ?? ports.tls ?? ports.ws ?? ports.wss ?? 5060;
    const advertised = formatHost(advertisedHost(bindHost, family));
    const out = {} as FamilyAddresses;
    for (const t of SIP_TRANSPORTS) {
      const listen = ports[t] ?? fallback;
      const own = `${advertised}:${listen}`;
      const vipPort = vipPortOf(t, listen);
      const vip = vipAddress === null ? null : `${formatHost(vipAddress)}:${vipPort}`;
      out[t] = { via: cfg.useIpLoadBalancerAddressInViaHeaders && vip !== null ? vip : own, recordRoute: vip ?? own };
      if (ports[t] !== null) {
        if (WILDCARDS.has(bindHost)) for (const ip of interfaceAddresses()) this.add(ip, listen);
        else this.add(bindHost, listen);
      }
      if (vipPort !== null) for (const address of vipAddresses) this.add(address, vipPort);
    }
    return out;
  }

  private add(host: string, port: number): void {
    const key = host.toLowerCase();
    const ports = this.ours.get(key);
    if (ports === undefined) this.ours.set(key, [port]);
    else if (!ports.includes(port)) ports.push(port);
  }
}

function advertisedHost(host: string, family: Family): string {
  if (!WILDCARDS.has(host)) return host;
  // Bound to every interface: advertise the first non-loopback address of the family (operators
  // behind NAT set externalIpLoadBalancerAddress instead).
  const all = interfaceAddresses();
  if (family === 6) return all.find((a) => a.includes(':') && a !== '::1' && !a.startsWith('fe80')) ?? '::1';
  return all.find((a) => a.includes('.') && !a.startsWith('127.')) ?? '127.0.0.1';
}

function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address.toLowerCase());
  return out;
}
