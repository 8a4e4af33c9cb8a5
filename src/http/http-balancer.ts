// The integrated HTTP balancer: listeners on httpPort (plain) and httpsPort (TLS) on
// externalHost, each request and WebSocket handshake routed to a node (node-choice.ts) and
// forwarded (exchange.ts, upgrade.ts) over per-node keep-alive pools (node-pools.ts), with the
// nodes' HTTP health (http-health.ts) and counters (stats.ts). It reads the cluster only through
// snapshots, as the SIP proxy does; the wiring tells it of registry events (nodeRecovered,
// nodeRemoved).
//
// Client connections are HTTP/1.1 with keep-alive (Node's server). A header section over
// httpMaxHeaderSize is answered 431 by Node's parser before any handler runs; a body over
// maxContentLength 413 (exchange.ts).

import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import { http } from '../core/node-http.ts';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Algorithm } from '../algorithms/algorithm.ts';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import { BindError } from '../core/errors.ts';
import { rateLimit } from '../core/log.ts';
import { Exchange, type ExchangeContext } from './exchange.ts';
import { clientAddress, type ClientSide } from './forward-headers.ts';
import { HttpHealth } from './http-health.ts';
import { answer, answerOnSocket } from './local-answer.ts';
import { HttpNodeChooser } from './node-choice.ts';
import { NodePools } from './node-pools.ts';
import { HttpStats } from './stats.ts';
import { secureServerOptions as secureOptions, type TlsFiles } from '../transport/tls-files.ts';
import { isWebSocketUpgrade, upgrade, type UpgradeContext } from './upgrade.ts';

/** The Config keys the HTTP balancer reads. */
export type HttpConfig = Pick<Config,
  | 'externalHost' | 'httpPort' | 'httpsPort'
  | 'maxContentLength' | 'unavailableHost' | 'httpAffinityKey' | 'requestCheckPattern'
  | 'httpResponseTimeout' | 'httpWebSocketIdleTimeout' | 'httpMaxHeaderSize'
  | 'maxNumberResponsesWithError' | 'maxErrorTime' | 'healthCheckInterval' | 'healthCheckTimeout' | 'healthCheckSuccesses'
  | 'tlsClientAuth'>;

export interface HttpBalancerOptions {
  config: HttpConfig;
  /**
   * The HTTPS listener's certificate and key (tls-files.ts), read by the caller before anything
   * binds; null: no HTTPS listener.
   */
  tls: TlsFiles | null;
  algorithm: Algorithm;
  cluster: () => ClusterSnapshot;
  /** Every node the registry knows, down ones included. */
  knownNodes: () => Iterable<SipNode>;
  log: Logger;
}

export interface HttpListenerAddress {
  readonly host: string;
  readonly port: number;
}

function onSocketError(): void {
  // A client socket's errors (resets) end its exchange through 'close'; nothing to report.
}

export class HttpBalancer {
  readonly stats = new HttpStats();
  readonly health: HttpHealth;
  private readonly opts: HttpBalancerOptions;
  private readonly pools: NodePools;
  private readonly chooser: HttpNodeChooser;
  private readonly ctx: ExchangeContext;
  private readonly upgradeCtx: UpgradeContext;
  private readonly servers: { server: Server; proto: 'http' | 'https'; address: HttpListenerAddress }[] = [];
  private readonly tunnelled = new Set<Duplex>();
  private readonly bugLogGate = rateLimit(10_000);

  constructor(opts: HttpBalancerOptions) {
    this.opts = opts;
    const cfg = opts.config;
    this.pools = new NodePools({ responseTimeoutMs: cfg.httpResponseTimeout });
    this.health = new HttpHealth({
      maxErrors: cfg.maxNumberResponsesWithError, windowMs: cfg.maxErrorTime,
      probeIntervalMs: cfg.healthCheckInterval, probeSuccesses: cfg.healthCheckSuccesses,
      log: opts.log, cluster: opts.cluster,
      probe: (node) => this.probe(node),
    });
    this.chooser = new HttpNodeChooser({
      algorithm: opts.algorithm, health: this.health, stats: this.stats,
      affinityKey: cfg.httpAffinityKey, knownNodes: opts.knownNodes,
    });
    this.ctx = {
      chooser: this.chooser, pools: this.pools, stats: this.stats, health: this.health,
      maxContentLength: cfg.maxContentLength, unavailableHost: cfg.unavailableHost, log: opts.log,
      requestCheck: cfg.requestCheckPattern === null ? null : new RegExp(cfg.requestCheckPattern), cluster: opts.cluster,
    };
    this.upgradeCtx = {
      chooser: this.chooser, stats: this.stats, unavailableHost: cfg.unavailableHost,
      idleTimeoutMs: cfg.httpWebSocketIdleTimeout, log: opts.log, cluster: opts.cluster, tunnelled: this.tunnelled,
    };
  }

