// Headers such as Via, Route and Record-Route may carry several comma-separated values on one
// line (RFC 3261 §7.3.1). Commas inside quoted strings and <...> are not separators.

/** [start, end) ranges in `s` of each element between from and to, outer whitespace trimmed. */
export function splitCommaRanges(s: string, from: number, to: number): number[] {
  const out: number[] = [];
  // Most header lines hold one value: without a comma there is nothing to split.
  const comma = s.indexOf(',', from);
  if (comma === -1 || comma >= to) {
    let a = from;
    let b = to;
    while (a < b && isLws(s.charCodeAt(a))) a++;
    while (b > a && isLws(s.charCodeAt(b - 1))) b--;
    if (b > a) out.push(a, b);
    return out;
  }
  let inQuote = false;
  let inAngle = false;
  let elemStart = from;
  for (let i = from; i <= to; i++) {
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
      let a = elemStart;
      let b = i;
      while (a < b && isLws(s.charCodeAt(a))) a++;
      while (b > a && isLws(s.charCodeAt(b - 1))) b--;
      if (b > a) out.push(a, b);
      elemStart = i + 1;
    }
  }
  return out;
}

function isLws(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** Collapse folded line breaks and trim. */
export function unfold(s: string): string {
  return (s.indexOf('\n') === -1 ? s : s.replace(/\r?\n[ \t]+/g, ' ')).trim();
}
