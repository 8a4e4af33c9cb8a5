// Wires one running balancer: sockets per side and transport, the cluster view, the algorithm
// and the proxy. Everything that can fail on configuration fails before the first bind.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Algorithm } from '../algorithms/algorithm.ts';
import { CallTracker } from '../cluster/call-tracker.ts';
import { builtInEntry, createAlgorithm } from '../algorithms/catalog.ts';
import { RegistrySync } from '../cluster/node-registry-sync.ts';
import { MemoryStateStore } from '../state/memory-store.ts';
import type { StateStore } from '../state/store.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import { ActiveHealthCheck } from '../cluster/active-health.ts';
import { HeartbeatServer } from '../cluster/heartbeat-server.ts';
import { PassiveHealth } from '../cluster/passive-health.ts';
import { NodeRegistry } from '../cluster/node-registry.ts';
import { resolveStaticNodes } from '../cluster/static-nodes.ts';
import type { Config, Transport } from '../config/types.ts';
import { LocalAddresses, type Side } from '../proxy/local-addresses.ts';
import { SipProxy } from '../proxy/proxy.ts';
import { ProxyStats } from '../proxy/stats.ts';
import { Resolver } from '../transport/resolver.ts';
import { TcpEndpoint } from '../transport/tcp.ts';
import type { Inbound, Outbound } from '../transport/types.ts';
import { rateLimit } from '../core/log.ts';
import { DEFAULT_HEARTBEAT_PORT } from '../heartbeat/protocol.ts';
import { UdpEndpoint } from '../transport/udp.ts';

export interface RunningBalancer {
  readonly stats: ProxyStats;
  readonly algorithm: Algorithm;
  readonly store: StateStore;
  readonly calls: CallTracker;
  /** This process among the balancers sharing a store. */
  readonly balancerId: string;
  readonly cluster: () => ClusterSnapshot;
  readonly registry: NodeRegistry;
  readonly health: ActiveHealthCheck;
  /** Port of the heartbeat endpoint, or null when it could not be opened (default port busy). */
  readonly heartbeatPort: number | null;
  close(): Promise<void>;
}

/** Calls counts and registered nodes are exchanged through the store this often (at most). */
const SHARE_INTERVAL_MS = 1000;

async function createStore(cfg: Config, log: Logger): Promise<StateStore> {
  if (cfg.stateStore === 'memory') return new MemoryStateStore();
  // Loaded only when used: the Redis client costs memory a memory-only balancer should not pay.
  const { RedisStateStore } = await import('../state/redis/store.ts');
  return new RedisStateStore({
    url: cfg.redisUrl, cluster: cfg.redisCluster, keyPrefix: cfg.redisKeyPrefix, readTimeoutMs: cfg.redisReadTimeout, log,
  });
}

