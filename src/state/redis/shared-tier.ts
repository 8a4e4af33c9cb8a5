// The connection as every part of the Redis store shares it: one backend, which of its servers
// (the standalone server, or each master of a cluster) serves keys right now (socket events, plus
// a probe for a server that goes silent without closing its sockets or answers but refuses keys),
// the outage counters, and the assignment writes Redis missed, redone in the background once the
// server that holds them is back. fire() and read() wrap a command so that its failure never
// reaches a caller; every command goes through a gate that refuses, at once, a key whose server
// is not serving, so that one master down costs the keys of its slots and nothing else.

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ClientOfflineError, type SetOptions } from 'redis';
import type { HostPort } from '../../config/types.ts';
import { ClusterBackend } from './cluster-backend.ts';
import {
  CONNECT_TIMEOUT_MS, errorText, withTimeout, type Backend, type Commands, type Events, type ServerLink,
} from './connection.ts';
import { StandaloneBackend } from './standalone-backend.ts';

/** start() resolves by then at the latest, connected or not. */
const START_LIMIT_MS = CONNECT_TIMEOUT_MS + 500;
/** How often each connected server is asked to prove it still answers (a stopped process keeps its sockets open). */
const PROBE_EVERY_MS = 1000;
/** Background reads (directory, call board, secret) may wait longer than the data path's fetch. */
const SLOW_READ_MIN_MS = 1000;
/** Assignment writes remembered for reconciliation; the oldest are dropped beyond it. */
const RECONCILE_CAP = 100_000;
const RECONCILE_BATCH = 1000;

/**
 * What a gated command rejects with: node-redis's own error for a node whose connection is down,
 * which is what the command would have met had it been sent. One instance: nobody looks at it
 * beyond "failed", and the data path must not pay a stack trace per refused command.
 */
const NOT_SERVING = new ClientOfflineError();

function notServing<T>(): Promise<T> {
  return Promise.reject(NOT_SERVING);
}

export interface SharedTierOptions {
  /** redis[s]://[user:password@]host[:port][/db]; in cluster mode only credentials and TLS are used. */
  url: string;
  /** Cluster seed nodes; empty for a single server at `url`. */
  cluster: HostPort[];
  /** Bound on a data-path read after a local miss. */
  readTimeoutMs: number;
  log: Logger;
}

/**
 * What reconciliation needs of the map that owns a missed write (RedisAssignmentMap): write the
 * local entry behind `redisKey` again; null when nothing is left to write. Declared here so the
 * tier does not depend on the map that depends on it.
 */
export interface RewritableMap {
  rewrite(redisKey: string, now: number): Promise<unknown> | null;
}

/**
 * The store as a whole: `up` every server serves keys; `degraded` some do (a cluster with masters
 * down: the keys of their slots are unavailable, the others are not); `down` none does.
 */
export type TierHealth = 'up' | 'degraded' | 'down';

/** What the tier knows of one server (the standalone server, or one master). */
interface ServerState {
  readonly address: string;
  /** Its connection was up when last looked at. */
  connected: boolean;
  /** Answered its last probe "serving" since it (re)connected, and has not gone silent since. */
  verified: boolean;
  /**
   * Its fate is known since it last (re)connected or disconnected: a probe answered, whatever
   * the answer, or a connection attempt failed. start() waits for every server's (bounded).
   */
  settled: boolean;
  /** Its last answer was "refusing keys" (a cluster node in cluster_state:fail). */
  refusing: boolean;
  /** connected && verified, as of the last evaluate(): what the command gate reads. */
  serving: boolean;
  /** It stopped serving after having served: its return is news. */
  lost: boolean;
  downSince: number;
  /** Date.now() of the probe out, 0 when none is: one at a time, a silent server is not sent more. */
  probeSentAt: number;
  /** Bumped on every (re)connection and disconnection: an answer to an older probe is not believed. */
  gen: number;
  /** Round trip of its last probe answered "serving", in ms. */
  pingMs: number | null;
  lastError: string;
}

/** The commands, refused at once for a key whose server is not serving (instead of queued, or waited on). */
class GatedCommands implements Commands {
  private readonly inner: Commands;
  private readonly serves: (key: string) => boolean;

  constructor(inner: Commands, serves: (key: string) => boolean) {
    this.inner = inner;
    this.serves = serves;
  }

  get(key: string): Promise<string | null> {
    return this.serves(key) ? this.inner.get(key) : notServing();
  }

  set(key: string, value: string, options?: SetOptions): Promise<unknown> {
    return this.serves(key) ? this.inner.set(key, value, options) : notServing();
  }

  pExpire(key: string, ms: number): Promise<unknown> {
    return this.serves(key) ? this.inner.pExpire(key, ms) : notServing();
  }

