// The Redis StateStore: what balancers must agree on lives in one Redis (or Redis Cluster) that
// every balancer of a group points at. The data path never waits for Redis: assignments are
// answered from a local AffinityTable and written through without awaiting (node-redis pipelines
// the commands of one tick on its own); Redis is read only on a local miss, with a bounded wait.
// An outage must cost sharing, never calls: every command's failure is caught, commands fail fast
// while disconnected instead of queueing, the client reconnects in the background, and the
// assignment writes missed meanwhile are redone from the local table when Redis is back.

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { createClient, createCluster, RedisClient, type SetOptions } from 'redis';
import { AffinityTable } from '../affinity-table.ts';
import type { NodeRegistration } from '../../heartbeat/protocol.ts';
import type { HostPort } from '../../config/types.ts';
import { rateLimit } from '../../core/log.ts';
import type {
  AssignmentMap, AssignmentOptions, CallCountBoard, NodeDirectory, SharedNodeRecord, StateStore,
} from '../store.ts';

const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2000;
/** A blackholed Redis must not hold start() (and each reconnect attempt) for long. */
const CONNECT_TIMEOUT_MS = 2000;
/** start() resolves by then at the latest, connected or not. */
const START_LIMIT_MS = CONNECT_TIMEOUT_MS + 500;
/** How often a connected Redis is asked to prove it still answers (a stopped process keeps its sockets open). */
const PROBE_EVERY_MS = 1000;
/** Background reads (directory, call board, secret) may wait longer than the data path's fetch. */
const SLOW_READ_MIN_MS = 1000;
/** Bounds the commands node-redis holds for a connected but silent server. */
const QUEUE_MAX = 100_000;
/** Assignment writes remembered for reconciliation; the oldest are dropped beyond it. */
const RECONCILE_CAP = 100_000;
const RECONCILE_BATCH = 1000;
/** A balancer's published counts count while this fresh... */
const CALLS_LIVE_MS = 5000;
/** ...and are deleted by whoever reads them once this stale (the balancer is gone). */
const CALLS_STALE_MS = 60_000;
/** close() lets in-flight writes land for this long, then cuts the connection. */
const CLOSE_GRACE_MS = 1000;
const DEFAULT_PORT = 6379;

/** Delay before reconnect attempt `retries` (0-based): 100 ms doubling, capped at 2 s. */
function reconnectDelayMs(retries: number): number {
  return Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(retries, 16), BACKOFF_MAX_MS);
}

/** The commands this store sends; both the standalone and the cluster client provide them. */
interface Commands {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options?: SetOptions): Promise<unknown>;
  pExpire(key: string, ms: number): Promise<unknown>;
  hSet(key: string, field: string, value: string): Promise<unknown>;
  hDel(key: string, field: string): Promise<unknown>;
  hGetAll(key: string): Promise<Record<string, string>>;
}

/** One way of talking to Redis; it reports through Events on everything that may change ready(). */
interface Backend {
  readonly commands: Commands;
  /** Connected, and (cluster) every master's connection is up. */
  ready(): boolean;
  /** Begin connecting; never throws, keeps retrying in the background. */
  connect(): void;
  /** Resolves when every server answered a PING. */
  ping(): Promise<unknown>;
  close(): Promise<void>;
}

interface Events {
  /** Re-evaluate ready(); `failure` is an error that means "not reachable" (also before the first connect). */
  changed(failure?: unknown): void;
  /** An error worth naming in the next outage warning, which by itself says nothing about readiness. */
  noted(err: unknown): void;
}

interface StandaloneClient extends Commands {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  ping(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

interface ClusterClient extends Commands {
  readonly isReady: boolean;
  readonly masters: ReadonlyArray<{ readonly client?: { readonly isReady: boolean; ping(): Promise<unknown> } }>;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, onTimeout);
    p.then(
      (v) => { clearTimeout(timer); resolve(v); },
      () => { clearTimeout(timer); resolve(onTimeout); },
    );
  });
}

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0]);
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

class StandaloneBackend implements Backend {
  readonly commands: Commands;
  private readonly client: StandaloneClient;
  private readonly events: Events;

