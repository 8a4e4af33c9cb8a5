// The connection as every part of the Redis store shares it: one backend, whether Redis answers
// right now (socket events, plus a PING probe for a server that goes silent without closing its
// sockets), the outage counters, and the assignment writes Redis missed, redone in the background
// once it is back. fire() and read() wrap a command so that its failure never reaches a caller.

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { HostPort } from '../../config/types.ts';
import { ClusterBackend } from './cluster-backend.ts';
import { CONNECT_TIMEOUT_MS, errorText, withTimeout, type Backend, type Commands, type Events } from './connection.ts';
import { StandaloneBackend } from './standalone-backend.ts';

/** start() resolves by then at the latest, connected or not. */
const START_LIMIT_MS = CONNECT_TIMEOUT_MS + 500;
/** How often a connected Redis is asked to prove it still answers (a stopped process keeps its sockets open). */
const PROBE_EVERY_MS = 1000;
/** Background reads (directory, call board, secret) may wait longer than the data path's fetch. */
const SLOW_READ_MIN_MS = 1000;
/** Assignment writes remembered for reconciliation; the oldest are dropped beyond it. */
const RECONCILE_CAP = 100_000;
const RECONCILE_BATCH = 1000;

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

/** The connection as the store's parts see it: availability, counters, missed writes. */
export class SharedTier {
  readonly commands: Commands;
  readonly readTimeoutMs: number;
  readonly slowReadMs: number;
  readonly log: Logger;
  outages = 0;
  failedWrites = 0;
  reconcileDropped = 0;
  /** Redis key -> the map that owns it: assignment writes Redis did not take. */
  readonly pending = new Map<string, RewritableMap>();
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
  /** Round trip of the last PING answered, in ms; null before the first. */
  lastPingMs: number | null = null;
  private probeStartedAt = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private reconciling = false;
  private reconcileAgain = false;

  constructor(opts: SharedTierOptions) {
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
    this.probeStartedAt = performance.now();
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
    if (ok) this.lastPingMs = performance.now() - this.probeStartedAt;
    // A PING refused while the connection is up (full queue, LOADING) is a server not serving.
    const stalled = !ok && this.backend.ready();
    if (stalled === this.stalled) return;
    this.stalled = stalled;
    this.changed(stalled ? new Error('PING refused') : undefined);
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
