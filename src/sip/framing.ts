// Cuts a byte stream (TCP now, TLS later) into SIP messages: header section up to the blank line,
// then exactly Content-Length body bytes (RFC 3261 §18.3). Handles partial and pipelined
// messages and RFC 5626 CRLF keep-alives. A message larger than the limit cannot be resynchronised
// past, so the framer reports it and the connection is closed by its owner.

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const CONTENT_LENGTH_RE = /(?:^|\n)(?:content-length|l)[ \t]*:([^\r\n]*)/gi;

export interface FramerEvents {
  message(data: Buffer): void;
  /** A double-CRLF ping arrived; RFC 5626 §3.5.1 answers it with a single CRLF pong. */
  ping(): void;
  /** The stream cannot be framed any further (oversized or malformed framing). */
  error(reason: string): void;
}

export class StreamFramer {
  private pending: Buffer | null = null;
  private failed = false;
  private readonly maxSize: number;
  private readonly on: FramerEvents;

  constructor(maxSize: number, on: FramerEvents) {
    this.maxSize = maxSize;
    this.on = on;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    let data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
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
        continue;
      }
      const headEnd = data.indexOf(CRLFCRLF, pos);
      if (headEnd === -1) {
        if (data.length - pos > this.maxSize) return this.fail(`header section exceeds ${this.maxSize} bytes`);
        break;
      }
      const bodyLen = contentLength(data.toString('latin1', pos, headEnd));
      // Without a trustworthy length the next message cannot be found: close rather than guess.
      if (bodyLen < 0) return this.fail('missing a valid single Content-Length');
      const total = headEnd + 4 + bodyLen - pos;
      if (!Number.isSafeInteger(total) || total > this.maxSize) return this.fail(`message of ${total} bytes exceeds ${this.maxSize}`);
      if (data.length - pos < total) break;
      this.on.message(data.subarray(pos, pos + total));
      pos += total;
    }
    if (pos < data.length) this.pending = pos === 0 ? data : Buffer.from(data.subarray(pos));
    data = Buffer.alloc(0);
  }

  private fail(reason: string): void {
    this.failed = true;
    this.pending = null;
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
    const v = m[1].trim();
    if (!/^\d{1,9}$/.test(v)) return -1;
    value = Number(v);
  }
  return value;
}