  constructor(url: string, events: Events) {
    this.events = events;
    const client = createClient({
      url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: QUEUE_MAX,
      // No per-command timer: the data path never awaits a write, and reads carry their own bound.
      commandOptions: { timeout: 0 },
      maintNotifications: 'disabled',
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelayMs },
    });
    // 'error' comes for every failed (re)connect attempt and for a dropped connection.
    client.on('error', (err: unknown) => events.changed(err));
    client.on('ready', () => events.changed());
    client.on('end', () => events.changed());
    this.client = client;
    this.commands = client;
  }

  ready(): boolean {
    return this.client.isReady;
  }

  connect(): void {
    // Rejects only when closed or on a reconnect strategy that gives up (ours never does).
    this.client.connect().catch((err: unknown) => this.events.changed(err));
  }

  ping(): Promise<unknown> {
    return this.client.ping();
  }

  async close(): Promise<void> {
    // Only a ready connection has writes worth waiting for.
    if (this.client.isReady) await withTimeout(this.client.close(), CLOSE_GRACE_MS, undefined);
    this.client.destroy();
  }
}

class ClusterBackend implements Backend {
  readonly commands: Commands;
  private readonly cluster: ClusterClient;
  private readonly events: Events;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(url: string, seeds: HostPort[], events: Events) {
    this.events = events;
    // rootNodes only seed discovery; credentials and TLS must be in `defaults` to reach every node.
    const parsed = RedisClient.parseURL(url);
    const tls = parsed.socket !== undefined && 'tls' in parsed.socket && parsed.socket.tls === true;
    const socket = tls
      ? { tls: true as const, connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelayMs }
      : { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelayMs };
    const cluster = createCluster({
      rootNodes: seeds.map((s) => ({ socket: { host: s.host, port: s.port ?? DEFAULT_PORT } })),
      defaults: {
        username: parsed.username,
        password: parsed.password,
        socket,
        disableOfflineQueue: true,
        commandsQueueMaxLength: QUEUE_MAX,
        maintNotifications: 'disabled',
      },
      commandOptions: { timeout: 0 },
    });
    cluster.on('node-error', (err: unknown) => events.changed(err));
    cluster.on('node-ready', () => events.changed());
    cluster.on('node-disconnect', () => events.changed());
    // Discovery reports each unreachable seed here even when the next seed answers; only a
    // discovery that failed on every seed (connect() rejects) means "not reachable".
    cluster.on('error', (err: unknown) => {
      events.noted(err);
      events.changed();
    });
    cluster.on('connect', () => events.changed());
    cluster.on('disconnect', () => events.changed());
    this.cluster = cluster;
    this.commands = cluster;
  }

  /** Every master connected: a key's slot may be on any of them. */
  ready(): boolean {
    if (!this.cluster.isReady) return false;
    for (const m of this.cluster.masters) {
      if (m.client?.isReady !== true) return false;
    }
    return true;
  }

  connect(): void {
    if (this.closed) return;
    this.retryTimer = undefined;
    // Node connections reconnect on their own once discovered; a failed discovery does not, so
    // it is retried here with the same backoff.
    this.cluster.connect().then(
      () => {
        this.retries = 0;
        this.events.changed();
      },
      (err: unknown) => {
        this.events.changed(err);
        if (!this.closed) this.retryTimer = setTimeout(() => this.connect(), reconnectDelayMs(this.retries++));
      },
    );
  }

  ping(): Promise<unknown> {
    const pings: Promise<unknown>[] = [];
    for (const m of this.cluster.masters) {
      if (m.client?.isReady === true) pings.push(m.client.ping());
    }
    return Promise.all(pings);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.cluster.isReady) await withTimeout(this.cluster.close(), CLOSE_GRACE_MS, undefined);
    this.cluster.destroy();
  }
}

/** The connection as the store's parts see it: availability, counters, missed writes. */
class SharedTier {
  readonly commands: Commands;
  readonly readTimeoutMs: number;
  readonly slowReadMs: number;
  readonly log: Logger;
  outages = 0;
  failedWrites = 0;
  reconcileDropped = 0;
  /** Redis key -> the map that owns it: assignment writes Redis did not take. */
  readonly pending = new Map<string, RedisAssignmentMap>();
  private readonly backend: Backend;
  private readonly listeners: (() => void)[] = [];
  private state: 'connecting' | 'up' | 'down' = 'connecting';
  private closed = false;
  private started = false;
  private startWaiter: (() => void) | null = null;
  private lastError = '';
  private downSince = 0;
  private stalled = false;
  private probeSentAt = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconciling = false;
  private reconcileAgain = false;

