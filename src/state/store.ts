// Shared state: what several balancers must agree on. The default in-memory store keeps it in
// this process; the Redis store (redis/store.ts) shares it between every balancer that points at
// the same Redis. The data path only ever touches the local tier synchronously; the shared tier is
// written through without waiting, read only on a local miss, and asked to agree (claim) where two
// balancers could otherwise decide differently: a new call's node, a failover that depends on what
// one balancer sees, an election. Reads and claims wait a bounded time.

import type { NodeRegistration } from '../heartbeat/protocol.ts';

export interface AssignmentOptions {
  /** An entry not used for this long is gone (local tier) and expires in the shared tier. */
  idleMs: number;
  /** After end(): how long the entry still answers (retransmissions of the last transaction). */
  lingerMs: number;
  /** Bound on local entries; the oldest go first beyond it. */
  maxEntries?: number;
}

/** One namespace of key -> node id assignments: Call-ID affinity, hash assignments, users. */
export interface AssignmentMap {
  /** Local tier only; never waits. */
  get(key: string): string | undefined;
  /**
   * After a local miss: the shared tier's answer (cached locally when found). Null when there is
   * no shared tier or it is unavailable right now, so the caller decides at once. The Promise
   * never rejects and settles within the store's read timeout (undefined on timeout).
   */
  fetch(key: string): Promise<string | undefined> | null;
  /** Record an assignment locally and write it through to the shared tier. */
  set(key: string, nodeId: string): void;
  /**
   * Agree on a key's node with every balancer of the shared tier, in one atomic step there: the
   * shared tier takes `nodeId` only if it holds nothing for the key or, with `replacing`, holds
   * exactly `replacing` (a compare-and-set: a failover or a new election replaces the node it
   * names, never a choice another balancer made meanwhile). Resolves to the node id the shared
   * tier holds afterwards, this balancer's or the one another balancer wrote first, and records
   * it locally, with the expiry set() gives. Never rejects; when the shared tier does not answer
   * within the store's read timeout it resolves to `nodeId` (recorded locally), or to a node
   * another claim or read of the key brought meanwhile (not `replacing`).
   * Null when there is no shared tier or it is unavailable right now: nothing is recorded, and
   * the caller records its own choice with set(), so a store without a shared tier costs the
   * caller no Promise.
   */
  claim(key: string, nodeId: string, replacing?: string): Promise<string> | null;
  /** The call is over: the entry lingers for lingerMs, locally and in the shared tier. */
  end(key: string): void;
  /** Entries held locally. */
  readonly size: number;
  /** Local entries dropped to stay within maxEntries. */
  readonly evicted: number;
  close(): void;
}

/** A registered node as every balancer sees it. */
export interface SharedNodeRecord {
  id: string;
  registration: NodeRegistration;
  draining: boolean;
  /** Wall-clock ms of the last heartbeat any balancer received (balancers keep clocks in sync). */
  heardAt: number;
  /** Balancer that wrote the record. */
  by: string;
}

/**
 * An operator's drain or activate of one node (admin API), shared so that every balancer applies
 * it. Kept apart from the node's heartbeat record: that record is rewritten by whichever balancer
 * heard the node last, which would overwrite a drain set elsewhere, and static nodes have none.
 */
export interface AdminDrainRecord {
  /** Node id (ip:port), static or registered. */
  id: string;
  /** true: drained; false: activated again, kept a while so that an older drain does not win. */
  drained: boolean;
  /** Wall-clock ms of the operator's action: the latest action wins on every balancer. */
  at: number;
  /** Balancer whose admin API took the action. */
  by: string;
}

/**
 * An operator's weight for one node (admin API), shared like a drain and for the same reason:
 * every balancer gives the node the same share of new calls. `weight` null withdraws the
 * operator's weight, so each balancer goes back to the node's configured weight (a reload that
 * changes the node's weight in `nodes=` writes it); such a record is kept a while, like an
 * activate, so that an older weight does not win.
 */
export interface AdminWeightRecord {
  id: string;
  weight: number | null;
  /** Wall-clock ms of the action: the latest action wins on every balancer. */
  at: number;
  by: string;
}

