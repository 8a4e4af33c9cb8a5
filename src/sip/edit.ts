// Output by splicing: a forwarded message is the original bytes with a few ranges replaced and a
// few header lines inserted. Untouched ranges are copied byte for byte (no re-serialisation), so
// anything siplb does not understand passes through unchanged.

import type { SipMessage } from './message.ts';

export class MessageEdit {
  readonly msg: SipMessage;
  // Parallel arrays of edits in `head` coordinates; an insertion has start === end.
  private starts: number[] = [];
  private ends: number[] = [];
  private texts: string[] = [];
  private appendedHeaders = '';

  constructor(msg: SipMessage) {
    this.msg = msg;
  }

  /** Replace head[start, end) with text. Edits must not overlap. */
  replace(start: number, end: number, text: string): this {
    this.starts.push(start);
    this.ends.push(end);
    this.texts.push(text);
    return this;
  }

  insert(at: number, text: string): this {
    return this.replace(at, at, text);
  }

  /** Insert a whole header line (without terminator) right after the start line. */
  insertHeaderFirst(line: string): this {
    return this.insert(this.msg.headersStart, line + '\r\n');
  }

  /** Add a header line after the last header. */
  appendHeader(line: string): this {
    this.appendedHeaders += line + '\r\n';
    return this;
  }

  /** Remove header i entirely (with its continuation lines and terminator). */
  removeHeader(i: number): this {
    const msg = this.msg;
    if (msg.nextStarts[i] < msg.head.length) return this.replace(msg.lineStarts[i], msg.nextStarts[i], '');
    // The last header has no terminator in `head` (the blank line follows it): take the line
    // break before it instead, or the body would gain a leading CRLF.
    const before = i > 0 ? msg.lineEnds[i - 1] : msg.startLineEnd;
    return this.replace(before, msg.head.length, '');
  }

  /** Replace the start line. */
  replaceStartLine(line: string): this {
    return this.replace(0, this.msg.startLineEnd, line);
  }

  toBuffer(): Buffer {
    const msg = this.msg;
    const head = msg.head;
    const n = this.starts.length;
    // Stable insertion sort by position (a handful of edits); equal offsets keep their order.
    const order: number[] = [];
    for (let k = 0; k < n; k++) {
      let j = order.length;
      while (j > 0 && this.starts[order[j - 1]] > this.starts[k]) j--;
      order.splice(j, 0, k);
    }
    // The new header section is assembled as one string (V8 concatenates slices without copying)
    // and written with one native call; the blank line and body are copied as bytes.
    let out = '';
    let r = 0;
    for (let x = 0; x < order.length; x++) {
      const k = order[x];
      const s = this.starts[k];
      if (s > r) out += head.slice(r, s);
      out += this.texts[k];
      if (this.ends[k] > r) r = this.ends[k];
    }
    if (r < head.length) out += r === 0 ? head : head.slice(r);
    if (this.appendedHeaders.length > 0) out += '\r\n' + this.appendedHeaders.slice(0, -2);
    if (!msg.terminated) {
      out += '\r\n\r\n';
      return Buffer.from(out, 'latin1');
    }
    // `head` never ends with a line terminator. The blank line is written as CRLF CRLF whatever
    // the sender used: a bare-LF message relayed onto a stream must still be framable there
    // (framing.ts, and any peer, finds the end of the head by it).
    out += '\r\n\r\n';
    const headBytes = out.length; // latin1: one byte per char
    const result = Buffer.allocUnsafe(headBytes + msg.bodyEnd - msg.bodyStart);
    result.write(out, 0, 'latin1');
    msg.buf.copy(result, headBytes, msg.bodyStart, msg.bodyEnd);
    return result;
  }
}
