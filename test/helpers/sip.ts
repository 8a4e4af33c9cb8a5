// Reading parsed messages in assertions.

import { splitCommaRanges } from '../../src/sip/lists.ts';
import type { SipMessage } from '../../src/sip/message.ts';

/** Comma-separated elements of every header line with this name, in order. */
export function elements(m: SipMessage, name: string): string[] {
  const out: string[] = [];
  for (const v of m.getAll(name)) {
    const r = splitCommaRanges(v, 0, v.length);
    for (let k = 0; k < r.length; k += 2) out.push(v.slice(r[k], r[k + 1]));
  }
  return out;
}
