// The parts of SIP URIs and name-addrs a proxy routes on: scheme, host, port, transport and a few
// parameters. Anything it cannot read returns null; the caller answers 400 or falls back.

export interface SipUri {
  scheme: string;            // 'sip' | 'sips' | other (lowercase)
  user: string;              // may be ''
  host: string;              // lowercase, IPv6 without brackets
  port: number | null;
  params: Map<string, string>; // lowercase names; valueless params map to ''
}

/** Parse sip:/sips: URIs. Returns null for other schemes or malformed host/port. */
export function parseSipUri(uri: string): SipUri | null {
  const colon = uri.indexOf(':');
  if (colon <= 0) return null;
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips') return null;
  let rest = uri.slice(colon + 1);
  const q = rest.indexOf('?');
  if (q !== -1) rest = rest.slice(0, q);
  let user = '';
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const semi = rest.indexOf(';');
  const hostport = semi === -1 ? rest : rest.slice(0, semi);
  const hp = parseHostPort(hostport);
  if (hp === null) return null;
  const params = new Map<string, string>();
  if (semi !== -1) {
    for (const p of rest.slice(semi + 1).split(';')) {
      if (p.length === 0) continue;
      const eq = p.indexOf('=');
      if (eq === -1) params.set(p.trim().toLowerCase(), '');
      else params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
    }
  }
  return { scheme, user, host: hp.host, port: hp.port, params };
}

/** host[:port] with IPv6 in brackets. Host is lowercased and unbracketed. */
export function parseHostPort(s: string): { host: string; port: number | null } | null {
  // Fast path: the dotted-quad form almost every Via and Route carries, read without a regex.
  const v4 = dottedQuadLength(s);
  if (v4 !== -1) {
    if (v4 === s.length) return { host: s, port: null };
    const port = s.charCodeAt(v4) === 58 ? digitsValue(s, v4 + 1, s.length, 5) : -1;
    if (port !== -1) return port === 0 || port > 65535 ? null : { host: s.slice(0, v4), port };
  }
  s = s.trim();
  let host: string;
  let portStr: string | null = null;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1) return null;
    host = s.slice(1, close);
    const after = s.slice(close + 1);
    if (after.length > 0) {
      if (after[0] !== ':') return null;
      portStr = after.slice(1);
    }
    if (!/^[0-9a-fA-F:.]+$/.test(host)) return null;
  } else {
    const c = s.indexOf(':');
    if (c === -1) host = s;
    else {
      host = s.slice(0, c);
      portStr = s.slice(c + 1);
    }
    if (!/^[A-Za-z0-9.-]+$/.test(host)) return null;
  }
  let port: number | null = null;
  if (portStr !== null) {
    if (!/^\d{1,5}$/.test(portStr)) return null;
    port = Number(portStr);
    if (port < 1 || port > 65535) return null;
  }
  return { host: host.toLowerCase(), port };
}

/** Host and port of a sip:/sips: URI without reading its parameters; null when not one. */
export function sipUriHostPort(uri: string): { host: string; port: number | null } | null {
  const colon = uri.indexOf(':');
  if (colon !== 3 && colon !== 4) return null;
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips') return null;
  const at = uri.lastIndexOf('@');
  const start = at === -1 ? colon + 1 : at + 1;
  let end = uri.length;
  for (let i = start; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c === 59 || c === 63) { end = i; break; } // ';' or '?'
  }
  return parseHostPort(uri.slice(start, end));
}

/** The URI inside a name-addr (`"x" <sip:...>;p`) or an addr-spec, and where it sits. */
export function nameAddrUri(v: string): string | null {
  const lt = v.indexOf('<');
  if (lt === -1) {
    // addr-spec form: parameters after ';' belong to the header, not the URI.
    const semi = v.indexOf(';');
    return (semi === -1 ? v : v.slice(0, semi)).trim();
  }
  const gt = v.indexOf('>', lt);
  if (gt === -1) return null;
  return v.slice(lt + 1, gt).trim();
}

/**
 * Value of a header parameter (e.g. From's tag) outside the <...> URI, or null: the first
 * `;name=value` after the last '>' (or anywhere, without one), name matched without regard to
 * case, whitespace allowed around the name and the '=', the value running to whitespace or ';'.
 * Read by a scan: it runs for the To and From tags of every message.
 */
export function headerParam(v: string, name: string): string | null {
  const gt = v.lastIndexOf('>');
  for (let semi = v.indexOf(';', gt + 1); semi !== -1; semi = v.indexOf(';', semi + 1)) {
    let i = skipSpace(v, semi + 1);
    if (!nameAt(v, i, name)) continue;
    i = skipSpace(v, i + name.length);
    if (v.charCodeAt(i) !== 61) continue;
    const start = skipSpace(v, i + 1);
    let end = start;
    while (end < v.length && v.charCodeAt(end) !== 59 && !isSpace(v.charCodeAt(end))) end++;
    if (end > start) return v.slice(start, end);
  }
  return null;
}

/** `name` (lowercase ASCII) at v[at], its letters in either case. */
export function nameAt(v: string, at: number, name: string): boolean {
  if (at + name.length > v.length) return false;
  for (let k = 0; k < name.length; k++) {
    const c = v.charCodeAt(at + k);
    const want = name.charCodeAt(k);
    if (c !== want && !(want >= 97 && want <= 122 && c === want - 32)) return false;
  }
  return true;
}

function skipSpace(v: string, i: number): number {
  while (i < v.length && isSpace(v.charCodeAt(i))) i++;
  return i;
}

/** What a regular expression's \s matches (and String.prototype.trim takes off). */
export function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160
    || (c >= 0x1680 && (c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff));
}

/** Format host for a URI or Via: IPv6 literals get brackets. */
export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Length of the dotted quad (four runs of 1-3 digits) s starts with, or -1. */
function dottedQuadLength(s: string): number {
  let i = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (s.charCodeAt(i) !== 46) return -1;
      i++;
    }
    const start = i;
    while (i < s.length && i - start < 4 && isDigit(s.charCodeAt(i))) i++;
    if (i === start || i - start > 3) return -1;
  }
  return i < s.length && (s.charCodeAt(i) === 46 || isDigit(s.charCodeAt(i))) ? -1 : i;
}

/** A run of 1 to `max` decimal digits filling s[from, to), as a number; -1 otherwise. */
export function digitsValue(s: string, from: number, to: number, max: number): number {
  if (to <= from || to - from > max) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
