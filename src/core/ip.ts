// IP literals as bytes, for what compares or prints addresses bit by bit (a CIDR's host bits,
// the kernel's hex notation in /proc/net/udp).

import { isIP } from 'node:net';

/** The 4 or 16 bytes of an IP literal, or null for anything else (a zone, %eth0, included). */
export function ipBytes(address: string): number[] | null {
  const family = isIP(address);
  if (family === 0 || address.includes('%')) return null;
  if (family === 4) return address.split('.').map(Number);
  let text = address;
  const tail: number[] = [];
  // An IPv4 tail (::ffff:10.0.0.1) is the last 4 bytes.
  if (text.includes('.')) {
    const at = text.lastIndexOf(':');
    tail.push(...text.slice(at + 1).split('.').map(Number));
    text = `${text.slice(0, at + 1)}0:0`;
  }
  const [head, rest] = text.split('::');
  const groups = (part: string | undefined): number[] => (part === undefined || part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = groups(rest);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = all.flatMap((g) => [g >> 8, g & 255]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}
