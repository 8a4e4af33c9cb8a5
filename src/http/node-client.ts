// The HTTP/1.1 client side towards one node: keep-alive connections, one request at a time on
// each (no pipelining: a node that answers slowly holds up nobody else), as many connections as
// requests in flight, idle ones reused newest first.
//
// Why siplb carries its own instead of a general-purpose client: a balancer forwards requests
// Node's server has already parsed and validated, and passes responses on to a server that
// validates them again before writing; what is left is framing. A general client re-validates
// every header, builds a request object, a parser in WebAssembly and several layers of callbacks
// per request: replacing undici with this took a quarter off siplb's CPU per proxied request
// (bench/README.md).
//
// The response is framed as RFC 9112 §6.3 says: no body for HEAD, 1xx, 204 and 304; chunked when
// Transfer-Encoding ends in chunked; to the end of the connection for any other coding or when
// there is no Content-Length; else Content-Length bytes (several that differ: a bad response).
// Interim 1xx responses are skipped (Node's server answers Expect itself), 101 is a bad
// response here (WebSocket tunnels do not come this way). Anything the node sends that siplb
// cannot frame is a bad response and the connection is not reused.
//
// A request written on a reused connection that the node closed at that moment (its keep-alive
// timer and siplb's crossed) fails without a byte of answer; an idempotent request without a body
// is then sent once more on a new connection (RFC 9112 §9.3.1), anything else fails.

import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { formatHost } from '../sip/uri.ts';
import { HTTP_TOKEN } from './forward-headers.ts';

/** Stable codes of the errors a request to a node fails with (system codes pass as they are). */
export const NODE_HTTP_ERRORS = {
  /** No connection within the connect timeout. */
  connectTimeout: 'SIPLB_HTTP_CONNECT_TIMEOUT',
  /** No complete response head within the response timeout after the request was sent. */
  headersTimeout: 'SIPLB_HTTP_HEADERS_TIMEOUT',
  /** The response body stalled for the response timeout. */
  bodyTimeout: 'SIPLB_HTTP_BODY_TIMEOUT',
  /** The node's bytes are not an HTTP/1.x response siplb can frame. */
  badResponse: 'SIPLB_HTTP_BAD_RESPONSE',
  /** The node closed the connection before the response was complete. */
  closed: 'SIPLB_HTTP_CLOSED',
  /** The request cannot be written as it is (a method or target HTTP/1.1 cannot carry here). */
  badRequest: 'SIPLB_HTTP_BAD_REQUEST',
  /** The client was closed (node removed, shutdown). */
  clientClosed: 'SIPLB_HTTP_CLIENT_CLOSED',
} as const;

export type NodeHttpErrorCode = (typeof NODE_HTTP_ERRORS)[keyof typeof NODE_HTTP_ERRORS];

export class NodeHttpError extends Error {
  readonly code: NodeHttpErrorCode;
  constructor(code: NodeHttpErrorCode, message: string) {
    super(message);
    this.name = 'NodeHttpError';
    this.code = code;
  }
}

/** How the request's body is framed on the node's connection. */
export type BodyFraming = 'none' | 'length' | 'chunked';

export interface NodeRequest {
  readonly method: string;
  /** The request target as the client sent it (origin form, or `*` for OPTIONS). */
  readonly path: string;
  /** Header fields as a flat [name, value, ...] list, hop-by-hop fields already removed. */
  readonly headers: readonly string[];
  /** null, or the stream of body bytes (framing 'length': the headers carry its Content-Length). */
  readonly body: Readable | null;
  readonly framing: BodyFraming;
  /** May be sent again on a new connection when a reused one turns out closed (RFC 9112 §9.3.1). */
  readonly idempotent: boolean;
}

/** What the handler may do to the request while it runs. */
export interface NodeRequestController {
  /** Ends the request now (the connection is closed); the handler hears nothing more of it. */
  abort(reason: Error): void;
  /** Stop reading the response body until resume() (the client's socket is full). */
  pause(): void;
  resume(): void;
}

