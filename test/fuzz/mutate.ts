// Structure-aware mutations of SIP messages. Byte-level ones (flips, inserted and deleted runs,
// splices) find what nobody thought of; line-level ones (header lines duplicated, dropped, folded,
// renamed to their compact form, Content-Length and numbers swapped for extreme values) reach
// the code behind the parser's first checks, which random bytes almost never get past.
// Everything draws from one seeded PRNG, so a run is reproduced by its seed.

import { prng } from '../helpers/prng.ts';

export interface FuzzInput {
  readonly data: Buffer;
  /** Target-specific choice beside the bytes: chunking, inbound side and transport, proxy setup. */
  readonly variant: number;
}

/** Inputs longer than this are cut: past every limit the targets have (maxMessageSize 65535). */
export const MAX_INPUT = 96 * 1024;

const INTERESTING_BYTES = [0, 9, 10, 13, 32, 34, 35, 37, 44, 58, 59, 60, 61, 62, 63, 64, 91, 92, 93, 127, 0x80, 0xc0, 0xc3, 0xe2, 0xef, 0xff];

const TOKENS = [
  'SIP/2.0', 'SIP/2.0/UDP ', 'SIP/2.0/TCP ', 'SIP/2.0/WSS ', 'SIP/3.0', ';branch=z9hG4bK', ';branch=z9hG4bKsiplb', ';rport', ';rport=',
  ';received=', ';received=[::1]', ';lr', ';lbnode=10.0.0.11:5080', ';lbnode=', ';transport=tcp', ';transport=ws', ';maddr=',
  'sip:', 'sips:', 'tel:', 'sip:10.0.0.1', 'sip:10.0.0.1:5060;lr', '10.0.0.11:5080', '10.0.0.12', '[2001:db8::1]', '[::1]:5060', '[',
  ']', '::', '%00', '%', '<', '>', '<sip:', '"', '\\"', '\\', ';tag=', ';tag', ',', ';;', '@', '@@', ':', '::65536', ':0', ':99999',
  '.invalid', '*', '?Route=x', '\r\n', '\n', '\r', '\r\n\r\n', '\r\n ', '\r\n\t', ' \t ', '\x00', '\xff\xfe', '\xc3\x28',
  '\xe2\x82', '\xf0\x90\x80', '\xed\xa0\x80', 'Content-Length: 0', 'l: 99999999', 'Via: ', 'Route: ', 'Record-Route: ',
  'Max-Forwards: 0', 'Proxy-Require: foo', 'Supported: path', 'Require: x', 'Call-ID: ', 'CSeq: 1 INVITE', 'To: <sip:a@b>;tag=1',
];

const NUMBERS = ['0', '1', '-1', '00', '0068', '255', '256', '65535', '65536', '2147483647', '2147483648', '4294967296',
  '999999999', '1000000000', '9007199254740993', '36893488147419103232', '1e3', '0x10', ' 1', '', '-0', 'NaN', '+5', '1.5'];

const COMPACT: Record<string, string> = {
  'via': 'v', 'from': 'f', 'to': 't', 'call-id': 'i', 'content-length': 'l', 'contact': 'm', 'content-type': 'c',
  'supported': 'k', 'subject': 's', 'event': 'o',
};

export type Rng = () => number;

export class Mutator {
  private readonly r: Rng;
  /** Material for splices: the seeds and whatever the corpus grew. */
  private readonly pool: () => readonly FuzzInput[];

  constructor(seed: number, pool: () => readonly FuzzInput[]) {
    this.r = prng(seed);
    this.pool = pool;
  }

  int(n: number): number {
    return Math.floor(this.r() * n);
  }

