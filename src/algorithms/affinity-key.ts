// Where the hash and user-based algorithms read their key (sipHeaderAffinityKey and
// sipHeaderAffinityFallbackKey), and where the HTTP side reads it (httpAffinityKey).
//
// A spec is compiled once into a reader; the reader runs on every request, so it only scans
// characters (no regular expressions, no URI objects) and never throws: anything it cannot read
// is "no key" (null), and the algorithm falls back to another key.
//
//   Call-ID, i                 the Call-ID
//   From, f, from.user         user part of the From URI (sip:/sips:), or the number of a tel: URI
//   To, t, to.user             the same for To
//   from.uri, to.uri           the URI as an address of record: scheme:user@host[:port], with
//                              scheme and host lower-cased and URI parameters and headers dropped,
//                              so a changed ;transport= or a password does not change the key
//   any other header name      that header's whole value (first occurrence, folding joined)
//
// Restcomm reads From/To as the URI's user (JAIN SIP getUser(), getPhoneNumber() for tel:), so
// that is what "From"/"To" mean here too. User parts are compared as sent: RFC 3261 §19.1.4 makes
// them case-sensitive.

import { canonicalHeaderName } from '../sip/header-names.ts';
import type { SipMessage } from '../sip/message.ts';

export type SipKeyReader = (msg: SipMessage) => string | null;
export type HttpKeyReader = (url: string) => string | null;

/** Compile a sipHeaderAffinityKey-style spec into a reader. */
export function affinityKeyReader(spec: string): SipKeyReader {
  const trimmed = spec.trim();
  switch (trimmed.toLowerCase()) {
    case 'call-id':
    case 'i':
      return callIdKey;
    case 'from':
    case 'f':
    case 'from.user':
      return (msg) => uriUser(fromValue(msg));
    case 'to':
    case 't':
    case 'to.user':
      return (msg) => uriUser(toValue(msg));
    case 'from.uri':
      return (msg) => addressOfRecord(fromValue(msg));
    case 'to.uri':
      return (msg) => addressOfRecord(toValue(msg));
    default: {
      const name = canonicalHeaderName(trimmed);
      return (msg) => nonEmpty(msg.get(name));
    }
  }
}

/** True when the spec reads the Call-ID, i.e. every key it gives lives exactly as long as one call. */
export function isCallIdSpec(spec: string): boolean {
  const s = spec.trim().toLowerCase();
  return s === 'call-id' || s === 'i';
}

function callIdKey(msg: SipMessage): string | null {
  // Validation fills callId; a message that failed it may still be routed as an error reply.
  return msg.callId.length > 0 ? msg.callId : nonEmpty(msg.get('call-id'));
}

function fromValue(msg: SipMessage): string {
  return msg.from.length > 0 ? msg.from : (msg.get('from') ?? '');
}

function toValue(msg: SipMessage): string {
  return msg.to.length > 0 ? msg.to : (msg.get('to') ?? '');
}

function nonEmpty(v: string | undefined): string | null {
  return v === undefined || v.length === 0 ? null : v;
}

/**
 * The URI of a name-addr (`"Bob <x>" <sip:bob@h>;tag=1`) or addr-spec (`sip:bob@h;tag=1`),
 * trimmed; null when there is none. A quoted display name may contain '<', ';' and escaped quotes.
 */
export function headerUri(v: string): string | null {
  let inQuote = false;
  let firstSemi = -1;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60) {
      const gt = v.indexOf('>', i + 1);
      if (gt === -1) return null;
      const uri = v.slice(i + 1, gt).trim();
      return uri.length > 0 ? uri : null;
    } else if (c === 59 && firstSemi === -1) firstSemi = i;
  }
  if (inQuote) return null;
  // addr-spec: what follows ';' are header parameters (RFC 3261 §20.10), not part of the URI.
  const uri = (firstSemi === -1 ? v : v.slice(0, firstSemi)).trim();
  return uri.length > 0 ? uri : null;
}

const SCHEME_OTHER = 0;
const SCHEME_SIP = 1;
const SCHEME_SIPS = 2;
const SCHEME_TEL = 3;

function lowerAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function schemeOf(uri: string, colon: number): number {
  if (colon === 3) {
    const a = lowerAt(uri, 0), b = lowerAt(uri, 1), c = lowerAt(uri, 2);
    if (a === 115 && b === 105 && c === 112) return SCHEME_SIP; // sip
    if (a === 116 && b === 101 && c === 108) return SCHEME_TEL; // tel
  } else if (colon === 4) {
    if (lowerAt(uri, 0) === 115 && lowerAt(uri, 1) === 105 && lowerAt(uri, 2) === 112 && lowerAt(uri, 3) === 115) return SCHEME_SIPS;
  }
  return SCHEME_OTHER;
}

