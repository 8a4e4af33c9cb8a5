// Header names are case-insensitive and several have one-letter compact forms (RFC 3261 §7.3.3,
// plus the IANA registry). The parser maps every spelling to one lowercase canonical name so the
// rest of siplb compares names with ===.

const COMPACT_FORMS: Record<string, string> = {
  a: 'accept-contact', b: 'referred-by', c: 'content-type', d: 'request-disposition',
  e: 'content-encoding', f: 'from', i: 'call-id', j: 'reject-contact', k: 'supported',
  l: 'content-length', m: 'contact', n: 'identity-info', o: 'event', r: 'refer-to',
  s: 'subject', t: 'to', u: 'allow-events', v: 'via', x: 'session-expires', y: 'identity',
};

// Spellings seen on every call are resolved by one Map lookup, without lowercasing.
const KNOWN = new Map<string, string>();
for (const name of ['Via', 'From', 'To', 'Call-ID', 'Call-Id', 'CSeq', 'Contact', 'Max-Forwards',
  'Content-Length', 'Content-Type', 'Route', 'Record-Route', 'Subject', 'User-Agent', 'Allow',
  'Supported', 'Require', 'Proxy-Require', 'Expires', 'Server', 'Accept', 'Event']) {
  KNOWN.set(name, name.toLowerCase());
  KNOWN.set(name.toLowerCase(), name.toLowerCase());
  KNOWN.set(name.toUpperCase(), name.toLowerCase());
}
for (const [short, long] of Object.entries(COMPACT_FORMS)) {
  KNOWN.set(short, long);
  KNOWN.set(short.toUpperCase(), long);
}

// The spellings nearly every message uses, grouped by length, so the parser can recognise a name
// in place (startsWith at an offset) without slicing and hashing a new string per header line.
const COMMON_SPELLINGS = ['Via', 'From', 'To', 'Call-ID', 'Call-Id', 'CSeq', 'Contact', 'Max-Forwards',
  'Content-Length', 'Content-Type', 'Route', 'Record-Route', 'Subject', 'User-Agent', 'Allow',
  'Supported', 'Expires', 'Server', 'Accept', 'Event', 'Require', 'Proxy-Require', 'Authorization',
  'v', 'i', 'f', 't', 'm', 'l', 'c', 'k', 's'];
const BY_LENGTH: [string, string][][] = [];
for (const spelling of COMMON_SPELLINGS) {
  (BY_LENGTH[spelling.length] ??= []).push([spelling, canonicalHeaderName(spelling)]);
}

/** Canonical name of head[start, end) when it is one of the common spellings, else null. */
export function commonHeaderNameAt(head: string, start: number, end: number): string | null {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return null;
  for (let k = 0; k < candidates.length; k++) {
    if (head.startsWith(candidates[k][0], start)) return candidates[k][1];
  }
  return null;
}

/** Canonical lowercase name for a raw header name (already trimmed). */
export function canonicalHeaderName(raw: string): string {
  const known = KNOWN.get(raw);
  if (known !== undefined) return known;
  const lower = raw.toLowerCase();
  return lower.length === 1 ? (COMPACT_FORMS[lower] ?? lower) : lower;
}

// RFC 3261 token characters; header names and methods must be tokens.
const TOKEN = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~") {
  TOKEN[ch.charCodeAt(0)] = 1;
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}
