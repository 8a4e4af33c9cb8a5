// What every AssignmentMap kept in a local AffinityTable shares: the table, sized from the
// options, and the parts that only report on it or free it. The data path (get/set/end) stays in
// each map, which reaches the table as a plain field, so sharing this costs the hot path nothing.

import { AffinityTable } from './affinity-table.ts';
import type { AssignmentOptions } from './store.ts';

export abstract class TableBackedMap {
  protected readonly table: AffinityTable;

  constructor(opts: AssignmentOptions) {
    this.table = new AffinityTable(opts.idleMs, opts.lingerMs, opts.maxEntries);
  }

  /** Entries held locally. */
  get size(): number {
    return this.table.size;
  }

  /** Local entries dropped to stay within maxEntries. */
  get evicted(): number {
    return this.table.evicted;
  }

  close(): void {
    this.table.clear();
  }
}
