// Every configuration key siplb reads, in one table, for both of Restcomm's formats: the
// properties name (lb.properties, lb-configuration.properties) and where the same setting sits in
// lb-configuration.xml. Validation (load.ts, xml.ts) and the reference in docs/configuration.md
// (scripts/config-table.ts) are all driven from here so they cannot disagree. The table is keyed
// by Config field, so adding a Config field without a key here is a compile error. Rules that
// involve two keys (derived defaults, port clashes) live in load.ts; Restcomm keys siplb does not
// act on are listed in restcomm-keys.ts.

import { isIP, SocketAddress } from 'node:net';
import { availableParallelism } from 'node:os';
import { ipBytes } from '../core/ip.ts';
import { ConfigError } from '../core/errors.ts';
import {
  MAX_NODE_WEIGHT, MIN_NODE_WEIGHT, PORT_KEY_PREFIXES, SIP_TRANSPORTS,
  type Config, type HostPort, type PlainTransport, type PortKeyName, type PortKeyPrefix, type RoutingRule, type StaticHttpSpec, type StaticNodeSpec, type Transport,
} from './types.ts';

/** Turns a property value (already unescaped and trimmed) into a typed value, or throws ConfigError. */
export type Parser<T> = (raw: string, key: string) => T;

export interface KeySpec<F extends keyof Config> {
  readonly key: string;          // name in lb.properties
  readonly field: F;             // Config field it fills
  readonly shownDefault: string; // default as a human reads it; derived defaults are described
  readonly description: string;  // one line
  readonly defaultValue: Config[F];
  readonly parse: Parser<Config[F]>;
  /** Other properties names Restcomm used for the same setting (e.g. public-ip). */
  readonly aliases?: readonly string[];
  /**
   * Where lb-configuration.xml holds it, as element paths below <load-balancer-properties>;
   * several when Restcomm's own files put it in more than one place. Absent: siplb's own key,
   * written in XML as <siplb><key>value</key></siplb>.
   */
  readonly xml?: readonly string[];
}

export type AnyKeySpec = { [F in keyof Config]: KeySpec<F> }[keyof Config];

/** Restcomm passes keys with these prefixes to its JAIN-SIP stack; siplb accepts and ignores them. */
export const SIP_STACK_KEY_PREFIXES: readonly string[] = ['javax.sip.', 'gov.nist.'];

// Java's Integer.MAX_VALUE, the range Restcomm accepts; also the longest delay setTimeout honours
// (larger values fire immediately), which matters for the millisecond keys.
const MAX_JAVA_INT = 2147483647;

type Reject = (reason: string) => never;

function rejecter(key: string, raw: string): Reject {
  return (reason) => {
    throw new ConfigError(key, raw, reason);
  };
}

// List keys name the offending entry so an operator with twenty nodes finds the bad one.
function entryRejecter(key: string, raw: string, entry: string): Reject {
  return (reason) => {
    throw new ConfigError(key, raw, `entry '${entry}': ${reason}`);
  };
}

function integerIn(text: string, min: number, max: number, reject: Reject, reason: string): number {
  // Digits only: Number() would also accept '0x10', '1e3', ' 5' and '5.0'.
  if (!/^[0-9]+$/.test(text)) reject(reason);
  const n = Number(text);
  if (n < min || n > max) reject(reason);
  return n;
}

const PORT_REASON = 'port must be an integer from 1 to 65535';

function portNumber(text: string, reject: Reject): number {
  return integerIn(text, 1, 65535, reject, PORT_REASON);
}

const port: Parser<number> = (raw, key) => portNumber(raw, rejecter(key, raw));

// Restcomm's files write 0 for "no listener on this transport".
const portOrOff: Parser<number> = (raw, key) =>
  integerIn(raw, 0, 65535, rejecter(key, raw), 'port must be an integer from 0 (off) to 65535');

function positiveInt(unit: string): Parser<number> {
  return (raw, key) =>
    integerIn(raw, 1, MAX_JAVA_INT, rejecter(key, raw), `must be an integer from 1 to ${MAX_JAVA_INT} (${unit})`);
}

function nonNegativeInt(unit: string): Parser<number> {
  return (raw, key) =>
    integerIn(raw, 0, MAX_JAVA_INT, rejecter(key, raw), `must be an integer from 0 to ${MAX_JAVA_INT} (${unit})`);
}

const percent: Parser<number> = (raw, key) =>
  integerIn(raw, 1, 100, rejecter(key, raw), 'must be an integer from 1 to 100 (percent)');

const statusCodes: Parser<number[]> = (raw, key) => {
  const reject = rejecter(key, raw);
  const items = raw.split(',').map((x) => x.trim());
  if (items.some((x) => x.length === 0)) reject('expected a comma list of SIP status codes, e.g. 503,500');
  return [...new Set(items.map((x) => integerIn(x, 100, 699, reject, `'${x}' is not a SIP status code (100 to 699)`)))];
};

const errorStatus: Parser<number> = (raw, key) =>
  integerIn(raw, 500, 599, rejecter(key, raw), 'must be a 5xx SIP status code (500 to 599)');

const text: Parser<string> = (raw, key) => {
  // Written into SIP headers as a quoted string: control characters and quotes would break it.
  if (/[\x00-\x1f\x7f"\\]/.test(raw)) rejecter(key, raw)('must not contain control characters, quotes or backslashes');
  return raw;
};

// Restcomm splits on commas and matches case-insensitively; empty items (a trailing comma) are
// dropped rather than refused because an empty item would block every request.
const blockedList: Parser<string[]> = (raw) =>
  [...new Set(raw.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x.length > 0))];

const bindAddressV6: Parser<string> = (raw, key) => {
  if (isIP(raw) !== 6) rejecter(key, raw)('expected an IPv6 address such as ::1 or :: (no brackets)');
  return canonicalIp(raw);
};

// Properties form of Restcomm's <routingRulesIpv4/6>: comma list of pattern=true|false, e.g.
// default=true,10.0.0.*=false (the XML loader builds the same list from <rule> elements).
function routingRules(family: 4 | 6): Parser<RoutingRule[]> {
  return (raw, key) => listItems(raw, key).map((item) => {
    const reject = entryRejecter(key, raw, item);
    const eq = item.lastIndexOf('=');
    if (eq === -1) reject('expected pattern=true or pattern=false, e.g. 10.0.0.*=false');
    return routingRule(item.slice(0, eq).trim(), item.slice(eq + 1).trim(), family, reject);
  });
}

export function routingRule(pattern: string, patchText: string, family: 4 | 6, reject: Reject): RoutingRule {
  const patch = patchText.toLowerCase();
  if (patch !== 'true' && patch !== 'false') reject(`patch must be true or false, not '${patchText}'`);
  const p = pattern.toLowerCase();
  if (p === 'default') return { pattern: p, patch: patch === 'true' };
  const allowed = family === 4 ? /^[0-9.]+\*?$/ : /^[0-9a-f:.]+\*?$/;
  if (p === '' || !allowed.test(p) || (!p.endsWith('*') && isIP(p) !== family)) {
    reject(`ipPattern '${pattern}' is not 'default', an IPv${family} address, or an address prefix ending in * (e.g. ${family === 4 ? '10.0.0.*' : 'fd30:*'})`);
  }
  return { pattern: p, patch: patch === 'true' };
}

const messageSize: Parser<number> = (raw, key) =>
  integerIn(raw, 1024, 1048576, rejecter(key, raw), 'message size must be an integer from 1024 to 1048576 (bytes)');

const bool: Parser<boolean> = (raw, key) => {
  const lower = raw.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  return rejecter(key, raw)('expected true or false');
};

// An empty value for a key whose default is "none" means the same as leaving the key out, so a
// templated file that renders `internalPort=` does not need special handling.
function optional<T>(parse: Parser<T>): Parser<T | null> {
  return (raw, key) => (raw === '' ? null : parse(raw, key));
}

/** Canonical text for an IP literal, as Node reports peer addresses, so string comparison works. */
function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address;
  const percent = address.indexOf('%');
  const bare = percent === -1 ? address : address.slice(0, percent);
  const zone = percent === -1 ? '' : address.slice(percent);
  return new SocketAddress({ address: bare, family: 'ipv6' }).address + zone;
}

const bindAddress: Parser<string> = (raw, key) => {
  if (isIP(raw) === 0) {
    rejecter(key, raw)('expected an IP address such as 127.0.0.1, ::1, 0.0.0.0 or :: (no host names, no brackets)');
  }
  return canonicalIp(raw);
};

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** A host siplb sends to or recognises traffic from: an IP literal other than a wildcard, or a DNS name. */
function remoteHost(host: string, reject: Reject): string {
  if (host === '') reject('host is missing');
  if (isIP(host) !== 0) {
    const ip = canonicalIp(host);
    if (ip === '0.0.0.0' || ip === '::') reject(`${ip} means "any address" and cannot name a peer`);
    return ip;
  }
  const name = host.toLowerCase();
  // An all-digit last label means someone meant an IPv4 address (e.g. 10.0.0.256), not a name.
  if (name.length > 253 || !HOST_NAME.test(name) || /(?:^|\.)[0-9]+$/.test(name)) {
    reject(`'${host}' is neither an IP address nor a valid host name`);
  }
  return name;
}

