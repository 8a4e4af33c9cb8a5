// Header rewriting between clients and nodes, as a reverse proxy must do it (RFC 9110 §7.6.1,
// RFC 7239). Pure functions over header lists; the balancer calls them once per request and
// once per response.
//
// Towards the node:
//   - hop-by-hop fields go: Connection and every field it lists, Keep-Alive, Proxy-Connection,
//     TE, Transfer-Encoding (the body is re-framed on the node's connection), Upgrade (outside a
//     WebSocket tunnel), Trailer, and Expect (siplb has already answered `100-continue` itself);
//   - Proxy-Authorization goes too: it is meant for a proxy that asked for credentials, and siplb
//     asks for none, so it must not reach the application;
//   - X-Forwarded-For gets the client's address appended (a chain through several proxies stays
//     readable), and RFC 7239 Forwarded gets an element appended the same way;
//     X-Forwarded-Proto and X-Forwarded-Host are set (a client's own values are replaced: only the
//     proxy knows the scheme it was reached on);
//   - Host passes through unchanged, so name-based virtual hosts on the node keep working.
// Towards the client the same hop-by-hop fields go, and Proxy-Authenticate with them (a node
// cannot ask the client for siplb's credentials).

/** Hop-by-hop in both directions (lower case). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer',
]);
/** Request fields siplb consumes or replaces. */
const REQUEST_DROPPED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP, 'expect', 'proxy-authorization', 'x-forwarded-proto', 'x-forwarded-host',
]);
const RESPONSE_DROPPED: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'proxy-authenticate']);
/** Never removed because Connection names it: the node needs Host to pick its virtual host. */
const PROTECTED = 'host';

/** What the balancer knows about the client side of one request. */
export interface ClientSide {
  /** The client's address as seen on the socket (IPv4 dotted, or IPv6). */
  readonly ip: string;
  /** The scheme the client used to reach siplb. */
  readonly proto: 'http' | 'https';
}

/**
 * The client's address for the forwarding headers: an IPv4 client of a dual-stack listener
 * shows as `::ffff:a.b.c.d` and is written as a.b.c.d; no address (a socket already gone) is
 * RFC 7239's "unknown".
 */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined || remote === '') return 'unknown';
  if (remote.startsWith('::ffff:') && remote.includes('.')) return remote.slice(7);
  return remote;
}

/** An RFC 9110 token (a method, a field name; a Forwarded value made only of it needs no quotes). */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A Forwarded parameter value: a token as is, anything else as a quoted string. */
export function forwardedValue(value: string): string {
  if (HTTP_TOKEN.test(value)) return value;
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** The `for=` node of a Forwarded element: IPv6 in brackets, and so quoted (RFC 7239 §6). */
export function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : forwardedValue(ip);
}

/** This proxy's Forwarded element: for, proto and (when the request named one) host. */
export function forwardedElement(client: ClientSide, host: string | undefined): string {
  const base = `for=${forwardedNode(client.ip)};proto=${client.proto}`;
  return host === undefined || host === '' ? base : `${base};host=${forwardedValue(host)}`;
}

/**
 * Field names listed by Connection headers (lower case), other than the ones dropped anyway;
 * null when there are none (the usual `Connection: keep-alive` or `close`).
 */
function connectionListed(raw: readonly string[], dropped: ReadonlySet<string>): string[] | null {
  let out: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const part of raw[i + 1].split(',')) {
      const token = part.trim().toLowerCase();
      if (token === '' || dropped.has(token) || token === PROTECTED) continue;
      (out ??= []).push(token);
    }
  }
  return out;
}

/**
 * The request's header fields for the node, as a flat [name, value, name, value...] list in the
 * order received (names keep the client's spelling), from Node's `req.rawHeaders`. With
 * `upgrade`, Connection and Upgrade are kept as `Upgrade` / the client's protocol (a WebSocket
 * handshake needs them end to end).
 */
export function upstreamHeaders(raw: readonly string[], client: ClientSide, upgrade = false): string[] {
  const listed = connectionListed(raw, REQUEST_DROPPED);
  const out: string[] = [];
  let xff: string | null = null;
  let forwarded: string | null = null;
  let host: string | undefined;
  let upgradeTo: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') {
      xff = xff === null ? value : `${xff}, ${value}`;
      continue;
    }
    if (lower === 'forwarded') {
      forwarded = forwarded === null ? value : `${forwarded}, ${value}`;
      continue;
    }
    if (REQUEST_DROPPED.has(lower)) {
      if (upgrade && lower === 'upgrade') upgradeTo = value;
      continue;
    }
    if (listed !== null && listed.includes(lower)) continue;
    if (lower === 'host') host ??= value;
    out.push(name, value);
  }
  if (upgrade && upgradeTo !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgradeTo);
  out.push(
    'X-Forwarded-For', xff === null ? client.ip : `${xff}, ${client.ip}`,
    'X-Forwarded-Proto', client.proto,
  );
  if (host !== undefined) out.push('X-Forwarded-Host', host);
  const element = forwardedElement(client, host);
  out.push('Forwarded', forwarded === null ? element : `${forwarded}, ${element}`);
  return out;
}

/** The same as a record (duplicate names as arrays), the shape the WebSocket tunnel takes. */
export function headerRecord(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    const have = out[name];
    if (have === undefined) out[name] = flat[i + 1];
    else if (typeof have === 'string') out[name] = [have, flat[i + 1]];
    else have.push(flat[i + 1]);
  }
  return out;
}

/**
 * The node's response header fields for the client, as a flat [name, value, ...] list for
 * `res.writeHead` in the node's order and spelling, without hop-by-hop fields (Node's server
 * adds its own Connection, Keep-Alive and Transfer-Encoding).
 */
export function downstreamHeaders(raw: readonly string[]): string[] {
  const listed = connectionListed(raw, RESPONSE_DROPPED);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    if (RESPONSE_DROPPED.has(lower)) continue;
    if (listed !== null && listed.includes(lower)) continue;
    out.push(name, raw[i + 1]);
  }
  return out;
}
