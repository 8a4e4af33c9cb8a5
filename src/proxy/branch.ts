// Branch parameters of the Vias siplb adds (RFC 3261 §16.6 step 8, §16.11).
//
//   z9hG4bK + "Lb" + L (8 chars) + M (16 chars)
//
// L identifies the request for loop detection (§16.3 step 4): a hash over the Request-URI, From
// tag, Call-ID, CSeq number, the Route set left after our own entries are popped, and the
// direction (into or out of the cluster). A request
// that comes back with a Via of ours carrying the same L has looped; a spiral differs in one of
// them. M authenticates the hop: a keyed hash (SipHash-2-4-128, in native/mac.c or, without it,
// in JavaScript) over the previous hop's Via (as forwarded, with received/rport), the Call-ID and
// the CSeq number. Everything M covers is also in the response,
// so a response is checked without any state, and a forged or stray response that carries a copy
// of our Via with another next hop is dropped. Neither part covers the method, so CANCEL and the
// ACK for a non-2xx response get the INVITE's branch and reach the same node transaction.

import { hash } from 'node:crypto';
import { loadNativeAddon, type AddonResult } from '../core/native-addon.ts';
import { SipInput, sipHash128, sipKey, type SipKey } from '../core/siphash.ts';
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

/** native/mac.c: the same MAC as `jsMac`, at a third of the CPU. */
interface MacAddon {
  setKey(key: Buffer): number;
  mac(viaKey: string, callId: string, cseq: number): string | undefined;
}

let loaded: AddonResult<MacAddon> | null = null;
// The MAC key is derived from the secret, so every balancer with the same secret (viaSecret)
// makes and accepts the same MACs, with or without the addon. Kept for the last secret seen:
// a process has one.
let keyOf: string | null = null;
let key: SipKey = new Uint32Array(4);
let addon: MacAddon | null = null;
const input = new SipInput();
const words = new Uint32Array(4);

/** native/build/mac.node, loaded once. */
function macAddon(): AddonResult<MacAddon> {
  loaded ??= loadNativeAddon<MacAddon>('mac', ['setKey', 'mac']);
  return loaded;
}

/** Why branch MACs are computed in JavaScript (native/build/mac.node missing or unusable), or null. */
export function branchMacFallbackReason(): string | null {
  return macAddon().problem;
}

function useSecret(secret: string): void {
  const bytes = hash('sha256', `siplb branch MAC\n${secret}`, 'buffer').subarray(0, 16);
  key = sipKey(bytes);
  const native = macAddon().addon;
  addon = native !== null && native.setKey(Buffer.from(bytes)) === 0 ? native : null;
  keyOf = secret;
}

/** The MAC part: 96 bits of SipHash-2-4-128 over the previous hop's Via key, Call-ID and CSeq number. */
export function macPart(secret: string, prevViaKey: string, callId: string, cseqNum: number): string {
  if (secret !== keyOf) useSecret(secret);
  if (addon !== null) {
    const mac = addon.mac(prevViaKey, callId, cseqNum);
    if (mac !== undefined) return mac;
  }
  return jsMac(prevViaKey, callId, cseqNum);
}

/** `macPart` without the addon (for the tests that hold both to the same bits). */
export function macPartInJavaScript(secret: string, prevViaKey: string, callId: string, cseqNum: number): string {
  if (secret !== keyOf) useSecret(secret);
  return jsMac(prevViaKey, callId, cseqNum);
}

/** What native/mac.c computes: "<Via key>\n<Call-ID>\n" and the CSeq number's 4 bytes. */
function jsMac(prevViaKey: string, callId: string, cseqNum: number): string {
  input.reset().latin1(prevViaKey).byte(10).latin1(callId).byte(10).uint32(cseqNum);
  const w = sipHash128(key, input.buf, input.len, words);
  // 5 characters (30 bits) from each of the first three words, the 16th from their top 2 bits.
  let out = '';
  for (let k = 0; k < 3; k++) {
    for (let j = 0; j < 30; j += 6) out += B64[(w[k] >>> j) & 63];
  }
  return out + B64[(w[0] >>> 30) | ((w[1] >>> 30) << 2) | ((w[2] >>> 30) << 4)];
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