/**
 * Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal. A bare IPv6 literal
 * cannot carry a port because its last group would be read as one.
 */
function hostAndPort(text: string, reject: Reject): HostPort {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) reject("'[' without a matching ']'");
    const host = text.slice(1, close);
    if (isIP(host) !== 6) reject('brackets are only for IPv6 addresses, e.g. [::1]:5080');
    const rest = text.slice(close + 1);
    if (rest === '') return { host: remoteHost(host, reject), port: null };
    if (!rest.startsWith(':')) reject(`unexpected '${rest}' after ']' (expected :port)`);
    return { host: remoteHost(host, reject), port: portNumber(rest.slice(1), reject) };
  }
  const colons = text.split(':').length - 1;
  if (colons === 0) return { host: remoteHost(text, reject), port: null };
  if (colons === 1) {
    const [host, portText] = text.split(':');
    return { host: remoteHost(host, reject), port: portNumber(portText, reject) };
  }
  if (isIP(text) !== 6) reject('IPv6 addresses need brackets when a port follows, e.g. [::1]:5080');
  return { host: remoteHost(text, reject), port: null };
}

/** Splits a comma list; an empty value is an empty list, an empty item is a typo worth reporting. */
function listItems(raw: string, key: string): string[] {
  if (raw === '') return [];
  const items = raw.split(',').map((item) => item.trim());
  if (items.includes('')) rejecter(key, raw)('empty entry in the list (doubled or trailing comma?)');
  return items;
}

function transportName(text: string, reject: Reject): Transport {
  const lower = text.toLowerCase();
  if ((SIP_TRANSPORTS as readonly string[]).includes(lower)) return lower as Transport;
  return reject(`unknown transport '${text}' (expected udp, tcp, tls, ws or wss)`);
}

const transports: Parser<PlainTransport[]> = (raw, key) => {
  const items = listItems(raw, key);
  const reject = rejecter(key, raw);
  if (items.length === 0) reject('at least one transport is required (udp, tcp)');
  // Restcomm files say "UDP"; a repeated name changes nothing, so it is folded rather than refused.
  return [...new Set(items.map((item) => {
    const t = transportName(item, reject);
    if (t !== 'udp' && t !== 'tcp') reject(`'${item}': this list names the plain transports (udp, tcp); TLS, WS and WSS listen where their own port keys say`);
    return t as PlainTransport;
  }))];
};

function nodeSpec(entry: string, reject: Reject): StaticNodeSpec {
  const [address, ...params] = entry.split(';').map((part) => part.trim());
  const { host, port } = hostAndPort(address, reject);
  if (port === null) reject('port is missing (expected host:port, or [v6]:port for IPv6)');
  const node: StaticNodeSpec = { host, port, transport: 'udp', weight: 1 };
  const http: Partial<StaticHttpSpec> = {};
  const seen = new Set<string>();
  for (const param of params) {
    if (param === '') reject("empty parameter (stray ';'?)");
    const eq = param.indexOf('=');
    if (eq === -1) reject(`parameter '${param}' has no value (expected transport=... or weight=...)`);
    const name = param.slice(0, eq).trim().toLowerCase();
    const value = param.slice(eq + 1).trim();
    if (seen.has(name)) reject(`parameter '${name}' given twice`);
    seen.add(name);
    if (name === 'transport') node.transport = transportName(value, reject);
    else if (name === 'weight') node.weight = integerIn(value, MIN_NODE_WEIGHT, MAX_NODE_WEIGHT, reject, `weight must be an integer from ${MIN_NODE_WEIGHT} to ${MAX_NODE_WEIGHT}`);
    else if (name === 'http') http.port = portNumber(value, reject);
    else if (name === 'https') http.sslPort = portNumber(value, reject);
    else if (name === 'ws') http.wsPort = portNumber(value, reject);
    else if (name === 'jvmroute') {
      // A jvmRoute ends a session id after its last '.', so it cannot hold one itself.
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) reject('jvmRoute must be 1 to 64 letters, digits, _ or -');
      http.jvmRoute = value;
    } else reject(`unknown parameter '${name}' (expected transport, weight, http, https, ws or jvmRoute)`);
  }
  if (http.port !== undefined) node.http = { ...http, port: http.port };
  else if (Object.keys(http).length > 0) reject('https, ws and jvmRoute need http=<port> as well (a node without an HTTP port is not an HTTP target)');
  return node;
}

const nodes: Parser<StaticNodeSpec[]> = (raw, key) => {
  const seen = new Set<string>();
  return listItems(raw, key).map((entry) => {
    const reject = entryRejecter(key, raw, entry);
    const node = nodeSpec(entry, reject);
    const identity = `${node.host} ${node.port} ${node.transport}`;
    if (seen.has(identity)) reject('duplicates an earlier entry (same host, port and transport)');
    seen.add(identity);
    return node;
  });
};

const hostPortList: Parser<HostPort[]> = (raw, key) => {
  const seen = new Set<string>();
  return listItems(raw, key).map((entry) => {
    const reject = entryRejecter(key, raw, entry);
    const hp = hostAndPort(entry, reject);
    const identity = `${hp.host} ${hp.port ?? '*'}`;
    if (seen.has(identity)) reject('duplicates an earlier entry');
    seen.add(identity);
    return hp;
  });
};

const peerAddress: Parser<string> = (raw, key) => remoteHost(raw, rejecter(key, raw));

// pikeAllow: an address alone is that one host (/32, /128). Host bits set below the prefix
// (10.0.0.1/8) are refused rather than masked: such a value is usually a typo for a narrower
// network, and masking it would silently exempt far more addresses than meant.
const cidrList: Parser<string[]> = (raw, key) => {
  const seen = new Set<string>();
  return listItems(raw, key).map((entry) => {
    const reject = entryRejecter(key, raw, entry);
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIP(address);
    if (family === 0 || address.includes('%')) reject('expected an IPv4 or IPv6 address with an optional /prefix, e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8 (no brackets, no zone)');
    const bits = family === 4 ? 32 : 128;
    const prefix = slash === -1 ? bits : integerIn(entry.slice(slash + 1), 0, bits, reject, `prefix length must be an integer from 0 to ${bits}`);
    // isIP accepted it and it has no zone: it has bytes.
    const bytes = ipBytes(address) as number[];
    for (let bit = prefix; bit < bits; bit++) {
      if ((bytes[bit >> 3] >> (7 - (bit & 7))) & 1) reject(`address has bits set beyond the /${prefix} prefix (a network is written with them zero, e.g. 10.0.0.0/8)`);
    }
    const canonical = `${canonicalIp(address)}/${prefix}`;
    if (seen.has(canonical)) reject('duplicates an earlier entry');
    seen.add(canonical);
    return canonical;
  });
};

// Restcomm reads these as a comma list (StringTokenizer: empty entries vanish): it advertises the
// first in Via and Record-Route and takes a request naming any of them as addressed to itself.
// The field keeps the checked list as one comma-joined string (vipAddressList splits it), so a
// single address, by far the common case, reads as before everywhere.
const vipAddresses: Parser<string> = (raw, key) => {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const entry of raw.split(',').map((item) => item.trim()).filter((item) => item !== '')) {
    const address = remoteHost(entry, entryRejecter(key, raw, entry));
    if (seen.has(address)) entryRejecter(key, raw, entry)('duplicates an earlier entry');
    seen.add(address);
    out.push(address);
  }
  if (out.length === 0) rejecter(key, raw)('no address in the list');
  return out.join(',');
};

const className: Parser<string> = (raw, key) =>
  raw === '' ? rejecter(key, raw)('algorithm class name must not be empty') : raw;

// RFC 3261 `token`: the characters a header name may contain. Restcomm's "from.user" fits too.
const headerName: Parser<string> = (raw, key) => {
  if (!/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(raw)) {
    rejecter(key, raw)('expected a SIP header name such as Call-ID (letters, digits and -.!%*_+`\'~ only)');
  }
  return raw;
};

// Where the hash and user-based algorithms read their key: Call-ID, From/To (the URI user),
// from.user/to.user, from.uri/to.uri, or any other header name (its whole value).
const affinityKey: Parser<string> = (raw, key) => {
  if (!/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(raw)) {
    rejecter(key, raw)('expected Call-ID, From, To, from.user, to.user, from.uri, to.uri or a SIP header name');
  }
  const lower = raw.toLowerCase();
  if (lower.includes('.') && !['from.user', 'to.user', 'from.uri', 'to.uri'].includes(lower) && /^(from|to|f|t)\./.test(lower)) {
    rejecter(key, raw)('only from.user, to.user, from.uri and to.uri select a part of From or To');
  }
  return raw;
};

