// A parsed SIP message over the bytes it arrived in. Parsing indexes every header line once
// (name, line range, value start) and stops there: values are read, unfolded and split only when
// a rule asks for them, so the forwarding path touches the few headers it needs.
//
// The header section is held as a latin1 string: one byte = one char, so string offsets are byte
// offsets into `buf` and splicing (see edit.ts) can copy untouched byte ranges of the original.

import { canonicalHeaderName, commonHeaderNameAt, isToken } from './header-names.ts';
import { unfold } from './lists.ts';
import { digitsValue, headerParam } from './uri.ts';

export class SipMessage {
  readonly buf: Buffer;
  /** Header section as latin1: start line + header lines, without the blank line. */
  readonly head: string;
  /** Offset in `buf` where the body starts (after the blank line). */
  readonly bodyStart: number;
  /** Offset in `buf` where the body ends (Content-Length applied). */
  readonly bodyEnd: number;
  readonly isRequest: boolean;
  readonly method: string;      // requests: method; responses: '' (see cseqMethod)
  readonly requestUri: string;  // requests only
  readonly status: number;      // responses only, else 0
  /** End of the start line in `head` (index of its line terminator). */
  readonly startLineEnd: number;
  /** Offset in `head` where the first header line starts. */
  readonly headersStart: number;
  // Header index, parallel arrays (cheaper than an object per header).
  readonly names: string[] = [];
  readonly lineStarts: number[] = [];
  /** End of the header's last (continuation) line, excluding its line terminator. */
  readonly lineEnds: number[] = [];
  readonly valueStarts: number[] = [];
  /** End of the header including its line terminator (where the next header starts). */
  readonly nextStarts: number[] = [];
  /** False for a datagram that ended without the blank line after its headers. */
  terminated = true;
  // Filled by validation (every message the proxy acts on has passed it).
  /** Call-ID as a flat string of its own (safe to keep as a map key without pinning `head`). */
  callId = '';
  cseqNum = -1;
  cseqMethod = '';
  from = '';
  to = '';
  /** Requests: the Max-Forwards value, -1 without the header. */
  maxForwards = -1;
  /** The To tag, read once (undefined: not read yet). */
  private toTagRead: string | null | undefined = undefined;
  /** Why the message is invalid for a proxy to forward; null when valid. */
  error: string | null = null;
  /** Status to answer an invalid request with (400, or 505 for a version we do not speak). */
  errorStatus = 400;

  constructor(buf: Buffer, head: string, bodyStart: number, line: StartLine) {
    this.buf = buf;
    this.head = head;
    this.bodyStart = bodyStart;
    this.bodyEnd = buf.length;
    this.isRequest = line.isRequest;
    this.method = line.method;
    this.requestUri = line.requestUri;
    this.status = line.status;
    this.startLineEnd = line.end;
    this.headersStart = line.headersStart;
  }

  /** The To header's tag parameter, or null (an out-of-dialog request). */
  get toTag(): string | null {
    if (this.toTagRead === undefined) this.toTagRead = headerParam(this.to, 'tag');
    return this.toTagRead;
  }

  get headerCount(): number {
    return this.names.length;
  }

  /** Index of the first header with this canonical name, or -1. */
  indexOf(name: string, from = 0): number {
    const names = this.names;
    for (let i = from; i < names.length; i++) if (names[i] === name) return i;
    return -1;
  }

  count(name: string): number {
    let n = 0;
    for (const x of this.names) if (x === name) n++;
    return n;
  }

  /** Value of header i: continuation lines joined with one space, outer blanks trimmed (ASCII only: lists.ts unfold). */
  value(i: number): string {
    const raw = this.head.slice(this.valueStarts[i], this.lineEnds[i]);
    return unfold(raw);
  }

  /** Value of the first header with this name. */
  get(name: string): string | undefined {
    const i = this.indexOf(name);
    return i === -1 ? undefined : this.value(i);
  }

