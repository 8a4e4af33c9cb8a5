// What the admin surface (API, metrics, dashboard) sees of a running balancer. The composition
// root (wiring/balancer.ts) builds it; admin reads state through it and changes the cluster only
// through the registry (drain, activate, weight), so the data path still sees nothing but
// snapshots, and the configuration only through reload(). `config` is read anew on each use:
// after a reload it is the new configuration.

import type { Logger } from 'pino';
import type { ActiveHealthCheck } from '../cluster/active-health.ts';
import type { CallTracker } from '../cluster/call-tracker.ts';
import type { HeartbeatCounters } from '../cluster/heartbeat-server.ts';
import type { NodeRegistry } from '../cluster/node-registry.ts';
import type { Config } from '../config/types.ts';
import type { LogLevel } from '../core/log.ts';
import type { HttpBalancer } from '../http/http-balancer.ts';
import type { ProxyStats } from '../proxy/stats.ts';
import type { StateStore } from '../state/store.ts';
import type { TransportRouter } from '../transport/router.ts';

export interface AdminTarget {
  readonly config: Config;
  /** The configuration file it runs from; null on the built-in defaults. */
  readonly configPath: string | null;
  readonly balancerId: string;
  /** siplb's version (package.json). */
  readonly version: string;
  /** When it started (ms since the epoch). */
  readonly startedAt: number;
  readonly stats: ProxyStats;
  readonly registry: NodeRegistry;
  readonly calls: CallTracker;
  readonly store: StateStore;
  readonly health: ActiveHealthCheck;
  readonly transports: TransportRouter;
  readonly http: HttpBalancer | null;
  /** The heartbeat endpoint's counters; null when it did not open (its default port was busy). */
  readonly heartbeat: HeartbeatCounters | null;
  readonly log: Logger;
  /** A graceful stop is under way (new calls get 503). */
  isStopping(): boolean;
  /** Starts a graceful stop: no new calls, dialogs go on for shutdownTimeout ms, then exit. */
  stop(reason: string): void;
  logLevel(): LogLevel;
  setLogLevel(level: LogLevel): void;
  /**
   * Re-reads the configuration file and applies what can change live (wiring/reload.ts); never
   * rejects. Absent where the balancer cannot reload (a target built by hand in a test).
   */
  reload?(): Promise<ReloadResult>;
  /** Why node weights change nothing (the algorithm ignores them), for the weight endpoint to say; undefined when they count. */
  readonly weightsIgnored?: string;
}

/** A key a reload would not change, and why. */
export interface ReloadRefusal {
  /** The key as lb.properties names it ("(file)" for the file itself). */
  readonly key: string;
  readonly reason: string;
}

/**
 * What a reload answers. ok: the keys whose new values now apply (none when the file did not
 * change), how many TLS listeners took the PEM files again, the loader's warnings and remarks on
 * what applies only in part. Not ok: nothing changed; `invalid` when the file (or a file it
 * names) is bad, `refused` when it asks for changes that need a restart.
 */
export type ReloadResult =
  | {
    readonly ok: true;
    readonly applied: readonly string[];
    readonly tlsListeners: number;
    readonly warnings: readonly string[];
    readonly notes: readonly string[];
  }
  | { readonly ok: false; readonly status: 'invalid' | 'refused'; readonly error: string; readonly refused: readonly ReloadRefusal[] };
