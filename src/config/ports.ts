// Which SIP listeners a configuration opens, from Restcomm's two generations of port keys: the
// per-transport keys (externalUdpPort, internalTcpPort, ...; 0 = off) and the older externalPort
// / internalPort that mean UDP and TCP together. A per-transport key wins over the older key for
// its transport; externalTransport / internalTransport limit which of UDP and TCP a side uses. With no
// external port key at all, siplb listens on 5060 for UDP and TCP; with no internal port key at
// all, clients and nodes share the external listeners (Restcomm's one-port mode).

import { SIP_TRANSPORTS, type Config, type PortSet, type SipTransport } from './types.ts';

export type Side = 'external' | 'internal';

/** Listener port per transport on one side (null: no listener). */
export function sidePorts(cfg: Config, side: Side): PortSet {
  const perTransport = (t: SipTransport): number | null => cfg[portKey(side, t)];
  const anyPerTransport = SIP_TRANSPORTS.some((t) => perTransport(t) !== null);
  const general = side === 'external' ? cfg.externalPort : cfg.internalPort;
  const base = general ?? (side === 'external' && !anyPerTransport ? 5060 : null);
  const baseTransports = side === 'external' ? cfg.externalTransports : cfg.internalTransports;
  const out = {} as PortSet;
  for (const t of SIP_TRANSPORTS) {
    const plain = t === 'udp' || t === 'tcp';
    // externalTransport / internalTransport name the plain transports a side uses at all: Restcomm's
    // internalTransport is the transport it reaches nodes with, whatever ports are open.
    if (plain && !baseTransports.includes(t)) {
      out[t] = null;
      continue;
    }
    const port = perTransport(t) ?? (plain ? base : null);
    out[t] = port === 0 ? null : port;
  }
  return out;
}

/**
 * Listener port per transport on one side's IPv6 address (ipv6Host, externalIpv6Host,
 * internalIpv6Host), or null when the side has no IPv6 address: each transport takes its
 * external|internalIpv6<T>Port key, else the same port as on IPv4 (0 turns it off).
 */
export function sidePortsV6(cfg: Config, side: Side): PortSet | null {
  const host = side === 'external' ? cfg.externalIpv6Host : cfg.internalIpv6Host;
  if (host === null) return null;
  const v4 = sidePorts(cfg, side);
  const out = {} as PortSet;
  for (const t of SIP_TRANSPORTS) {
    const own = cfg[`${side}Ipv6${capitalize(t)}Port`];
    const port = own ?? v4[t];
    out[t] = port === 0 ? null : port;
  }
  return out;
}

/** The port the IPv6 load balancer in front of `side` takes for transport t. */
export function ipv6LoadBalancerPort(cfg: Config, side: Side, t: SipTransport, listenPort: number | null): number | null {
  const own = cfg[`${side}Ipv6LoadBalancer${capitalize(t)}Port`];
  return own !== null && own !== 0 ? own : listenPort;
}

/** Restcomm's one-port mode: the internal side has no listener of its own. */
export function isOnePortMode(cfg: Config): boolean {
  const internal = sidePorts(cfg, 'internal');
  return SIP_TRANSPORTS.every((t) => internal[t] === null);
}

/** The port the IP load balancer in front of `side` takes for transport t (Via / Record-Route). */
export function ipLoadBalancerPort(cfg: Config, side: Side, t: SipTransport, listenPort: number | null): number | null {
  const own = cfg[ipLoadBalancerPortKey(side, t)];
  if (own !== null && own !== 0) return own;
  const general = side === 'external' ? cfg.externalIpLoadBalancerPort : cfg.internalIpLoadBalancerPort;
  return general ?? listenPort;
}

export function ipLoadBalancerPortKey(side: Side, t: SipTransport): `${Side}IpLoadBalancer${Capitalize<SipTransport>}Port` {
  return `${side}IpLoadBalancer${capitalize(t)}Port`;
}

export function portKey(side: Side, t: SipTransport): `${Side}${Capitalize<SipTransport>}Port` {
  return `${side}${capitalize(t)}Port`;
}

function capitalize<T extends SipTransport>(t: T): Capitalize<T> {
  return `${t[0].toUpperCase()}${t.slice(1)}` as Capitalize<T>;
}