  /** Values of every header line with this name, in order (not split at commas). */
  getAll(name: string): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.names.length; i++) if (this.names[i] === name) out.push(this.value(i));
    return out;
  }

  get body(): Buffer {
    return this.buf.subarray(this.bodyStart, this.bodyEnd);
  }

  /** Value of header i copied out of the buffer, so it does not keep `head` alive. */
  flatValue(i: number): string {
    let a = this.valueStarts[i];
    let b = this.lineEnds[i];
    const head = this.head;
    while (a < b && (head.charCodeAt(a) === 32 || head.charCodeAt(a) === 9)) a++;
    while (b > a && (head.charCodeAt(b - 1) === 32 || head.charCodeAt(b - 1) === 9)) b--;
    const raw = this.buf.toString('latin1', a, b);
    if (raw.indexOf('\n') === -1) return raw;
    // Folded: unfolded before trimming, or a last continuation line of blanks only would leave
    // its line break inside the value (a Call-ID ending in CRLF).
    const v = this.buf.toString('latin1', this.valueStarts[i], this.lineEnds[i]).replace(/\r?\n[ \t]+/g, ' ');
    let x = 0;
    let y = v.length;
    while (x < y && (v.charCodeAt(x) === 32 || v.charCodeAt(x) === 9)) x++;
    while (y > x && (v.charCodeAt(y - 1) === 32 || v.charCodeAt(y - 1) === 9)) y--;
    return v.slice(x, y);
  }
}

export interface ParseFailure {
  readonly failure: string;
}

export function isParseFailure(x: SipMessage | ParseFailure): x is ParseFailure {
  return (x as ParseFailure).failure !== undefined;
}

const CR = 13;
const LF = 10;
// Buffer needles: a string needle would be converted to a Buffer on every call.
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const LFLF = Buffer.from('\n\n', 'latin1');

/**
 * Parse one SIP message. `datagram` = true means the buffer is exactly one UDP datagram:
 * a missing Content-Length then means "the rest of the datagram" (RFC 3261 §18.3), and a body
 * longer than Content-Length is truncated. For stream transports the framer has already cut the
 * message to head + Content-Length bytes.
 *
 * Returns a ParseFailure when no start line and header index can be built (nothing to answer).
 * Otherwise returns a message; `error` is set when it parsed but must not be forwarded.
 */
export function parseSipMessage(buf: Buffer, datagram: boolean): SipMessage | ParseFailure {
  let start = 0;
  // RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives, sloppy senders).
  while (start < buf.length && (buf[start] === CR || buf[start] === LF)) start++;
  if (start === buf.length) return { failure: 'empty message' };

  let headEnd = buf.indexOf(CRLFCRLF, start);
  let bodyStart: number;
  let terminated = true;
  if (headEnd !== -1) {
    bodyStart = headEnd + 4;
  } else {
    // Tolerate bare-LF senders; a datagram without any blank line is all header (no body).
    headEnd = buf.indexOf(LFLF, start);
    if (headEnd !== -1) bodyStart = headEnd + 2;
    else if (datagram) {
      headEnd = buf.length;
      bodyStart = buf.length;
      terminated = false;
    } else return { failure: 'no end of header section' };
  }
  // The head never ends with a line break, whichever blank line was found: a last line ended
  // by a bare LF before the CRLF CRLF ("…\n\r\n\r\n") would otherwise keep it, and the editor,
  // which writes the line break after the head itself, would make an empty line of it.
  while (headEnd > start && (buf[headEnd - 1] === CR || buf[headEnd - 1] === LF)) headEnd--;
  const head = buf.toString('latin1', start, headEnd);
  // Offsets below are relative to `head`; shift `buf` so they are relative to it as well.
  const msgBuf = start === 0 ? buf : buf.subarray(start);
  bodyStart -= start;

  const line = parseStartLine(head);
  if ('failure' in line) return line;
  const msg = new SipMessage(msgBuf, head, bodyStart, line);
  if (!indexHeaders(msg, head, line.headersStart)) return { failure: 'malformed header line' };
  msg.terminated = terminated;

  if (line.problem !== null) msg.error = line.problem;
  else if (line.isRequest) {
    const bad = requestUriProblem(line.requestUri);
    if (bad !== null) msg.error = bad;
  }
  if (!line.versionOk) {
    msg.error = 'unsupported SIP version';
    msg.errorStatus = 505;
  }
  applyContentLength(msg, datagram);
  if (msg.error === null) msg.error = validateHeaders(msg);
  return msg;
}