  hSet(key: string, field: string, value: string): Promise<unknown> {
    return this.serves(key) ? this.inner.hSet(key, field, value) : notServing();
  }

  hDel(key: string, field: string): Promise<unknown> {
    return this.serves(key) ? this.inner.hDel(key, field) : notServing();
  }

  hGetAll(key: string): Promise<Record<string, string>> {
    return this.serves(key) ? this.inner.hGetAll(key) : notServing();
  }

  // A script's keys share one slot (Redis Cluster refuses it otherwise): the first names the server.
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown> {
    return this.serves(options.keys[0] ?? '') ? this.inner.evalSha(sha1, options) : notServing();
  }

  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown> {
    return this.serves(options.keys[0] ?? '') ? this.inner.eval(script, options) : notServing();
  }
}

/** The connection as the store's parts see it: availability, counters, missed writes. */
export class SharedTier {
  readonly commands: Commands;
  readonly readTimeoutMs: number;
  readonly slowReadMs: number;
  readonly log: Logger;
  /** Times the store became unavailable as a whole (no server serving). */
  outages = 0;
  /** Times one server (a cluster master) stopped serving while others went on: the store degraded. */
  serverOutages = 0;
  failedWrites = 0;
  reconcileDropped = 0;
  /** Redis key -> the map that owns it: assignment writes Redis did not take. */
  readonly pending = new Map<string, RewritableMap>();
  private readonly backend: Backend;
  private readonly cluster: boolean;
  private readonly listeners: (() => void)[] = [];
  private readonly servers = new Map<string, ServerState>();
  private state: 'connecting' | TierHealth = 'connecting';
  private up = 0;
  private total = 0;
  private closed = false;
  private started = false;
  private startExpired = false;
  private startWaiter: (() => void) | null = null;
  private lastError = '';
  private downSince = 0;
  private refusalWarned = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconciling = false;
  private reconcileAgain = false;
  /** A write failed on a server that looked serving (CLUSTERDOWN, a dropped reply): retried at the next probe. */
  private retryDue = false;

  constructor(opts: SharedTierOptions) {
    this.readTimeoutMs = opts.readTimeoutMs;
    this.slowReadMs = Math.max(SLOW_READ_MIN_MS, opts.readTimeoutMs * 10);
    this.log = opts.log;
    const events: Events = {
      changed: (failure, address) => this.changed(failure, address),
      noted: (err) => {
        this.lastError = errorText(err);
      },
    };
    this.cluster = opts.cluster.length > 0;
    this.backend = this.cluster
      ? new ClusterBackend(opts.url, opts.cluster, events, opts.log)
      : new StandaloneBackend(opts.url, events);
    this.commands = new GatedCommands(this.backend.commands, (key) => this.serves(key));
  }

  /** At least one server serves keys: reads and writes are tried (and refused at once for a key whose server does not). */
  get available(): boolean {
    return this.state === 'up' || this.state === 'degraded';
  }

  get health(): TierHealth {
    return this.state === 'connecting' ? 'down' : this.state;
  }

  /** Servers (masters) serving keys right now. */
  get serversUp(): number {
    return this.up;
  }

  /** Servers keys are spread over: 1 for a standalone server, the masters of a cluster (0 before its layout is known). */
  get serversTotal(): number {
    return this.total;
  }