  /**
   * New certificate material (SIGHUP): handshakes from now on use it; connections already open
   * keep theirs, so nothing in flight is dropped.
   */
  reloadTls(files: TlsFiles): number {
    let reloaded = 0;
    for (const { server, proto } of this.servers) {
      if (proto !== 'https') continue;
      (server as https.Server).setSecureContext(secureOptions(files, this.opts.config.tlsClientAuth));
      reloaded++;
    }
    return reloaded;
  }

  /** Binds the listeners (BindError); on failure nothing stays open. */
  async start(): Promise<void> {
    const cfg = this.opts.config;
    const tlsFiles = this.opts.tls;
    const common: ServerOptions = {
      maxHeaderSize: cfg.httpMaxHeaderSize,
      // Only WebSocket handshakes become 'upgrade' events; any other Upgrade (h2c) is served as
      // the HTTP/1.1 request it also is, with Upgrade removed towards the node.
      shouldUpgradeCallback: isWebSocketUpgrade,
    };
    try {
      if (cfg.httpPort !== null) await this.listen(http.createServer(common), 'http', cfg.httpPort, 'httpPort');
      if (tlsFiles !== null && cfg.httpsPort !== null) {
        await this.listen(https.createServer({ ...common, ...secureOptions(tlsFiles, cfg.tlsClientAuth) }), 'https', cfg.httpsPort, 'httpsPort');
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    this.health.start();
  }

  /** Where the listeners are bound (port 0 in a configuration becomes the port chosen). */
  addresses(): { http: HttpListenerAddress | null; https: HttpListenerAddress | null } {
    return {
      http: this.servers.find((s) => s.proto === 'http')?.address ?? null,
      https: this.servers.find((s) => s.proto === 'https')?.address ?? null,
    };
  }

  /**
   * The registry reports the node anew (added, re-registered with a new session, or its state
   * back to active): it is back in new HTTP sessions, with a clean error count.
   */
  nodeRecovered(nodeId: string, why: string): void {
    this.health.recovered(nodeId, why);
  }

  /** The node left the cluster: its connections close once idle, its health and counters go. */
  nodeRemoved(nodeId: string): void {
    this.pools.retire(nodeId);
    this.health.forget(nodeId);
    this.stats.forget(nodeId);
  }

  async close(): Promise<void> {
    this.health.close();
    const servers = this.servers.splice(0);
    for (const s of servers) s.server.closeAllConnections();
    for (const socket of this.tunnelled) socket.destroy();
    this.tunnelled.clear();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.server.close(() => resolve()))));
    await this.pools.close();
  }

  private listen(server: Server, proto: 'http' | 'https', port: number, key: string): Promise<void> {
    const host = this.opts.config.externalHost;
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.request(req, res, proto, false);
    server.on('request', onRequest);
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.request(req, res, proto, true));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, proto));
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new BindError(`cannot bind ${proto.toUpperCase()} ${host}:${port} (${key}): ${err.message}`));
      server.once('error', onError);
      server.listen({ host, port, backlog: 1024 }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.opts.log.warn({ err: err.message, proto }, 'HTTP listener error'));
        const bound = server.address();
        this.servers.push({ server, proto, address: { host, port: typeof bound === 'object' && bound !== null ? bound.port : port } });
        resolve();
      });
    });
  }

  /** Every request enters here; a bug in its handling is a 500 and a (rate-limited) log line, never a crash. */
  private request(req: IncomingMessage, res: ServerResponse, proto: 'http' | 'https', expectContinue: boolean): void {
    try {
      new Exchange(this.ctx, req, res, clientAddress(req.socket.remoteAddress), proto).start(expectContinue);
    } catch (err) {
      this.stats.local.internalErrors++;
      if (this.bugLogGate()) this.opts.log.error({ err, method: req.method, url: req.url }, 'internal error in the HTTP balancer (logged at most every 10 s)');
      try {
        answer(res, 500, true);
      } catch {
        res.destroy();
      }
    }
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, proto: 'http' | 'https'): void {
    // The server no longer watches an upgraded socket: a reset must not become an uncaught error.
    socket.on('error', onSocketError);
    try {
      const client: ClientSide = { ip: clientAddress(req.socket.remoteAddress), proto };
      upgrade(this.upgradeCtx, req, socket, head, client);
    } catch (err) {
      this.stats.local.internalErrors++;
      if (this.bugLogGate()) this.opts.log.error({ err, url: req.url }, 'internal error in the WebSocket handshake (logged at most every 10 s)');
      answerOnSocket(socket, 500);
    }
  }

  /** One HTTP probe of a node that is out (http-health.ts): `OPTIONS /` answered below 500. */
  private async probe(node: SipNode): Promise<boolean> {
    const target = node.http;
    if (target === undefined) return false;
    const timeout = this.opts.config.healthCheckTimeout;
    try {
      return (await this.pools.get(node).probe(timeout)) < 500;
    } catch {
      return false;
    }
  }
}