  constructor(opts: RedisStoreOptions) {
    this.readTimeoutMs = opts.readTimeoutMs;
    this.slowReadMs = Math.max(SLOW_READ_MIN_MS, opts.readTimeoutMs * 10);
    this.log = opts.log;
    const events: Events = {
      changed: (failure) => this.changed(failure),
      noted: (err) => {
        this.lastError = errorText(err);
      },
    };
    this.backend = opts.cluster.length > 0
      ? new ClusterBackend(opts.url, opts.cluster, events)
      : new StandaloneBackend(opts.url, events);
    this.commands = this.backend.commands;
  }

  get available(): boolean {
    return this.state === 'up';
  }

  start(): Promise<void> {
    if (this.started || this.closed) return Promise.resolve();
    this.started = true;
    const ready = new Promise<void>((resolve) => {
      this.startWaiter = resolve;
    });
    this.backend.connect();
    this.probeTimer = setInterval(() => this.probe(), PROBE_EVERY_MS);
    this.probeTimer.unref();
    // Whatever the backend does (a cluster tries its seeds one after the other), start() is bounded.
    setTimeout(() => {
      if (this.state === 'connecting') this.changed(new Error(`not connected within ${START_LIMIT_MS} ms`));
    }, START_LIMIT_MS).unref();
    return ready;
  }

  onAvailable(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(err?: unknown): void {
    if (this.closed) return;
    if (err !== undefined) this.lastError = errorText(err);
    const ready = this.backend.ready() && !this.stalled;
    if (ready && this.state !== 'up') this.becameAvailable();
    // Before the first connect only a failure (not the absence of `ready`) means "down".
    else if (!ready && (this.state === 'up' || (this.state === 'connecting' && err !== undefined))) this.becameUnavailable();
    if (this.startWaiter !== null && this.state !== 'connecting') {
      const resolve = this.startWaiter;
      this.startWaiter = null;
      resolve();
    }
  }

  private becameUnavailable(): void {
    this.state = 'down';
    this.outages++;
    this.downSince = Date.now();
    this.log.warn(
      { outages: this.outages, err: this.lastError },
      'redis state store unavailable: continuing on local state, reconnecting in the background',
    );
  }

  private becameAvailable(): void {
    const wasDown = this.state === 'down';
    this.state = 'up';
    if (!wasDown) {
      this.log.info('redis state store connected');
      return;
    }
    this.log.info(
      { downMs: Date.now() - this.downSince, reconcile: this.pending.size },
      'redis state store available again',
    );
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'redis state store: onAvailable listener failed');
      }
    }
    void this.reconcile();
  }

  /**
   * A server that stops answering without closing its connections (paused, wedged, partitioned
   * without resets) never triggers a socket error; an unanswered PING marks it unavailable so the
   * data path stops waiting on it, and its answer marks it available again.
   */
  private probe(): void {
    if (this.closed || !this.backend.ready()) return;
    if (this.probeSentAt !== 0) {
      if (!this.stalled && Date.now() - this.probeSentAt > this.slowReadMs) {
        this.stalled = true;
        this.changed(new Error(`no answer to PING for ${this.slowReadMs} ms`));
      }
      return;
    }
    this.probeSentAt = Date.now();
    let ping: Promise<unknown>;
    try {
      ping = this.backend.ping();
    } catch (err) {
      ping = Promise.reject(err);
    }
    ping.then(() => this.probed(true), () => this.probed(false));
  }

  private probed(ok: boolean): void {
    this.probeSentAt = 0;
    // A PING refused while the connection is up (full queue, LOADING) is a server not serving.
    const stalled = !ok && this.backend.ready();
    if (stalled === this.stalled) return;
    this.stalled = stalled;
    this.changed(stalled ? new Error('PING refused') : undefined);
  }

  /** An assignment write Redis did not take: remembered so it can be redone from the local table. */
  missed(redisKey: string, map: RedisAssignmentMap): void {
    if (this.closed) return;
    this.failedWrites++;
    this.pending.delete(redisKey);
    this.pending.set(redisKey, map);
    if (this.pending.size > RECONCILE_CAP) {
      const oldest = this.pending.keys().next();
      if (!oldest.done) this.pending.delete(oldest.value);
      this.reconcileDropped++;
    }
  }

  /** A write nothing is redone for (the writer repeats it on its own schedule). */
  fire(run: (c: Commands) => Promise<unknown>): void {
    if (!this.available) {
      this.failedWrites++;
      return;
    }
    try {
      run(this.commands).catch(() => this.failedWrites++);
    } catch {
      this.failedWrites++;
    }
  }

  /** A read bounded by `ms`; null when unavailable, on error and on timeout. Never rejects. */
  read<T>(run: (c: Commands) => Promise<T>, ms: number): Promise<T | null> {
    if (!this.available) return Promise.resolve(null);
    let p: Promise<T>;
    try {
      p = run(this.commands);
    } catch (err) {
      p = Promise.reject(err);
    }
    return withTimeout<T | null>(p, ms, null);
  }

  /**
   * Rewrites the missed assignments in batches, yielding to the event loop between them. Each
   * pass covers what was pending when it began, so writes that keep failing cannot spin it.
   */
  private async reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.reconcileAgain = false;
        let budget = this.pending.size;
        while (budget > 0 && this.available) {
          const batch: Promise<unknown>[] = [];
          const now = Date.now();
          let visited = 0;
          for (const [redisKey, map] of this.pending) {
            this.pending.delete(redisKey);
            budget--;
            visited++;
            const write = map.rewrite(redisKey, now);
            if (write !== null) batch.push(write);
            if (budget === 0 || visited >= RECONCILE_BATCH) break;
          }
          await Promise.all(batch);
          await nextTurn();
        }
      } while (this.reconcileAgain && this.available);
    } finally {
      this.reconciling = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.state = 'down';
    clearInterval(this.probeTimer);
    this.pending.clear();
    if (this.startWaiter !== null) {
      this.startWaiter();
      this.startWaiter = null;
    }
    await this.backend.close();
  }
}

