// Peer addresses as SIP and siplb's tables write them.

import { isIP } from 'node:net';

/** IPv4 peers of a dual-stack socket appear as ::ffff:a.b.c.d; SIP and our tables use a.b.c.d. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * net.isIP with a fast path for the dotted quads nearly every next hop is: isIP runs regular
 * expressions, and the resolver and the UDP send path ask it for every message sent.
 */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (s.includes(':')) return isIP(s) as 0 | 4 | 6;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || value > 255 || ++parts > 4) return 0;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros ("010" is octal to some parsers): net.isIP refuses them too.
      if (digits === 1 && value === 0) return 0;
      value = value * 10 + (c - 48);
      if (++digits > 3) return 0;
    } else return 0;
  }
  return parts === 4 ? 4 : 0;
}
