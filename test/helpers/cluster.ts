// Cluster views and algorithm answers, as the balancer tests build and read them.

import { pino } from 'pino';
import type { AlgorithmContext, HttpPickRequest, PickResult } from '../../src/algorithms/algorithm.ts';
import type { LoadView } from '../../src/cluster/call-tracker.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot, type NodeState } from '../../src/cluster/snapshot.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import type { StateStore } from '../../src/state/store.ts';
import type { Inbound } from '../../src/transport/types.ts';

/** A snapshot of these nodes, each active unless `states` says otherwise. */
export function snapshotOf(nodes: readonly SipNode[], states: Record<string, NodeState> = {}): ClusterSnapshot {
  return new ClusterSnapshot(nodes.map((n) => ({ node: n, state: states[n.id] ?? 'active' })));
}

/** The node id of an answer that must not wait (the in-memory store never makes a pick wait). */
export function syncId(r: PickResult): string | null {
  if (r instanceof Promise) throw new Error('a memory store never makes a pick wait');
  return r === null ? null : r.id;
}

/** An HTTP GET for `url` with no headers. */
export function httpGet(url: string): HttpPickRequest {
  return { method: 'GET', url, header: () => undefined, remoteAddress: '192.0.2.1' };
}

/** Where the requests handed to algorithms in these tests come from: a client over UDP. */
export const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5060, connectionId: 0 };

/** What an algorithm is built from here: the defaults with `cfg` over them, an in-memory store, no load unless given. */
export function algorithmContext(cfg: Partial<Config> = {}, parts: { store?: StateStore; loads?: LoadView } = {}): AlgorithmContext {
  return {
    config: { ...defaultConfig(), ...cfg },
    store: parts.store ?? new MemoryStateStore(),
    loads: parts.loads ?? { activeCalls: () => 0 },
    log: pino({ level: 'silent' }),
  };
}
