// Nodes that need no heartbeat: those listed in the `nodes=` key and, with
// performanceTestingMode, every extraServerNodes entry (Restcomm registers those as active nodes
// that never expire, reachable over UDP and TCP on the entry's port, 5060 when it has none, so a
// load test can run against plain SIP servers). They are alive from start-up; health checks may
// take them out. Host names are resolved once, before anything binds.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { HostPort, StaticNodeSpec, Transport } from '../config/types.ts';
import { ConfigError } from '../core/errors.ts';
import { nodeId, type HttpTarget, type SipNode } from './node.ts';

/** Restcomm's port for an extraServerNodes entry without one. */
export const EXTRA_SERVER_DEFAULT_PORT = 5060;

/** The static node specs performanceTestingMode makes of extraServerNodes: UDP and TCP on one port. */
export function performanceTestingNodes(extraServerNodes: readonly HostPort[]): StaticNodeSpec[] {
  const out: StaticNodeSpec[] = [];
  for (const e of extraServerNodes) {
    const port = e.port ?? EXTRA_SERVER_DEFAULT_PORT;
    for (const transport of ['udp', 'tcp'] as const) out.push({ host: e.host, port, transport, weight: 1 });
  }
  return out;
}

/**
 * The static nodes: `specs` (from `nodes=`) and, when given, the extraServerNodes entries that
 * performanceTestingMode turns into nodes. An entry naming the same ip:port as a `nodes=` entry
 * adds its transports to that node (whose weight stays).
 */
export async function resolveStaticNodes(specs: readonly StaticNodeSpec[], performanceNodes: readonly HostPort[] = []): Promise<SipNode[]> {
  // One node per ip:port; `host:5080;transport=udp` and `host:5080;transport=tcp` are one node.
  const merged = new Map<string, { ip: string; ports: Partial<Record<Transport, number>>; weight: number; http?: HttpTarget }>();
  const all: [StaticNodeSpec, string][] = [
    ...specs.map((s): [StaticNodeSpec, string] => [s, 'nodes']),
    ...performanceTestingNodes(performanceNodes).map((s): [StaticNodeSpec, string] => [s, 'extraServerNodes']),
  ];
  // A name is looked up once: the UDP and TCP specs of one entry must land on one address even
  // when the name has several (or DNS rotates them).
  const resolved = new Map<string, string>();
  for (const [spec, key] of all) {
    let ip = resolved.get(spec.host) ?? spec.host;
    if (isIP(ip) === 0) {
      try {
        ip = (await lookup(spec.host)).address;
      } catch (err) {
        throw new ConfigError(key, `${spec.host}:${spec.port}`, `cannot resolve host: ${(err as Error).message}`);
      }
      resolved.set(spec.host, ip);
    }
    const id = nodeId(ip, spec.port);
    const entry = merged.get(id) ?? { ip, ports: {}, weight: spec.weight };
    entry.ports[spec.transport] = spec.port;
    entry.http ??= spec.http;
    merged.set(id, entry);
  }
  return [...merged.entries()].map(([id, e]) => ({ id, ip: e.ip, ports: e.ports, weight: e.weight, ...(e.http === undefined ? {} : { http: e.http }) }));
}
