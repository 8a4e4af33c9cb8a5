// Operators' actions that balancers sharing a store must end up agreeing on (drains, weights,
// /lbnoderegex pins): for each key (a node id, a pattern) the latest action wins, by wall-clock
// time, wherever it was taken. An action here is made strictly later than the one it replaces,
// even within one millisecond, so the newest word is never lost to a tie; real ties (two
// balancers in the same millisecond) are broken by a rule on the values, the same on every
// balancer. An "undo" (an activate, a withdrawal, a removal) is kept too: it is what stops a
// balancer still holding the older action from winning back with it, and it can be forgotten
// once every balancer has seen it (node-registry-sync.ts writes and prunes the records).

/** The latest action on one key, taken here or learned from another balancer. */
export interface LatestAction<V> {
  readonly value: V;
  /** Wall-clock ms of the action. */
  readonly at: number;
  /** local: this balancer's admin API; shared: learned through the store. */
  readonly origin: 'local' | 'shared';
  /** The balancer that took the action (shared ones only). */
  readonly by: string | null;
}

export interface LatestActionRules<V> {
  /**
   * Two actions on one key at the same time: whether `incoming` replaces `current`. It must be
   * an order on the values (asymmetric), so that every balancer keeps the same one.
   */
  winsTie(incoming: V, current: V): boolean;
  /** An action that only keeps older ones from winning: pruned once old. */
  isUndo(value: V): boolean;
}

export class LatestActions<V> {
  private readonly actions = new Map<string, LatestAction<V>>();
  private readonly rules: LatestActionRules<V>;
  private readonly now: () => number;

  constructor(rules: LatestActionRules<V>, now: () => number) {
    this.rules = rules;
    this.now = now;
  }

  get(key: string): LatestAction<V> | undefined {
    return this.actions.get(key);
  }

  /** The value of the key's latest action, undefined when none is known. */
  valueOf(key: string): V | undefined {
    return this.actions.get(key)?.value;
  }

  /** Every key's latest action known here. */
  states(): ReadonlyMap<string, LatestAction<V>> {
    return this.actions;
  }

  /** The time this balancer's next action on `key` gets: now, or just after the action it replaces. */
  nextAt(key: string): number {
    return Math.max(this.now(), (this.actions.get(key)?.at ?? -Infinity) + 1);
  }

  /** This balancer's own action; `at` from nextAt when the caller needed it first. */
  setLocal(key: string, value: V, at: number = this.nextAt(key)): LatestAction<V> {
    const action: LatestAction<V> = { value, at, origin: 'local', by: null };
    this.actions.set(key, action);
    return action;
  }

  /** Whether another balancer's action would replace what is known of its key. */
  isNewer(key: string, value: V, at: number): boolean {
    const cur = this.actions.get(key);
    return cur === undefined || at > cur.at || (at === cur.at && this.rules.winsTie(value, cur.value));
  }

  /** Another balancer's action, recorded as the latest (check isNewer first). */
  setShared(key: string, value: V, at: number, by: string): void {
    this.actions.set(key, { value, at, origin: 'shared', by });
  }

  /** Another balancer's action, taken when newer; returns whether it was. */
  merge(key: string, value: V, at: number, by: string): boolean {
    if (!this.isNewer(key, value, at)) return false;
    this.setShared(key, value, at, by);
    return true;
  }

  /**
   * An action learned from the store whose record is gone from it (the store lost its data, or an
   * old undo was pruned): forgotten. Returns what was forgotten; this balancer's own actions stay.
   */
  forgetShared(key: string): LatestAction<V> | undefined {
    const cur = this.actions.get(key);
    if (cur === undefined || cur.origin !== 'shared') return undefined;
    this.actions.delete(key);
    return cur;
  }

  /** Undo actions older than `before`: forgotten, they only kept older actions from winning. */
  prune(before: number): void {
    for (const [key, st] of this.actions) if (st.at < before && this.rules.isUndo(st.value)) this.actions.delete(key);
  }
}
