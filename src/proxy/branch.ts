// Branch parameters of the Vias siplb adds (RFC 3261 §16.6 step 8, §16.11).
//
//   z9hG4bK + "Lb" + L (8 chars) + M (16 chars)
//
// L identifies the request for loop detection (§16.3 step 4): a hash over the Request-URI, From
// tag, Call-ID, CSeq number, the Route set left after our own entries are popped, and the
// direction (into or out of the cluster). A request
// that comes back with a Via of ours carrying the same L has looped; a spiral differs in one of
// them. M authenticates the hop: a keyed hash over the previous hop's Via (as forwarded, with
// received/rport), the Call-ID and the CSeq number. Everything M covers is also in the response,
// so a response is checked without any state, and a forged or stray response that carries a copy
// of our Via with another next hop is dropped. Neither part covers the method, so CANCEL and the
// ACK for a non-2xx response get the INVITE's branch and reach the same node transaction.

import { hash } from 'node:crypto';
import type { Via } from '../sip/via.ts';

export const BRANCH_PREFIX = 'z9hG4bKLb';
const LOOP_LEN = 8;
const MAC_LEN = 16;

/** Transaction-identifying parts of a Via, in a form that survives re-serialisation by peers. */
export function viaKey(via: Via): string {
  return `${via.transport}|${via.host}|${via.port ?? ''}|${via.branch ?? ''}|${via.received ?? ''}|${via.rport ?? ''}`;
}

/**
 * `parts`: the Request-URI, the From tag, the Call-ID and the Route entries left after ours, in
 * that order. Loop detection needs no secret (it only compares our own output with itself), so
 * a fast non-cryptographic hash does: two FNV-1a 32-bit lanes, 48 bits as 8 base64url characters.
 */
export function loopPart(parts: readonly string[], cseqNum: number, outbound: boolean): string {
  let a = outbound ? 0x811c9dc5 : 0x050c5d1f;
  let b = 0x01000193 ^ cseqNum;
  for (let p = 0; p < parts.length; p++) {
    const s = parts[p];
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
    }
    a = Math.imul(a ^ 10, 0x01000193);
    b = Math.imul(b ^ 10, 0x01000193);
  }
  a = Math.imul(a ^ cseqNum, 0x01000193);
  let out = '';
  for (let k = 0; k < 4; k++) out += B64[(a >>> (k * 6)) & 63];
  for (let k = 0; k < 4; k++) out += B64[(b >>> (k * 6)) & 63];
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function macPart(secret: string, prevViaKey: string, callId: string, cseqNum: number): string {
  return hash('sha256', `${secret}\n${prevViaKey}\n${callId}\n${cseqNum}`, 'base64url').slice(0, MAC_LEN);
}

export function makeBranch(loop: string, mac: string): string {
  return BRANCH_PREFIX + loop + mac;
}

/** The loop part of one of our branches, or null when the branch is not ours. */
export function loopOf(branch: string): string | null {
  return branch.length === BRANCH_PREFIX.length + LOOP_LEN + MAC_LEN && branch.startsWith(BRANCH_PREFIX)
    ? branch.slice(BRANCH_PREFIX.length, BRANCH_PREFIX.length + LOOP_LEN)
    : null;
}

export function macOf(branch: string): string {
  return branch.slice(BRANCH_PREFIX.length + LOOP_LEN);
}