const regex: Parser<RegExp> = (raw, key) => {
  try {
    // Compiled alone first: wrapping alone would accept 'a)|(b' as a different pattern.
    new RegExp(raw);
    return new RegExp(`^(?:${raw})$`);
  } catch (err) {
    return rejecter(key, raw)(`not a valid regular expression: ${(err as Error).message}`);
  }
};

// Restcomm's form: ( 10.0.0.1, 10.0.0.2 ) ( 10.0.0.3 ). Members are node IPs (every port of
// that IP) or ip:port, normalised to the text node ids use.
const subclusters: Parser<string[][]> = (raw, key) => {
  const reject = rejecter(key, raw);
  const groups: string[][] = [];
  const seen = new Set<string>();
  let rest = raw.trim();
  while (rest.length > 0) {
    const m = /^\(([^()]*)\)\s*,?\s*/.exec(rest);
    if (m === null) return reject('expected groups in parentheses, e.g. (10.0.0.1,10.0.0.2)(10.0.0.3)');
    const group: string[] = [];
    for (const entry of m[1].split(',').map((x) => x.trim()).filter((x) => x.length > 0)) {
      const bad = entryRejecter(key, raw, entry);
      const hp = /^\[([^\]]+)\]:(\d+)$/.exec(entry) ?? /^([^:\[\]]+):(\d+)$/.exec(entry);
      const host = hp === null ? entry.replace(/^\[(.*)\]$/, '$1') : hp[1];
      if (isIP(host) === 0) bad('expected an IP address or ip:port');
      const ip = canonicalIp(host);
      const member = hp === null ? ip : `${isIP(ip) === 6 ? `[${ip}]` : ip}:${portNumber(hp[2], bad)}`;
      if (seen.has(member)) bad('listed twice');
      seen.add(member);
      group.push(member);
    }
    if (group.length === 0) reject('a group is empty');
    groups.push(group);
    rest = rest.slice(m[0].length);
  }
  return groups;
};

const loadFactor: Parser<number> = (raw, key) => {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(raw) || Number(raw) > 10) rejecter(key, raw)('expected a number from 0 to 10, e.g. 0.25 (0 turns bounded load off)');
  return Number(raw);
};

/** Most worker processes `workers` may ask for. */
export const MAX_WORKERS = 64;

const workerCount: Parser<number> = (raw, key) => {
  // auto: one worker per core the process may run on (cgroup and affinity limits included).
  if (raw.toLowerCase() === 'auto') return Math.min(MAX_WORKERS, availableParallelism());
  return integerIn(raw, 1, MAX_WORKERS, rejecter(key, raw), `must be auto or an integer from 1 to ${MAX_WORKERS}`);
};

const storeKind: Parser<'memory' | 'redis'> = (raw, key) => {
  const lower = raw.toLowerCase();
  if (lower === 'memory' || lower === 'redis') return lower;
  return rejecter(key, raw)('expected memory or redis');
};

const redisUrl: Parser<string> = (raw, key) => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return rejecter(key, raw)('expected a URL such as redis://127.0.0.1:6379');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') rejecter(key, raw)('scheme must be redis: or rediss:');
  if (u.hostname === '') rejecter(key, raw)('host is missing');
  return raw;
};

const keyPrefix: Parser<string> = (raw, key) => {
  if (!/^[A-Za-z0-9:_.{}-]{1,64}$/.test(raw)) rejecter(key, raw)('expected 1 to 64 characters of A-Z a-z 0-9 : _ . - { }');
  return raw;
};

const secret: Parser<string> = (raw, key) => {
  const length = [...raw].length;
  // The value is not echoed: an error message ends up in logs, and this may be a real password.
  if (length < 16) throw new ConfigError(key, `(${length} characters, hidden)`, 'secret must be at least 16 characters long');
  return raw;
};

// Travels in an HTTP header (Authorization: Bearer): visible ASCII without spaces reaches the
// other end unchanged through any HTTP client, and the Bearer syntax cannot split it.
const headerSecret: Parser<string> = (raw, key) => {
  const value = secret(raw, key);
  if (!/^[\x21-\x7e]+$/.test(value)) throw new ConfigError(key, `(${[...raw].length} characters, hidden)`, 'must be visible ASCII characters without spaces (it is sent in an HTTP header)');
  return value;
};

const ALGORITHM_XML = (name: string): readonly string[] => [`sip/algorithm/${name}`, `sip/${name}`];
const SIP_XML = (name: string): readonly string[] => [`sip/${name}`];

/** Restcomm's per-transport port keys, generated: same rules for all five transports. */
function portKeySpecs(): { readonly [F in PortKeyName]: KeySpec<F> } {
  const specs: Partial<Record<PortKeyName, KeySpec<PortKeyName>>> = {};
  for (const prefix of PORT_KEY_PREFIXES) {
    for (const transport of SIP_TRANSPORTS) {
      const key = `${prefix}${transport[0].toUpperCase()}${transport.slice(1)}Port` as PortKeyName;
      specs[key] = portKeySpec(prefix, transport, key);
    }
  }
  return specs as { readonly [F in PortKeyName]: KeySpec<F> };
}

function portKeySpec(prefix: PortKeyPrefix, transport: (typeof SIP_TRANSPORTS)[number], key: PortKeyName): KeySpec<PortKeyName> {
  const side = prefix.startsWith('external') ? 'external' : 'internal';
  const rest = prefix.slice(side.length); // '', 'IpLoadBalancer', 'Ipv6', 'Ipv6LoadBalancer'
  const name = transport.toUpperCase();
  const xmlLeaf = rest === '' ? `${transport}Port` : `${rest[0].toLowerCase()}${rest.slice(1)}${transport[0].toUpperCase()}${transport.slice(1)}Port`;
  const vip = rest.endsWith('LoadBalancer');
  const v6 = rest.startsWith('Ipv6');
  const plain = transport === 'udp' || transport === 'tcp';
  let description: string;
  let shownDefault: string;
  if (!vip) {
    description = side === 'external'
      ? `SIP ${name} port clients send to${v6 ? ' on ipv6Host' : ''}; 0 = no ${name} listener.`
      : `SIP ${name} port application servers send to${v6 ? ' on ipv6Host' : ''}; 0 = none. No internal port at all: one port for both sides.`;
    shownDefault = v6 ? 'none'
      : plain ? (side === 'external' ? 'externalPort, else 5060 when no per-transport port is set' : 'internalPort') : 'none';
  } else {
    description = `Port of the ${side} IP load balancer for ${name}${v6 ? ' over IPv6' : ''}, written into Via/Record-Route of that transport.`;
    shownDefault = v6 ? 'none' : `${side}IpLoadBalancerPort`;
  }
  // Older Restcomm releases called the TLS port the secure port.
  const aliases = rest === '' && transport === 'tls' ? [`${side}SecurePort`] : [];
  return {
    key, field: key, shownDefault, description, defaultValue: null, parse: optional(portOrOff), aliases,
    xml: [`sip/${side}/${xmlLeaf}`],
  };
}