/** The start line of a message, as parseSipMessage reads it. */
export interface StartLine {
  readonly isRequest: boolean;
  /** Requests: the method; responses: ''. */
  readonly method: string;
  /** Requests only. */
  readonly requestUri: string;
  /** Responses only, else 0. */
  readonly status: number;
  /** Index of the start line's terminator in the head. */
  readonly end: number;
  /** Where the first header line starts. */
  readonly headersStart: number;
  /** SIP/2.0, the only version a proxy may forward. */
  readonly versionOk: boolean;
  /** Why a request line that still names a method is malformed, else null. */
  readonly problem: string | null;
}

function parseStartLine(head: string): StartLine | ParseFailure {
  let lineEnd = head.indexOf('\n');
  if (lineEnd === -1) lineEnd = head.length;
  const end = lineEnd > 0 && head.charCodeAt(lineEnd - 1) === CR ? lineEnd - 1 : lineEnd;
  const headersStart = lineEnd < head.length ? lineEnd + 1 : head.length;
  const startLine = head.slice(0, end);
  // The spellings nearly every message uses, read without regular expressions; anything else
  // takes the general path below, which gives the same answer for these.
  const n = startLine.length;
  if (n >= 11 && startLine.startsWith('SIP/2.0 ') && (n === 11 || (startLine.charCodeAt(11) === 32 && startLine.indexOf('\r', 12) === -1))) {
    const d0 = startLine.charCodeAt(8) - 48;
    const d1 = startLine.charCodeAt(9) - 48;
    const d2 = startLine.charCodeAt(10) - 48;
    if (d0 >= 1 && d0 <= 6 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9) {
      return { isRequest: false, method: '', requestUri: '', status: d0 * 100 + d1 * 10 + d2, end, headersStart, versionOk: true, problem: null };
    }
  } else if (n > 8 && startLine.endsWith(' SIP/2.0')) {
    const sp = startLine.indexOf(' ');
    if (sp > 0 && sp < n - 8) {
      const method = startLine.slice(0, sp);
      if (isToken(method)) return { isRequest: true, method, requestUri: startLine.slice(sp + 1, n - 8), status: 0, end, headersStart, versionOk: true, problem: null };
    }
  }
  if (startLine.startsWith('SIP/')) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (reason may be empty)
    const m = /^SIP\/(\d+\.\d+) ([1-6]\d\d)(?: (.*))?$/.exec(startLine);
    if (m === null) return { failure: 'malformed status line' };
    return { isRequest: false, method: '', requestUri: '', status: Number(m[2]), end, headersStart, versionOk: m[1] === '2.0', problem: null };
  }
  // Request-Line = Method SP Request-URI SP SIP-Version; exactly single spaces, no LWS in URI.
  // A line that breaks only that grammar still names a method, so the request can be answered
  // with 400 (RFC 3261 §16.3) instead of being dropped unanswered.
  const sp1 = startLine.indexOf(' ');
  const sp2 = startLine.lastIndexOf(' ');
  const method = sp1 === -1 ? startLine : startLine.slice(0, sp1);
  // Without a method token and a trailing SIP version it is not a SIP request line at all.
  if (!isToken(method) || !/[ \t]SIP\/\d+\.\d+[ \t]*$/i.test(startLine)) return { failure: 'malformed request line' };
  let requestUri = '';
  let versionOk = true;
  let problem: string | null = null;
  if (sp1 > 0 && sp2 > sp1) {
    requestUri = startLine.slice(sp1 + 1, sp2);
    const version = startLine.slice(sp2 + 1);
    if (/^SIP\/\d+\.\d+$/i.test(version)) versionOk = version.toUpperCase() === 'SIP/2.0';
    else problem = 'malformed request line';
  } else problem = 'malformed request line';
  return { isRequest: true, method, requestUri, status: 0, end, headersStart, versionOk, problem };
}