export async function startBalancer(cfg: Config, log: Logger): Promise<RunningBalancer> {
  const nodes = await resolveStaticNodes(cfg.nodes);
  const balancerId = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  const store = await createStore(cfg, log);
  const calls = new CallTracker(cfg.callIdAffinityMaxTimeInCache * 1000, cfg.callIdAffinityMaxEntries);
  let algorithm: Algorithm;
  try {
    algorithm = await createAlgorithm({ config: cfg, store, loads: calls, log });
  } catch (err) {
    calls.close();
    await store.close();
    throw err;
  }
  if (builtInEntry(cfg.algorithmClass)?.weighted === false && cfg.nodes.some((n) => n.weight !== 1)) {
    log.warn(`algorithm ${algorithm.name} ignores node weights; use algorithmClass=wrr, least-calls or a hash algorithm to honour them`);
  }
  await store.start();
  if (store.kind === 'redis') {
    log.info({ store: cfg.redisCluster.length > 0 ? 'redis-cluster' : 'redis', available: store.available, balancerId }, 'shared state store');
  }
  calls.share(store.calls, balancerId, SHARE_INTERVAL_MS);
  const registry = new NodeRegistry({
    nodeTimeoutMs: cfg.nodeTimeout, extraServerNodes: cfg.extraServerNodes,
    rampUpPeriodMs: cfg.trafficRampupCyclePeriod, rampUpPercent: cfg.trafficPercentageIncrease, log,
  });
  registry.addStatic(nodes);
  const passiveHealth = new PassiveHealth(registry, {
    errorStatuses: cfg.responsesStatusCodeNodeRemoval, maxErrors: cfg.maxNumberResponsesWithError, windowMs: cfg.maxErrorTime,
  });
  registry.onEvent((e) => {
    if (e.type === 'removed' || e.type === 'replaced') passiveHealth.forget(e.nodeId);
    const snap = registry.snapshot();
    if (e.type === 'removed') algorithm.nodeRemoved?.(e.nodeId, snap);
    else if (e.type === 'added' || e.type === 'replaced') {
      const n = snap.get(e.nodeId);
      if (n !== undefined) algorithm.nodeAdded?.(n, snap);
    }
  });
  const sync = new RegistrySync(registry, store.nodes, {
    balancerId, nodeTimeoutMs: cfg.nodeTimeout, intervalMs: Math.min(SHARE_INTERVAL_MS, Math.max(100, Math.floor(cfg.nodeTimeout / 8))), log,
  });
  store.onAvailable(() => { void sync.tick(); });
  const addresses = new LocalAddresses(cfg);
  const stats = new ProxyStats();
  if (cfg.viaSecret === null && cfg.useIpLoadBalancerAddressInViaHeaders && store.kind === 'memory') {
    log.warn('useIpLoadBalancerAddressInViaHeaders=true without viaSecret: responses routed through another balancer will be dropped; set the same viaSecret on every balancer');
  }
  // Balancers sharing a store share the branch secret too, so any of them accepts the others'
  // responses and a restarted one still accepts responses to what it forwarded before.
  const secret = cfg.viaSecret ?? await store.sharedSecret(randomBytes(18).toString('base64url'));

  const udp: Partial<Record<Side, UdpEndpoint>> = {};
  const tcp: Partial<Record<Side, TcpEndpoint>> = {};
  const out: Outbound = {
    send(side: Side, transport: Transport, ip: string, port: number, data: Buffer, fallbackPort?: number): void {
      if (transport === 'udp') {
        const ep = udp[side] ?? udp.external;
        if (ep === undefined) stats.countDrop('no-udp-socket');
        else ep.send(ip, port, data);
      } else {
        const ep = tcp[side] ?? tcp.external;
        if (ep === undefined) stats.countDrop('no-tcp-socket');
        else ep.send(ip, port, data, fallbackPort);
      }
    },
  };
  const cluster = (): ClusterSnapshot => registry.snapshot();
  const proxy = new SipProxy({ addresses, cluster, algorithm, out, resolver: new Resolver(), log, stats, secret, passiveHealth, calls });
  const internalErrorLogGate = rateLimit(10_000);
  const onMessage = (data: Buffer, src: Inbound): void => {
    try {
      proxy.onMessage(data, src);
    } catch (err) {
      // The proxy is written not to throw on input; if it ever does, the message is lost, the
      // process is not.
      stats.countDrop('internal-error');
      if (internalErrorLogGate()) {
        log.error({ err, from: `${src.ip}:${src.port}`, message: data.toString('latin1', 0, Math.min(data.length, 2048)), count: stats.dropped.get('internal-error') }, 'internal error while handling a SIP message (logged at most every 10 s)');
      }
    }
  };

  const releaseState = async (): Promise<void> => {
    sync.close();
    calls.close();
    algorithm.close();
    await store.close();
  };
  const closeEndpoints = (): Promise<unknown> =>
    Promise.all([...Object.values(udp), ...Object.values(tcp)].map((e) => e.close().catch(() => undefined)));

  const plans: { side: Side; host: string; port: number; transports: Transport[] }[] = [
    { side: 'external', host: cfg.externalHost, port: cfg.externalPort, transports: cfg.externalTransports },
  ];
  if (cfg.internalPort !== null) plans.push({ side: 'internal', host: cfg.internalHost, port: cfg.internalPort, transports: cfg.internalTransports });
  try {
    for (const p of plans) {
      if (p.transports.includes('udp')) {
        const ep = new UdpEndpoint(p.side, p.host, log, cfg.maxMessageSize, onMessage);
        udp[p.side] = ep;
        await ep.bind(p.host, p.port);
      }
      if (p.transports.includes('tcp')) {
        const ep = new TcpEndpoint(p.side, log, cfg.maxMessageSize, onMessage);
        tcp[p.side] = ep;
        await ep.listen(p.host, p.port);
      }
    }
  } catch (err) {
    await closeEndpoints();
    await releaseState();
    throw err;
  }

  // Node registration. An unset heartbeatPort is best effort: several balancers on one host
  // must not fail because the default port is taken.
  const heartbeat = new HeartbeatServer(registry, log);
  let heartbeatPort: number | null = cfg.heartbeatPort ?? DEFAULT_HEARTBEAT_PORT;
  try {
    await heartbeat.listen(cfg.internalHost, heartbeatPort);
    heartbeatPort = heartbeat.address().port;
  } catch (err) {
    if (cfg.heartbeatPort !== null) {
      await closeEndpoints();
      await releaseState();
      throw err;
    }
    log.warn({ err: (err as Error).message }, `heartbeat port ${DEFAULT_HEARTBEAT_PORT} is busy: running without node registration (set heartbeatPort to choose another)`);
    heartbeatPort = null;
  }
  const health = new ActiveHealthCheck(registry, passiveHealth, {
    intervalMs: cfg.healthCheckInterval, timeoutMs: cfg.healthCheckTimeout,
    failures: cfg.healthCheckFailures, successes: cfg.healthCheckSuccesses,
    bindHost: cfg.internalHost, log,
  });
  health.start();
  sync.start();
  const membership = setInterval(() => {
    registry.expire();
    registry.rampUpTick();
  }, cfg.heartbeatInterval);
  membership.unref();

  return {
    stats,
    algorithm,
    store,
    calls,
    balancerId,
    cluster,
    registry,
    health,
    heartbeatPort,
    async close(): Promise<void> {
      clearInterval(membership);
      health.close();
      await closeEndpoints();
      if (heartbeatPort !== null) await heartbeat.close();
      await releaseState();
    },
  };
}