  chance(p: number): boolean {
    return this.r() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** One to four mutations stacked on a copy of `parent`. */
  mutate(parent: FuzzInput, variants: number): FuzzInput {
    let s = parent.data.toString('latin1');
    const n = 1 + this.int(this.chance(0.2) ? 8 : 3);
    for (let k = 0; k < n; k++) s = this.once(s);
    if (s.length > MAX_INPUT) s = s.slice(0, MAX_INPUT);
    const variant = this.chance(0.8) ? parent.variant : this.int(variants);
    return { data: Buffer.from(s, 'latin1'), variant };
  }

  private once(s: string): string {
    switch (this.int(22)) {
      case 0: return this.flipBytes(s);
      case 1: return this.insertAt(s, this.randomRun());
      case 2: return this.insertAt(s, this.pick(TOKENS));
      case 3: return this.deleteRun(s);
      case 4: return this.splice(s);
      case 5: return this.lineOp(s, 'duplicate');
      case 6: return this.lineOp(s, 'delete');
      case 7: return this.lineOp(s, 'swap');
      case 8: return this.contentLength(s);
      case 9: return this.number(s);
      case 10: return this.intoHeader(s);
      case 11: return this.fold(s);
      case 12: return this.compactOrCase(s);
      case 13: return this.repeatVia(s);
      case 14: return s.slice(0, this.int(s.length + 1));
      case 15: return this.longLine(s);
      case 16: return this.lineEnds(s);
      case 17: return this.replaceRange(s, this.pick(TOKENS));
      case 18: return this.pipeline(s);
      case 19: return this.insertAt(s, this.invalidUtf8());
      case 20: return this.startLine(s);
      default: return this.addHeader(s);
    }
  }

  private pos(s: string): number {
    return this.int(s.length + 1);
  }

  private randomRun(): string {
    const len = 1 + this.int(this.chance(0.1) ? 64 : 6);
    let out = '';
    for (let i = 0; i < len; i++) out += String.fromCharCode(this.chance(0.5) ? this.pick(INTERESTING_BYTES) : this.int(256));
    return out;
  }

  private invalidUtf8(): string {
    return this.pick(['\xc0\xaf', '\xe0\x80\xaf', '\xf8\x88\x80\x80\x80', '\x80', '\xbf', '\xfe', '\xff', '\xc3', '\xed\xbf\xbf', '\xf4\x90\x80\x80']);
  }

  private flipBytes(s: string): string {
    if (s.length === 0) return this.randomRun();
    const chars = s.split('');
    const n = 1 + this.int(4);
    for (let k = 0; k < n; k++) {
      const i = this.int(chars.length);
      chars[i] = String.fromCharCode(this.chance(0.5) ? chars[i].charCodeAt(0) ^ (1 << this.int(8)) : this.pick(INTERESTING_BYTES));
    }
    return chars.join('');
  }

  private insertAt(s: string, piece: string): string {
    const p = this.pos(s);
    return s.slice(0, p) + piece + s.slice(p);
  }

  private replaceRange(s: string, piece: string): string {
    const a = this.pos(s);
    const b = Math.min(s.length, a + this.int(12));
    return s.slice(0, a) + piece + s.slice(b);
  }

  private deleteRun(s: string): string {
    const a = this.pos(s);
    const b = Math.min(s.length, a + 1 + this.int(this.chance(0.2) ? 200 : 8));
    return s.slice(0, a) + s.slice(b);
  }

  /** The start of this message, the end of another (at random places, or at line starts). */
  private splice(s: string): string {
    const other = this.pick(this.pool()).data.toString('latin1');
    if (this.chance(0.5)) {
      const a = this.lineStart(s);
      const b = this.lineStart(other);
      return s.slice(0, a) + other.slice(b);
    }
    return s.slice(0, this.pos(s)) + other.slice(this.int(other.length + 1));
  }

  private lineStart(s: string): number {
    const p = this.pos(s);
    const nl = s.lastIndexOf('\n', p - 1);
    return nl === -1 ? 0 : nl + 1;
  }

  private lines(s: string): { head: string[]; rest: string } {
    let end = s.indexOf('\r\n\r\n');
    if (end === -1) end = s.length;
    return { head: s.slice(0, end).split('\r\n'), rest: s.slice(end) };
  }

  private lineOp(s: string, op: 'duplicate' | 'delete' | 'swap'): string {
    const { head, rest } = this.lines(s);
    if (head.length === 0) return s;
    const i = this.int(head.length);
    if (op === 'duplicate') {
      const times = this.chance(0.1) ? 1 + this.int(200) : 1;
      head.splice(i, 0, ...Array<string>(times).fill(head[i]));
    } else if (op === 'delete') head.splice(i, 1);
    else {
      const j = this.int(head.length);
      [head[i], head[j]] = [head[j], head[i]];
    }
    return head.join('\r\n') + rest;
  }

  private contentLength(s: string): string {
    const value = this.pick(['-1', '-999', '99999999', '999999999', '4294967296', '1e2', 'abc', '', ' 5 ', '0', '1', '5', String(this.int(300)), '12 34', '0x10', '18446744073709551616']);
    const name = this.pick(['Content-Length', 'l', 'content-length', 'CONTENT-LENGTH', 'Content-Length ']);
    const re = /(^|\r\n)(content-length|l)[ \t]*:[^\r\n]*/i;
    if (re.test(s) && this.chance(0.7)) return s.replace(re, `$1${name}: ${value}`);
    return this.addLine(s, `${name}: ${value}`);
  }

  private number(s: string): string {
    const spans: [number, number][] = [];
    const re = /\d+/g;
    for (let m = re.exec(s); m !== null && spans.length < 200; m = re.exec(s)) spans.push([m.index, m.index + m[0].length]);
    if (spans.length === 0) return s;
    const [a, b] = this.pick(spans);
    return s.slice(0, a) + this.pick(NUMBERS) + s.slice(b);
  }

  /** CR, LF, NUL, high bytes into a header's name or value. */
  private intoHeader(s: string): string {
    const { head, rest } = this.lines(s);
    if (head.length < 2) return this.insertAt(s, this.randomRun());
    const i = 1 + this.int(head.length - 1);
    const line = head[i];
    const colon = line.indexOf(':');
    const p = colon === -1 || this.chance(0.5) ? this.int(line.length + 1) : this.int(colon + 1);
    head[i] = line.slice(0, p) + this.pick(['\r', '\n', '\x00', '\x80', '\xff', '\xc3\xa9', ' ', '\t', ':', '\x7f']) + line.slice(p);
    return head.join('\r\n') + rest;
  }

  /** A header value continued on the next line (RFC 3261 §7.3.1), sometimes without the leading space. */
  private fold(s: string): string {
    const { head, rest } = this.lines(s);
    if (head.length < 2) return s;
    const i = 1 + this.int(head.length - 1);
    const line = head[i];
    const p = this.int(line.length + 1);
    head[i] = line.slice(0, p) + this.pick(['\r\n ', '\r\n\t', '\r\n   ', '\n ', '\r\n', '\r\n \r\n ']) + line.slice(p);
    return head.join('\r\n') + rest;
  }

  private compactOrCase(s: string): string {
    const { head, rest } = this.lines(s);
    if (head.length < 2) return s;
    const i = 1 + this.int(head.length - 1);
    const line = head[i];
    const colon = line.indexOf(':');
    if (colon <= 0) return s;
    const name = line.slice(0, colon).trim();
    const compact = COMPACT[name.toLowerCase()];
    let renamed: string;
    if (compact !== undefined && this.chance(0.5)) renamed = this.chance(0.5) ? compact : compact.toUpperCase();
    else renamed = name.split('').map((c) => (this.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('') + this.pick(['', ' ', '\t', '  ']);
    head[i] = renamed + line.slice(colon);
    return head.join('\r\n') + rest;
  }

  /** Many Vias: lines of their own, or values of one line. */
  private repeatVia(s: string): string {
    const n = 1 + this.int(this.chance(0.1) ? 300 : 4);
    const one = this.pick(['SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKx', 'SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKsiplb.x', 'SIP/2.0/UDP [::1]:5060;rport', 'SIP/2.0/UDP h', 'SIP/2.0/UDP 10.0.0.11:5080;branch=z9hG4bK1;received=10.0.0.11;rport=5080']);
    if (this.chance(0.5)) return this.addLine(s, `Via: ${Array<string>(n).fill(one).join(',')}`);
    let out = s;
    for (let k = 0; k < Math.min(n, 50); k++) out = this.addLine(out, `Via: ${one}`);
    return out;
  }

  private longLine(s: string): string {
    const len = this.pick([1000, 4096, 8192, 65000, 70000]);
    const unit = this.pick(['a', 'x;', ',', ' ', '%41', '<', '"', ';p=v', 'SIP/2.0/UDP h,', '\t']);
    const piece = unit.repeat(Math.ceil(len / unit.length));
    if (this.chance(0.5)) return this.addLine(s, `${this.pick(['X-Long', 'Via', 'Route', 'To', 'Subject', 'Call-ID'])}: ${piece}`);
    return this.insertAt(s, piece);
  }

  private lineEnds(s: string): string {
    switch (this.int(4)) {
      case 0: return s.replace(/\r\n/g, '\n');
      case 1: return s.replace(/\r\n/g, '\r');
      case 2: { // one line end only
        const p = s.indexOf('\r\n', this.pos(s));
        return p === -1 ? s : s.slice(0, p) + this.pick(['\n', '\r', '', '\n\r', '\r\r\n']) + s.slice(p + 2);
      }
      default: return this.pick(['\r\n', '\r\n\r\n', '\n', '\r\n\r\n\r\n']) + s;
    }
  }

  /** A second message, or garbage, after this one (pipelined stream, dblreq). */
  private pipeline(s: string): string {
    const other = this.chance(0.7) ? this.pick(this.pool()).data.toString('latin1') : this.randomRun();
    return s + this.pick(['', '\r\n', '\r\n\r\n']) + other;
  }

  private startLine(s: string): string {
    const nl = s.indexOf('\r\n');
    const line = nl === -1 ? s : s.slice(0, nl);
    const rest = nl === -1 ? '' : s.slice(nl);
    const parts = line.split(' ');
    const replacement = this.pick([
      'SIP/2.0 200 OK', 'SIP/2.0 100 Trying', 'SIP/2.0 180', 'SIP/2.0 999 Odd', 'SIP/2.0 099 x', 'SIP/2.0 486  Busy',
      'INVITE sip:10.0.0.1 SIP/2.0', 'OPTIONS sip:10.0.0.1:5060 SIP/2.0', 'ACK sip:a@10.0.0.11:5080 SIP/2.0', 'BYE sips:x@y SIP/2.0',
      'REGISTER sip:10.0.0.1;lbnode=10.0.0.11:5080;lr SIP/2.0', 'INVITE tel:+123 SIP/2.0', 'X sip:x SIP/2.0', 'INVITE sip:x SIP/2.0 ',
      'INVITE  sip:x  SIP/2.0', 'INVITE sip:x sip/2.0', 'INVITE sip:[::1]:5060 SIP/2.0', 'INVITE sip:a@10.0.0.12:5080;transport=tcp SIP/2.0',
    ]);
    if (this.chance(0.5) || parts.length < 3) return replacement + rest;
    parts[this.int(parts.length)] = this.pick(TOKENS);
    return parts.join(this.pick([' ', ' ', '  ', '\t'])) + rest;
  }

  private addHeader(s: string): string {
    return this.addLine(s, this.pick([
      'Route: <sip:10.0.0.1:5060;lr;lbnode=10.0.0.12:5080>', 'Route: <sip:10.0.0.1;lr>, <sip:192.0.2.5;lr>', 'Route: <sip:10.0.0.1:5065;lr;lbnode=nosuch>',
      'Route: sip:10.0.0.1;lr', 'Route: <sip:AbCd@10.0.0.1:5060;transport=tcp;lr>', 'Record-Route: <sip:10.0.0.1;lr;lbnode=10.0.0.11:5080>',
      'Max-Forwards: 1', 'Max-Forwards: 0', 'Max-Forwards: 256', 'Proxy-Require: x', 'Supported: path', 'User-Agent: friendly-scanner',
      'Call-ID: dup', 'From: <sip:x@y>;tag=2', 'To: <sip:x@y>;tag=3', 'CSeq: 2 BYE', 'Content-Length: 0', 'Timestamp: 54',
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsiplb', 'Contact: *', 'Expires: 0', 'Event: x', 'X: \x00\xff',
    ]));
  }

  /** A header line inserted among the others (never before the start line). */
  private addLine(s: string, line: string): string {
    const { head, rest } = this.lines(s);
    head.splice(1 + this.int(head.length), 0, line);
    return head.join('\r\n') + rest;
  }
}
