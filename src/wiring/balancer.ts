// The composition root: builds one running balancer from a Config, lowest layer first (state
// store, cluster membership, algorithm, proxy, transports, the HTTP balancer, heartbeat
// endpoint, health checks), and closes it in the reverse order. Everything that can fail on
// configuration fails before the first bind; a part that fails to start closes what was started
// before it. A reload (reload.ts) later hands new settings to the parts built here.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Algorithm } from '../algorithms/algorithm.ts';
import { createAlgorithm } from '../algorithms/catalog.ts';
import { ActiveHealthCheck } from '../cluster/active-health.ts';
import { CallTracker } from '../cluster/call-tracker.ts';
import { HeartbeatServer, type HeartbeatCounters } from '../cluster/heartbeat-server.ts';
import { NodeRegistry } from '../cluster/node-registry.ts';
import { AdminActionSync, RegistrySync } from '../cluster/node-registry-sync.ts';
import { PassiveHealth } from '../cluster/passive-health.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import { resolveStaticNodes } from '../cluster/static-nodes.ts';
import { isOnePortMode, sidePorts, sidePortsV6 } from '../config/ports.ts';
import { SIP_TRANSPORTS, type Config } from '../config/types.ts';
import { DEFAULT_HEARTBEAT_PORT } from '../heartbeat/protocol.ts';
import type { HttpBalancer } from '../http/http-balancer.ts';
import { readTlsFiles, type TlsFiles } from '../transport/tls-files.ts';
import type { AdminTarget } from '../admin/target.ts';
import type { AdminServer } from '../admin/admin-server.ts';
import type { LogLevel } from '../core/log.ts';
import { startMemoryTrim } from '../core/memory-trim.ts';
import { branchMacFallbackReason } from '../proxy/branch.ts';
import { LocalAddresses } from '../proxy/local-addresses.ts';
import type { NodePins } from '../proxy/node-pins.ts';
import { proxyPolicy } from '../proxy/policy.ts';
import { warmUp } from '../proxy/warm-up.ts';
import { SipProxy } from '../proxy/proxy.ts';
import { ProxyStats } from '../proxy/stats.ts';
import { TRANSACTION_TIMEOUT_MS } from '../sip/timers.ts';
import { formatHost } from '../sip/uri.ts';
import { MemoryStateStore } from '../state/memory-store.ts';
import type { PinRecord, StateStore } from '../state/store.ts';
import { TransportRouter, type Listener } from '../transport/router.ts';
import { UdpBacklogReader } from '../transport/udp-backlog.ts';
import {
  passiveHealthOptions, Reloader, shareIntervalMs, warnIgnoredWeights, warnUnusableNodeTransports, weightsIgnoredBy,
  type ReloadResult,
} from './reload.ts';

export interface RunningBalancer {
  /** The running configuration: the start one, or the last one a reload applied. */
  readonly config: Config;
  readonly stats: ProxyStats;
  readonly algorithm: Algorithm;
  readonly store: StateStore;
  readonly calls: CallTracker;
  /** This process among the balancers sharing a store. */
  readonly balancerId: string;
  readonly cluster: () => ClusterSnapshot;
  readonly registry: NodeRegistry;
  readonly health: ActiveHealthCheck;
  readonly transports: TransportRouter;
  /** Port of the heartbeat endpoint, or null when it could not be opened (default port busy). */
  readonly heartbeatPort: number | null;
  /** The heartbeat endpoint's counters, or null when it could not be opened. */
  readonly heartbeat: HeartbeatCounters | null;
  /** The HTTP balancer, or null when neither httpPort nor httpsPort is set. */
  readonly http: HttpBalancer | null;
  /**
   * Re-reads tlsCertFile / tlsKeyFile / tlsCaFile for the TLS listeners (SIGHUP). Returns how many
   * listeners took them; throws ConfigError naming the key when a file is bad, and then the
   * listeners keep what they had.
   */
  reloadTls(): number;
  /**
   * Re-reads the configuration file (POST /api/v1/reload, SIGHUP) and applies what can change
   * without new sockets, the TLS files included (reload.ts); a bad file, or one that changes a key
   * needing a restart, changes nothing and the result says why. Never rejects.
   */
  reload(): Promise<ReloadResult>;
  /** Port of the admin API, or null when it could not be opened (default port busy). */
  readonly apiPort: number | null;
  /**
   * Graceful stop: new calls from clients get 503 while the calls in progress go on, until none
   * is left (and a second has passed for their last messages) or shutdownTimeout ms; then
   * everything closes. Idempotent: a second call returns the same promise.
   */
  gracefulStop(reason: string): Promise<void>;
  /** Called when the admin API asks for a stop (/lbstop, POST /api/v1/stop); the CLI exits after it. */
  onStopRequest(listener: (reason: string) => void): void;
  close(): Promise<void>;
}

