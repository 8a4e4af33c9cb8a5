// The Backend for a single Redis server: node-redis reconnects on its own, so this only sets the
// client up to fail fast while disconnected and turns its events into readiness changes. Every
// key lives on the one server, so servers() is that server alone.

import { createClient } from 'redis';
import {
  CLOSE_GRACE_MS, CONNECT_TIMEOUT_MS, QUEUE_MAX, reconnectDelayMs, withTimeout,
  type Backend, type Client, type Commands, type Events, type ServerLink,
} from './connection.ts';

const DEFAULT_PORT = 6379;

interface StandaloneClient extends Client {
  ping(): Promise<unknown>;
}

/** host:port of a redis[s]:// URL: the server's name in logs, without the credentials the URL may carry. */
function addressOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || DEFAULT_PORT}`;
  } catch {
    return `localhost:${DEFAULT_PORT}`;
  }
}

export class StandaloneBackend implements Backend {
  readonly commands: Commands;
  private readonly client: StandaloneClient;
  private readonly events: Events;
  private readonly links: readonly ServerLink[];

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
    const address = addressOf(url);
    this.links = [{
      address,
      get connected() {
        return client.isReady;
      },
      probe: async () => {
        await client.ping();
        return true;
      },
    }];
  }

  servers(): readonly ServerLink[] {
    return this.links;
  }

  serverOf(): string {
    return this.links[0].address;
  }

  connect(): void {
    // Rejects only when closed or on a reconnect strategy that gives up (ours never does).
    this.client.connect().catch((err: unknown) => this.events.changed(err));
  }

  maintain(): void {
    // node-redis reconnects a single server by itself.
  }

  async close(): Promise<void> {
    // Only a ready connection has writes worth waiting for.
    if (this.client.isReady) await withTimeout(this.client.close(), CLOSE_GRACE_MS, undefined);
    this.client.destroy();
  }
}