function indexHeaders(msg: SipMessage, head: string, from: number): boolean {
  let pos = from;
  const len = head.length;
  while (pos < len) {
    let nl = head.indexOf('\n', pos);
    if (nl === -1) nl = len;
    const first = head.charCodeAt(pos);
    const end = nl > pos && head.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
    const next = nl < len ? nl + 1 : len;
    if (first === 32 || first === 9) {
      // Folded continuation of the previous header (RFC 3261 §7.3.1).
      const last = msg.names.length - 1;
      if (last < 0) return false;
      msg.lineEnds[last] = end;
      msg.nextStarts[last] = next;
    } else if (end > pos) {
      const colon = head.indexOf(':', pos);
      if (colon === -1 || colon >= end) return false;
      let nameEnd = colon;
      while (nameEnd > pos && (head.charCodeAt(nameEnd - 1) === 32 || head.charCodeAt(nameEnd - 1) === 9)) nameEnd--;
      let name = commonHeaderNameAt(head, pos, nameEnd);
      if (name === null) {
        const rawName = head.slice(pos, nameEnd);
        if (!isToken(rawName)) return false;
        name = canonicalHeaderName(rawName);
      }
      msg.names.push(name);
      msg.lineStarts.push(pos);
      msg.lineEnds.push(end);
      msg.valueStarts.push(colon + 1);
      msg.nextStarts.push(next);
    } else {
      // An empty line inside the head can only be a stray CR; refuse rather than guess.
      return false;
    }
    pos = next;
  }
  return true;
}

function applyContentLength(msg: SipMessage, datagram: boolean): void {
  const available = msg.buf.length - msg.bodyStart;
  const i = msg.indexOf('content-length');
  if (i === -1) {
    // Required over streams (the framer enforces it); a datagram's body is the rest of it.
    return;
  }
  if (msg.indexOf('content-length', i + 1) !== -1) {
    setError(msg, 'more than one Content-Length');
    return;
  }
  // Read as the stream framer reads it (folding by CRLF, blanks trimmed): a value that only a
  // lenient reading makes a number (a bare CR inside it) would frame differently, or not at
  // all, once the message is relayed onto TCP.
  const v = msg.flatValue(i);
  if (!/^\d{1,9}$/.test(v)) {
    setError(msg, 'malformed Content-Length');
    return;
  }
  const n = Number(v);
  if (n > available) {
    // RFC 3261 §18.3: a datagram shorter than its Content-Length is discarded (400 for requests).
    setError(msg, 'Content-Length larger than the body received');
    return;
  }
  if (datagram && n < available) (msg as { bodyEnd: number }).bodyEnd = msg.bodyStart + n;
}

function setError(msg: SipMessage, reason: string): void {
  if (msg.error === null) msg.error = reason;
}

