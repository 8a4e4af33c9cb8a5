// Restcomm's /lbnoderegex: users whose affinity key matches a pattern are pinned to one node
// (a test user to a canary node, a customer to its own server). Consulted for new calls before
// the algorithm; a pinned node that is not alive is passed over, and the algorithm decides.

import { affinityKeyReader, isCallIdSpec, type SipKeyReader } from '../algorithms/affinity-key.ts';
import type { SipMessage } from '../sip/message.ts';

/** Longer patterns are refused: an operator's pattern, but one compiled and run per new call. */
const MAX_PATTERN_LENGTH = 512;
const MAX_PINS = 1000;

interface Pin {
  readonly pattern: string;
  readonly re: RegExp;
  readonly nodeId: string;
}

export class NodePins {
  private pins: Pin[] = [];
  private readonly key: SipKeyReader;

  /** `keySpec`: sipHeaderAffinityKey; a Call-ID key pins nothing useful, so the From user is read then. */
  constructor(keySpec: string) {
    this.key = affinityKeyReader(isCallIdSpec(keySpec) ? 'From' : keySpec);
  }

  get size(): number {
    return this.pins.length;
  }

  list(): { pattern: string; nodeId: string }[] {
    return this.pins.map((p) => ({ pattern: p.pattern, nodeId: p.nodeId }));
  }

  /** Pins `pattern` to the node (replacing an earlier pin of the same pattern); a reason when refused. */
  set(pattern: string, nodeId: string): string | null {
    if (pattern.length > MAX_PATTERN_LENGTH) return `pattern longer than ${MAX_PATTERN_LENGTH} characters`;
    let re: RegExp;
    try {
      re = new RegExp(pattern);
    } catch (err) {
      return `not a regular expression: ${(err as Error).message}`;
    }
    const others = this.pins.filter((p) => p.pattern !== pattern);
    if (others.length >= MAX_PINS) return `at most ${MAX_PINS} pins`;
    this.pins = [...others, { pattern, re, nodeId }];
    return null;
  }

  remove(pattern: string): boolean {
    const before = this.pins.length;
    this.pins = this.pins.filter((p) => p.pattern !== pattern);
    return this.pins.length !== before;
  }

  /** The node the message's key is pinned to (first matching pin), or null. */
  match(msg: SipMessage): string | null {
    const pins = this.pins;
    if (pins.length === 0) return null;
    const key = this.key(msg);
    if (key === null) return null;
    for (const p of pins) if (p.re.test(key)) return p.nodeId;
    return null;
  }
}