/** Where the admin API listens unless apiPort says otherwise (Restcomm's statisticPort). */
export const DEFAULT_API_PORT = 2006;
/** After the last call ended, a graceful stop waits this long for its stray messages (an ACK, a retransmitted BYE). */
const STOP_LINGER_MS = 1000;
/**
 * Behind a sprayer, a stopping balancer that has forwarded nothing for this long has been taken
 * out (the advisor's own OPTIONS are answered here, not forwarded): its dialogs go on elsewhere.
 */
const STOP_IDLE_MS = 2000;

/** What startBalancer needs besides the Config. */
export interface StartOptions {
  /** The configuration file, shown by the admin API. */
  readonly configPath?: string | null;
  /** One of several workers sharing the SIP ports (workers > 1, workers.ts); absent: the only process. */
  readonly worker?: WorkerPlace;
}

/**
 * What a worker of a multi-worker siplb is told at start. Worker 0 runs everything; the others
 * only the SIP path (listeners, proxy, passive health): no heartbeat endpoint, active health
 * checks, HTTP balancer or admin API, whose ports cannot be shared meaningfully.
 */
export interface WorkerPlace {
  readonly index: number;
  readonly count: number;
  /** The branch (and flow token) key of every worker when viaSecret is unset: a response may come back to any of them. */
  readonly secret: string;
  /** Told of the registry once its listeners are wired and before any SIP listener opens (the shared node view attaches here). */
  readonly registryReady?: (registry: NodeRegistry) => void;
  /** Worker 0: the counters its admin API shows (all workers' sums, workers.ts) instead of its own. */
  readonly adminStats?: (own: ProxyStats) => ProxyStats;
  /** Told of the proxy's pins (/lbnoderegex) before any SIP listener opens: worker 0's are relayed to the others. */
  readonly pinsReady?: (pins: NodePins) => void;
  /** Worker 0: a reload through its admin API was applied; the other workers read the file again too. */
  readonly reloaded?: () => void;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * The PEM files of the TLS listeners (HTTPS, SIP TLS and WSS), read and checked (ConfigError
 * naming the key), when the configuration has both; the loader has made sure a SIP TLS or WSS
 * port comes with them, and warned that HTTPS stays off without them.
 */
function tlsFiles(cfg: Config): TlsFiles | null {
  if (cfg.tlsCertFile === null || cfg.tlsKeyFile === null) return null;
  return readTlsFiles(cfg.tlsCertFile, cfg.tlsKeyFile, cfg.tlsCaFile);
}

/** Calls counts and registered nodes are exchanged through the store this often (at most). */
const SHARE_INTERVAL_MS = 1000;

/** Close functions of the parts started so far, run last-started first. */
class Closers {
  private readonly fns: (() => unknown)[] = [];

  add(fn: () => unknown): void {
    this.fns.push(fn);
  }

  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch {
        // Closing is best effort: one part that fails to close must not keep the others open.
      }
    }
    this.fns.length = 0;
  }
}

async function createStore(cfg: Config, log: Logger): Promise<StateStore> {
  if (cfg.stateStore === 'memory') return new MemoryStateStore();
  // Loaded only when used: the Redis client costs memory a memory-only balancer should not pay.
  const { RedisStateStore } = await import('../state/redis/store.ts');
  return new RedisStateStore({
    url: cfg.redisUrl, cluster: cfg.redisCluster, keyPrefix: cfg.redisKeyPrefix, readTimeoutMs: cfg.redisReadTimeout, log,
  });
}

/**
 * The endpoints the configuration asks for: each transport with a port on each side that has its
 * own ports (config/ports.ts), on the side's address and, with ipv6Host, on its IPv6 address.
 */