class RedisAssignmentMap implements AssignmentMap {
  private readonly table: AffinityTable;
  private readonly tier: SharedTier;
  /** Redis key of local key k: base + k. */
  private readonly base: string;
  private readonly idleMs: number;
  private readonly lingerMs: number;
  /** A used entry whose last shared write is older than this is written again (TTL refresh). */
  private readonly refreshMs: number;
  private readonly idleSet: SetOptions;

  constructor(tier: SharedTier, base: string, opts: AssignmentOptions) {
    this.tier = tier;
    this.base = base;
    this.idleMs = opts.idleMs;
    this.lingerMs = opts.lingerMs;
    this.refreshMs = opts.idleMs / 2;
    this.idleSet = { expiration: { type: 'PX', value: opts.idleMs } };
    this.table = new AffinityTable(opts.idleMs, opts.lingerMs, opts.maxEntries);
  }

  get size(): number {
    return this.table.size;
  }

  get evicted(): number {
    return this.table.evicted;
  }

  get(key: string): string | undefined {
    const now = Date.now();
    const e = this.table.use(key, now);
    if (e === undefined) return undefined;
    // The entry's mark is when it was last written to Redis. A re-SET (not PEXPIRE) also restores
    // a key whose shared TTL ran out while the call was quiet but still alive here.
    if (!e.closed && now - e.mark > this.refreshMs) {
      e.mark = now;
      this.write(key, e.nodeId, this.idleSet);
    }
    return e.nodeId;
  }