// Request-URI: no whitespace, no angle brackets, and a scheme (RFC 3261 §25.1 absoluteURI).
function requestUriProblem(uri: string): string | null {
  if (uri.length === 0) return 'empty Request-URI';
  if (/[\s<>"]/.test(uri)) return 'Request-URI contains characters not allowed there';
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:./.test(uri)) return 'Request-URI has no scheme';
  // RFC 3261 §19.1.5: a SIP Request-URI must not carry escaped headers.
  // ('?' is legal inside the user part, so only look after the '@'.)
  if (/^sips?:/i.test(uri) && uri.indexOf('?', uri.lastIndexOf('@') + 1) !== -1) return 'Request-URI contains escaped headers';
  return null;
}

/** CSeq = 1*DIGIT LWS Method: sets the message's number and method; false when malformed. */
function readCSeq(msg: SipMessage, v: string): boolean {
  let i = 0;
  while (i < v.length && v.charCodeAt(i) >= 48 && v.charCodeAt(i) <= 57) i++;
  const num = digitsValue(v, 0, i, 10);
  let j = i;
  while (j < v.length && (v.charCodeAt(j) === 32 || v.charCodeAt(j) === 9)) j++;
  if (num < 0 || num >= 2 ** 31 || j === i || j === v.length) return false;
  for (let k = j; k < v.length; k++) if (v.charCodeAt(k) === 32 || v.charCodeAt(k) === 9) return false;
  msg.cseqNum = num;
  msg.cseqMethod = v.slice(j);
  return true;
}

function validateHeaders(msg: SipMessage): string | null {
  // Headers a proxy needs to route and that responses must echo (RFC 3261 §8.1.1, §16.3).
  let via = -1, callId = -1, from = -1, to = -1, cseq = -1;
  const names = msg.names;
  for (let i = 0; i < names.length; i++) {
    switch (names[i]) {
      case 'via': if (via === -1) via = i; break;
      case 'call-id': if (callId !== -1) return 'more than one Call-ID'; callId = i; break;
      case 'from': if (from !== -1) return 'more than one From'; from = i; break;
      case 'to': if (to !== -1) return 'more than one To'; to = i; break;
      case 'cseq': if (cseq !== -1) return 'more than one CSeq'; cseq = i; break;
    }
  }
  if (via === -1) return 'missing Via';
  if (callId === -1) return 'missing Call-ID';
  if (from === -1) return 'missing From';
  if (to === -1) return 'missing To';
  if (cseq === -1) return 'missing CSeq';
  msg.callId = msg.flatValue(callId);
  if (msg.callId.length === 0) return 'empty Call-ID';
  // RFC 3261 §25.1: a Call-ID is one or two words of visible characters. It is the key the
  // balancer files the call under (and a store key, and what every node's stack parses), so a
  // control character in it (a NUL, an escape, a bare CR) makes the message malformed: a request
  // is answered 400 and a response dropped, neither forwarded (§16.3: what the proxy acts on must
  // be well-formed).
  if (hasControl(msg.callId)) return 'control character in Call-ID';
  msg.from = msg.value(from);
  msg.to = msg.value(to);
  if (msg.from.length === 0) return 'empty From';
  if (msg.to.length === 0) return 'empty To';
  // A response is only routed by its Vias and checked by Call-ID and CSeq; the name-addr syntax
  // of a request's From/To matters because siplb may have to answer it.
  if (msg.isRequest) {
    if (!balanced(msg.from)) return 'unbalanced quotes or brackets in From';
    if (!balanced(msg.to)) return 'unbalanced quotes or brackets in To';
  }
  if (!readCSeq(msg, msg.value(cseq))) return 'malformed CSeq';
  if (msg.isRequest && msg.cseqMethod !== msg.method) return 'CSeq method does not match the request method';
  if (msg.isRequest) {
    const mf = msg.indexOf('max-forwards');
    if (mf !== -1) {
      if (msg.indexOf('max-forwards', mf + 1) !== -1) return 'more than one Max-Forwards';
      const v = msg.value(mf);
      // Leading zeros are legal (RFC 4475 §3.1.1.1 writes 0068); the value is at most 255.
      const hops = digitsValue(v, 0, v.length, 10);
      if (hops < 0 || hops > 255) return 'malformed Max-Forwards';
      msg.maxForwards = hops;
    }
  }
  return null;
}

/** Quotes closed and angle brackets paired outside quotes (name-addr sanity). */
export function balanced(v: string): boolean {
  let inQuote = false;
  let depth = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++; // backslash escapes the next char inside a quoted string
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60) depth++;
    else if (c === 62) { if (--depth < 0) return false; }
  }
  return !inQuote && depth === 0;
}

/** A C0 control character (HTAB included) or DEL anywhere in s. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 127) return true;
  }
  return false;
}