function listeners(cfg: Config): Listener[] {
  const out: Listener[] = [];
  const sides = isOnePortMode(cfg) ? (['external'] as const) : (['external', 'internal'] as const);
  for (const side of sides) {
    const ports = sidePorts(cfg, side);
    const host = side === 'external' ? cfg.externalHost : cfg.internalHost;
    const v6Ports = sidePortsV6(cfg, side);
    const v6Host = side === 'external' ? cfg.externalIpv6Host : cfg.internalIpv6Host;
    for (const transport of SIP_TRANSPORTS) {
      const port = ports[transport];
      if (port !== null) out.push({ side, transport, host, port });
      const v6Port = v6Ports?.[transport] ?? null;
      if (v6Host !== null && v6Port !== null && v6Host !== host) out.push({ side, transport, host: v6Host, port: v6Port });
    }
  }
  return out;
}

export async function startBalancer(cfg: Config, log: Logger, opts: StartOptions = {}): Promise<RunningBalancer> {
  const closers = new Closers();
  try {
    return await start(cfg, log, closers, opts);
  } catch (err) {
    await closers.run();
    throw err;
  }
}

async function start(cfg: Config, log: Logger, closers: Closers, opts: StartOptions): Promise<RunningBalancer> {
  const startedAt = Date.now();
  const nodes = await resolveStaticNodes(cfg.nodes, cfg.performanceTestingMode ? cfg.extraServerNodes : []);
  const tls = tlsFiles(cfg);
  const balancerId = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;

  // State, and the active-call counts algorithms balance on.
  const store = await createStore(cfg, log);
  closers.add(() => store.close());
  const calls = new CallTracker(cfg.callIdAffinityMaxTimeInCache * 1000, cfg.callIdAffinityMaxEntries);
  closers.add(() => calls.close());
  const algorithm = await createAlgorithm({ config: cfg, store, loads: calls, log });
  closers.add(() => algorithm.close());
  warnIgnoredWeights(cfg, algorithm.name, log);
  await store.start();
  if (store.kind === 'redis') {
    log.info({ store: cfg.redisCluster.length > 0 ? 'redis-cluster' : 'redis', available: store.available, health: store.health, balancerId }, 'shared state store');
  }
  calls.share(store.calls, balancerId, SHARE_INTERVAL_MS);

  // Cluster membership: the registry, what takes nodes out, and sharing registrations.
  const registry = new NodeRegistry({
    nodeTimeoutMs: cfg.nodeTimeout, extraServerNodes: cfg.extraServerNodes,
    rampUpPeriodMs: cfg.trafficRampupCyclePeriod, rampUpPercent: cfg.trafficPercentageIncrease, log,
  });
  registry.addStatic(nodes);
  const passiveHealth = new PassiveHealth(registry, passiveHealthOptions(cfg));
  closers.add(() => passiveHealth.close());
  // Set once the data path exists; registry events can come before (static nodes, shared registrations).
  let proxyForEvents: SipProxy | null = null;
  let statsForEvents: ProxyStats | null = null;
  let httpForEvents: HttpBalancer | null = null;
  registry.onEvent((e) => {
    if (e.type === 'removed' || e.type === 'replaced' || e.type === 'added') passiveHealth.forget(e.nodeId);
    if (e.type === 'removed') statsForEvents?.forgetNode(e.nodeId);
    const snap = registry.snapshot();
    if (e.type === 'removed') algorithm.nodeRemoved?.(e.nodeId, snap);
    // An updated node (new weight, new nodes= entry) is a new SipNode for the same id: what an
    // algorithm that keeps per-node state needs is what it gets for a re-registration.
    else if (e.type === 'added' || e.type === 'replaced' || e.type === 'updated') {
      const n = snap.get(e.nodeId);
      if (n !== undefined) algorithm.nodeAdded?.(n, snap);
    }
    // INVITEs the node never answered move on, as the clients' retransmissions would have made
    // them.
    if (e.type === 'removed' || (e.type === 'state' && (snap.stateOf(e.nodeId) === 'down' || registry.get(e.nodeId)?.passiveCause === 'silence'))) {
      const moved = proxyForEvents?.replaceUnansweredInvites(e.nodeId) ?? 0;
      if (moved > 0) log.warn({ node: e.nodeId, invites: moved }, 'INVITEs the node had not answered placed again');
    }
    // The HTTP side's passive health lets a node back in the ways SIP's does: the node is new or
    // re-registered, or the registry has it active again (a good probe, undrained).
    if (httpForEvents !== null) {
      if (e.type === 'removed') httpForEvents.nodeRemoved(e.nodeId);
      else if (e.type === 'added' || e.type === 'replaced' || (e.type === 'state' && snap.stateOf(e.nodeId) === 'active')) {
        httpForEvents.nodeRecovered(e.nodeId, `${e.type}${e.detail === undefined ? '' : ` (${e.detail})`}`);
      }
    }
  });
  const sync = new RegistrySync(registry, store.nodes, {
    balancerId, nodeTimeoutMs: cfg.nodeTimeout, intervalMs: shareIntervalMs(cfg.nodeTimeout, SHARE_INTERVAL_MS), log,
  });
  closers.add(() => sync.close());
  store.onAvailable(() => { void sync.tick(); });
  // Workers other than 0 run only the SIP path; all of them see worker 0's node view.
  const follower = (opts.worker?.index ?? 0) > 0;
  opts.worker?.registryReady?.(registry);

  // The SIP data path: transports in, proxy, transports out.
  const stats = new ProxyStats();
  statsForEvents = stats;
  if (cfg.viaSecret === null && cfg.useIpLoadBalancerAddressInViaHeaders && store.kind === 'memory') {
    log.warn('useIpLoadBalancerAddressInViaHeaders=true without viaSecret: responses routed through another balancer will be dropped; set the same viaSecret on every balancer');
  }
  // Balancers sharing a store share the branch secret too, so any of them accepts the others'
  // responses and a restarted one still accepts responses to what it forwarded before.
  const secret = cfg.viaSecret ?? await store.sharedSecret(opts.worker?.secret ?? randomBytes(18).toString('base64url'));
  const cluster = (): ClusterSnapshot => registry.snapshot();
  const transports = new TransportRouter({
    log, maxMessageSize: cfg.maxMessageSize, udpReceiveBuffer: cfg.udpReceiveBuffer, udpNativeIo: cfg.udpNativeIo, udpReadDelay: cfg.udpReadDelay, maxConnectionsPerSource: cfg.maxConnectionsPerSource,
    streams: {
      maxConnections: cfg.maxTcpConnections, firstMessageTimeoutMs: cfg.tcpFirstMessageTimeout,
      slowSenderTimeoutMs: cfg.tcpMessageTimeout, idleTimeoutMs: cfg.tcpIdleTimeout,
    },
    // Called only once an endpoint listens, by which time the proxy exists.
    onMessage: (data, src) => proxy.onMessage(data, src),
    onDrop: (reason) => stats.countDrop(reason),
    ...(tls === null ? {} : { tls: { files: tls, clientAuth: cfg.tlsClientAuth, handshakeTimeoutMs: cfg.tlsHandshakeTimeout } }),
    ws: { allowedOrigins: cfg.wsAllowedOrigins, pingIntervalMs: cfg.wsPingInterval },
    ...(cfg.connectedNodeSockets ? {
      nodeSockets: {
        isNode: (ip: string, port: number) => registry.snapshot().nodeAt(ip, port) !== undefined,
        onUnreachable: (ip: string, port: number) => {
          const node = registry.snapshot().nodeAt(ip, port);
          if (node !== undefined) passiveHealth.unreachable(node.id, `ICMP port unreachable from ${ip}:${port}`);
        },
      },
    } : {}),
  });
  const addresses = new LocalAddresses(cfg);
  const backlog = new UdpBacklogReader(() => transports.udpSockets());
  const proxy = new SipProxy({
    addresses, cluster, algorithm, out: transports, log, stats, secret, passiveHealth, calls,
    policy: proxyPolicy(cfg), connections: transports.connections, affinityKey: cfg.sipHeaderAffinityKey,
    receiveBacklog: () => backlog.read(),
  });
  warnUnusableNodeTransports(cfg.nodes, cfg, addresses, log);
  proxyForEvents = proxy;
  opts.worker?.pinsReady?.(proxy.pins);
  // Restcomm's pins (/lbnoderegex) are shared like drains and weights: the latest action on a
  // pattern wins on every balancer of the store. Other workers take worker 0's.
  if (!follower) {
    const pins = proxy.pins;
    const pinSync = new AdminActionSync<string | null, PinRecord>({
      states: () => pins.states(),
      record: (pattern, st, by) => ({ pattern, nodeId: st.value, at: st.at, by }),
      keyOf: (rec) => rec.pattern,
      valueOf: (rec) => rec.nodeId,
      isUndo: (nodeId) => nodeId === null,
      write: (rec) => store.nodes.setPin(rec),
      remove: (pattern) => store.nodes.removePin(pattern),
      list: () => store.nodes.pins(),
      merge: (rec) => pins.merge(rec),
      forget: (pattern) => pins.forgetShared(pattern),
      prune: (before) => pins.prune(before),
    }, balancerId, Date.now);
    sync.attach(pinSync);
    pins.onChange(() => pinSync.publish());
  }
  closers.add(() => proxy.close());
  closers.add(() => transports.close());
  // Compiled before the first real message, not during the first few thousand (warm-up.ts).
  const warm = warmUp(cfg, cfg.warmUpCalls);
  if (warm.calls > 0) log.info({ calls: warm.calls, forwarded: warm.forwarded, ms: Math.round(warm.ms) }, 'SIP path warmed up');
  for (const l of listeners(cfg)) await transports.listen(l);

  // The HTTP balancer beside the SIP proxy, on the same cluster view and algorithm. Loaded only
  // when it has a listener to open: the HTTP modules and the servers cost a SIP-only balancer nothing.
  let httpBalancer: HttpBalancer | null = null;
  if (!follower && (cfg.httpPort !== null || (cfg.httpsPort !== null && tls !== null))) {
    const { HttpBalancer: Balancer } = await import('../http/http-balancer.ts');
    const created = new Balancer({ config: cfg, tls: cfg.httpsPort === null ? null : tls, algorithm, cluster, knownNodes: () => registry.list().map((e) => e.node), log });
    closers.add(() => created.close());
    await created.start();
    httpBalancer = created;
    httpForEvents = created;
  }

  // Node registration. An unset heartbeatPort is best effort: several balancers on one host
  // must not fail because the default port is taken.
  const heartbeat = new HeartbeatServer(registry, log, { token: cfg.heartbeatToken });
  let heartbeatPort: number | null = cfg.heartbeatPort ?? DEFAULT_HEARTBEAT_PORT;
  let heartbeatOpen = false;
  if (!follower) try {
    await heartbeat.listen(cfg.internalHost, heartbeatPort);
    heartbeatPort = heartbeat.address().port;
    heartbeatOpen = true;
    closers.add(() => heartbeat.close());
  } catch (err) {
    if (cfg.heartbeatPort !== null) throw err;
    log.warn({ err: (err as Error).message }, `heartbeat port ${DEFAULT_HEARTBEAT_PORT} is busy: running without node registration (set heartbeatPort to choose another)`);
    heartbeatPort = null;
  }
  if (follower) heartbeatPort = null;
  const isWildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
  if (heartbeatOpen && cfg.heartbeatToken === null) {
    // Anyone who reaches this port can register a node and receive calls: say where it is.
    const where = `${formatHost(cfg.internalHost)}:${heartbeatPort}`;
    const fields = { heartbeat: where, internalHost: cfg.internalHost };
    if (isWildcard(cfg.internalHost)) log.warn(fields, `heartbeat registrations are unauthenticated and reachable on every interface (${where}): set heartbeatToken, or internalHost to a private address`);
    else log.info(fields, `heartbeat registrations are unauthenticated, on the internal address only (${where}); set heartbeatToken to require a token`);
  }

  // Timers last: nothing above can fail any more.
  const health = new ActiveHealthCheck(registry, passiveHealth, {
    intervalMs: cfg.healthCheckInterval, timeoutMs: cfg.healthCheckTimeout,
    failures: cfg.healthCheckFailures, successes: cfg.healthCheckSuccesses,
    bindHost: cfg.internalHost, log,
  });
  if (!follower) health.start();
  closers.add(() => health.close());
  // Workers other than 0 take registered nodes from worker 0's view (workers.ts), not from the
  // store: with the memory store theirs is empty, and syncing with it would forget every one.
  if (!follower) sync.start();
  // Registrations expire, ramp-up advances, and static nodes a reload removed leave once no
  // balancer counts a call on them any more (and their last transactions can no longer
  // retransmit). Restarted by a reload that changes heartbeatInterval.
  let membership: NodeJS.Timeout | null = null;
  const setMembershipInterval = (ms: number): void => {
    if (membership !== null) clearInterval(membership);
    membership = setInterval(() => {
      registry.expire();
      registry.rampUpTick();
      registry.removeRetired((id) => calls.activeCalls(id) > 0, TRANSACTION_TIMEOUT_MS);
    }, ms);
    membership.unref();
  };
  setMembershipInterval(cfg.heartbeatInterval);
  closers.add(() => {
    if (membership !== null) clearInterval(membership);
    membership = null;
  });

  // Graceful stop, whoever asks for it (a signal through the CLI, the admin API).
  let stopped: Promise<void> | null = null;
  const stopListeners: ((reason: string) => void)[] = [];

  // Reload: the configuration file again, into the parts above; never into parts closing.
  let closing = false;
  closers.add(() => { closing = true; });
  const reloader = new Reloader(opts.configPath ?? null, cfg, nodes, {
    registry, passiveHealth, health, proxy, algorithm, sync, addresses, log, http: httpBalancer !== null,
    reloadTls: (files) => transports.reloadTls(files) + (httpBalancer === null ? 0 : httpBalancer.reloadTls(files)),
    setMembershipInterval: (ms) => { if (stopped === null && !closing) setMembershipInterval(ms); },
    setHeartbeatToken: (token) => heartbeat.setToken(token),
    setUdpReadDelay: (ms) => transports.setUdpReadDelay(ms),
    isStopping: () => stopped !== null || closing,
  }, SHARE_INTERVAL_MS);

  const gracefulStop = (reason: string): Promise<void> => {
    if (stopped !== null) return stopped;
    const announceMs = reloader.config.shutdownAnnounceTime;
    if (announceMs <= 0) {
      stopped = refuseAndDrain(reason, false);
      return stopped;
    }
    // Behind a sprayer: first make its advisor take this balancer out (OPTIONS get 503) while new
    // calls that still arrive are carried, so that no caller sees the 503 of a stop.
    proxy.announceStop();
    log.warn({ reason, calls: calls.size, shutdownAnnounceTimeMs: announceMs }, 'graceful stop: OPTIONS get 503 so that the sprayer moves new calls elsewhere; calls still taken meanwhile');
    stopped = new Promise<void>((resolve) => {
      setTimeout(() => { refuseAndDrain(reason, true).then(resolve, resolve); }, announceMs);
    });
    return stopped;
  };

  /**
   * The stop proper: new calls get 503, calls in progress go on until none is left (plus
   * STOP_LINGER_MS for their last messages) or shutdownTimeout. `quietEnds`: behind a sprayer,
   * the other balancers carry this one's dialogs through the shared store once the sprayer sends
   * it nothing more, so STOP_IDLE_MS without anything to forward ends the stop too.
   */
  const refuseAndDrain = (reason: string, quietEnds: boolean): Promise<void> => {
    proxy.setStopping(true);
    const shutdownTimeout = reloader.config.shutdownTimeout;
    log.warn({ reason, calls: calls.size, shutdownTimeoutMs: shutdownTimeout }, 'graceful stop: new calls get 503; calls in progress go on');
    // No call in progress: nothing to wait for.
    if (calls.size === 0) return closers.run();
    return new Promise<void>((resolve) => {
      const deadline = Date.now() + shutdownTimeout;
      let quietSince: number | null = null;
      let forwarded = stats.requestsForwarded + stats.responsesForwarded;
      let idleSince = Date.now();
      const tick = setInterval(() => {
        const now = Date.now();
        quietSince = calls.size === 0 ? (quietSince ?? now) : null;
        const moved = stats.requestsForwarded + stats.responsesForwarded;
        if (moved !== forwarded) {
          forwarded = moved;
          idleSince = now;
        }
        const idle = quietEnds && now - idleSince >= STOP_IDLE_MS;
        if (now >= deadline || idle || (quietSince !== null && now - quietSince >= STOP_LINGER_MS)) {
          clearInterval(tick);
          log.info({ callsLeft: calls.size, waitedMs: now - (deadline - shutdownTimeout), idle }, 'graceful stop: closing');
          closers.run().then(resolve, resolve);
        }
      }, 100);
    });
  };

  // The admin API last: it shows all of the above.
  const weightsIgnored = weightsIgnoredBy(cfg, algorithm.name);
  const adminTarget: AdminTarget = {
    // Read on every use: after a reload the admin API shows, and checks credentials against, the new file.
    get config() {
      return reloader.config;
    },
    configPath: opts.configPath ?? null, balancerId, version: packageVersion(), startedAt,
    stats: opts.worker?.adminStats?.(stats) ?? stats, registry, calls, store, health, transports, http: httpBalancer, log,
    heartbeat: heartbeatOpen ? heartbeat : null,
    isStopping: () => stopped !== null,
    stop: (reason) => {
      if (stopListeners.length === 0) void gracefulStop(reason);
      else for (const l of stopListeners) l(reason);
    },
    logLevel: () => log.level as LogLevel,
    setLogLevel: (level) => {
      log.level = level;
      log.warn({ level }, 'log level changed through the admin API');
    },
    reload: () => reloader.reload().then((r) => {
      if (r.ok) opts.worker?.reloaded?.();
      return r;
    }),
    ...(weightsIgnored === undefined ? {} : { weightsIgnored }),
  };
  const admin = follower ? null : await startAdmin(cfg, adminTarget, proxy, log);
  if (admin !== null) closers.add(() => admin.close());

  // The first trim comes a second after start-up, so what starting alone touched goes at once
  // (core/memory-trim.ts).
  const trim = startMemoryTrim(cfg.memoryTrimInterval, log);
  if (trim !== null) closers.add(() => trim.close());
  const macFallback = branchMacFallbackReason();
  if (macFallback !== null) log.info(`branch MACs in JavaScript (native/build/mac.node unusable, more CPU per message): ${macFallback}`);
  return {
    get config() {
      return reloader.config;
    },
    apiPort: admin?.address().port ?? null,
    gracefulStop,
    onStopRequest: (listener) => { stopListeners.push(listener); },
    stats, algorithm, store, calls, balancerId, cluster, registry, health, transports, heartbeatPort, http: httpBalancer,
    heartbeat: heartbeatOpen ? heartbeat : null,
    reloadTls: () => {
      const files = tlsFiles(reloader.config);
      if (files === null) return 0;
      return transports.reloadTls(files) + (httpBalancer === null ? 0 : httpBalancer.reloadTls(files));
    },
    reload: () => reloader.reload(),
    close: () => closers.run(),
  };
}

