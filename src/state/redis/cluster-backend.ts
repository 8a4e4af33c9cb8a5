// The Backend for a Redis Cluster. Keys are spread over the masters by slot, so each master is a
// server of its own for the tier: one that is down costs the keys of its slots, not the store.
// node-redis (v6) already behaves per node once connected: a dead master's client reconnects on
// its own and, with the offline queue disabled, refuses commands for its slots at once while the
// others keep answering. What it does not do, and this class does:
// - retry a failed discovery (connect() rejects and is not retried by node-redis);
// - start without a master: by default discovery waits for every master's first connection,
//   which never comes while one is down. Discovery here only reads the slot layout
//   (minimizeConnections) and maintain() connects every master apart, so one that is down keeps
//   reconnecting in the background while the others serve;
// - tell which master holds a key (serverOf), so the tier refuses commands for the slots of a
//   master that is not serving instead of leaving them waiting on it (a command for a master
//   still making its first connection would wait for that connection);
// - warn when the cluster is set to refuse every key while one slot is uncovered.

import { createCluster, RedisClient } from 'redis';
import type { Logger } from 'pino';
import type { HostPort } from '../../config/types.ts';
import {
  CLOSE_GRACE_MS, CONNECT_TIMEOUT_MS, QUEUE_MAX, errorText, reconnectDelayMs, withTimeout,
  type Backend, type Client, type Commands, type Events, type ServerLink,
} from './connection.ts';

const DEFAULT_PORT = 6379;
const SLOTS = 16384;
/**
 * A node connection with nothing read or written for this long is closed and made again. The
 * tier probes every connected master each second, so only a node that stopped answering (paused,
 * wedged) reaches it; without it, discovery through such a seed, and a master's first connection
 * to it, would wait until it answers (node-redis bounds the TCP connect, not the handshake or the
 * CLUSTER SLOTS that follow).
 */
const SOCKET_IDLE_LIMIT_MS = 5000;

/** What this class uses of a node-redis node client. */
interface NodeClient {
  readonly isReady: boolean;
  sendCommand(args: string[]): Promise<unknown>;
}

/** What this class uses of a node-redis cluster node (`cluster.masters[i]`, `cluster.slots[i].master`). */
interface MasterNode {
  readonly address: string;
  readonly client?: NodeClient;
}

interface ClusterClient extends Client {
  readonly masters: readonly MasterNode[];
  readonly slots: ReadonlyArray<{ readonly master: MasterNode } | undefined>;
  nodeClient(node: MasterNode): Promise<unknown>;
}

// CRC16/XMODEM as Redis Cluster uses it (cluster spec, keyHashSlot in cluster.c).
const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  CRC16[i] = c;
}

function crc16(bytes: ArrayLike<number>, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}

/**
 * The slot of a key, as Redis computes it over the key's UTF-8 bytes: only the part between the
 * first `{` and the next `}` when that part is not empty (a hash tag: Call-IDs may carry braces).
 * node-redis has the same function but does not export it.
 */
export function keySlot(key: string): number {
  let ascii = true;
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  let bytes: ArrayLike<number>;
  if (ascii) {
    const codes = new Uint8Array(key.length);
    for (let i = 0; i < key.length; i++) codes[i] = key.charCodeAt(i);
    bytes = codes;
  } else {
    bytes = Buffer.from(key, 'utf8');
  }
  let open = -1;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x7b) {
      open = i;
      break;
    }
  }
  if (open !== -1) {
    for (let i = open + 1; i < bytes.length; i++) {
      if (bytes[i] === 0x7d) {
        if (i > open + 1) return crc16(bytes, open + 1, i) & (SLOTS - 1);
        break;
      }
    }
  }
  return crc16(bytes, 0, bytes.length) & (SLOTS - 1);
}

/** A master serves keys while its CLUSTER INFO says so; `fail` means it refuses them all (CLUSTERDOWN). */
function servesKeys(info: unknown): boolean {
  const text = typeof info === 'string' ? info : info instanceof Buffer ? info.toString('latin1') : String(info);
  return /^cluster_state:ok\s*$/m.test(text);
}

export class ClusterBackend implements Backend {
  readonly commands: Commands;
  private readonly cluster: ClusterClient;
  private readonly events: Events;
  private readonly log: Logger;
  private readonly links = new WeakMap<MasterNode, ServerLink>();
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private coverageChecked = false;

