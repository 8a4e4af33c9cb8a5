// The Backend for a single Redis server: node-redis reconnects on its own, so this only sets the
// client up to fail fast while disconnected and turns its events into readiness changes.

import { createClient } from 'redis';
import {
  CLOSE_GRACE_MS, CONNECT_TIMEOUT_MS, QUEUE_MAX, reconnectDelayMs, withTimeout,
  type Backend, type Client, type Commands, type Events,
} from './connection.ts';

interface StandaloneClient extends Client {
  ping(): Promise<unknown>;
}

export class StandaloneBackend implements Backend {
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