/**
 * The admin API on apiPort: loopback only without apiToken. Loaded only when it listens. An unset
 * apiPort is best effort, as the heartbeat port: several balancers on one host must not fail
 * because 2006 is taken.
 */
async function startAdmin(cfg: Config, target: AdminTarget, proxy: SipProxy, log: Logger): Promise<AdminServer | null> {
  const [{ AdminServer: Server }, { Metrics }, { Dashboard }, { dashboardSource }, { NodeViews }] = await Promise.all([
    import('../admin/admin-server.ts'), import('../admin/metrics.ts'), import('../admin/dashboard.ts'), import('../admin/dashboard-source.ts'),
    import('../admin/node-views.ts'),
  ]);
  const metrics = new Metrics(target);
  // One view of the nodes (one registry listener) for the API and the dashboard.
  const nodes = new NodeViews(target);
  const dashboard = new Dashboard(dashboardSource(target, nodes));
  const server = new Server(target, {
    host: cfg.apiToken === null ? '127.0.0.1' : cfg.host, port: cfg.apiPort ?? DEFAULT_API_PORT, token: cfg.apiToken,
    metrics, dashboard, nodes, pins: { set: (regex, nodeId) => proxy.pins.set(regex, nodeId), remove: (regex) => proxy.pins.remove(regex) },
  });
  try {
    await server.listen();
    return server;
  } catch (err) {
    await server.close();
    if (cfg.apiPort !== null) throw err;
    log.warn({ err: (err as Error).message }, `admin API port ${DEFAULT_API_PORT} is busy: running without the admin API (set apiPort to choose another)`);
    return null;
  }
}
