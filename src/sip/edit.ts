// Output by splicing: a forwarded message is the original bytes with a few ranges replaced and a
// few header lines inserted. Untouched ranges are copied byte for byte (no re-serialisation), so
// anything siplb does not understand passes through unchanged.

import type { SipMessage } from './message.ts';

/** Up to this many edits toBuffer orders with a bit mask; more (a message with dozens of our Routes) by a sorted list. */
const MASKED_EDITS = 31;

export class MessageEdit {
  readonly msg: SipMessage;
  // Edits in `head` coordinates as (start, end, text) triples in one array (a message gets a few:
  // one array allocated instead of three); an insertion has start === end.
  private readonly edits: (number | string)[] = [];
  private appendedHeaders = '';

  constructor(msg: SipMessage) {
    this.msg = msg;
  }

  /** Replace head[start, end) with text. Edits must not overlap. */
  replace(start: number, end: number, text: string): this {
    this.edits.push(start, end, text);
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
    const edits = this.edits;
    const n = edits.length / 3;
    // The new header section is assembled as one string (V8 concatenates slices without copying)
    // and written with one native call; the blank line and body are copied as bytes. Edits are
    // taken in position order, equal positions in the order they were made: the smallest start
    // not yet taken, each time (a handful of edits; a bit mask instead of a sorted copy).
    let out = '';
    let r = 0;
    let taken = 0;
    const order = n > MASKED_EDITS ? sortedEdits(edits, n) : null;
    for (let x = 0; x < n; x++) {
      let k = -1;
      if (order !== null) k = order[x];
      else {
        for (let j = 0; j < n; j++) {
          if ((taken & (1 << j)) === 0 && (k === -1 || (edits[j * 3] as number) < (edits[k * 3] as number))) k = j;
        }
        taken |= 1 << k;
      }
      const s = edits[k * 3] as number;
      const e = edits[k * 3 + 1] as number;
      if (s > r) out += head.slice(r, s);
      out += edits[k * 3 + 2] as string;
      if (e > r) r = e;
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

/** Indexes of the edits by start, equal starts in the order they were made (a stable sort). */
function sortedEdits(edits: readonly (number | string)[], n: number): number[] {
  const order: number[] = [];
  for (let k = 0; k < n; k++) order.push(k);
  return order.sort((a, b) => (edits[a * 3] as number) - (edits[b * 3] as number) || a - b);
}
