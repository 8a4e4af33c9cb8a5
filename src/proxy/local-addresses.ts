// The addresses that mean "this balancer": where it listens, what it advertises in Via and
// Record-Route (its own or the IP load balancer's in front of it). Route entries, Request-URIs
// and Vias naming one of them are ours.

import { networkInterfaces } from 'node:os';
import type { Config } from '../config/types.ts';
import { formatHost } from '../sip/uri.ts';
import type { Side } from '../transport/types.ts';

export interface SideAddress {
  /** host:port written into our Via on this side. */
  via: string;
  /** host:port written into Record-Route on this side (the IP load balancer's when set). */
  recordRoute: string;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

export class LocalAddresses {
  readonly twoPorts: boolean;
  private readonly sides: Record<Side, SideAddress>;
  private readonly ours = new Set<string>();

  constructor(cfg: Config) {
    this.twoPorts = cfg.internalPort !== null;
    const ext = advertisedHost(cfg.externalHost);
    const int = advertisedHost(cfg.internalHost);
    const intPort = cfg.internalPort ?? cfg.externalPort;
    const extVip = cfg.externalIpLoadBalancerAddress === null ? null
      : `${formatHost(cfg.externalIpLoadBalancerAddress)}:${cfg.externalIpLoadBalancerPort ?? cfg.externalPort}`;
    const intVip = cfg.internalIpLoadBalancerAddress === null ? null
      : `${formatHost(cfg.internalIpLoadBalancerAddress)}:${cfg.internalIpLoadBalancerPort ?? intPort}`;
    const extOwn = `${formatHost(ext)}:${cfg.externalPort}`;
    const intOwn = `${formatHost(int)}:${intPort}`;
    const useVipInVia = cfg.useIpLoadBalancerAddressInViaHeaders;
    const external = { via: useVipInVia && extVip !== null ? extVip : extOwn, recordRoute: extVip ?? extOwn };
    // With one port, clients and nodes share one socket and one Record-Route: both must see the
    // address clients can reach (the external IP load balancer's, when there is one).
    this.sides = {
      external,
      internal: this.twoPorts ? { via: useVipInVia && intVip !== null ? intVip : intOwn, recordRoute: intVip ?? intOwn } : external,
    };
    for (const [host, port] of [[cfg.externalHost, cfg.externalPort], [cfg.internalHost, intPort]] as const) {
      if (WILDCARDS.has(host)) for (const ip of interfaceAddresses()) this.add(ip, port);
      else this.add(host, port);
    }
    if (cfg.externalIpLoadBalancerAddress !== null) this.add(cfg.externalIpLoadBalancerAddress, cfg.externalIpLoadBalancerPort ?? cfg.externalPort);
    if (cfg.internalIpLoadBalancerAddress !== null) this.add(cfg.internalIpLoadBalancerAddress, cfg.internalIpLoadBalancerPort ?? intPort);
  }

  side(side: Side): SideAddress {
    return this.sides[side];
  }

  /** host (lowercase, unbracketed) and port (null = default 5060) name this balancer. */
  isOurs(host: string, port: number | null): boolean {
    return this.ours.has(`${host}|${port ?? 5060}`);
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
