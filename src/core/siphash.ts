// SipHash-2-4 with its 128-bit output (Aumasson and Bernstein, "SipHash: a fast short-input PRF";
// the reference implementation's `vectors_sip128` are the tests). A keyed hash made for what
// the branch MAC is: many short inputs, a secret key, an attacker who sees outputs.
//
// This is the JavaScript twin of native/mac.c, used where that addon is not built; both must
// give the same bits. It costs about as much as one node:crypto SHA-256; the addon a third.
// JavaScript has no fast 64-bit integers, so each 64-bit word is two 32-bit halves (h = high,
// l = low), all in locals of one function: state in module variables costs more than the maths.

/** A 128-bit key as four little-endian 32-bit words (bytes 0-3, 4-7, 8-11, 12-15). */
export type SipKey = Uint32Array;

export function sipKey(bytes: Uint8Array): SipKey {
  if (bytes.length !== 16) throw new RangeError('a SipHash key has 16 bytes');
  const k = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    k[i] = (bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24)) >>> 0;
  }
  return k;
}

/**
 * Bytes to hash, gathered into one reused buffer. Strings are taken as Latin-1, one byte per
 * character (the low byte of each UTF-16 unit), as siplb's parser produces them and as Node-API
 * hands them to native/mac.c.
 */
export class SipInput {
  buf = new Uint8Array(1024);
  len = 0;

  reset(): this {
    this.len = 0;
    return this;
  }

  byte(b: number): this {
    if (this.len === this.buf.length) this.grow(1);
    this.buf[this.len++] = b;
    return this;
  }

  latin1(s: string): this {
    if (this.len + s.length > this.buf.length) this.grow(s.length);
    const buf = this.buf;
    let n = this.len;
    for (let i = 0; i < s.length; i++) buf[n++] = s.charCodeAt(i);
    this.len = n;
    return this;
  }

  /** The number's low 32 bits, little-endian. */
  uint32(x: number): this {
    return this.byte(x & 0xff).byte((x >>> 8) & 0xff).byte((x >>> 16) & 0xff).byte((x >>> 24) & 0xff);
  }

  private grow(extra: number): void {
    const next = new Uint8Array(Math.max(2 * this.buf.length, this.len + extra));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}

/**
 * SipHash-2-4-128 of the first `len` bytes of `buf` under `key`. Writes the 128-bit result to
 * `out` as four little-endian words (word 0 holds output bytes 0-3) and returns it.
 */
export function sipHash128(key: SipKey, buf: Uint8Array, len: number, out: Uint32Array): Uint32Array {
  const k0l = key[0] | 0, k0h = key[1] | 0, k1l = key[2] | 0, k1h = key[3] | 0;
  let v0h = k0h ^ 0x736f6d65, v0l = k0l ^ 0x70736575;
  let v1h = k1h ^ 0x646f7261, v1l = k1l ^ 0x6e646f6d ^ 0xee; // 0xee: the 128-bit variant
  let v2h = k0h ^ 0x6c796765, v2l = k0l ^ 0x6e657261;
  let v3h = k1h ^ 0x74656462, v3l = k1l ^ 0x79746573;
  const last = len & ~7; // offset of the final, partial block (it carries the length byte)
  let pos = 0;
  let stage = 0; // 0: message blocks; 1: first finalization; 2: second
  let mh = 0, ml = 0, lo = 0, th = 0;
  for (;;) {
    let nr = 2;
    if (stage === 0) {
      if (pos < last) {
        ml = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24);
        mh = buf[pos + 4] | (buf[pos + 5] << 8) | (buf[pos + 6] << 16) | (buf[pos + 7] << 24);
      } else {
        ml = 0;
        mh = (len & 0xff) << 24;
        for (let i = 0; pos + i < len; i++) {
          if (i < 4) ml |= buf[pos + i] << (i << 3);
          else mh |= buf[pos + i] << ((i - 4) << 3);
        }
      }
      v3h ^= mh;
      v3l ^= ml;
    } else if (stage === 1) {
      v2l ^= 0xee;
      nr = 4;
    } else {
      v1l ^= 0xdd;
      nr = 4;
    }
    for (let r = 0; r < nr; r++) {
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      lo = (v0l + v1l) | 0;
      v0h = (v0h + v1h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0;
      v0l = lo;
      th = (v1h << 13) | (v1l >>> 19);
      v1l = ((v1l << 13) | (v1h >>> 19)) ^ v0l;
      v1h = th ^ v0h;
      th = v0h; v0h = v0l; v0l = th;
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      lo = (v2l + v3l) | 0;
      v2h = (v2h + v3h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0;
      v2l = lo;
      th = (v3h << 16) | (v3l >>> 16);
      v3l = ((v3l << 16) | (v3h >>> 16)) ^ v2l;
      v3h = th ^ v2h;
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      lo = (v0l + v3l) | 0;
      v0h = (v0h + v3h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0;
      v0l = lo;
      th = (v3h << 21) | (v3l >>> 11);
      v3l = ((v3l << 21) | (v3h >>> 11)) ^ v0l;
      v3h = th ^ v0h;
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      lo = (v2l + v1l) | 0;
      v2h = (v2h + v1h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0;
      v2l = lo;
      th = (v1h << 17) | (v1l >>> 15);
      v1l = ((v1l << 17) | (v1h >>> 15)) ^ v2l;
      v1h = th ^ v2h;
      th = v2h; v2h = v2l; v2l = th;
    }
    if (stage === 0) {
      v0h ^= mh;
      v0l ^= ml;
      if (pos === last) stage = 1;
      else pos += 8;
    } else if (stage === 1) {
      out[0] = v0l ^ v1l ^ v2l ^ v3l;
      out[1] = v0h ^ v1h ^ v2h ^ v3h;
      stage = 2;
    } else {
      out[2] = v0l ^ v1l ^ v2l ^ v3l;
      out[3] = v0h ^ v1h ^ v2h ^ v3h;
      return out;
    }
  }
}