export interface NodeResponseHandler {
  onRequestStart(controller: NodeRequestController): void;
  /** The request head reached the node's connection (a later failure may have reached the node). */
  onRequestSent(): void;
  /** A final response head; `headers` flat [name, value, ...] as the node spelled them. */
  onResponseStart(controller: NodeRequestController, status: number, headers: string[], statusMessage: string): void;
  onResponseData(controller: NodeRequestController, chunk: Buffer): void;
  onResponseEnd(): void;
  /** The request failed; `controller` is null when no connection was ever made for it. */
  onResponseError(controller: NodeRequestController | null, err: Error): void;
}

export interface NodeClientOptions {
  readonly host: string;
  readonly port: number;
  /** For the response head after the request, and between reads of the response body. */
  readonly responseTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Idle keep-alive connections close after this long (sooner when the node says so). */
  readonly keepAliveMs: number;
}

/** Longest response head taken from a node (Node's own server limit is 16 KiB by default). */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size line (with extensions) or trailer section of a chunked response. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;
/** The idle sweep's period: keep-alive limits are honoured to within this. */
const SWEEP_MS = 1_000;

/** A request target HTTP/1.1 can carry: visible ASCII and obs-text, no blanks or controls. */
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
/** Methods whose request means "a body follows" even when empty (the node needs Content-Length: 0). */
const PAYLOAD_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'QUERY']);

const CRLF = 0x0a0d; // '\r\n' read as a little-endian 16-bit number

/**
 * Every node connection reads into this one buffer (Node's `onread`), one read at a time: the
 * response is parsed in place and only what outlives the read (body chunks handed to the client's
 * socket, an incomplete head) is copied. Reading through the socket's stream instead costs a
 * 64 KiB allocation, a stream push and a deferred read-more per response.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

// Where the response parser is (numbers, not an enum: the sources run with type stripping only).
const Body = {
  /** Waiting for (more of) the response head. */
  Head: 0,
  Length: 1,
  ChunkSize: 2,
  ChunkData: 3,
  ChunkEnd: 4,
  Trailers: 5,
  UntilClose: 6,
} as const;
type BodyState = (typeof Body)[keyof typeof Body];

/** One request in flight, and its handler's controller. */
class InFlight implements NodeRequestController {
  readonly req: NodeRequest;
  readonly handler: NodeResponseHandler;
  readonly client: NodeClient;
  conn: Connection | null = null;
  done = false;
  /** Sent once more after a reused connection closed under it. */
  resent = false;
  /** The whole request (head and body) went to the connection. */
  sent = false;
  paused = false;

  constructor(client: NodeClient, req: NodeRequest, handler: NodeResponseHandler) {
    this.client = client;
    this.req = req;
    this.handler = handler;
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.drop();
  }

  pause(): void {
    if (this.done || this.paused) return;
    this.paused = true;
    this.conn?.socket.pause();
  }

  resume(): void {
    if (this.done || !this.paused) return;
    this.paused = false;
    const conn = this.conn;
    if (conn === null) return;
    conn.socket.resume();
    // The inactivity timer may have fired (and been let be) while siplb held the node back.
    conn.socket.setTimeout(this.client.opts.responseTimeoutMs);
  }

  /** Fails the request towards its handler, once. */
  fail(err: Error, withController: boolean): void {
    if (this.done) return;
    this.done = true;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.drop();
    this.handler.onResponseError(withController ? this : null, err);
  }
}

/** One TCP connection to the node and the response parser on it. */
class Connection {
  readonly socket: Socket;
  private readonly client: NodeClient;
  private isConnected = false;
  /** Closed, or on its way to be: never reused. */
  private dead = false;
  ex: InFlight | null = null;
  /** Requests this connection has carried to their end. */
  private served = 0;
  /** Bytes of the current exchange's response seen so far. */
  private received = 0;
  /** Whether the current response lets the connection carry another request. */
  private keepAlive = true;
  private state: BodyState = Body.Head;
  /** Bytes left of the body (Length) or of the chunk (ChunkData). */
  private remaining = 0;
  /** Bytes kept from an earlier read: an incomplete head, chunk line or trailer section. */
  private pending: Buffer | null = null;
  /** The bytes being parsed are READ_BUFFER's (see data()). */
  private shared = false;
  private body: Readable | null = null;
  private readonly onBodyData: (chunk: Buffer) => void;
  private readonly onBodyEnd: () => void;
  private readonly onBodyError: (err: Error) => void;
  /** Idle: the sweep tick it became idle at, and how many ticks it may stay. */
  idleSince = 0;
  idleTicks = 0;

