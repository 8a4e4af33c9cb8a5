// The Restcomm switches that change what the proxy does with a message (isSendTrying,
// blockedValues, isSend5xxResponse*, matchingHostnameForRoute / isFilterSubdomain, publicIp /
// routingRules, and siplb's per-source limit pikeRequests), turned once at start-up into the
// form the data path reads: booleans, one compiled RegExp, prebuilt header text and lookup
// tables. Per message the proxy only reads them, and calls the lookups here (OwnTargets.isOurs,
// PublicRecordRoutes.forClient) only where a feature is on or an address is being asked about
// anyway.

import { SIP_TRANSPORTS, type Config, type RoutingRule, type Transport } from '../config/types.ts';
import { formatHost, parseHostPort } from '../sip/uri.ts';
import type { LocalAddresses } from './local-addresses.ts';
import type { SourceLimitSettings } from './source-rate-limit.ts';

export interface ProxyPolicy {
  /** isSendTrying: answer each INVITE about to be forwarded with 100 Trying, and absorb the 100s that come back. */
  readonly sendTrying: boolean;
  /** blockedValues as one case-insensitive alternation; null when the list is empty (off). */
  readonly blocked: RegExp | null;
  /** Status of the reply to a request siplb cannot forward: 503, or isSend5xxResponseSatusCode. */
  readonly unavailableStatus: number;
  /** Extra header lines of that reply: none, or the RFC 3326 Reason header. */
  readonly unavailableHeaders: readonly string[];
  /** matchingHostnameForRoute (lower case): a Route or Request-URI naming it names the balancer. */
  readonly routeHost: string | null;
  /** isFilterSubdomain: ... and so does any subdomain of it. */
  readonly routeSubdomains: boolean;
  /** publicIp with routingRulesIpv4, for IPv4 clients; null when publicIp is not set. */
  readonly publicIpv4: PublicAddress | null;
  /** publicIpv6 with routingRulesIpv6, for IPv6 clients. */
  readonly publicIpv6: PublicAddress | null;
  /** terminateTLSTraffic: a sips: request may reach a node over UDP or TCP (else only TLS or WSS). */
  readonly terminateTls: boolean;
  /** pikeRequests and the keys with it; null when pikeRequests is 0 (off). */
  readonly sourceLimit: SourceLimitSettings | null;
  /** overloadControl: shed new calls when the balancer falls behind (overload.ts). */
  readonly overloadControl: boolean;
  /**
   * workers > 1: siplb's Via towards a node over UDP asks for rport (RFC 3581), so a node that
   * honours it answers to the port the request came from, which with connectedNodeSockets is the
   * forwarding worker's own socket: that worker hears the answers to what it forwarded
   * (unanswered-INVITE tracking, passive health).
   */
  readonly viaRport: boolean;
}

export interface PublicAddress {
  /** The address (or name) clients behind the NAT reach the balancer on. */
  readonly host: string;
  /** Which clients are told it. */
  readonly rules: ClientRules;
}

export function proxyPolicy(cfg: Config): ProxyPolicy {
  return {
    sendTrying: cfg.isSendTrying,
    blocked: blockedPattern(cfg.blockedValues),
    unavailableStatus: cfg.isSend5xxResponse ? cfg.isSend5xxResponseSatusCode : 503,
    unavailableHeaders: cfg.isSend5xxResponse ? [reasonHeader(cfg.isSend5xxResponseSatusCode, cfg.isSend5xxResponseReasonHeader)] : [],
    routeHost: cfg.matchingHostnameForRoute === null ? null : cfg.matchingHostnameForRoute.toLowerCase(),
    routeSubdomains: cfg.isFilterSubdomain,
    publicIpv4: cfg.publicIp === null ? null : { host: cfg.publicIp, rules: new ClientRules(cfg.routingRulesIpv4) },
    publicIpv6: cfg.publicIpv6 === null ? null : { host: cfg.publicIpv6, rules: new ClientRules(cfg.routingRulesIpv6) },
    terminateTls: cfg.terminateTLSTraffic,
    overloadControl: cfg.overloadControl,
    viaRport: cfg.workers > 1,
    sourceLimit: cfg.pikeRequests === 0 ? null : { requests: cfg.pikeRequests, windowMs: cfg.pikeWindow, blockMs: cfg.pikeBlockTime, allow: cfg.pikeAllow },
  };
}

/** One RegExp for the whole list, so a request costs three scans (User-Agent, From, To), not three per entry. */
export function blockedPattern(values: readonly string[]): RegExp | null {
  if (values.length === 0) return null;
  return new RegExp(values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'i');
}

/** RFC 3326: `Reason: SIP ;cause=503 ;text="..."`; the config loader has refused quotes and control characters. */
export function reasonHeader(cause: number, text: string | null): string {
  return `Reason: SIP ;cause=${cause}${text === null ? '' : ` ;text="${text}"`}`;
}

/**
 * Restcomm's routingRulesIpv4/6: whether a client at an address is told the public address. The
 * most specific rule that matches decides: the exact address, else the longest matching prefix
 * (patterns ending in '*' match textually: '10.0.0.1*' matches 10.0.0.1 and 10.0.0.15), else
 * 'default'. A client no rule matches, and every client when there are no rules, is patched:
 * publicIp exists for clients outside the NAT, rules with patch=false carve out the ones inside.
 *
 * This differs from Restcomm, which uses the private address as soon as any patch=false rule
 * matches, whatever else matches (its patterns are Java regexes, and 'default' is one that never
 * matches an address). Most-specific-wins lets an operator make exceptions in both directions
 * (10.0.0.*=false, 10.0.0.7=true). The same pattern given twice with different answers keeps
 * the address private, which is also what Restcomm would do.
 */
