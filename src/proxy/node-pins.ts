// Restcomm's /lbnoderegex: users whose affinity key matches a pattern are pinned to one node
// (a test user to a canary node, a customer to its own server). Consulted for new calls before
// the algorithm; a pinned node that is not alive is passed over, and the algorithm decides.
//
// Every set and remove is also kept as the latest action on its pattern (with its wall-clock
// time), which is what balancers sharing a store exchange (wiring/balancer.ts): the latest action
// on a pattern wins everywhere, and pins are kept in the order of their actions' times, so that
// where patterns overlap every balancer picks the same one (the first that matches).

import { affinityKeyReader, isCallIdSpec, type SipKeyReader } from '../algorithms/affinity-key.ts';
import { LatestActions, type LatestAction } from '../cluster/latest-actions.ts';
import type { SipMessage } from '../sip/message.ts';

/** Longer patterns are refused: an operator's pattern, but one compiled and run per new call. */
const MAX_PATTERN_LENGTH = 512;
const MAX_PINS = 1000;

interface Pin {
  readonly pattern: string;
  readonly re: RegExp;
  readonly nodeId: string;
  readonly at: number;
}

/** The latest action on one pattern, here or on another balancer: the node pinned to, null when removed. */
export type PinState = LatestAction<string | null>;

export class NodePins {
  private pins: Pin[] = [];
  private readonly key: SipKeyReader;
  /** On equal times a pin wins over a removal, then the greater node id. */
  private readonly actions: LatestActions<string | null>;
  private readonly listeners: (() => void)[] = [];

  /** `keySpec`: sipHeaderAffinityKey; a Call-ID key pins nothing useful, so the From user is read then. */
  constructor(keySpec: string, now: () => number = Date.now) {
    this.key = affinityKeyReader(isCallIdSpec(keySpec) ? 'From' : keySpec);
    this.actions = new LatestActions<string | null>({ winsTie: (incoming, current) => (incoming ?? '') > (current ?? ''), isUndo: (nodeId) => nodeId === null }, now);
  }

  /** Called after this balancer's own set or remove, for sharing it. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  get size(): number {
    return this.pins.length;
  }

  list(): { pattern: string; nodeId: string }[] {
    return this.pins.map((p) => ({ pattern: p.pattern, nodeId: p.nodeId }));
  }

  /** Pins `pattern` to the node (replacing an earlier pin of the same pattern); a reason when refused. */
  set(pattern: string, nodeId: string): string | null {
    const at = this.actions.nextAt(pattern);
    const problem = this.place(pattern, nodeId, at);
    if (problem !== null) return problem;
    this.actions.setLocal(pattern, nodeId, at);
    this.changed();
    return null;
  }

  remove(pattern: string): boolean {
    if (!this.pins.some((p) => p.pattern === pattern)) return false;
    this.pins = this.pins.filter((p) => p.pattern !== pattern);
    this.actions.setLocal(pattern, null);
    this.changed();
    return true;
  }

  /**
   * Another balancer's set or remove (shared store), taken when newer than what this balancer
   * knows of the pattern (equal times: a pin wins over a removal, then the greater node id).
   * A pattern this balancer cannot compile or hold is left out. Returns whether it was taken.
   */
  merge(rec: { pattern: string; nodeId: string | null; at: number; by: string }): boolean {
    if (!this.actions.isNewer(rec.pattern, rec.nodeId, rec.at)) return false;
    if (rec.nodeId === null) this.pins = this.pins.filter((p) => p.pattern !== rec.pattern);
    else if (this.place(rec.pattern, rec.nodeId, rec.at) !== null) return false;
    this.actions.setShared(rec.pattern, rec.nodeId, rec.at, rec.by);
    return true;
  }

  /**
   * A pin learned from the store whose record is gone from it (the store lost its data, or an
   * old removal was pruned): the action is forgotten, the pin itself stays until the next one.
   */
  forgetShared(pattern: string): void {
    this.actions.forgetShared(pattern);
  }

  /** Removals older than `before`: forgotten, they only kept older pins from winning. */
  prune(before: number): void {
    this.actions.prune(before);
  }

  /** The latest action per pattern known here. */
  states(): ReadonlyMap<string, PinState> {
    return this.actions.states();
  }

  /** Puts the pin in its place by time (replacing the pattern's earlier pin); a reason when refused. */
  private place(pattern: string, nodeId: string, at: number): string | null {
    if (pattern.length > MAX_PATTERN_LENGTH) return `pattern longer than ${MAX_PATTERN_LENGTH} characters`;
    let re: RegExp;
    try {
      re = new RegExp(pattern);
    } catch (err) {
      return `not a regular expression: ${(err as Error).message}`;
    }
    const others = this.pins.filter((p) => p.pattern !== pattern);
    if (others.length >= MAX_PINS) return `at most ${MAX_PINS} pins`;
    let i = others.length;
    while (i > 0 && (others[i - 1].at > at || (others[i - 1].at === at && others[i - 1].pattern > pattern))) i--;
    others.splice(i, 0, { pattern, re, nodeId, at });
    this.pins = others;
    return null;
  }

  private changed(): void {
    for (const l of this.listeners) l();
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
