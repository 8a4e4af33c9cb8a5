// What the admin surface (API, metrics, dashboard) sees of a running balancer. The composition
// root (wiring/balancer.ts) builds it; admin reads state through it and changes the cluster only
// through the registry (drain, activate), so the data path still sees nothing but snapshots.

import type { Logger } from 'pino';
import type { ActiveHealthCheck } from '../cluster/active-health.ts';
import type { CallTracker } from '../cluster/call-tracker.ts';
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
  readonly log: Logger;
  /** A graceful stop is under way (new calls get 503). */
  isStopping(): boolean;
  /** Starts a graceful stop: no new calls, dialogs go on for shutdownTimeout ms, then exit. */
  stop(reason: string): void;
  logLevel(): LogLevel;
  setLogLevel(level: LogLevel): void;
}