  fetch(key: string): Promise<string | undefined> | null {
    if (!this.tier.available) return null;
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        resolve(undefined);
      }, this.tier.readTimeoutMs);
      const answered = (nodeId: string | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (nodeId === null) return resolve(undefined);
        const now = Date.now();
        // A local set() while the GET was out is newer than what Redis said.
        const local = this.table.peek(key, now);
        if (local !== undefined) return resolve(local.nodeId);
        // Mark 0: the next use rewrites the key, so the balancer now serving the call keeps it shared.
        this.table.set(key, nodeId, now, 0);
        resolve(nodeId);
      };
      let get: Promise<string | null>;
      try {
        get = this.tier.commands.get(this.base + key);
      } catch (err) {
        get = Promise.reject(err);
      }
      get.then(answered, () => answered(null));
    });
  }

  set(key: string, nodeId: string): void {
    const now = Date.now();
    this.table.set(key, nodeId, now, now);
    this.write(key, nodeId, this.idleSet);
  }

  end(key: string): void {
    const closed = this.table.close(key);
    const redisKey = this.base + key;
    const tier = this.tier;
    if (!tier.available) {
      if (closed) tier.missed(redisKey, this);
      return;
    }
    // Also for keys not held here: the call is over wherever it was assigned.
    try {
      tier.commands.pExpire(redisKey, this.lingerMs).catch(() => {
        if (closed) tier.missed(redisKey, this);
        else tier.failedWrites++;
      });
    } catch {
      if (closed) tier.missed(redisKey, this);
    }
  }

  /** Reconciliation: write the local entry behind `redisKey` again; null when nothing is left to write. */
  rewrite(redisKey: string, now: number): Promise<unknown> | null {
    const e = this.table.peek(redisKey.slice(this.base.length), now);
    if (e === undefined) return null;
    let options = this.idleSet;
    if (e.closed) {
      const left = this.lingerMs - (now - e.at);
      if (left <= 0) return null;
      options = { expiration: { type: 'PX', value: Math.ceil(left) } };
    } else {
      e.mark = now;
    }
    const tier = this.tier;
    try {
      return tier.commands.set(redisKey, e.nodeId, options).catch(() => tier.missed(redisKey, this));
    } catch {
      tier.missed(redisKey, this);
      return null;
    }
  }

  close(): void {
    this.table.clear();
  }

  private write(key: string, nodeId: string, options: SetOptions): void {
    const redisKey = this.base + key;
    const tier = this.tier;
    if (!tier.available) {
      tier.missed(redisKey, this);
      return;
    }
    try {
      tier.commands.set(redisKey, nodeId, options).catch(() => tier.missed(redisKey, this));
    } catch {
      tier.missed(redisKey, this);
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isPort(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536;
}

function toRegistration(v: unknown): NodeRegistration | null {
  if (!isObject(v)) return null;
  if (typeof v.ip !== 'string' || typeof v.sessionId !== 'string' || typeof v.version !== 'string') return null;
  if (!isObject(v.ports) || !Object.values(v.ports).every(isPort)) return null;
  return v as unknown as NodeRegistration;
}

/** A directory field as written by publish(); null for anything else (another writer, a bad version). */
function toNodeRecord(field: string, json: string): SharedNodeRecord | null {
  const v = parseJson(json);
  if (!isObject(v)) return null;
  const { id, draining, heardAt, by } = v;
  if (id !== field || typeof draining !== 'boolean' || typeof by !== 'string') return null;
  if (typeof heardAt !== 'number' || !Number.isFinite(heardAt)) return null;
  const registration = toRegistration(v.registration);
  if (registration === null) return null;
  return { id, registration, draining, heardAt, by };
}

class RedisNodeDirectory implements NodeDirectory {
  private readonly tier: SharedTier;
  private readonly key: string;
  private readonly warnInvalid = rateLimit(60_000);

  constructor(tier: SharedTier, key: string) {
    this.tier = tier;
    this.key = key;
  }

  publish(rec: SharedNodeRecord): void {
    const json = JSON.stringify(rec);
    this.tier.fire((c) => c.hSet(this.key, rec.id, json));
  }

  remove(id: string): void {
    this.tier.fire((c) => c.hDel(this.key, id));
  }

  async list(): Promise<SharedNodeRecord[] | null> {
    const fields = await this.tier.read((c) => c.hGetAll(this.key), this.tier.slowReadMs);
    if (fields === null) return null;
    const records: SharedNodeRecord[] = [];
    for (const [field, json] of Object.entries(fields)) {
      const rec = toNodeRecord(field, json);
      if (rec !== null) records.push(rec);
      else if (this.warnInvalid()) this.tier.log.warn({ key: this.key, field }, 'redis state store: skipping an invalid node record');
    }
    return records;
  }
}

interface PublishedCounts {
  at: number;
  counts: Record<string, number>;
}

function toPublishedCounts(json: string): PublishedCounts | null {
  const v = parseJson(json);
  if (!isObject(v) || typeof v.at !== 'number' || !Number.isFinite(v.at) || !isObject(v.counts)) return null;
  for (const n of Object.values(v.counts)) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return null;
  }
  return { at: v.at, counts: v.counts as Record<string, number> };
}

class RedisCallCountBoard implements CallCountBoard {
  private readonly tier: SharedTier;
  private readonly key: string;

  constructor(tier: SharedTier, key: string) {
    this.tier = tier;
    this.key = key;
  }

  publish(balancerId: string, counts: ReadonlyMap<string, number>): void {
    const json = JSON.stringify({ at: Date.now(), counts: Object.fromEntries(counts) });
    this.tier.fire((c) => c.hSet(this.key, balancerId, json));
  }

  async others(balancerId: string): Promise<Map<string, number> | null> {
    const fields = await this.tier.read((c) => c.hGetAll(this.key), this.tier.slowReadMs);
    if (fields === null) return null;
    const now = Date.now();
    const sum = new Map<string, number>();
    for (const [id, json] of Object.entries(fields)) {
      if (id === balancerId) continue;
      const board = toPublishedCounts(json);
      if (board === null) continue;
      const age = now - board.at;
      if (age > CALLS_STALE_MS) {
        this.tier.fire((c) => c.hDel(this.key, id));
        continue;
      }
      if (age > CALLS_LIVE_MS) continue;
      for (const [node, n] of Object.entries(board.counts)) sum.set(node, (sum.get(node) ?? 0) + n);
    }
    return sum;
  }
}

export interface RedisStoreOptions {
  /** redis[s]://[user:password@]host[:port][/db]; in cluster mode only credentials and TLS are used. */
  url: string;
  /** Cluster seed nodes; empty for a single server at `url`. */
  cluster: HostPort[];
  keyPrefix: string;
  /** Bound on a data-path read after a local miss. */
  readTimeoutMs: number;
  log: Logger;
}

export class RedisStateStore implements StateStore {
  readonly kind = 'redis';
  readonly nodes: NodeDirectory;
  readonly calls: CallCountBoard;
  private readonly tier: SharedTier;
  private readonly prefix: string;
  private readonly maps: RedisAssignmentMap[] = [];

  constructor(opts: RedisStoreOptions) {
    this.tier = new SharedTier(opts);
    this.prefix = opts.keyPrefix;
    this.nodes = new RedisNodeDirectory(this.tier, `${opts.keyPrefix}nodes`);
    this.calls = new RedisCallCountBoard(this.tier, `${opts.keyPrefix}calls`);
  }

  get available(): boolean {
    return this.tier.available;
  }

  get outages(): number {
    return this.tier.outages;
  }

  /** Writes Redis did not take (skipped while unavailable, or failed). */
  get failedWrites(): number {
    return this.tier.failedWrites;
  }

  /** Assignment writes waiting to be redone when Redis is back. */
  get pendingWrites(): number {
    return this.tier.pending.size;
  }

  /** Missed assignment writes forgotten because more than 100,000 were waiting. */
  get reconcileDropped(): number {
    return this.tier.reconcileDropped;
  }

  start(): Promise<void> {
    return this.tier.start();
  }

  assignments(namespace: string, opts: AssignmentOptions): AssignmentMap {
    const m = new RedisAssignmentMap(this.tier, `${this.prefix}a:${namespace}:`, opts);
    this.maps.push(m);
    return m;
  }

  async sharedSecret(candidate: string): Promise<string> {
    const key = `${this.prefix}viaSecret`;
    const stored = await this.tier.read(async (c) => {
      await c.set(key, candidate, { condition: 'NX' });
      return c.get(key);
    }, this.tier.slowReadMs);
    if (typeof stored === 'string' && stored !== '') return stored;
    this.tier.log.warn(
      { key },
      'redis state store: could not read or store the shared Via branch secret; balancers may not share it',
    );
    return candidate;
  }

  onAvailable(listener: () => void): void {
    this.tier.onAvailable(listener);
  }

  async close(): Promise<void> {
    for (const m of this.maps) m.close();
    await this.tier.close();
  }
}