  constructor(client: NodeClient) {
    this.client = client;
    const o = client.opts;
    // Listeners are closures made once per connection, so Node's sockets and request streams
    // carry no property of siplb's.
    const socket = connect({
      host: o.host, port: o.port, noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        // true: keep reading (a full client socket pauses this one through pause()).
        callback: (n: number): boolean => {
          this.safely(this.read, n);
          return true;
        },
      },
    });
    socket.setTimeout(o.connectTimeoutMs);
    socket.on('connect', () => this.safely(this.connected, undefined));
    socket.on('end', () => this.safely(this.ended, null));
    socket.on('error', (err: Error) => this.safely(this.ended, err));
    socket.on('close', () => this.safely(this.ended, null));
    socket.on('timeout', () => this.safely(this.timedOut, undefined));
    socket.on('drain', () => this.drained());
    this.socket = socket;
    this.onBodyData = (chunk: Buffer) => this.bodyData(chunk);
    this.onBodyEnd = () => this.bodyEnded();
    this.onBodyError = (err: Error) => this.bodyFailed(err);
  }

  /**
   * Runs one socket event. A handler that throws (a bug) fails its exchange and closes the
   * connection; it never reaches the event loop, where it would end the process.
   */
  private safely<T>(event: (this: Connection, arg: T) => void, arg: T): void {
    try {
      event.call(this, arg);
    } catch (err) {
      this.broken(err as Error);
    }
  }

  get alive(): boolean {
    return !this.dead && !this.socket.destroyed;
  }

  /** Carry `ex` (the connection is new, or idle and alive). */
  attach(ex: InFlight): void {
    this.ex = ex;
    ex.conn = this;
    this.received = 0;
    this.keepAlive = true;
    this.state = Body.Head;
    this.pending = null;
    if (this.isConnected) this.writeRequest(ex);
  }

  private connected(): void {
    this.isConnected = true;
    this.socket.setTimeout(this.client.opts.responseTimeoutMs);
    const ex = this.ex;
    if (ex !== null) this.writeRequest(ex);
  }

  private writeRequest(ex: InFlight): void {
    const r = ex.req;
    let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
    const h = r.headers;
    let hasHost = false;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
      head += `${name}: ${h[i + 1]}\r\n`;
    }
    if (!hasHost) head += `host: ${this.client.authority}\r\n`;
    if (r.framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
    else if (r.framing === 'none' && PAYLOAD_METHODS.has(r.method)) head += 'content-length: 0\r\n';
    head += '\r\n';
    this.socket.write(head, 'latin1');
    if (r.body === null || r.framing === 'none') ex.sent = true;
    ex.handler.onRequestSent();
    const body = r.body;
    if (ex.done || ex.sent || body === null) return;
    this.body = body;
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
    body.resume();
  }

  private bodyData(chunk: Buffer): void {
    const ex = this.ex;
    if (ex === null || ex.done || chunk.length === 0) return;
    let ok: boolean;
    if (ex.req.framing === 'chunked') {
      this.socket.cork();
      this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      this.socket.write(chunk);
      ok = this.socket.write('\r\n', 'latin1');
      this.socket.uncork();
    } else {
      ok = this.socket.write(chunk);
    }
    if (!ok) this.body?.pause();
  }

  private drained(): void {
    if (this.ex !== null && !this.ex.done) this.body?.resume();
  }

  private bodyEnded(): void {
    const ex = this.ex;
    if (ex === null || ex.done) return;
    if (ex.req.framing === 'chunked') this.socket.write('0\r\n\r\n', 'latin1');
    ex.sent = true;
    this.detachBody();
  }

  private bodyFailed(err: Error): void {
    this.detachBody();
    this.ex?.fail(err, true);
  }

  private detachBody(): void {
    const body = this.body;
    if (body === null) return;
    this.body = null;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
  }

  // --- the response ----------------------------------------------------------------------------

  private read(n: number): void {
    this.data(READ_BUFFER.subarray(0, n), true);
  }

  /** Bytes from the node; `shared`: they are READ_BUFFER's, overwritten by the next read. */
  private data(chunk: Buffer, shared: boolean): void {
    const ex = this.ex;
    if (ex === null) {
      // Bytes on an idle connection: nothing asked for them, so nothing after them can be trusted.
      this.drop();
      return;
    }
    this.received += chunk.length;
    let buf = chunk;
    let at = 0;
    this.shared = shared;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
      this.shared = false;
    }
    while (at < buf.length && this.ex === ex && !ex.done) {
      switch (this.state) {
        case Body.Head: at = this.head(ex, buf, at); break;
        case Body.Length: at = this.lengthBody(ex, buf, at); break;
        case Body.UntilClose:
          ex.handler.onResponseData(ex, this.slice(buf, at, buf.length));
          at = buf.length;
          break;
        case Body.ChunkSize: at = this.chunkSize(ex, buf, at); break;
        case Body.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at);
          this.remaining -= n;
          if (this.remaining === 0) this.state = Body.ChunkEnd;
          ex.handler.onResponseData(ex, this.slice(buf, at, at + n));
          at += n;
          break;
        }
        case Body.ChunkEnd: at = this.chunkEnd(ex, buf, at); break;
        case Body.Trailers: at = this.trailers(ex, buf, at); break;
      }
      if (at < 0) return; // incomplete: the rest is in pending
    }
    if (at < buf.length && this.ex === null && !this.dead) {
      // Bytes after a complete response: the node is pipelining or confused. Not reused.
      this.drop();
    }
  }

  private head(ex: InFlight, buf: Buffer, at: number): number {
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) {
      if (buf.length - at > MAX_HEAD_BYTES) return this.bad(ex, `response head over ${MAX_HEAD_BYTES} bytes`);
      this.pending = this.keep(buf, at);
      return -1;
    }
    if (end - at > MAX_HEAD_BYTES) return this.bad(ex, `response head over ${MAX_HEAD_BYTES} bytes`);
    const text = buf.toString('latin1', at, end);
    const next = end + 4;
    // Status line: HTTP/1.x SP 3DIGIT SP reason (the reason may be empty, the SP before it too).
    const lineEnd = text.indexOf('\r\n');
    const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
    if (statusLine.length < 12 || !statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 0x20 ||
      (statusLine.length > 12 && statusLine.charCodeAt(12) !== 0x20)) {
      return this.bad(ex, 'no HTTP/1.x status line');
    }
    const minor = statusLine.charCodeAt(7);
    const s0 = statusLine.charCodeAt(9) - 48;
    const s1 = statusLine.charCodeAt(10) - 48;
    const s2 = statusLine.charCodeAt(11) - 48;
    if ((minor !== 0x30 && minor !== 0x31) || s0 < 1 || s0 > 5 || s1 < 0 || s1 > 9 || s2 < 0 || s2 > 9) {
      return this.bad(ex, 'bad status line');
    }
    const status = s0 * 100 + s1 * 10 + s2;
    const reason = statusLine.length > 13 ? statusLine.slice(13) : '';
    const headers: string[] = [];
    let length = -1;
    let chunked = false;
    let otherCoding = false;
    let close = minor === 0x30;
    let keepAliveMs = -1;
    let pos = lineEnd < 0 ? text.length : lineEnd + 2;
    while (pos < text.length) {
      let eol = text.indexOf('\r\n', pos);
      if (eol < 0) eol = text.length;
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon > eol) return this.bad(ex, 'header line without a name and a colon');
      const name = text.slice(pos, colon);
      if (!HTTP_TOKEN.test(name)) return this.bad(ex, 'header name is not a token');
      let vs = colon + 1;
      let ve = eol;
      while (vs < ve && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 0x09)) vs++;
      while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
      const value = text.slice(vs, ve);
      pos = eol + 2;
      headers.push(name, value);
      // Framing fields, by length first: most names are none of them.
      const n = name.length;
      if (n === 14 && name.toLowerCase() === 'content-length') {
        if (!/^\d{1,15}$/.test(value)) return this.bad(ex, `Content-Length ${JSON.stringify(value)}`);
        const v = Number(value);
        if (length >= 0 && length !== v) return this.bad(ex, 'Content-Length fields that differ');
        length = v;
      } else if (n === 17 && name.toLowerCase() === 'transfer-encoding') {
        const codings = value.toLowerCase().split(',');
        for (let i = 0; i < codings.length; i++) {
          const c = codings[i].trim();
          if (c === '') continue;
          if (chunked) otherCoding = true; // something after chunked: not framed by chunks
          if (c === 'chunked') chunked = true;
          else otherCoding = true;
        }
      } else if (n === 10 && name.toLowerCase() === 'connection') {
        const v = value.toLowerCase();
        if (v.includes('close')) close = true;
        else if (minor === 0x30 && v.includes('keep-alive')) close = false;
      } else if (n === 10 && name.toLowerCase() === 'keep-alive') {
        const m = /(?:^|[\s,;])timeout\s*=\s*(\d+)/i.exec(value);
        if (m !== null) keepAliveMs = Number(m[1]) * 1000;
      }
    }
    if (status < 200) {
      if (status === 101) return this.bad(ex, '101 Switching Protocols to a request that asked for no upgrade');
      return next; // interim: the final head follows
    }
    this.client.headersSeen(this, keepAliveMs);
    if (close) this.keepAlive = false;
    const framing = chunked && !otherCoding ? 'chunked' : (chunked || otherCoding) ? 'close' : length >= 0 ? 'length' : 'close';
    if (chunked || otherCoding) {
      // Transfer-Encoding wins over Content-Length, and such a response ends the connection.
      if (length >= 0) this.keepAlive = false;
    }
    const noBody = ex.req.method === 'HEAD' || status === 204 || status === 304;
    ex.handler.onResponseStart(ex, status, headers, reason);
    if (ex.done || this.ex !== ex) return next;
    if (noBody || (framing === 'length' && length === 0)) {
      this.finish(ex);
      return next;
    }
    if (framing === 'length') {
      this.state = Body.Length;
      this.remaining = length;
    } else if (framing === 'chunked') {
      this.state = Body.ChunkSize;
    } else {
      this.keepAlive = false;
      this.state = Body.UntilClose;
    }
    return next;
  }

  /** Bytes [start, end) of `buf` as a buffer the handler may keep. */
  private slice(buf: Buffer, start: number, end: number): Buffer {
    if (this.shared) return Buffer.from(buf.subarray(start, end));
    return start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  }

  /** The rest of `buf` from `at`, kept for the next read. */
  private keep(buf: Buffer, at: number): Buffer {
    return this.shared ? Buffer.from(buf.subarray(at)) : at === 0 ? buf : buf.subarray(at);
  }

  private lengthBody(ex: InFlight, buf: Buffer, at: number): number {
    const n = Math.min(this.remaining, buf.length - at);
    this.remaining -= n;
    ex.handler.onResponseData(ex, this.slice(buf, at, at + n));
    if (this.remaining === 0 && this.ex === ex && !ex.done) this.finish(ex);
    return at + n;
  }

  private chunkSize(ex: InFlight, buf: Buffer, at: number): number {
    const eol = buf.indexOf(CRLF_TEXT, at, 'latin1');
    if (eol < 0) {
      if (buf.length - at > MAX_CHUNK_LINE) return this.bad(ex, 'chunk-size line too long');
      this.pending = this.keep(buf, at);
      return -1;
    }
    let size = 0;
    let digits = 0;
    let i = at;
    for (; i < eol; i++) {
      const c = buf[i];
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) break;
      if (++digits > 12) return this.bad(ex, 'chunk size too large');
      size = size * 16 + d;
    }
    // After the digits: nothing, or (blanks and) chunk extensions, which are ignored.
    if (digits === 0 || (i < eol && buf[i] !== 0x3b && buf[i] !== 0x20 && buf[i] !== 0x09)) return this.bad(ex, 'bad chunk-size line');
    if (size === 0) {
      this.state = Body.Trailers;
    } else {
      this.state = Body.ChunkData;
      this.remaining = size;
    }
    return eol + 2;
  }

  private chunkEnd(ex: InFlight, buf: Buffer, at: number): number {
    if (buf.length - at < 2) {
      this.pending = this.keep(buf, at);
      return -1;
    }
    if (buf.readUInt16LE(at) !== CRLF) return this.bad(ex, 'chunk data not followed by CRLF');
    this.state = Body.ChunkSize;
    return at + 2;
  }

  /** The trailer section after the last chunk, up to its empty line; its fields are dropped. */
  private trailers(ex: InFlight, buf: Buffer, at: number): number {
    if (buf.length - at >= 2 && buf.readUInt16LE(at) === CRLF) {
      this.finish(ex);
      return at + 2;
    }
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) {
      if (buf.length - at > MAX_TRAILER_BYTES) return this.bad(ex, 'trailer section too long');
      this.pending = this.keep(buf, at);
      return -1;
    }
    this.finish(ex);
    return end + 4;
  }

  private bad(ex: InFlight, why: string): number {
    ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.badResponse, `bad response from the node: ${why}`), true);
    return -1;
  }

  /** The response is complete: the handler hears it, the connection is reused or closed. */
  private finish(ex: InFlight): void {
    ex.done = true;
    ex.conn = null;
    this.ex = null;
    this.served++;
    this.state = Body.Head;
    this.pending = null;
    if (ex.paused) this.socket.resume();
    // A request whose body is still on its way (the node answered early) leaves the connection
    // in the middle of a message: it cannot carry another.
    if (!ex.sent) {
      this.detachBody();
      this.keepAlive = false;
    }
    if (this.keepAlive && this.alive) this.client.release(this);
    else this.drop();
    ex.handler.onResponseEnd();
  }

  // --- the connection's end --------------------------------------------------------------------

  /** The node closed its side (err null), or the socket failed. */
  private ended(err: Error | null): void {
    const ex = this.ex;
    this.dead = true;
    if (ex === null) {
      this.client.forget(this);
      this.socket.destroy();
      return;
    }
    if (this.state === Body.UntilClose && err === null) {
      this.finish(ex);
      return;
    }
    this.ex = null;
    ex.conn = null;
    this.detachBody();
    this.client.forget(this);
    this.socket.destroy();
    if (ex.done) return;
    // A reused connection the node closed before answering anything: send once more on a new one.
    if (this.served > 0 && this.received === 0 && this.isConnected && ex.req.idempotent && ex.req.body === null && !ex.resent) {
      ex.resent = true;
      this.client.assign(ex, true);
      return;
    }
    const failure = err ?? new NodeHttpError(NODE_HTTP_ERRORS.closed, 'the node closed the connection before the response was complete');
    ex.fail(failure, this.isConnected);
  }

  private timedOut(): void {
    const ex = this.ex;
    if (ex === null) {
      // Idle: the sweep closes it when its keep-alive time is up; the timer watches the next request.
      this.socket.setTimeout(this.client.opts.responseTimeoutMs);
      return;
    }
    if (!this.isConnected) {
      ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.connectTimeout, `no connection to the node within ${this.client.opts.connectTimeoutMs} ms`), false);
      return;
    }
    if (ex.paused || (this.state === Body.Head && !ex.sent && this.socket.writableLength === 0)) {
      // siplb holds the response back, or the client is still sending its body (and the node has
      // read all of it so far): the client's own timeouts apply, not the node's.
      this.socket.setTimeout(this.client.opts.responseTimeoutMs);
      return;
    }
    const ms = this.client.opts.responseTimeoutMs;
    if (this.state === Body.Head) ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.headersTimeout, `no response head from the node within ${ms} ms`), true);
    else ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.bodyTimeout, `the node's response body stalled for ${ms} ms`), true);
  }

  /** A bug surfaced while handling the node's bytes. */
  broken(err: Error): void {
    const ex = this.ex;
    this.drop();
    if (ex === null || ex.done) return;
    try {
      ex.fail(err, true);
    } catch {
      // The handler failed again on its own error: nothing more to tell it.
    }
  }

  /** Close now and never reuse. */
  drop(): void {
    this.dead = true;
    this.ex = null;
    this.detachBody();
    this.client.forget(this);
    this.socket.destroy();
  }
}

