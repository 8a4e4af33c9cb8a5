// Cluster views and algorithm answers, as the balancer tests build and read them.

import type { TestContext } from 'node:test';
import { pino } from 'pino';
import type { Algorithm, AlgorithmContext, HttpPickRequest, PickResult } from '../../src/algorithms/algorithm.ts';
import { hashKey, rendezvous } from '../../src/algorithms/hashing.ts';
import type { LoadView } from '../../src/cluster/call-tracker.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import type { SipMessage } from '../../src/sip/message.ts';
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

/** The node of an answer that must not wait (the in-memory store never makes a pick or repick wait). */
export function syncNode(r: PickResult): SipNode | null {
  if (r instanceof Promise) throw new Error('a memory store never makes a pick wait');
  return r;
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

/** An algorithm built by `build` from algorithmContext(cfg, parts), closed with its store when the test ends. */
export function algorithmFor<A extends Algorithm>(t: TestContext, build: (ctx: AlgorithmContext) => A, cfg: Partial<Config> = {},
  parts: { store?: StateStore; loads?: LoadView } = {}): A {
  const ctx = algorithmContext(cfg, parts);
  const a = build(ctx);
  t.after(async () => {
    a.close();
    await ctx.store.close();
  });
  return a;
}

/** Node `n` of test subnet 10.0.`subnet`.0/24, UDP port 5080. */
export function subnetNode(subnet: number, n: number, weight = 1): SipNode {
  return { id: `10.0.${subnet}.${n}:5080`, ip: `10.0.${subnet}.${n}`, ports: { udp: 5080 }, weight };
}

/** The node id an algorithm picks for `msg` (keyed by its own Call-ID), from a client; it must not wait. */
export function pickId(a: Pick<Algorithm, 'pick'>, c: ClusterSnapshot, msg: SipMessage, newCall: boolean): string | null {
  return syncId(a.pick({ msg, callId: msg.callId, newCall, src: CLIENT }, c));
}

/** The first `count` Call-IDs `${prefix}-i@host` whose key ranks `first` highest among `among`. */
export function callIdsRanking(first: SipNode, among: SipNode[], count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const callId = `${prefix}-${i}@host`;
    if (rendezvous(hashKey(callId), among) === first) out.push(callId);
  }
  return out;
}
