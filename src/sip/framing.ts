// Cuts a byte stream (TCP now, TLS later) into SIP messages: header section up to the blank line,
// then exactly Content-Length body bytes (RFC 3261 §18.3). Handles partial and pipelined
// messages and RFC 5626 CRLF keep-alives. A message larger than the limit cannot be resynchronised
// past, so the framer reports it and the connection is closed by its owner.

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
// The value with its continuation lines (RFC 3261 §7.3.1), as the parser reads it: a folded
// Content-Length that a datagram carried must frame the same when it is relayed onto a stream.
const CONTENT_LENGTH_RE = /(?:^|\n)(?:content-length|l)[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)/gi;

export interface FramerEvents {
  message(data: Buffer): void;
  /** A double-CRLF ping arrived; RFC 5626 §3.5.1 answers it with a single CRLF pong. */
  ping(): void;
  /** The stream cannot be framed any further (oversized or malformed framing). */
  error(reason: string): void;
}

export class StreamFramer {
  /**
   * Bytes of an unfinished message (and whatever follows it), in buf[0, len). It grows by
   * doubling and only new bytes are copied in, so a peer that sends a message a byte at a time
   * costs linear work, not a copy of everything so far per byte. Messages are handed out as
   * views of it, so a buffer that has handed one out is never written again: what is left after
   * them moves to a new one.
   */
  private buf: Buffer = EMPTY;
  private len = 0;
  /** How far buf has been searched for the end of the header section without finding it. */
  private searched = 0;
  /** Length of the message at buf[0] once its head is parsed; 0 while unknown. */
  private needed = 0;
  private failed = false;
  private count = 0;
  private readonly maxSize: number;
  private readonly on: FramerEvents;

  constructor(maxSize: number, on: FramerEvents) {
    this.maxSize = maxSize;
    this.on = on;
  }

  /** Bytes of an unfinished message waiting for the rest of it. */
  get pendingBytes(): number {
    return this.len;
  }

  /** Messages handed out so far: progress, for a caller that times unfinished messages. */
  get framed(): number {
    return this.count;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    if (this.len === 0) {
      // Nothing pending: messages are handed out as views of the chunk itself, no copy.
      const pos = this.frame(chunk, 0);
      if (pos < chunk.length && !this.failed) this.keep(chunk.subarray(pos));
      return;
    }
    this.append(chunk);
    // Still short of a message whose length is known: nothing to look at yet.
    if (this.needed > 0 && this.len < this.needed) return;
    const pos = this.frame(this.buf.subarray(0, this.len), Math.max(0, this.searched - 3));
    if (this.failed) return;
    this.consume(pos);
  }

  /**
   * Hands out the complete messages in data from its start, as views of it; returns where the
   * unfinished rest begins. `searchFrom` skips the part of the first head already searched.
   */
  private frame(data: Buffer, searchFrom: number): number {
    let pos = 0;
    while (pos < data.length) {
      // Keep-alives and stray line breaks between messages.
      if (data[pos] === 13 || data[pos] === 10) {
        if (data[pos] === 13 && data.length - pos >= 4 && data[pos + 1] === 10 && data[pos + 2] === 13 && data[pos + 3] === 10) {
          this.on.ping();
          pos += 4;
        } else if (data[pos] === 13 && data.length - pos < 4) {
          break; // maybe the start of a ping split across chunks
        } else pos++;
        searchFrom = 0;
        continue;
      }
      const headEnd = data.indexOf(CRLFCRLF, Math.max(pos, searchFrom));
      searchFrom = 0;
      if (headEnd === -1) {
        if (data.length - pos > this.maxSize) {
          this.fail(`header section exceeds ${this.maxSize} bytes`);
          return pos;
        }
        this.searched = data.length - pos;
        this.needed = 0;
        return pos;
      }
      const bodyLen = contentLength(data.toString('latin1', pos, headEnd));
      // Without a trustworthy length the next message cannot be found: close rather than guess.
      if (bodyLen < 0) {
        this.fail('missing a valid single Content-Length');
        return pos;
      }
      const total = headEnd + 4 + bodyLen - pos;
      if (!Number.isSafeInteger(total) || total > this.maxSize) {
        this.fail(`message of ${total} bytes exceeds ${this.maxSize}`);
        return pos;
      }
      if (data.length - pos < total) {
        this.searched = headEnd - pos;
        this.needed = total;
        return pos;
      }
      this.count++;
      this.on.message(data.subarray(pos, pos + total));
      pos += total;
    }
    this.searched = 0;
    this.needed = 0;
    return pos;
  }

  /** Starts the pending bytes with a copy of `rest` (what a chunk or the buffer left unfinished). */
  private keep(rest: Buffer): void {
    this.buf = Buffer.allocUnsafe(rest.length);
    rest.copy(this.buf, 0);
    this.len = rest.length;
  }

  private append(chunk: Buffer): void {
    const need = this.len + chunk.length;
    if (need > this.buf.length) {
      // Doubling keeps a trickle of small chunks linear; past the message size limit the framer
      // fails before the buffer grows much further.
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.len);
    this.len = need;
  }

  /** Drops the bytes before `pos`; the rest moves to a new buffer, since views of this one are out. */
  private consume(pos: number): void {
    if (pos >= this.len) {
      this.buf = EMPTY;
      this.len = 0;
    } else if (pos > 0) {
      this.keep(this.buf.subarray(pos, this.len));
    }
  }

  private fail(reason: string): void {
    this.failed = true;
    this.buf = EMPTY;
    this.len = 0;
    this.on.error(reason);
  }
}

/**
 * Content-Length of a header section: 0 when absent (mandatory on streams, but a message without
 * one has no body), -1 when it appears twice or is not a number (RFC 4475 ncl, mcl01).
 */
function contentLength(head: string): number {
  CONTENT_LENGTH_RE.lastIndex = 0;
  let value = 0;
  let seen = 0;
  for (let m = CONTENT_LENGTH_RE.exec(head); m !== null; m = CONTENT_LENGTH_RE.exec(head)) {
    if (++seen > 1) return -1;
    const v = m[1].replace(/\r?\n[ \t]+/g, ' ').trim();
    if (!/^\d{1,9}$/.test(v)) return -1;
    value = Number(v);
  }
  return value;
}
