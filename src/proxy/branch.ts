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
  return macOfInput(secret, macInput(prevViaKey, callId, cseqNum));
}

function macInput(prevViaKey: string, callId: string, cseqNum: number): string {
  return `${prevViaKey}\n${callId}\n${cseqNum}`;
}

function macOfInput(secret: string, input: string): string {
  return hash('sha256', `${secret}\n${input}`, 'base64url').slice(0, MAC_LEN);
}

/** MACs remembered by BranchMacs: at 1000 calls/s, about the last third of a second's requests. */
export const RECENT_MACS = 1024;

/**
 * The branch MACs of one proxy, made for requests and checked on their responses. Most responses
 * (100, 180, the 200 to a BYE) come back within a fraction of a second of their request: the
 * inputs of the last RECENT_MACS MACs made are remembered, and a response whose MAC is among them
 * is checked by comparing its inputs with those, instead of hashing again (a SHA-256 call is about
 * 1 µs; the string comparison a small part of that). Only MACs this proxy made are remembered, so
 * a remembered MAC whose inputs differ is a forgery (or a collision of 96 bits); any other MAC is
 * hashed as always. Same answers as macPart alone.
 */
export class BranchMacs {
  private readonly secret: string;
  private readonly inputs = new Map<string, string>();
  /** The remembered MACs in the order made; the oldest is forgotten first. */
  private readonly ring: (string | undefined)[];
  private next = 0;

  constructor(secret: string, remembered = RECENT_MACS) {
    this.secret = secret;
    this.ring = new Array<string | undefined>(remembered).fill(undefined);
  }

  /** The MAC of a request forwarded now (macPart), remembered. */
  make(prevViaKey: string, callId: string, cseqNum: number): string {
    const input = macInput(prevViaKey, callId, cseqNum);
    const mac = macOfInput(this.secret, input);
    const ring = this.ring;
    if (ring.length > 0) {
      const old = ring[this.next];
      // A retransmission makes the same MAC again: the older slot must not forget the newer one.
      if (old !== undefined && old !== mac) this.inputs.delete(old);
      ring[this.next] = mac;
      this.next = this.next + 1 === ring.length ? 0 : this.next + 1;
      this.inputs.set(mac, input);
    }
    return mac;
  }

  /** Whether `mac` is the MAC of these inputs (macPart's answer). */
  verifies(mac: string, prevViaKey: string, callId: string, cseqNum: number): boolean {
    const input = macInput(prevViaKey, callId, cseqNum);
    const known = this.inputs.get(mac);
    if (known !== undefined) return known === input;
    return macOfInput(this.secret, input) === mac;
  }

  /** MACs remembered now. */
  get size(): number {
    return this.inputs.size;
  }
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
