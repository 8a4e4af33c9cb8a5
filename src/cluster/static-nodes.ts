// Nodes listed in the `nodes=` key. They are alive from start-up; health checks (a later part of
// the cluster module) may take them out. Host names are resolved once, before anything binds.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { StaticNodeSpec, Transport } from '../config/types.ts';
import { ConfigError } from '../core/errors.ts';
import { nodeId, type SipNode } from './node.ts';

export async function resolveStaticNodes(specs: readonly StaticNodeSpec[]): Promise<SipNode[]> {
  // One node per ip:port; `host:5080;transport=udp` and `host:5080;transport=tcp` are one node.
  const merged = new Map<string, { ip: string; ports: Partial<Record<Transport, number>>; weight: number }>();
  for (const spec of specs) {
    let ip = spec.host;
    if (isIP(ip) === 0) {
      try {
        ip = (await lookup(spec.host)).address;
      } catch (err) {
        throw new ConfigError('nodes', `${spec.host}:${spec.port}`, `cannot resolve host: ${(err as Error).message}`);
      }
    }
    const key = nodeId(ip, spec.port);
    const entry = merged.get(key) ?? { ip, ports: {}, weight: spec.weight };
    entry.ports[spec.transport] = spec.port;
    merged.set(key, entry);
  }
  return [...merged.entries()].map(([id, e]) => ({ id, ip: e.ip, ports: e.ports, weight: e.weight }));
}
