// Peer addresses as SIP and siplb's tables write them.

/** IPv4 peers of a dual-stack socket appear as ::ffff:a.b.c.d; SIP and our tables use a.b.c.d. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