/** End of a tel: number or of a sip host[:port]: the first ';', '?' or the end. */
function partEnd(uri: string, from: number): number {
  for (let i = from; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c === 59 || c === 63) return i;
  }
  return uri.length;
}

interface UriParts {
  scheme: number;
  colon: number;
  /** userinfo '@' of a sip(s) URI, or -1. */
  at: number;
  /** End of the user (before ':password' or '@'), or -1 without a user. */
  userEnd: number;
}

function splitUri(uri: string): UriParts | null {
  const colon = uri.indexOf(':');
  if (colon <= 0) return null;
  const scheme = schemeOf(uri, colon);
  if (scheme !== SCHEME_SIP && scheme !== SCHEME_SIPS) return { scheme, colon, at: -1, userEnd: -1 };
  // '@' is not allowed unescaped in host, parameters or headers, so the first one ends userinfo.
  const at = uri.indexOf('@', colon + 1);
  if (at === -1) return { scheme, colon, at: -1, userEnd: -1 };
  const pw = uri.indexOf(':', colon + 1);
  const userEnd = pw !== -1 && pw < at ? pw : at;
  return { scheme, colon, at, userEnd: userEnd > colon + 1 ? userEnd : -1 };
}

function uriUser(headerValue: string): string | null {
  const uri = headerUri(headerValue);
  if (uri === null) return null;
  const p = splitUri(uri);
  if (p === null) return null;
  if (p.scheme === SCHEME_TEL) {
    const number = uri.slice(p.colon + 1, partEnd(uri, p.colon + 1)).trim();
    return number.length > 0 ? number : null;
  }
  return p.userEnd === -1 ? null : uri.slice(p.colon + 1, p.userEnd);
}

function addressOfRecord(headerValue: string): string | null {
  const uri = headerUri(headerValue);
  if (uri === null) return null;
  const p = splitUri(uri);
  if (p === null) return null;
  switch (p.scheme) {
    case SCHEME_SIP:
    case SCHEME_SIPS: {
      const hostStart = p.at === -1 ? p.colon + 1 : p.at + 1;
      const host = uri.slice(hostStart, partEnd(uri, hostStart)).toLowerCase();
      if (host.length === 0) return null;
      const scheme = p.scheme === SCHEME_SIP ? 'sip:' : 'sips:';
      return p.userEnd === -1 ? scheme + host : `${scheme}${uri.slice(p.colon + 1, p.userEnd)}@${host}`;
    }
    case SCHEME_TEL: {
      const number = uri.slice(p.colon + 1, partEnd(uri, p.colon + 1)).trim();
      return number.length > 0 ? `tel:${number}` : null;
    }
    default:
      return uri.length > p.colon + 1 ? uri.slice(0, p.colon).toLowerCase() + uri.slice(p.colon) : null;
  }
}

/**
 * Reader of one URL query parameter (httpAffinityKey). The first non-empty occurrence counts;
 * '+' is a space and %XX sequences are decoded as UTF-8. A value that does not decode (a stray
 * '%', broken UTF-8) is used as sent, so the same request always gives the same key.
 */
export function httpKeyReader(param: string): HttpKeyReader {
  return (url) => {
    const q = url.indexOf('?');
    if (q === -1) return null;
    let end = url.indexOf('#', q + 1);
    if (end === -1) end = url.length;
    let i = q + 1;
    while (i < end) {
      let amp = url.indexOf('&', i);
      if (amp === -1 || amp > end) amp = end;
      let eq = url.indexOf('=', i);
      if (eq > amp) eq = -1;
      const nameEnd = eq === -1 ? amp : eq;
      if (nameIs(url, i, nameEnd, param) && eq !== -1 && amp > eq + 1) {
        const value = formDecode(url.slice(eq + 1, amp));
        if (value.length > 0) return value;
      }
      i = amp + 1;
    }
    return null;
  };
}

function nameIs(url: string, start: number, end: number, name: string): boolean {
  if (end - start === name.length && url.startsWith(name, start)) return true;
  const raw = url.slice(start, end);
  return (raw.includes('%') || raw.includes('+')) && formDecode(raw) === name;
}

function formDecode(s: string): string {
  const spaced = s.includes('+') ? s.replaceAll('+', ' ') : s;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}
