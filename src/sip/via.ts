// Via values: the parts that decide where a response goes (RFC 3261 §18.2.2, RFC 3581) and
// that identify a transaction (branch).

import { isSpace, nameAt, parseHostPort } from './uri.ts';

export interface Via {
  transport: string;      // uppercase: UDP, TCP, TLS, WS, WSS, SCTP...
  host: string;           // sent-by host, lowercase, IPv6 without brackets
  port: number | null;    // sent-by port
  branch: string | null;
  received: string | null;
  /** undefined: no rport; null: rport without value (a request asking for it); else the value. */
  rport: number | null | undefined;
}

const VIA_RE = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z0-9-]+)\s+([^;\s]+(?:\s*:\s*\d+)?)\s*(;.*)?$/i;
const FAST_PREFIX = 'SIP/2.0/';

/** Parse one Via value (already split at commas and unfolded). Null when malformed. */
export function parseVia(v: string): Via | null {
  let transport: string;
  let sentBy: string;
  let params: string | undefined;
  // Fast path for the canonical spelling `SIP/2.0/UDP host:port;params`; the regex handles the
  // rest (LWS around slashes and colons, lowercase, RFC 4475 oddities). A sent-by with any blank
  // in it goes the regex's way: `host : 5060` is legal (COLON allows LWS around it).
  const sp = v.startsWith(FAST_PREFIX) ? v.indexOf(' ', FAST_PREFIX.length) : -1;
  const semi = sp === -1 ? -1 : v.indexOf(';', sp);
  const hostPart = sp === -1 ? '' : semi === -1 ? v.slice(sp + 1) : v.slice(sp + 1, semi);
  if (sp !== -1 && hostPart.length > 0 && !hasBlankOrControl(hostPart)) {
    transport = transportName(v, FAST_PREFIX.length, sp);
    sentBy = hostPart;
    params = semi === -1 ? undefined : v.slice(semi).trimEnd();
  } else {
    const m = VIA_RE.exec(v);
    if (m === null) return null;
    transport = m[1].toUpperCase();
    sentBy = m[2].replace(/\s+/g, '');
    params = m[3] === undefined ? undefined : m[3].trimEnd();
  }
  const hp = parseHostPort(sentBy);
  if (hp === null) return null;
  let branch: string | null = null;
  let received: string | null = null;
  let rport: number | null | undefined;
  if (params !== undefined) {
    // params = ";name[=value];name[=value]..." scanned in place (no split, no per-param arrays).
    const len = params.length;
    let i = 0;
    while (i < len) {
      // params[i] is ';'
      let end = params.indexOf(';', i + 1);
      if (end === -1) end = len;
      const eq = params.indexOf('=', i + 1);
      const nameEnd = eq !== -1 && eq < end ? eq : end;
      // The name is compared where it stands (no string made for it): only the three read here
      // matter, the rest only have to be there.
      let a = i + 1;
      let b = nameEnd;
      while (a < b && isSpace(params.charCodeAt(a))) a++;
      while (b > a && isSpace(params.charCodeAt(b - 1))) b--;
      if (b === a) return null; // ';;' or a trailing ';': RFC 4475 badinv01
      const which = b - a === 6 && nameAt(params, a, 'branch') ? 1 : b - a === 8 && nameAt(params, a, 'received') ? 2 : b - a === 5 && nameAt(params, a, 'rport') ? 3 : 0;
      if (which !== 0) {
        const value = nameEnd === end ? null : params.slice(nameEnd + 1, end).trim();
        if (which === 1) branch = value;
        else if (which === 2) received = value;
        else if (value === null || value === '') rport = null;
        else if (/^\d{1,5}$/.test(value) && Number(value) <= 65535) rport = Number(value);
        else return null;
      }
      i = end;
    }
  }
  return { transport, host: hp.host, port: hp.port, branch, received, rport };
}

export function defaultPort(transport: string): number {
  return transport === 'TLS' || transport === 'WSS' ? 5061 : 5060;
}

/** Where a response to this Via goes: received/rport win over sent-by (RFC 3581 §4). */
export function responseTarget(via: Via): { host: string; port: number } {
  return {
    host: via.received ?? via.host,
    port: typeof via.rport === 'number' ? via.rport : (via.port ?? defaultPort(via.transport)),
  };
}

/** Any character up to space, or a no-break space (what \s would see in a latin1 head). */
function hasBlankOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || c === 160) return true;
  }
  return false;
}

/** The transport of a canonical Via (v[from, to)), upper case; the common ones without a new string. */
function transportName(v: string, from: number, to: number): string {
  switch (to - from) {
    case 3:
      if (nameAt(v, from, 'udp')) return 'UDP';
      if (nameAt(v, from, 'tcp')) return 'TCP';
      if (nameAt(v, from, 'tls')) return 'TLS';
      if (nameAt(v, from, 'wss')) return 'WSS';
      break;
    case 2:
      if (nameAt(v, from, 'ws')) return 'WS';
      break;
  }
  return v.slice(from, to).toUpperCase();
}