export class ClientRules {
  private readonly exact = new Map<string, boolean>();
  /** Longest prefix first, so the first match is the most specific. */
  private readonly prefixes: { prefix: string; patch: boolean }[] = [];
  private readonly fallback: boolean = true;

  constructor(rules: readonly RoutingRule[]) {
    const prefixes = new Map<string, boolean>();
    for (const { pattern, patch } of rules) {
      const p = pattern.toLowerCase();
      if (p === 'default') this.fallback = this.fallback && patch;
      else if (p.endsWith('*')) prefixes.set(p.slice(0, -1), (prefixes.get(p.slice(0, -1)) ?? true) && patch);
      else this.exact.set(p, (this.exact.get(p) ?? true) && patch);
    }
    for (const [prefix, patch] of prefixes) this.prefixes.push({ prefix, patch });
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** True when the client at `address` (an IP literal, unbracketed; or a host name) gets the public address. */
  patches(address: string): boolean {
    const a = address.toLowerCase();
    const exact = this.exact.get(a);
    if (exact !== undefined) return exact;
    for (const { prefix, patch } of this.prefixes) if (a.startsWith(prefix)) return patch;
    return this.fallback;
  }
}

/**
 * What names the balancer in a Route entry or a Request-URI: its own addresses (LocalAddresses),
 * plus matchingHostnameForRoute (any port; with isFilterSubdomain its subdomains too) and the
 * public addresses with the ports written next to them in Record-Route. Vias are still checked
 * against LocalAddresses alone: siplb never writes these names into a Via.
 */
export class OwnTargets {
  private readonly addresses: LocalAddresses;
  private readonly routeHost: string | null;
  private readonly routeSuffix: string | null;
  /** `host|port` of the public addresses; null when neither publicIp nor publicIpv6 is set. */
  private readonly publicKeys: Set<string> | null;

  constructor(addresses: LocalAddresses, policy: ProxyPolicy, publicRecordRoutes: PublicRecordRoutes | null) {
    this.addresses = addresses;
    this.routeHost = policy.routeHost;
    this.routeSuffix = policy.routeHost !== null && policy.routeSubdomains ? `.${policy.routeHost}` : null;
    this.publicKeys = publicRecordRoutes === null ? null : publicRecordRoutes.keys();
  }

  /** host: lowercase, unbracketed (as parseSipUri gives it); port null = 5060. */
  isOurs(host: string, port: number | null): boolean {
    if (this.addresses.isOurs(host, port)) return true;
    if (this.routeHost !== null) {
      if (host === this.routeHost) return true;
      if (this.routeSuffix !== null && host.endsWith(this.routeSuffix)) return true;
    }
    return this.publicKeys !== null && this.publicKeys.has(`${host}|${port ?? 5060}`);
  }
}

const TRANSPORTS = SIP_TRANSPORTS;

/**
 * The host:port a patched client is given in our Record-Route, per family and transport: the
 * public address with the port of our external Record-Route entry (the port forwarding on the
 * NAT keeps the port, as Restcomm assumes).
 */
export class PublicRecordRoutes {
  private readonly v4: PublicAddress | null;
  private readonly v6: PublicAddress | null;
  private readonly v4HostPort: Record<Transport, string> | null;
  private readonly v6HostPort: Record<Transport, string> | null;
  private readonly ports: number[] = [];

  private constructor(policy: ProxyPolicy, addresses: LocalAddresses) {
    this.v4 = policy.publicIpv4;
    this.v6 = policy.publicIpv6;
    const portOf = {} as Record<Transport, number>;
    for (const t of TRANSPORTS) {
      portOf[t] = parseHostPort(addresses.recordRoute('external', t))?.port ?? 5060;
      if (!this.ports.includes(portOf[t])) this.ports.push(portOf[t]);
    }
    const hostPorts = (a: PublicAddress | null): Record<Transport, string> | null => {
      if (a === null) return null;
      const out = {} as Record<Transport, string>;
      for (const t of TRANSPORTS) out[t] = `${formatHost(a.host)}:${portOf[t]}`;
      return out;
    };
    this.v4HostPort = hostPorts(this.v4);
    this.v6HostPort = hostPorts(this.v6);
  }

  /** null when the policy has no public address: the caller keeps one null check on its hot path. */
  static of(policy: ProxyPolicy, addresses: LocalAddresses): PublicRecordRoutes | null {
    return policy.publicIpv4 === null && policy.publicIpv6 === null ? null : new PublicRecordRoutes(policy, addresses);
  }

  /**
   * The host:port to record-route a client at `client` (an IP literal, or the host name a
   * request out of the cluster is sent to) with over `transport`, or null: it gets our own.
   */
  forClient(client: string, transport: Transport): string | null {
    if (client.includes(':')) {
      return this.v6HostPort !== null && this.v6 !== null && this.v6.rules.patches(client) ? this.v6HostPort[transport] : null;
    }
    return this.v4HostPort !== null && this.v4 !== null && this.v4.rules.patches(client) ? this.v4HostPort[transport] : null;
  }

  /** `host|port` keys (LocalAddresses' form) of every public address we write. */
  keys(): Set<string> {
    const out = new Set<string>();
    for (const a of [this.v4, this.v6]) {
      if (a === null) continue;
      for (const port of this.ports) out.add(`${a.host.toLowerCase()}|${port}`);
    }
    return out;
  }
}
