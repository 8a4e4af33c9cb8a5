// The Backend for a Redis Cluster: a key's slot may live on any master, so it is ready only when
// every master's connection is, and a failed discovery (which node-redis does not retry) is
// retried here with the same backoff as a reconnect.

import { createCluster, RedisClient } from 'redis';
import type { HostPort } from '../../config/types.ts';
import {
  CLOSE_GRACE_MS, CONNECT_TIMEOUT_MS, QUEUE_MAX, reconnectDelayMs, withTimeout,
  type Backend, type Client, type Commands, type Events,
} from './connection.ts';

const DEFAULT_PORT = 6379;

interface ClusterClient extends Client {
  readonly masters: ReadonlyArray<{ readonly client?: { readonly isReady: boolean; ping(): Promise<unknown> } }>;
}

export class ClusterBackend implements Backend {
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