  /** Round trip of the slowest serving server's last probe, in ms; null when none answered. */
  get lastPingMs(): number | null {
    let max: number | null = null;
    for (const s of this.servers.values()) {
      if (s.serving && s.pingMs !== null && (max === null || s.pingMs > max)) max = s.pingMs;
    }
    return max;
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
      this.startExpired = true;
      if (this.state === 'connecting') this.changed(new Error(`not connected within ${START_LIMIT_MS} ms`));
    }, START_LIMIT_MS).unref();
    return ready;
  }

  /** Called each time the store, or one server of it, serves again after an outage. */
  onAvailable(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The command gate: a key may be sent while its server serves. */
  private serves(key: string): boolean {
    // Every server serving: no need to find out which one holds the key.
    if (this.state === 'up') return true;
    if (this.state !== 'degraded') return false;
    const address = this.backend.serverOf(key);
    return address !== undefined && this.servers.get(address)?.serving === true;
  }

  private changed(err?: unknown, address?: string): void {
    if (this.closed) return;
    if (err !== undefined) {
      this.lastError = errorText(err);
      // A failure names its server when node-redis does (a cluster node); one that does not is
      // about the whole connection (the standalone server, a cluster's discovery).
      for (const link of this.backend.servers()) this.server(link.address);
      for (const s of this.servers.values()) {
        if (address !== undefined && s.address !== address) continue;
        s.lastError = this.lastError;
        if (!s.connected) s.settled = true;
      }
    }
    this.evaluate(err !== undefined);
  }

  private server(address: string): ServerState {
    let s = this.servers.get(address);
    if (s === undefined) {
      s = {
        address, connected: false, verified: false, settled: false, refusing: false, serving: false,
        lost: false, downSince: 0, probeSentAt: 0, gen: 0, pingMs: null, lastError: '',
      };
      this.servers.set(address, s);
    }
    return s;
  }

  /**
   * Brings every server's state and the store's up to date with what the backend says, and acts
   * on what changed: log lines, listeners, reconciliation. `failed`: the cause was an error.
   */
  private evaluate(failed: boolean): void {
    const links = this.backend.servers();
    let up = 0;
    let awaiting = 0;
    let refusing = 0;
    const lost: ServerState[] = [];
    const back: ServerState[] = [];
    const present = new Set<string>();
    for (const link of links) {
      present.add(link.address);
      const s = this.server(link.address);
      const connected = link.connected;
      if (connected !== s.connected) {
        s.connected = connected;
        s.verified = false;
        s.settled = false;
        s.refusing = false;
        s.probeSentAt = 0;
        s.gen++;
        // A server that just (re)connected serves only once it says so: a restarted cluster
        // master refuses keys for a while after it accepts connections.
        if (connected) queueMicrotask(() => this.probeOne(link));
      }
      const serving = s.connected && s.verified;
      if (serving !== s.serving) {
        s.serving = serving;
        if (serving) {
          back.push(s);
        } else {
          s.lost = true;
          s.downSince = Date.now();
          lost.push(s);
        }
      }
      if (serving) up++;
      else if (!s.settled) awaiting++;
      if (s.connected && s.refusing) refusing++;
    }
    // A topology change (a cluster resharded or failed over) retires the masters it no longer has.
    for (const address of this.servers.keys()) if (!present.has(address)) this.servers.delete(address);
    this.up = up;
    this.total = links.length;

    const before = this.state;
    let next: typeof this.state;
    // At start, every server gets to connect and answer its first probe, or fail, before the
    // store says anything (degraded at once would refuse the keys of the masters not asked yet),
    // and only a failure (not the absence of an answer) means "down". start() bounds the wait.
    if (before === 'connecting' && !this.startExpired && (awaiting > 0 || (up === 0 && !failed))) next = 'connecting';
    else if (up > 0) next = up === links.length ? 'up' : 'degraded';
    else next = 'down';
    this.state = next;

    const wasAvailable = before === 'up' || before === 'degraded';
    let tellListeners = false;
    if (next === 'down' && before !== 'down') {
      this.becameUnavailable();
    } else if (next !== 'down' && next !== 'connecting' && before === 'down') {
      this.becameAvailable();
      tellListeners = true;
    } else if (next !== before && before === 'connecting') {
      this.connected();
    }
    if (wasAvailable && this.available) {
      // The store stayed available: what changed is one server or another.
      for (const s of lost) {
        this.serverOutages++;
        this.log.warn(
          { master: s.address, mastersUp: up, masters: links.length, err: s.lastError || this.lastError },
          'redis cluster master unavailable: keys in its slots fall back to local state',
        );
      }
      for (const s of back) {
        if (!s.lost) continue;
        this.log.info(
          { master: s.address, downMs: Date.now() - s.downSince, mastersUp: up, masters: links.length, reconcile: this.pending.size },
          'redis cluster master available again',
        );
        tellListeners = true;
      }
    }
    for (const s of back) s.lost = false;
    if (next === 'down' && refusing > 0 && !this.refusalWarned) {
      this.refusalWarned = true;
      this.log.warn(
        { refusing, masters: links.length },
        'redis cluster refuses every key (cluster_state:fail on every master that answers): with cluster-require-full-coverage yes one master down stops them all; set cluster-require-full-coverage no for partial availability',
      );
    }
    if (tellListeners) this.tellListeners();
    if (back.length > 0 && this.pending.size > 0) void this.reconcile();
    if (this.startWaiter !== null && this.state !== 'connecting') {
      const resolve = this.startWaiter;
      this.startWaiter = null;
      resolve();
    }
  }

  private becameUnavailable(): void {
    this.outages++;
    this.downSince = Date.now();
    this.log.warn(
      { outages: this.outages, err: this.lastError, ...(this.cluster ? { masters: this.total } : {}) },
      'redis state store unavailable: continuing on local state, reconnecting in the background',
    );
  }

  private becameAvailable(): void {
    this.refusalWarned = false;
    this.log.info(
      {
        downMs: Date.now() - this.downSince, reconcile: this.pending.size,
        ...(this.cluster ? { mastersUp: this.up, masters: this.total } : {}),
      },
      'redis state store available again',
    );
  }

  private connected(): void {
    if (this.state === 'up') {
      this.log.info(this.cluster ? { masters: this.total } : {}, 'redis state store connected');
      return;
    }
    const down = [...this.servers.values()].filter((s) => !s.serving).map((s) => s.address);
    for (const s of this.servers.values()) {
      if (!s.serving) {
        s.lost = true;
        s.downSince = Date.now();
      }
    }
    this.log.warn(
      { mastersUp: this.up, masters: this.total, down, err: this.lastError },
      'redis state store connected without every master: keys in the slots of the masters down fall back to local state',
    );
  }

  private tellListeners(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'redis state store: onAvailable listener failed');
      }
    }
  }

  /**
   * Every second: each connected server is asked whether it serves keys. A server that stops
   * answering without closing its connections (paused, wedged, partitioned without resets) never
   * triggers a socket error; an unanswered probe marks it not serving (its keys are refused at
   * once, instead of waiting on it), and its answer marks it serving again.
   */
  private probe(): void {
    if (this.closed) return;
    this.backend.maintain();
    // Catches what no event announced (a topology refresh that changed the masters).
    this.evaluate(false);
    for (const link of this.backend.servers()) this.probeOne(link);
    if (this.retryDue && this.pending.size > 0) void this.reconcile();
  }

  /** Sends a server its probe, unless one is out; the probe's own timer finds a silent server out. */
  private probeOne(link: ServerLink): void {
    const s = this.servers.get(link.address);
    if (this.closed || s === undefined || !s.connected || s.probeSentAt !== 0) return;
    const gen = s.gen;
    s.probeSentAt = Date.now();
    const began = performance.now();
    const silence = setTimeout(() => this.silent(s, gen), this.slowReadMs);
    silence.unref();
    let answer: Promise<boolean>;
    try {
      answer = link.probe();
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (serves) => {
        clearTimeout(silence);
        this.probed(s, gen, serves, performance.now() - began, undefined);
      },
      (err: unknown) => {
        clearTimeout(silence);
        this.probed(s, gen, null, 0, err);
      },
    );
  }

  /** A probe still unanswered after slowReadMs: the server is not serving until it answers. */
  private silent(s: ServerState, gen: number): void {
    if (this.closed || this.servers.get(s.address) !== s || s.gen !== gen || !s.verified) return;
    s.verified = false;
    s.lastError = `no answer to the health probe for ${this.slowReadMs} ms`;
    this.lastError = s.lastError;
    this.evaluate(true);
  }

  /** `serves`: true serving, false refusing keys, null no answer (`err`). */
  private probed(s: ServerState, gen: number, serves: boolean | null, ms: number, err: unknown): void {
    if (this.closed || this.servers.get(s.address) !== s || s.gen !== gen) return;
    s.probeSentAt = 0;
    s.settled = true;
    s.refusing = serves === false;
    if (serves === true) {
      s.verified = true;
      s.pingMs = ms;
    } else {
      // A probe refused while the connection is up (full queue, LOADING, cluster_state:fail) is a
      // server not serving.
      s.verified = false;
      s.lastError = serves === false ? 'cluster_state:fail: refuses every key' : errorText(err);
      this.lastError = s.lastError;
    }
    this.evaluate(serves !== true);
  }

  /** An assignment write Redis did not take: remembered so it can be redone from the local table. */
  missed(redisKey: string, map: RewritableMap): void {
    if (this.closed) return;
    this.failedWrites++;
    this.pending.delete(redisKey);
    this.pending.set(redisKey, map);
    if (this.pending.size > RECONCILE_CAP) {
      const oldest = this.pending.keys().next();
      if (!oldest.done) this.pending.delete(oldest.value);
      this.reconcileDropped++;
    }
    // Refused by a server that looked serving: nothing else will bring it back, so the probe does.
    if (this.serves(redisKey)) this.retryDue = true;
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
   * Rewrites the missed assignments whose server serves, in batches, yielding to the event loop
   * between them; the others wait for their server's return. Each pass covers what was pending
   * when it began, so writes that keep failing cannot spin it.
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
        this.retryDue = false;
        const keys: string[] = [];
        for (const redisKey of this.pending.keys()) if (this.serves(redisKey)) keys.push(redisKey);
        for (let i = 0; i < keys.length && this.available; i += RECONCILE_BATCH) {
          const batch: Promise<unknown>[] = [];
          const now = Date.now();
          for (const redisKey of keys.slice(i, i + RECONCILE_BATCH)) {
            const map = this.pending.get(redisKey);
            if (map === undefined || !this.serves(redisKey)) continue;
            this.pending.delete(redisKey);
            const write = map.rewrite(redisKey, now);
            if (write !== null) batch.push(write);
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