  constructor(url: string, seeds: HostPort[], events: Events, log: Logger) {
    this.events = events;
    this.log = log;
    // rootNodes only seed discovery; credentials and TLS must be in `defaults` to reach every node.
    const parsed = RedisClient.parseURL(url);
    const tls = parsed.socket !== undefined && 'tls' in parsed.socket && parsed.socket.tls === true;
    const common = { connectTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_IDLE_LIMIT_MS, reconnectStrategy: reconnectDelayMs };
    const socket = tls ? { tls: true as const, ...common } : common;
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
      // Discovery reads the layout only; maintain() connects the masters (see the header).
      minimizeConnections: true,
      commandOptions: { timeout: 0 },
    });
    // node-redis names the node of every node event: the tier keeps each master's state apart.
    const addressOf = (info: unknown): string | undefined => {
      if (typeof info !== 'object' || info === null) return undefined;
      const { host, port } = info as { host?: unknown; port?: unknown };
      return typeof host === 'string' && typeof port === 'number' ? `${host}:${port}` : undefined;
    };
    cluster.on('node-error', (err: unknown, info: unknown) => events.changed(err, addressOf(info)));
    cluster.on('node-ready', (info: unknown) => events.changed(undefined, addressOf(info)));
    cluster.on('node-disconnect', (info: unknown) => events.changed(undefined, addressOf(info)));
    // Discovery reports each unreachable seed here even when the next seed answers, and a topology
    // refresh its failures; only a discovery that failed on every seed (connect() rejects) means
    // "not reachable".
    cluster.on('error', (err: unknown) => {
      events.noted(err);
      events.changed();
    });
    cluster.on('connect', () => events.changed());
    cluster.on('disconnect', () => events.changed());
    this.cluster = cluster;
    this.commands = cluster;
  }

  servers(): readonly ServerLink[] {
    if (!this.cluster.isReady) return [];
    return this.cluster.masters.map((m) => this.link(m));
  }

  serverOf(key: string): string | undefined {
    if (!this.cluster.isReady) return undefined;
    return this.cluster.slots[keySlot(key)]?.master.address;
  }

  private link(m: MasterNode): ServerLink {
    let link = this.links.get(m);
    if (link === undefined) {
      link = {
        address: m.address,
        get connected() {
          return m.client?.isReady === true;
        },
        probe: async () => {
          const client = m.client;
          if (client === undefined || !client.isReady) throw new Error(`${m.address} not connected`);
          return servesKeys(await client.sendCommand(['CLUSTER', 'INFO']));
        },
      };
      this.links.set(m, link);
    }
    return link;
  }

  connect(): void {
    if (this.closed) return;
    this.retryTimer = undefined;
    // Node connections reconnect on their own once made; a failed discovery does not, so it is
    // retried here with the same backoff.
    this.cluster.connect().then(
      () => {
        this.retries = 0;
        this.maintain();
        this.events.changed();
      },
      (err: unknown) => {
        this.events.changed(err);
        if (!this.closed) this.retryTimer = setTimeout(() => this.connect(), reconnectDelayMs(this.retries++));
      },
    );
  }

  /**
   * Gives every master without a client one (after discovery, after a topology change). The
   * client keeps reconnecting until the master answers; nodeClient() hands out the same pending
   * connection while one is under way, so calling this every second makes nothing twice.
   */
  maintain(): void {
    if (this.closed || !this.cluster.isReady) return;
    for (const m of this.cluster.masters) {
      if (m.client !== undefined) continue;
      try {
        this.cluster.nodeClient(m).catch((err: unknown) => this.events.changed(err, m.address));
      } catch (err) {
        this.events.changed(err, m.address);
      }
    }
    this.checkCoverage();
  }

  /**
   * With `cluster-require-full-coverage yes` (Redis's default) every master refuses every key
   * once one slot is uncovered, so one master down stops the whole store: said once at start-up
   * when a master can tell (CONFIG may be disabled, as on managed services; then nothing is said
   * here, and the tier's warning when every master refuses keys still is).
   */
  private checkCoverage(): void {
    if (this.coverageChecked) return;
    const m = this.cluster.masters.find((n) => n.client?.isReady === true);
    if (m?.client === undefined) return;
    this.coverageChecked = true;
    m.client.sendCommand(['CONFIG', 'GET', 'cluster-require-full-coverage']).then(
      (reply) => {
        const value = Array.isArray(reply) ? reply[1] : typeof reply === 'object' && reply !== null
          ? (reply as Record<string, unknown>)['cluster-require-full-coverage'] : undefined;
        if (String(value) !== 'yes') return;
        this.log.warn(
          { master: m.address },
          'redis cluster has cluster-require-full-coverage yes: one master down makes every master refuse every key; set cluster-require-full-coverage no on every master for partial availability',
        );
      },
      (err: unknown) => this.log.debug({ err: errorText(err) }, 'redis cluster: CONFIG GET cluster-require-full-coverage refused'),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.cluster.isReady) await withTimeout(this.cluster.close(), CLOSE_GRACE_MS, undefined);
    this.cluster.destroy();
  }
}
