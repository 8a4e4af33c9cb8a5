// Headers such as Via, Route and Record-Route may carry several comma-separated values on one
// line (RFC 3261 §7.3.1). Commas inside quoted strings and <...> are not separators.

/**
 * [start, end) ranges in `s` of each element between from and to, outer whitespace trimmed;
 * at most `limit` of them (the proxy needs only the top Via, a response the top two).
 */
export function splitCommaRanges(s: string, from: number, to: number, limit = Number.MAX_SAFE_INTEGER): number[] {
  const out: number[] = [];
  // A line without quotes or angle brackets (every Via in practice) splits at every comma, found
  // by indexOf instead of a test per character.
  const quote = s.indexOf('"', from);
  const angle = s.indexOf('<', from);
  if ((quote === -1 || quote >= to) && (angle === -1 || angle >= to)) {
    // One element wanted or present (a Via line, almost always): a two-element
    // literal, not an array grown by pushes.
    let first = s.indexOf(',', from);
    if (first === -1 || first > to) first = to;
    if (first === to || limit === 1) {
      const a = blanksSkipped(s, from, first);
      const b = blanksDropped(s, a, first);
      if (b > a) return [a, b];
      if (first === to) return out;
    }
    let elemStart = from;
    while (out.length < limit * 2) {
      let comma = s.indexOf(',', elemStart);
      if (comma === -1 || comma > to) comma = to;
      pushTrimmed(s, elemStart, comma, out);
      if (comma === to) break;
      elemStart = comma + 1;
    }
    return out;
  }
  let inQuote = false;
  let inAngle = false;
  let elemStart = from;
  for (let i = from; i <= to && out.length < limit * 2; i++) {
    const c = i === to ? 44 : s.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
      continue;
    }
    if (c === 34) inQuote = true;
    else if (c === 60) inAngle = true;
    else if (c === 62) inAngle = false;
    else if (c === 44 && !inAngle) {
      pushTrimmed(s, elemStart, i, out);
      elemStart = i + 1;
    }
  }
  return out;
}

function pushTrimmed(s: string, from: number, to: number, out: number[]): void {
  const a = blanksSkipped(s, from, to);
  const b = blanksDropped(s, a, to);
  if (b > a) out.push(a, b);
}

/** Collapse folded line breaks and trim. */
export function unfold(s: string): string {
  return trimAsciiSpace(s.indexOf('\n') === -1 ? s : s.replace(/\r?\n[ \t]+/g, ' '));
}

/**
 * `s` without ASCII blanks and line breaks at its ends. Not String.prototype.trim: in a header
 * section held as latin1 that also takes 0xA0 off, which is the last byte of UTF-8 characters
 * such as "à" (C3 A0), and would cut a UTF-8 value in the middle of a character.
 */
export function trimAsciiSpace(s: string): string {
  const a = blanksSkipped(s, 0, s.length);
  const b = blanksDropped(s, a, s.length);
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** The first index in s[from, to) that is not an ASCII blank, or `to`. */
function blanksSkipped(s: string, from: number, to: number): number {
  while (from < to && isAsciiSpace(s.charCodeAt(from))) from++;
  return from;
}

/** `to` with the ASCII blanks before it, down to `from`, taken off. */
function blanksDropped(s: string, from: number, to: number): number {
  while (to > from && isAsciiSpace(s.charCodeAt(to - 1))) to--;
  return to;
}

/** Space, HTAB, LF, VT, FF, CR: what trim takes off among ASCII characters. */
function isAsciiSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}
