// Wires one running balancer: sockets per side and transport, the cluster view, the algorithm
// and the proxy. Everything that can fail on configuration fails before the first bind.

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Algorithm } from './balancer/algorithm.ts';
import { createAlgorithm } from './balancer/registry.ts';
import { ClusterSnapshot } from './cluster/snapshot.ts';
import { resolveStaticNodes } from './cluster/static-nodes.ts';
import type { Config, Transport } from './config/types.ts';
import { LocalAddresses, type Side } from './proxy/local-addresses.ts';
import { SipProxy } from './proxy/proxy.ts';
import { ProxyStats } from './proxy/stats.ts';
import { Resolver } from './transport/resolver.ts';
import { TcpEndpoint } from './transport/tcp.ts';
import type { Inbound, Outbound } from './transport/types.ts';
import { rateLimit } from './log.ts';
import { UdpEndpoint } from './transport/udp.ts';

export interface RunningBalancer {
  readonly stats: ProxyStats;
  readonly algorithm: Algorithm;
  readonly cluster: () => ClusterSnapshot;
  close(): Promise<void>;
}

export async function startBalancer(cfg: Config, log: Logger): Promise<RunningBalancer> {
  const algorithm = createAlgorithm(cfg);
  const nodes = await resolveStaticNodes(cfg.nodes);
  const snapshot = new ClusterSnapshot(nodes.map((node) => ({ node, state: 'active' as const })), cfg.extraServerNodes);
  const addresses = new LocalAddresses(cfg);
  const stats = new ProxyStats();
  if (cfg.viaSecret === null && cfg.useIpLoadBalancerAddressInViaHeaders) {
    log.warn('useIpLoadBalancerAddressInViaHeaders=true without viaSecret: responses routed through another balancer will be dropped; set the same viaSecret on every balancer');
  }
  const secret = cfg.viaSecret ?? randomBytes(18).toString('base64url');

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
  const proxy = new SipProxy({ addresses, cluster: () => snapshot, algorithm, out, resolver: new Resolver(), log, stats, secret });
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
    await Promise.all([...Object.values(udp), ...Object.values(tcp)].map((e) => e.close().catch(() => undefined)));
    algorithm.close();
    throw err;
  }

  return {
    stats,
    algorithm,
    cluster: () => snapshot,
    async close(): Promise<void> {
      await Promise.all([...Object.values(udp), ...Object.values(tcp)].map((e) => e.close()));
      algorithm.close();
    },
  };
}
