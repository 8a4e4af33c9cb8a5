// A SipProxy wired to a capturing Outbound instead of sockets, as the proxy and parser tests
// drive it: every message the proxy sends is recorded with side, transport, address and
// connection. Topology: balancer 10.0.0.1:5060 (internal port 5065 when two ports are
// configured), nodes A = 10.0.0.11:5080 and B = 10.0.0.12:5080.

import { after } from 'node:test';
import { isIP } from 'node:net';
import { pino } from 'pino';
import type { Algorithm } from '../../src/algorithms/algorithm.ts';
import { CallIdAffinity } from '../../src/algorithms/callid-affinity.ts';
import type { CallTracker } from '../../src/cluster/call-tracker.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot, type NodeState } from '../../src/cluster/snapshot.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config, HostPort, Transport } from '../../src/config/types.ts';
import { LocalAddresses } from '../../src/proxy/local-addresses.ts';
import { proxyPolicy } from '../../src/proxy/policy.ts';
import { SipProxy } from '../../src/proxy/proxy.ts';
import { ProxyStats } from '../../src/proxy/stats.ts';
import type { StreamConnection } from '../../src/transport/connections.ts';
import type { Destination, Inbound, Side } from '../../src/transport/types.ts';
import { algorithmContext } from './cluster.ts';

export const LB_IP = '10.0.0.1';
export const NODE_A: SipNode = { id: '10.0.0.11:5080', ip: '10.0.0.11', ports: { udp: 5080, tcp: 5080 }, weight: 1 };
export const NODE_B: SipNode = { id: '10.0.0.12:5080', ip: '10.0.0.12', ports: { udp: 5080, tcp: 5080 }, weight: 1 };

export interface Sent {
  side: Side;
  transport: Transport;
  ip: string;
  port: number;
  /** The connection named by the proxy (a reply to what came on it), if any. */
  connectionId: number | undefined;
  data: Buffer;
}

export interface HarnessOptions {
  nodes?: SipNode[];
  states?: Record<string, NodeState>;
  internalPort?: number | null;
  /** Further configuration (IP load balancer addresses...). */
  config?: Partial<Config>;
  extraServerNodes?: HostPort[];
  passiveHealth?: { fromNode(nodeId: string, status: number): void };
  algorithm?: Algorithm;
  calls?: CallTracker;
  /** The open stream connections flow tokens are looked up in. */
  connections?: { get(id: number): StreamConnection | undefined };
}

export interface Harness {
  proxy: SipProxy;
  sent: Sent[];
  stats: ProxyStats;
  /** Host names the proxy asked to send to: the router would look them up; here they go nowhere. */
  lookups: string[];
  setCluster(nodes: SipNode[], states?: Record<string, NodeState>): void;
  /** Feed one message; returns what the proxy sent because of it. */
  feed(data: Buffer, src: Inbound): Sent[];
}

const algorithms: Algorithm[] = [];
after(() => {
  for (const a of algorithms) a.close();
});

export function snapshot(nodes: SipNode[], states: Record<string, NodeState> = {}, extra: HostPort[] = []): ClusterSnapshot {
  return new ClusterSnapshot(nodes.map((node) => ({ node, state: states[node.id] ?? 'active' })), extra);
}

export function harness(opts: HarnessOptions = {}): Harness {
  // Overload control samples the event loop on a timer: a unit test that keeps the loop busy
  // would see its INVITEs refused at random. Its own tests turn it on.
  const cfg = { ...defaultConfig(), host: LB_IP, externalHost: LB_IP, internalHost: LB_IP, externalPort: 5060, internalPort: opts.internalPort ?? null, overloadControl: false, ...opts.config };
  let cluster = snapshot(opts.nodes ?? [NODE_A, NODE_B], opts.states, opts.extraServerNodes);
  const algorithm = opts.algorithm ?? new CallIdAffinity(algorithmContext());
  algorithms.push(algorithm);
  const sent: Sent[] = [];
  const lookups: string[] = [];
  const stats = new ProxyStats();
  const out = {
    send(dest: Destination, data: Buffer): void {
      if (isIP(dest.host) === 0) lookups.push(dest.host);
      else sent.push({ side: dest.side, transport: dest.transport, ip: dest.host, port: dest.port, connectionId: dest.connectionId, data: Buffer.from(data) });
    },
  };
  const proxy = new SipProxy({
    addresses: new LocalAddresses(cfg),
    cluster: () => cluster,
    algorithm,
    out,
    log: pino({ level: 'silent' }),
    stats,
    secret: 'proxy-test-secret',
    policy: proxyPolicy(cfg),
    passiveHealth: opts.passiveHealth,
    calls: opts.calls,
    connections: opts.connections,
  });
  return {
    proxy, sent, stats, lookups,
    setCluster(nodes, states) { cluster = snapshot(nodes, states); },
    feed(data, src) {
      const before = sent.length;
      proxy.onMessage(data, src);
      return sent.slice(before);
    },
  };
}