const KEY_TABLE: { readonly [F in keyof Config]: KeySpec<F> } = {
  host: {
    key: 'host', field: 'host', shownDefault: '127.0.0.1', defaultValue: '127.0.0.1', xml: ['common/host'],
    description: 'Address to bind when externalHost / internalHost are not given (IPv4 or IPv6 literal, 0.0.0.0 or :: for all).',
    parse: bindAddress,
  },
  externalHost: {
    key: 'externalHost', field: 'externalHost', shownDefault: 'value of host', defaultValue: '127.0.0.1',
    description: 'Address to bind for the client-facing side.',
    parse: bindAddress, xml: ['sip/external/host'],
  },
  internalHost: {
    key: 'internalHost', field: 'internalHost', shownDefault: 'value of host', defaultValue: '127.0.0.1',
    description: 'Address to bind for the application-server-facing side.',
    parse: bindAddress, xml: ['sip/internal/host'],
  },
  ipv6Host: {
    key: 'ipv6Host', field: 'ipv6Host', shownDefault: 'none', defaultValue: null,
    description: 'IPv6 address to bind when externalIpv6Host / internalIpv6Host are not given.',
    parse: optional(bindAddressV6), xml: ['common/ipv6Host'],
  },
  externalIpv6Host: {
    key: 'externalIpv6Host', field: 'externalIpv6Host', shownDefault: 'value of ipv6Host', defaultValue: null,
    description: 'IPv6 address to bind for the client-facing side.',
    parse: optional(bindAddressV6), xml: ['sip/external/ipv6Host'],
  },
  internalIpv6Host: {
    key: 'internalIpv6Host', field: 'internalIpv6Host', shownDefault: 'value of ipv6Host', defaultValue: null,
    description: 'IPv6 address to bind for the application-server-facing side.',
    parse: optional(bindAddressV6), xml: ['sip/internal/ipv6Host'],
  },
  externalPort: {
    key: 'externalPort', field: 'externalPort', shownDefault: '5060 when no external*Port is set', defaultValue: null,
    description: 'SIP port clients send to, UDP and TCP together (older Restcomm key); externalUdpPort / externalTcpPort override it per transport.',
    parse: optional(port),
  },
  internalPort: {
    key: 'internalPort', field: 'internalPort', shownDefault: 'none (one port for both sides)', defaultValue: null,
    description: 'SIP port application servers send to, UDP and TCP together (older Restcomm key); internalUdpPort / internalTcpPort override it. No internal port at all: one port for both sides.',
    parse: optional(port),
  },
  externalTransports: {
    key: 'externalTransport', field: 'externalTransports', shownDefault: 'udp,tcp', defaultValue: ['udp', 'tcp'],
    description: 'Comma list of the plain transports the external side uses: udp, tcp (any case); the other is not opened whatever its port.',
    parse: transports,
  },
  internalTransports: {
    key: 'internalTransport', field: 'internalTransports', shownDefault: 'udp,tcp', defaultValue: ['udp', 'tcp'],
    description: 'Comma list of the plain transports the internal side uses (Restcomm: the transport towards the nodes): udp, tcp (any case); requests go to a node over a transport the side has.',
    parse: transports, xml: ['sip/internalTransport'],
  },
  ...portKeySpecs(),
  nodes: {
    key: 'nodes', field: 'nodes', shownDefault: 'none', defaultValue: [],
    description:
      'Static backends, comma separated host:port[;transport=udp|tcp][;weight=1..1000][;http=port[;https=port][;ws=port][;jvmRoute=name]], IPv6 as [::1]:5080 (siplb key).',
    parse: nodes,
  },
  extraServerNodes: {
    key: 'extraServerNodes', field: 'extraServerNodes', shownDefault: 'none', defaultValue: [],
    description: 'Comma list of host or host:port ([v6]:port) whose traffic counts as coming from the cluster; with performanceTestingMode they are nodes.',
    parse: hostPortList, xml: SIP_XML('extraServerNodes'),
  },
  performanceTestingMode: {
    key: 'performanceTestingMode', field: 'performanceTestingMode', shownDefault: 'false', defaultValue: false,
    description: 'Make every extraServerNodes entry an active node (UDP and TCP on its port, 5060 if none) that never expires, for load tests without heartbeats.',
    parse: bool, xml: SIP_XML('performanceTestingMode'),
  },
  algorithmClass: {
    key: 'algorithmClass', field: 'algorithmClass',
    shownDefault: 'org.mobicents.tools.sip.balancer.CallIDAffinityBalancerAlgorithm',
    defaultValue: 'org.mobicents.tools.sip.balancer.CallIDAffinityBalancerAlgorithm',
    description: 'Balancing algorithm, by Restcomm class name, siplb short name, or a module path (relative to the configuration file).',
    parse: className, xml: ALGORITHM_XML('algorithmClass'),
  },
  callIdAffinityMaxTimeInCache: {
    key: 'callIdAffinityMaxTimeInCache', field: 'callIdAffinityMaxTimeInCache', shownDefault: '500', defaultValue: 500,
    description: 'Seconds a Call-ID to node association is kept before it is evicted.',
    // 0 is read (Restcomm's own lb-configuration.xml ships it) and replaced in load.ts.
    parse: nonNegativeInt('seconds'), xml: ALGORITHM_XML('callIdAffinityMaxTimeInCache'),
  },
  callIdAffinityMaxEntries: {
    key: 'callIdAffinityMaxEntries', field: 'callIdAffinityMaxEntries', shownDefault: '2000000', defaultValue: 2_000_000,
    description: 'Most Call-ID to node associations kept (about 150 bytes each); beyond it the least recently created are evicted first, so a flood of new Call-IDs cannot exhaust memory (siplb key).',
    parse: (raw, key) => integerIn(raw, 1000, 100_000_000, rejecter(key, raw), 'must be an integer from 1000 to 100000000 (entries)'),
  },
  callIdAffinityGroupFailover: {
    key: 'callIdAffinityGroupFailover', field: 'callIdAffinityGroupFailover', shownDefault: 'false', defaultValue: false,
    description: 'On node failure, move all its calls to one new node (true) or spread them (false).',
    parse: bool, xml: ALGORITHM_XML('callIdAffinityGroupFailover'),
  },
  userAffinityMaxTimeInCache: {
    key: 'userAffinityMaxTimeInCache', field: 'userAffinityMaxTimeInCache', shownDefault: 'callIdAffinityMaxTimeInCache', defaultValue: null,
    description: 'User-based algorithm: seconds a user to node association is kept after its last use.',
    parse: optional(positiveInt('seconds')), xml: ALGORITHM_XML('userAffinityMaxTimeInCache'),
  },
  userAffinityGroupFailover: {
    key: 'userAffinityGroupFailover', field: 'userAffinityGroupFailover', shownDefault: 'callIdAffinityGroupFailover', defaultValue: null,
    description: 'User-based algorithm: on node failure, move all its users to one new node (true) or spread them (false).',
    parse: optional(bool), xml: ALGORITHM_XML('userAffinityGroupFailover'),
  },
  sipHeaderAffinityKey: {
    key: 'sipHeaderAffinityKey', field: 'sipHeaderAffinityKey', shownDefault: 'Call-ID', defaultValue: 'Call-ID',
    description: 'Key of the hash and user-based algorithms: Call-ID, From or To (the URI user), from.user, to.user, from.uri, to.uri, or any header name (its whole value).',
    parse: affinityKey, xml: ALGORITHM_XML('sipHeaderAffinityKey'),
  },
  sipHeaderAffinityExclusionPattern: {
    key: 'sipHeaderAffinityExclusionPattern', field: 'sipHeaderAffinityExclusionPattern', shownDefault: 'none', defaultValue: null,
    description: 'User-based algorithm: a regular expression; a key it matches in full (e.g. anonymous) is replaced by the sipHeaderAffinityFallbackKey.',
    parse: optional(regex), xml: ALGORITHM_XML('sipHeaderAffinityExclusionPattern'),
  },
  sipHeaderAffinityFallbackKey: {
    key: 'sipHeaderAffinityFallbackKey', field: 'sipHeaderAffinityFallbackKey', shownDefault: 'From', defaultValue: 'From',
    description: 'User-based algorithm: key used when the affinity key matches the exclusion pattern or is missing (same forms as sipHeaderAffinityKey).',
    parse: affinityKey, xml: ALGORITHM_XML('sipHeaderAffinityFallbackKey'),
  },
  httpAffinityKey: {
    key: 'httpAffinityKey', field: 'httpAffinityKey', shownDefault: 'appsession', defaultValue: 'appsession',
    description: 'URL query parameter whose value the hash algorithms use to pick a node for HTTP requests.',
    parse: headerName, xml: ALGORITHM_XML('httpAffinityKey'),
  },
  subclusterMap: {
    key: 'subclusterMap', field: 'subclusterMap', shownDefault: 'none', defaultValue: [],
    description: 'Cluster-subdomain algorithm: node groups, e.g. (10.0.0.1,10.0.0.2)(10.0.0.3); a failed node\'s calls move within its group first.',
    parse: subclusters, xml: ALGORITHM_XML('subclusterMap'),
  },
  hashLoadFactor: {
    key: 'hashLoadFactor', field: 'hashLoadFactor', shownDefault: '0 (off)', defaultValue: 0,
    description: 'Bounded load for the hash algorithms: persistent-hash and user place no new key, and hash, persistent-hash and user move no call of a dead node (unless group failover is on), on a node whose active calls reached (1 + value) times its weighted share of all active calls; 0 turns it off (siplb key).',
    parse: loadFactor,
  },
  stateStore: {
    key: 'stateStore', field: 'stateStore', shownDefault: 'memory', defaultValue: 'memory',
    description: 'Where affinity, hash assignments, registered nodes and call counts live: memory (this process) or redis (shared by every balancer using the same Redis) (siplb key).',
    parse: storeKind,
  },
  redisUrl: {
    key: 'redisUrl', field: 'redisUrl', shownDefault: 'redis://127.0.0.1:6379', defaultValue: 'redis://127.0.0.1:6379',
    description: 'Redis server for stateStore=redis, redis:// or rediss://, user and password in the URL if needed (siplb key).',
    parse: redisUrl,
  },
  redisCluster: {
    key: 'redisCluster', field: 'redisCluster', shownDefault: 'none', defaultValue: [],
    description: 'Comma list of host:port seed nodes of a Redis Cluster; when set, stateStore=redis uses the cluster (credentials and TLS from redisUrl) (siplb key).',
    parse: (raw, key) => {
      const list = hostPortList(raw, key);
      const bad = list.find((e) => e.port === null);
      if (bad !== undefined) rejecter(key, raw)(`entry '${bad.host}': a port is required`);
      return list;
    },
  },
  redisKeyPrefix: {
    key: 'redisKeyPrefix', field: 'redisKeyPrefix', shownDefault: 'siplb:', defaultValue: 'siplb:',
    description: 'Prefix of every Redis key siplb writes; balancers that must agree use the same prefix (siplb key).',
    parse: keyPrefix,
  },
  redisReadTimeout: {
    key: 'redisReadTimeout', field: 'redisReadTimeout', shownDefault: '100', defaultValue: 100,
    description: 'Milliseconds a request whose call is unknown locally waits for Redis before siplb decides without it (siplb key).',
    parse: (raw, key) => integerIn(raw, 1, 10_000, rejecter(key, raw), 'must be an integer from 1 to 10000 (milliseconds)'),
  },
  nodeTimeout: {
    key: 'nodeTimeout', field: 'nodeTimeout', shownDefault: '8400', defaultValue: 8400,
    description: 'Milliseconds without a heartbeat after which a registered node is dead and its calls fail over.',
    parse: positiveInt('milliseconds'), xml: ['common/nodeTimeout'],
  },
  heartbeatInterval: {
    key: 'heartbeatInterval', field: 'heartbeatInterval', shownDefault: '150', defaultValue: 150,
    description: 'Milliseconds between checks for registered nodes that missed nodeTimeout.',
    parse: positiveInt('milliseconds'), xml: ['common/heartbeatInterval'],
  },
  heartbeatPort: {
    key: 'heartbeatPort', field: 'heartbeatPort', shownDefault: '2610 if free', defaultValue: null,
    description: 'HTTP port (on internalHost) where nodes register with start / heartbeat / shutdown / stop (docs/heartbeat-protocol.md). Unset: 2610, and when that is busy siplb runs without it and warns; set: a busy port stops start-up.',
    parse: optional(port), xml: ['heartbeat/heartbeatConfig/heartbeatPort', 'common/heartbeatPort', 'common/heartbeatPorts'],
  },
  heartbeatToken: {
    key: 'heartbeatToken', field: 'heartbeatToken', shownDefault: 'none (registrations unauthenticated)', defaultValue: null,
    description: 'Shared secret (16+ visible ASCII characters, no spaces) every heartbeat request must carry as Authorization: Bearer ...; a request without it, or with another, gets 401 and changes nothing. Give the nodes the same value (siplb-node --token-file or SIPLB_HEARTBEAT_TOKEN). Restcomm nodes cannot send it. A reload applies a new value at once (siplb key).',
    parse: optional(headerSecret),
  },
  healthCheckInterval: {
    key: 'healthCheckInterval', field: 'healthCheckInterval', shownDefault: '7000', defaultValue: 7000,
    description: 'Milliseconds between SIP OPTIONS probes of a node that sent nothing in that time (a node answering calls is alive); 0 disables active checks.',
    parse: nonNegativeInt('milliseconds'),
  },
  healthCheckTimeout: {
    key: 'healthCheckTimeout', field: 'healthCheckTimeout', shownDefault: '2000', defaultValue: 2000,
    description: 'Milliseconds an OPTIONS probe waits for its answer before it counts as failed (siplb key).',
    parse: positiveInt('milliseconds'),
  },
  healthCheckFailures: {
    key: 'healthCheckFailures', field: 'healthCheckFailures', shownDefault: '1', defaultValue: 1,
    description: 'Consecutive failed probes (5xx/6xx answer; no answer, once the node has answered an OPTIONS before; port unreachable or refused) that take a node out.',
    parse: positiveInt('probes'),
  },
  healthCheckSuccesses: {
    key: 'healthCheckSuccesses', field: 'healthCheckSuccesses', shownDefault: '1', defaultValue: 1,
    description: 'Consecutive good probes that take a node back in.',
    parse: positiveInt('probes'),
  },
  responsesStatusCodeNodeRemoval: {
    key: 'responsesStatusCodeNodeRemoval', field: 'responsesStatusCodeNodeRemoval', shownDefault: '503', defaultValue: [503],
    description: 'Comma list of response codes that count as errors of the node that sent them (passive health).',
    parse: statusCodes, aliases: ['responseStatusCodeNodeRemoval'],
    xml: ['sip/responsesStatusCodeNodeRemoval', 'sip/responseStatusCodeNodeRemoval'],
  },
  responseReasonNodeRemoval: {
    key: 'responseReasonNodeRemoval', field: 'responseReasonNodeRemoval', shownDefault: 'none (any reason)', defaultValue: null,
    description: 'Reason phrase (case-insensitive) a response must also carry to count as a node error, e.g. Unable to setup media services.',
    parse: optional(text), aliases: ['responsesReasonNodeRemoval'],
    xml: ['sip/responseReasonNodeRemoval', 'sip/responsesReasonNodeRemoval'],
  },
  maxNumberResponsesWithError: {
    key: 'maxNumberResponsesWithError', field: 'maxNumberResponsesWithError', shownDefault: '5', defaultValue: 5,
    description: 'A node sending more error responses than this within maxErrorTime takes no new calls until a probe succeeds or it restarts.',
    parse: positiveInt('responses'), xml: SIP_XML('maxNumberResponsesWithError'),
  },
  maxErrorTime: {
    key: 'maxErrorTime', field: 'maxErrorTime', shownDefault: '300000', defaultValue: 300000,
    description: 'Window, in milliseconds, in which maxNumberResponsesWithError is counted.',
    parse: positiveInt('milliseconds'), xml: SIP_XML('maxErrorTime'),
  },
  maxRequestNumberWithoutResponse: {
    key: 'maxRequestNumberWithoutResponse', field: 'maxRequestNumberWithoutResponse', shownDefault: 'none (off)', defaultValue: null,
    description: 'With maxResponseTime: a node that has left more than this many requests unanswered, the oldest for over maxResponseTime ms, takes no new calls until it answers again (this catches a hung node whose port stays open).',
    parse: optional(positiveInt('requests')), xml: SIP_XML('maxRequestNumberWithoutResponse'),
  },
  maxResponseTime: {
    key: 'maxResponseTime', field: 'maxResponseTime', shownDefault: 'none (off)', defaultValue: null,
    description: 'Milliseconds the oldest request left unanswered since the node\'s last response may wait before maxRequestNumberWithoutResponse takes the node out.',
    parse: optional(positiveInt('milliseconds')), xml: SIP_XML('maxResponseTime'),
  },
  trafficRampupCyclePeriod: {
    key: 'trafficRampupCyclePeriod', field: 'trafficRampupCyclePeriod', shownDefault: '0 (no ramp-up)', defaultValue: 0,
    description: 'Milliseconds per ramp-up step: a (re)joined node gets trafficPercentageIncrease % more of its share of new calls each period.',
    parse: nonNegativeInt('milliseconds'), xml: SIP_XML('trafficRampupCyclePeriod'),
  },
  trafficPercentageIncrease: {
    key: 'trafficPercentageIncrease', field: 'trafficPercentageIncrease', shownDefault: '10', defaultValue: 10,
    description: 'Ramp-up step, in percent of the node\'s full share.',
    parse: percent, xml: SIP_XML('trafficPercentageIncrease'),
  },
  externalIpLoadBalancerAddress: {
    key: 'externalIpLoadBalancerAddress', field: 'externalIpLoadBalancerAddress', shownDefault: 'none', defaultValue: null,
    description: 'Address of an IP load balancer in front of the external side (IP or host name), advertised in Record-Route instead of the balancer\'s own (in Via too with useIpLoadBalancerAddressInViaHeaders). A comma list, as Restcomm takes it: the first is advertised, and a request naming any of them is taken as addressed to this balancer.',
    parse: optional(vipAddresses), xml: ['sip/external/ipLoadBalancerAddress'],
  },
  externalIpLoadBalancerPort: {
    key: 'externalIpLoadBalancerPort', field: 'externalIpLoadBalancerPort',
    shownDefault: 'externalPort when the address is set', defaultValue: null,
    description: 'Port of that external IP load balancer for UDP and TCP (older key; externalIpLoadBalancerUdpPort etc. override it).',
    parse: optional(port),
  },
  internalIpLoadBalancerAddress: {
    key: 'internalIpLoadBalancerAddress', field: 'internalIpLoadBalancerAddress', shownDefault: 'none', defaultValue: null,
    description: 'Address of an IP load balancer in front of the internal side (IP or host name); a comma list as for externalIpLoadBalancerAddress.',
    parse: optional(vipAddresses), xml: ['sip/internal/ipLoadBalancerAddress'],
  },
  internalIpLoadBalancerPort: {
    key: 'internalIpLoadBalancerPort', field: 'internalIpLoadBalancerPort',
    shownDefault: 'internalPort (or externalPort) when the address is set', defaultValue: null,
    description: 'Port of that internal IP load balancer for UDP and TCP (older key; internalIpLoadBalancerUdpPort etc. override it).',
    parse: optional(port),
  },
  externalIpv6LoadBalancerAddress: {
    key: 'externalIpv6LoadBalancerAddress', field: 'externalIpv6LoadBalancerAddress', shownDefault: 'none', defaultValue: null,
    description: 'IPv6 address of an IP load balancer in front of the external side; a comma list as for externalIpLoadBalancerAddress.',
    parse: optional(vipAddresses), xml: ['sip/external/ipv6LoadBalancerAddress'],
  },
  internalIpv6LoadBalancerAddress: {
    key: 'internalIpv6LoadBalancerAddress', field: 'internalIpv6LoadBalancerAddress', shownDefault: 'none', defaultValue: null,
    description: 'IPv6 address of an IP load balancer in front of the internal side; a comma list as for externalIpLoadBalancerAddress.',
    parse: optional(vipAddresses), xml: ['sip/internal/ipv6LoadBalancerAddress'],
  },
  useIpLoadBalancerAddressInViaHeaders: {
    key: 'useIpLoadBalancerAddressInViaHeaders', field: 'useIpLoadBalancerAddressInViaHeaders',
    shownDefault: 'false', defaultValue: false,
    description: 'Put the IP load balancer addresses, not siplb\'s own, in the Via headers siplb adds.',
    parse: bool, xml: SIP_XML('useIpLoadBalancerAddressInViaHeaders'),
  },
  publicIp: {
    key: 'publicIp', field: 'publicIp', shownDefault: 'none', defaultValue: null,
    description: 'Public IPv4 address (NAT) written into the Record-Route clients see, for clients the routingRulesIpv4 select.',
    parse: optional(peerAddress), aliases: ['public-ip'], xml: SIP_XML('publicIp'),
  },
  publicIpv6: {
    key: 'publicIpv6', field: 'publicIpv6', shownDefault: 'none', defaultValue: null,
    description: 'Public IPv6 address, as publicIp, for clients the routingRulesIpv6 select.',
    parse: optional(peerAddress), xml: ['sip/publicIpv6', 'sip/external/publicIpv6'],
  },
  routingRulesIpv4: {
    key: 'routingRulesIpv4', field: 'routingRulesIpv4', shownDefault: 'none (every client)', defaultValue: [],
    description: 'Which IPv4 clients get publicIp: comma list of pattern=true|false (XML: <rule><ipPattern>/<patch>); pattern is default, an address, or a prefix with * (10.0.0.*); the most specific match wins.',
    parse: routingRules(4), xml: SIP_XML('routingRulesIpv4'),
  },
  routingRulesIpv6: {
    key: 'routingRulesIpv6', field: 'routingRulesIpv6', shownDefault: 'none (every client)', defaultValue: [],
    description: 'Which IPv6 clients get publicIpv6, as routingRulesIpv4 (e.g. fd30:*=false).',
    parse: routingRules(6), xml: SIP_XML('routingRulesIpv6'),
  },
  matchingHostnameForRoute: {
    key: 'matchingHostnameForRoute', field: 'matchingHostnameForRoute', shownDefault: 'none', defaultValue: null,
    description: 'A Route entry naming this host (e.g. a DNS name of the balancer) is the balancer itself and is removed.',
    parse: optional(peerAddress), xml: SIP_XML('matchingHostnameForRoute'),
  },
  isFilterSubdomain: {
    key: 'isFilterSubdomain', field: 'isFilterSubdomain', shownDefault: 'false', defaultValue: false,
    description: 'With matchingHostnameForRoute: a Route naming any subdomain of that host is the balancer too.',
    parse: bool, xml: SIP_XML('isFilterSubdomain'),
  },
  isSendTrying: {
    key: 'isSendTrying', field: 'isSendTrying', shownDefault: 'true', defaultValue: true,
    description: 'Answer each INVITE siplb forwards with 100 Trying at once (stops client retransmissions early); the node\'s own 100 is then not relayed. Since the client no longer retransmits, siplb keeps each INVITE until its node answers and places it again if the node goes down first.',
    parse: bool, xml: SIP_XML('isSendTrying'),
  },
  blockedValues: {
    key: 'blockedValues', field: 'blockedValues', shownDefault: 'sipvicious,sipcli,friendly-scanner',
    defaultValue: ['sipvicious', 'sipcli', 'friendly-scanner'],
    description: 'Comma list; a request from outside whose User-Agent, From or To contains one (any case) is dropped unanswered and counted. Empty: block nothing.',
    parse: blockedList, aliases: ['blocked-values'], xml: SIP_XML('blockedValues'),
  },
  isSend5xxResponse: {
    key: 'isSend5xxResponse', field: 'isSend5xxResponse', shownDefault: 'false', defaultValue: false,
    description: 'A request siplb cannot forward is answered with isSend5xxResponseSatusCode and a Reason header carrying isSend5xxResponseReasonHeader (false: a plain 503).',
    parse: bool, xml: SIP_XML('isSend5xxResponse'),
  },
  isSend5xxResponseSatusCode: {
    key: 'isSend5xxResponseSatusCode', field: 'isSend5xxResponseSatusCode', shownDefault: '503', defaultValue: 503,
    description: 'Status (500 to 599) of that reply when isSend5xxResponse is true; Restcomm\'s spelling.',
    parse: errorStatus, aliases: ['isSend5xxResponseStatusCode'], xml: ['sip/isSend5xxResponseSatusCode', 'sip/isSend5xxResponseStatusCode'],
  },
  isSend5xxResponseReasonHeader: {
    key: 'isSend5xxResponseReasonHeader', field: 'isSend5xxResponseReasonHeader', shownDefault: 'none', defaultValue: null,
    description: 'Text of the Reason header of that reply, e.g. Destination not available.',
    parse: optional(text), xml: SIP_XML('isSend5xxResponseReasonHeader'),
  },
  apiPort: {
    key: 'apiPort', field: 'apiPort', shownDefault: '2006 if free', defaultValue: null,
    description: 'Port of the admin API, metrics and dashboard; statisticPort is the same setting. On loopback unless apiToken is set (then on host). Unset: 2006, and when that is busy siplb runs without it and warns; set: a busy port stops start-up.',
    parse: optional(port), aliases: ['statisticPort'], xml: ['common/apiPort', 'common/statisticPort'],
  },
  securityRequired: {
    key: 'securityRequired', field: 'securityRequired', shownDefault: 'false', defaultValue: false,
    description: 'Admin API: Restcomm\'s endpoints that change something (/lbstop, /lbloglevel, /lbnoderegex) need ?login=&password= as in Restcomm.',
    parse: bool, xml: ['common/securityRequired'],
  },
  login: {
    key: 'login', field: 'login', shownDefault: 'none', defaultValue: null,
    description: 'Admin API user name for securityRequired.',
    parse: optional(text), xml: ['common/login'],
  },
  password: {
    key: 'password', field: 'password', shownDefault: 'none', defaultValue: null,
    description: 'Admin API password for securityRequired.',
    parse: optional((raw) => raw), xml: ['common/password'],
  },
  apiToken: {
    key: 'apiToken', field: 'apiToken', shownDefault: 'none (admin API on loopback only)', defaultValue: null,
    description: 'Bearer token every admin API request must carry (Authorization: Bearer ...), /healthz and /readyz excepted; with it the API listens on host rather than loopback (siplb key).',
    parse: optional(secret),
  },
  shutdownTimeout: {
    key: 'shutdownTimeout', field: 'shutdownTimeout', shownDefault: '10000', defaultValue: 10000,
    description: 'Milliseconds a graceful stop (SIGTERM, /lbstop, POST /api/v1/stop) keeps serving the calls in progress, refusing new ones with 503, before closing; it ends sooner when no call is left. A second SIGTERM stops at once.',
    parse: positiveInt('milliseconds'), xml: ['common/shutdownTimeout'],
  },
  shutdownAnnounceTime: {
    key: 'shutdownAnnounceTime', field: 'shutdownAnnounceTime', shownDefault: '0 (refuse new calls at once)', defaultValue: 0,
    description: 'Behind an IP sprayer (siplb-advisor): milliseconds a graceful stop first keeps taking new calls while it answers the advisor\'s OPTIONS with 503, so that the sprayer moves new calls to the other balancers before this one refuses any; set it to advisorInterval × fall + the probe timeout. With it set, the stop also ends once no SIP message has arrived for 2 s (the sprayer sends this balancer nothing more; the other balancers carry its dialogs through the shared store).',
    parse: nonNegativeInt('milliseconds'),
  },
  httpPort: {
    key: 'httpPort', field: 'httpPort', shownDefault: 'none (no HTTP listener)', defaultValue: null,
    description: 'Port of the HTTP balancer on externalHost (Restcomm: 2080): requests and WebSocket handshakes go to the nodes\' HTTP side, sticky by JSESSIONID route.',
    parse: optional(port), xml: ['http/httpPort'],
  },
  httpsPort: {
    key: 'httpsPort', field: 'httpsPort', shownDefault: 'none (no HTTPS listener)', defaultValue: null,
    description: 'Port of the HTTPS balancer on externalHost; needs tlsCertFile and tlsKeyFile (given neither: a warning and no HTTPS listener).',
    parse: optional(port), xml: ['http/httpsPort'],
  },
  maxContentLength: {
    key: 'maxContentLength', field: 'maxContentLength', shownDefault: '1048576', defaultValue: 1048576,
    description: 'Largest HTTP request body the HTTP balancer accepts, in bytes.',
    parse: positiveInt('bytes'), xml: ['http/maxContentLength'],
  },
  unavailableHost: {
    key: 'unavailableHost', field: 'unavailableHost', shownDefault: 'none', defaultValue: null,
    description: 'HTTP: host to redirect to (302, same path) when no node can take a request; unset: 503 with Retry-After.',
    parse: optional(peerAddress), xml: ['http/unavailableHost'],
  },
  requestCheckPattern: {
    key: 'requestCheckPattern', field: 'requestCheckPattern', shownDefault: 'none', defaultValue: null,
    description: 'HTTP: regular expression (searched anywhere in the request target, as Restcomm does); a node that answers a matching request with 400-599 is taken out of new HTTP sessions at once, until its HTTP probes or the registry bring it back.',
    parse: optional((raw, key) => { regex(raw, key); return raw; }), xml: ['http/requestCheckPattern'],
  },
  httpResponseTimeout: {
    key: 'httpResponseTimeout', field: 'httpResponseTimeout', shownDefault: '60000', defaultValue: 60000,
    description: 'HTTP: milliseconds a node may take to send the head of its response before the client gets 504, and the longest pause inside a response body before the client connection is cut (siplb key).',
    parse: positiveInt('milliseconds'),
  },
  httpWebSocketIdleTimeout: {
    key: 'httpWebSocketIdleTimeout', field: 'httpWebSocketIdleTimeout', shownDefault: '600000', defaultValue: 600000,
    description: 'HTTP: milliseconds a WebSocket tunnel may carry nothing either way before siplb closes it (siplb key).',
    parse: positiveInt('milliseconds'),
  },
  httpMaxHeaderSize: {
    key: 'httpMaxHeaderSize', field: 'httpMaxHeaderSize', shownDefault: '16384', defaultValue: 16384,
    description: 'HTTP: largest request header section in bytes; beyond it the client gets 431 (siplb key).',
    parse: (raw, key) => integerIn(raw, 1024, 1048576, rejecter(key, raw), 'must be an integer from 1024 to 1048576 (bytes)'),
  },
  tlsCertFile: {
    key: 'tlsCertFile', field: 'tlsCertFile', shownDefault: 'none', defaultValue: null,
    description: 'PEM certificate (with its chain) for HTTPS, relative to the configuration file; needed with httpsPort; a missing or unusable file stops start-up (siplb key).',
    parse: optional((raw) => raw),
  },
  tlsKeyFile: {
    key: 'tlsKeyFile', field: 'tlsKeyFile', shownDefault: 'none', defaultValue: null,
    description: 'PEM private key of tlsCertFile, relative to the configuration file (siplb key).',
    parse: optional((raw) => raw),
  },
  tlsCaFile: {
    key: 'tlsCaFile', field: 'tlsCaFile', shownDefault: 'none', defaultValue: null,
    description: 'PEM CA bundle client certificates are checked against (tlsClientAuth), relative to the configuration file (siplb key).',
    parse: optional((raw) => raw),
  },
  tlsClientAuth: {
    key: 'tlsClientAuth', field: 'tlsClientAuth', shownDefault: 'none', defaultValue: 'none',
    description: 'Client certificates on TLS listeners: none, request (ask, accept without), require (refuse a client without one that tlsCaFile signed) (siplb key).',
    parse: (raw, key) => {
      const lower = raw.toLowerCase();
      if (lower === 'none' || lower === 'request' || lower === 'require') return lower;
      return rejecter(key, raw)('expected none, request or require');
    },
  },
  maxMessageSize: {
    key: 'maxMessageSize', field: 'maxMessageSize', shownDefault: '65535', defaultValue: 65535,
    description: 'Largest SIP message accepted, in bytes, 1024 to 1048576 (siplb key).',
    parse: messageSize,
  },
  udpReceiveBuffer: {
    key: 'udpReceiveBuffer', field: 'udpReceiveBuffer', shownDefault: '262144', defaultValue: 262_144,
    description: 'Bytes asked for the kernel receive queue (SO_RCVBUF) of each SIP UDP socket, 65536 to 67108864; Linux grants twice the value, at most twice net.core.rmem_max. The queue is where datagrams wait while siplb is busy: larger rides out longer pauses, but past saturation a full large queue makes every message wait (8 MiB held over a second of traffic at 3x load, and calls completed too late to count), while a small one lets the kernel drop the excess before it costs siplb anything. Kamailio\'s maxbuffer is 262144 too (siplb key).',
    parse: (raw, key) => integerIn(raw, 65_536, 67_108_864, rejecter(key, raw), 'must be an integer from 65536 to 67108864 (bytes)'),
  },
  udpNativeIo: {
    key: 'udpNativeIo', field: 'udpNativeIo', shownDefault: 'true', defaultValue: true,
    description: 'SIP over UDP read in batches (recvmmsg) and sent with one sendto per datagram by native/build/udp.node, instead of Node.js\'s dgram, which costs a callback into JavaScript, a buffer, an address string and an object per datagram and a request object per send: about a fifth less CPU per call at 1000 calls/s (bench/README.md). IPv4 sockets only; IPv6 sockets, and a send the kernel would block, go through dgram. Needs the addon, built at install with a C compiler; without it siplb says so at start and uses dgram. false: dgram always (siplb key).',
    parse: bool,
  },
  udpReadDelay: {
    key: 'udpReadDelay', field: 'udpReadDelay', shownDefault: '5', defaultValue: 5,
    description: 'Milliseconds, 0 to 100, that a UDP socket read through native/build/udp.node waits once it has a datagram, while siplb receives 1000 datagrams a second or more, so that one wakeup of the process reads what every socket received meanwhile; while datagrams keep coming, a socket that had some is read again at every such tick without waiting to turn readable. Each wakeup costs more than the two or three datagrams it otherwise brings at a thousand calls a second: 5 ms took about a seventh off the CPU per call there, for up to 6 ms more per message through siplb (the mean INVITE→200 time at the caller went from under 1 ms to 6 ms; bench/README.md). Below 1000 datagrams a second nothing waits, nor does a socket whose last read filled a batch (64 datagrams). 0: every socket is read as soon as it is readable. Needs udpNativeIo (siplb key).',
    parse: (raw, key) => integerIn(raw, 0, 100, rejecter(key, raw), 'must be an integer from 0 (off) to 100 (milliseconds)'),
  },
  tlsHandshakeTimeout: {
    key: 'tlsHandshakeTimeout', field: 'tlsHandshakeTimeout', shownDefault: '10000', defaultValue: 10_000,
    description: 'Milliseconds a TLS handshake (and the HTTP upgrade of a SIP WebSocket) may take before siplb closes the connection (siplb key).',
    parse: positiveInt('milliseconds'),
  },
  wsAllowedOrigins: {
    key: 'wsAllowedOrigins', field: 'wsAllowedOrigins', shownDefault: 'any', defaultValue: [],
    description: 'Comma list of Origin values (e.g. https://app.example.com) a SIP WebSocket handshake may carry; others get 403. Empty: any (siplb key).',
    parse: (raw, key) => listItems(raw, key).map((o) => o.toLowerCase()),
  },
  wsPingInterval: {
    key: 'wsPingInterval', field: 'wsPingInterval', shownDefault: '30000', defaultValue: 30_000,
    description: 'Milliseconds between WebSocket pings of a SIP WebSocket that has been quiet; after two unanswered the connection is closed (siplb key).',
    parse: positiveInt('milliseconds'),
  },
  terminateTLSTraffic: {
    key: 'terminateTLSTraffic', field: 'terminateTLSTraffic', shownDefault: 'false', defaultValue: false,
    description: 'true: TLS ends at the balancer, so sips: requests may go on to nodes over UDP or TCP; false: they go only over TLS or WSS.',
    parse: bool, xml: ['sip/terminateTLSTraffic', 'common/terminateTLSTraffic'],
  },
  maxConnectionsPerSource: {
    key: 'maxConnectionsPerSource', field: 'maxConnectionsPerSource', shownDefault: '1000', defaultValue: 1000,
    description: 'TCP connections one address may hold open to one listener (of 10000 in all); more are refused at once (siplb key).',
    parse: (raw, key) => integerIn(raw, 1, 10_000, rejecter(key, raw), 'must be an integer from 1 to 10000 (connections)'),
  },
  maxTcpConnections: {
    key: 'maxTcpConnections', field: 'maxTcpConnections', shownDefault: '10000', defaultValue: 10_000,
    description: 'TCP and TLS connections one listener holds in all, whoever opened them; more are refused at once. Raise LimitNOFILE with it (packaging/siplb.service) (siplb key).',
    parse: (raw, key) => integerIn(raw, 1, 1_000_000, rejecter(key, raw), 'must be an integer from 1 to 1000000 (connections)'),
  },
  tcpFirstMessageTimeout: {
    key: 'tcpFirstMessageTimeout', field: 'tcpFirstMessageTimeout', shownDefault: '30000', defaultValue: 30_000,
    description: 'Milliseconds an accepted TCP or TLS connection may stay without one whole SIP message before it is closed: a client connects to send, and a flood of connections opened to sit idle would otherwise hold them for the whole idle timeout (siplb key).',
    parse: (raw, key) => integerIn(raw, 1000, 3_600_000, rejecter(key, raw), 'must be an integer from 1000 to 3600000 (milliseconds)'),
  },
  tcpMessageTimeout: {
    key: 'tcpMessageTimeout', field: 'tcpMessageTimeout', shownDefault: '20000', defaultValue: 20_000,
    description: 'Milliseconds a SIP message begun on a TCP or TLS connection may take to arrive whole (a slow sender trickling bytes is closed between half of it and all of it; Kamailio\'s tcp_msg_read_timeout) (siplb key).',
    parse: (raw, key) => integerIn(raw, 1000, 600_000, rejecter(key, raw), 'must be an integer from 1000 to 600000 (milliseconds)'),
  },
  tcpIdleTimeout: {
    key: 'tcpIdleTimeout', field: 'tcpIdleTimeout', shownDefault: '600000', defaultValue: 600_000,
    description: 'Milliseconds a TCP or TLS connection may carry nothing, either way, before it is closed; keep it above the clients\' keep-alive and re-registration intervals (siplb key).',
    parse: (raw, key) => integerIn(raw, 10_000, 86_400_000, rejecter(key, raw), 'must be an integer from 10000 to 86400000 (milliseconds)'),
  },
  pikeRequests: {
    key: 'pikeRequests', field: 'pikeRequests', shownDefault: '0 (off)', defaultValue: 0,
    description: 'Per-source limit on new requests (no To tag; not ACK or CANCEL) from outside the cluster, as Kamailio\'s pike: an address (an IPv6 source: its /64, since a host can send from any address of it) that sends more than this many in pikeWindow is blocked, its new requests dropped unanswered and counted (rate-limited) until it has stayed under the limit for pikeBlockTime; its in-dialog requests still pass. 0: off. Recommended 400 with pikeWindow 2000 when clients reach siplb directly; allow-list trunks and SBCs (pikeAllow) (siplb key).',
    parse: (raw, key) => integerIn(raw, 0, 1_000_000, rejecter(key, raw), 'must be an integer from 0 (off) to 1000000 (requests)'),
  },
  pikeWindow: {
    key: 'pikeWindow', field: 'pikeWindow', shownDefault: '2000', defaultValue: 2000,
    description: 'Milliseconds over which pikeRequests is counted (a sliding window: this one and the previous one, weighted) (siplb key).',
    parse: (raw, key) => integerIn(raw, 100, 600_000, rejecter(key, raw), 'must be an integer from 100 to 600000 (milliseconds)'),
  },
  pikeBlockTime: {
    key: 'pikeBlockTime', field: 'pikeBlockTime', shownDefault: '30000', defaultValue: 30_000,
    description: 'Milliseconds a blocked address must stay at or under pikeRequests per pikeWindow (its dropped requests count) before it is unblocked (siplb key).',
    parse: (raw, key) => integerIn(raw, 1000, 86_400_000, rejecter(key, raw), 'must be an integer from 1000 to 86400000 (milliseconds)'),
  },
  overloadControl: {
    key: 'overloadControl', field: 'overloadControl', shownDefault: 'false', defaultValue: false,
    description: 'Shed load when the balancer falls behind (event loop saturated and UDP receive queues growing): a share of new calls from clients gets 503 with a jittered Retry-After (RFC 7339 oc parameters for clients that offer them); past a hard limit new requests over streams are dropped; calls in progress always pass. Off by default: it pays only with clients that honour Retry-After, see docs/operations.md (siplb key).',
    parse: bool,
  },
  connectedNodeSockets: {
    key: 'connectedNodeSockets', field: 'connectedNodeSockets', shownDefault: 'true', defaultValue: true,
    description: 'UDP to each node on a socket of its own, connected to the node (bound to the listener\'s address, on a port of its own): sends skip the per-datagram route look-up, and an ICMP port unreachable from a node\'s SIP port takes the node down at once (its calls fail over on their next request; back when it sends anything, passes a probe, re-registers, or after 10 s on trial) instead of after a probe or nodeTimeout. Requests then reach nodes from that port, not the internal port (Via and Record-Route still name the listener). false: everything leaves through the listener, for nodes that accept only its port as a source (siplb key).',
    parse: bool,
  },
  warmUpCalls: {
    key: 'warmUpCalls', field: 'warmUpCalls', shownDefault: '1000', defaultValue: 1000,
    description: 'Synthetic calls run through a private copy of the SIP path at start, before the listeners open, so the first real calls meet compiled code instead of the interpreter (a cold process pays about twice the CPU per call for its first few thousand calls, when UDP buffers overflow first). Costs about 0.3 s of CPU at start for 1000 (measured: a start takes 1.05 s of CPU without it, 1.34 s with 1000, 1.56 s with 3000); nothing is sent anywhere. 0: off (siplb key).',
    parse: (raw, key) => integerIn(raw, 0, 100_000, rejecter(key, raw), 'must be an integer from 0 (off) to 100000 (calls)'),
  },
  memoryTrimInterval: {
    key: 'memoryTrimInterval', field: 'memoryTrimInterval', shownDefault: '5', defaultValue: 5,
    description: 'Seconds between two memory trims: the pages of the node executable that siplb touched once and no longer runs are unmapped from it (they stay in the page cache; what runs is mapped again at once), and malloc gives its free pages back. Start-up alone leaves about 45 MiB of the executable counted in RSS. While calls keep the event loop over 5 % busy, trims wait for a quieter interval (at most a minute): the code in use would come straight back. Needs native/build/memory.node, built at install with a C compiler; without it siplb says so at start and runs untrimmed. 0: off (siplb key).',
    parse: (raw, key) => integerIn(raw, 0, 3600, rejecter(key, raw), 'must be an integer from 0 (off) to 3600 (seconds)'),
  },
  pikeAllow: {
    key: 'pikeAllow', field: 'pikeAllow', shownDefault: 'none (the cluster\'s addresses only)', defaultValue: [],
    description: 'Comma list of addresses and networks (10.0.0.0/8, 192.0.2.7, fd00::/8) pikeRequests never limits: an IP sprayer, trunks, SBCs, load generators. Nodes and extraServerNodes addresses are never limited anyway (siplb key).',
    parse: cidrList,
  },
  workers: {
    key: 'workers', field: 'workers', shownDefault: '1', defaultValue: 1,
    description: 'SIP worker processes on this host. 1: one process, as always. More (or auto: one per core): the started process supervises that many workers, restarts one that dies, and passes SIGTERM and SIGHUP on; every worker binds the SIP ports with SO_REUSEPORT, so the kernel spreads clients by address and port, and all share one node view (worker 0 runs the heartbeat endpoint, health checks, the admin API and the HTTP balancer). Clients over TCP, TLS, WS or WSS reach one worker per connection, and requests from nodes towards them only on that worker: use more than 1 worker for UDP clients (docs/architecture.md, "Workers") (siplb key).',
    parse: workerCount,
  },
  viaSecret: {
    key: 'viaSecret', field: 'viaSecret', shownDefault: 'random per process', defaultValue: null,
    description: 'Key (16+ characters) of the check in the branch of every Via siplb adds; responses whose branch fails it are dropped. Give all balancers that may see each other\'s responses the same value (siplb key).',
    parse: optional(secret),
  },
};