/**
 * An operator's pin (Restcomm's /lbnoderegex: a pattern of the affinity key and the node its new
 * calls go to), shared so that every balancer pins alike. `nodeId` null: the pin was removed;
 * kept a while, like an activate, so that an older pin does not come back.
 */
export interface PinRecord {
  pattern: string;
  nodeId: string | null;
  /** Wall-clock ms of the action: the latest action on a pattern wins on every balancer. */
  at: number;
  by: string;
}

export interface NodeDirectory {
  /** Write (or refresh) a node's record; fire and forget. */
  publish(rec: SharedNodeRecord): void;
  /** The node stopped for good (its `stop` message). */
  remove(id: string): void;
  /** Every record; null when the shared tier is unavailable. Never rejects. */
  list(): Promise<SharedNodeRecord[] | null>;
  /** Write a node's admin drain (replacing the one before); fire and forget. */
  setAdminDrain(rec: AdminDrainRecord): void;
  /** Forget a node's admin drain record (an old activate). */
  removeAdminDrain(id: string): void;
  /** Every admin drain record; null when the shared tier is unavailable. Never rejects. */
  adminDrains(): Promise<AdminDrainRecord[] | null>;
  /** Write a node's admin weight (replacing the one before); fire and forget. */
  setAdminWeight(rec: AdminWeightRecord): void;
  /** Forget a node's admin weight record (an old withdrawal). */
  removeAdminWeight(id: string): void;
  /** Every admin weight record; null when the shared tier is unavailable. Never rejects. */
  adminWeights(): Promise<AdminWeightRecord[] | null>;
  /** Write a pattern's pin or removal (replacing the one before); fire and forget. */
  setPin(rec: PinRecord): void;
  /** Forget a pattern's record (an old removal). */
  removePin(pattern: string): void;
  /** Every pin record; null when the shared tier is unavailable. Never rejects. */
  pins(): Promise<PinRecord[] | null>;
}

/** Active calls per node, as each balancer counts its own. */
export interface CallCountBoard {
  /** This balancer's counts, replacing what it published before; fire and forget. */
  publish(balancerId: string, counts: ReadonlyMap<string, number>): void;
  /** Sum of what other live balancers published; null when unavailable. Never rejects. */
  others(balancerId: string): Promise<Map<string, number> | null>;
}

/** A shared tier spread over servers (the masters of a Redis Cluster; one standalone server). */
export interface SharedTierHealth {
  /**
   * `up`: every server serves keys. `degraded`: some do not (Redis Cluster masters down or
   * refusing keys): keys in their slots behave as in an outage, the others are shared as usual.
   * `down`: none does.
   */
  readonly state: 'up' | 'degraded' | 'down';
  /** Servers serving keys right now. */
  readonly serversUp: number;
  /** Servers the keys are spread over (0 while a cluster's layout is unknown). */
  readonly servers: number;
  /** Times one server stopped serving while others went on (the store degraded, not down). */
  readonly serverOutages: number;
}

export interface StateStore {
  readonly kind: 'memory' | 'redis';
  /** Connect. Resolves when ready or, if the shared tier is down, once that is known (never throws for an outage). */
  start(): Promise<void>;
  assignments(namespace: string, opts: AssignmentOptions): AssignmentMap;
  readonly nodes: NodeDirectory;
  readonly calls: CallCountBoard;
  /** The secret every balancer of this store uses: the stored one, or `candidate` stored as it. */
  sharedSecret(candidate: string): Promise<string>;
  /** The shared tier answers right now: all of it, or part of it (`health.state` degraded). */
  readonly available: boolean;
  /** Times the shared tier became unavailable since start. */
  readonly outages: number;
  /** Round trip of the shared tier's last health PING in ms; null for a store with no shared tier (or before the first answer). */
  readonly latencyMs: number | null;
  /**
   * How much of the shared tier answers; absent for a store without one. `available` is true
   * for `up` and `degraded`.
   */
  readonly health?: SharedTierHealth;
  /** Called each time the shared tier, or part of it (a Redis Cluster master), comes back (reconcile local state into it). */
  onAvailable(listener: () => void): void;
  close(): Promise<void>;
}