const CRLF_TEXT = '\r\n';

/** The keep-alive connections to one node's HTTP side. */
export class NodeClient {
  readonly opts: NodeClientOptions;
  /** host:port for a Host field when the client sent none (HTTP/1.0). */
  readonly authority: string;
  /** Idle connections, the most recently used last. */
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private sweeper: NodeJS.Timeout | null = null;
  private tick = 0;
  private closing = false;
  private closed: (() => void) | null = null;

  constructor(opts: NodeClientOptions) {
    this.opts = opts;
    this.authority = `${formatHost(opts.host)}:${opts.port}`;
  }

  /** Connections open (idle and busy). */
  get connections(): number {
    return this.all.size;
  }

  get idleConnections(): number {
    return this.idle.length;
  }

  dispatch(req: NodeRequest, handler: NodeResponseHandler): void {
    const ex = new InFlight(this, req, handler);
    if (this.closing) {
      ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.clientClosed, 'the node is no longer in the cluster'), false);
      return;
    }
    if (req.method === 'CONNECT' || !HTTP_TOKEN.test(req.method) || !TARGET.test(req.path)) {
      ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.badRequest, `${req.method} ${req.path} cannot be forwarded`), false);
      return;
    }
    handler.onRequestStart(ex);
    if (ex.done) return;
    this.assign(ex, false);
  }

  /** Puts `ex` on an idle connection (fresh: on a new one). */
  assign(ex: InFlight, fresh: boolean): void {
    let conn: Connection | undefined;
    if (!fresh) {
      while ((conn = this.idle.pop()) !== undefined && !conn.alive) this.all.delete(conn);
    }
    if (conn === undefined) {
      conn = new Connection(this);
      this.all.add(conn);
    }
    conn.attach(ex);
  }

  /** OPTIONS / (the health probe): resolves to the status, or rejects; the body is discarded. */
  probe(timeoutMs: number, headers: readonly string[] = ['user-agent', 'siplb-http-probe']): Promise<number> {
    return new Promise((resolve, reject) => {
      let status = 0;
      let controller: NodeRequestController | null = null;
      const timer = setTimeout(() => {
        controller?.abort(new Error('probe timed out'));
        reject(new NodeHttpError(NODE_HTTP_ERRORS.headersTimeout, `no answer to the probe within ${timeoutMs} ms`));
      }, timeoutMs);
      this.dispatch({ method: 'OPTIONS', path: '/', headers, body: null, framing: 'none', idempotent: true }, {
        onRequestStart(c) { controller = c; },
        onRequestSent() { /* nothing to do */ },
        onResponseStart(_c, s) { status = s; },
        onResponseData() { /* discarded */ },
        onResponseEnd() {
          clearTimeout(timer);
          resolve(status);
        },
        onResponseError(_c, err) {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  /** A final response head arrived on `conn`; `keepAliveMs` is the node's Keep-Alive timeout, or -1. */
  headersSeen(conn: Connection, keepAliveMs: number): void {
    const limit = keepAliveMs < 0 ? this.opts.keepAliveMs : Math.min(this.opts.keepAliveMs, keepAliveMs - SWEEP_MS);
    // Ticks of the sweep: a connection idle for `idleTicks` sweeps is closed before its limit.
    conn.idleTicks = Math.floor(limit / SWEEP_MS);
  }

  release(conn: Connection): void {
    if (this.closing || conn.idleTicks <= 0) {
      conn.drop();
      return;
    }
    conn.idleSince = this.tick;
    this.idle.push(conn);
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
  }

  forget(conn: Connection): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.closing) this.maybeClosed();
  }

  private sweep(): void {
    this.tick++;
    // Every idle connection is checked: their limits differ when a node's Keep-Alive hint changed.
    for (const c of this.idle.filter((c) => !c.alive || this.tick - c.idleSince >= c.idleTicks)) c.drop();
    if (this.idle.length === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** Idle connections close now, busy ones once their exchange ends; resolves when all are closed. */
  close(): Promise<void> {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.drop();
    return new Promise((resolve) => {
      this.closed = resolve;
      this.maybeClosed();
    });
  }

  /** Every connection closes now; requests in flight fail. */
  destroy(): Promise<void> {
    this.closing = true;
    for (const c of [...this.all]) {
      const ex = c.ex;
      if (ex !== null) ex.fail(new NodeHttpError(NODE_HTTP_ERRORS.clientClosed, 'siplb is closing its connections to the node'), true);
      else c.drop();
    }
    return this.close();
  }

  private maybeClosed(): void {
    if (this.all.size > 0) return;
    if (this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
    const done = this.closed;
    this.closed = null;
    done?.();
  }
}