/** All keys, in the order the reference documentation lists them. */
export const KEYS: readonly AnyKeySpec[] = Object.values(KEY_TABLE);

const BY_NAME: ReadonlyMap<string, AnyKeySpec> = new Map(
  KEYS.flatMap((spec) => [spec.key, ...(spec.aliases ?? [])].map((name) => [name, spec] as const)),
);

const BY_XML_PATH: ReadonlyMap<string, AnyKeySpec> = new Map(
  KEYS.flatMap((spec) => xmlPaths(spec).map((path) => [path.toLowerCase(), spec] as const)),
);

/** Where the key sits in lb-configuration.xml: Restcomm's place(s), else <siplb><key>. */
export function xmlPaths(spec: AnyKeySpec): readonly string[] {
  return spec.xml ?? [`siplb/${spec.key}`];
}

/** The key an lb-configuration.xml element path (a/b/c, any case) sets. */
export function keyForXmlPath(path: string): AnyKeySpec | undefined {
  return BY_XML_PATH.get(path.toLowerCase());
}

export function keySpec(name: string): AnyKeySpec | undefined {
  return BY_NAME.get(name);
}

/** The spec for a Config field, so cross-key rules can name the lb.properties key in errors. */
export function keyForField<F extends keyof Config>(field: F): KeySpec<F> {
  return KEY_TABLE[field];
}

export function isSipStackKey(name: string): boolean {
  return SIP_STACK_KEY_PREFIXES.some((prefix) => name.startsWith(prefix));
}
