// The SIP counters of a multi-worker siplb, summed for worker 0's admin API (/metrics, the stats
// endpoints, the dashboard): every worker sends a digest of its ProxyStats once a second
// (workers.ts) and worker 0's admin surface reads its own counters plus the others' last digests.
// Counters only: the overload controller's state, the handling-time histogram and everything that
// is not a ProxyStats counter (active calls, connections, heartbeat and HTTP figures) stay worker
// 0's own (docs/architecture.md, "Workers").

import { SIP_TRANSPORTS, type Transport } from '../config/types.ts';
import { ProxyStats } from '../proxy/stats.ts';

/** ProxyStats as plain data for IPC. */
export interface StatsDigest {
  readonly counters: Record<CounterName, number>;
  readonly localReplies: [number, number][];
  readonly dropped: [string, number][];
  readonly requestsByMethod: Record<Transport, [string, number][]>;
  readonly responsesByClass: Record<Transport, number[]>;
  readonly sentToNode: [string, number][];
  readonly receivedFromNode: [string, number][];
}

const COUNTERS = ['requestsIn', 'responsesIn', 'requestsForwarded', 'responsesForwarded', 'unparseable', 'callsStarted', 'invitesReplaced', 'sourcesBlocked'] as const;
type CounterName = (typeof COUNTERS)[number];
const COUNTER_SET: ReadonlySet<string | symbol> = new Set(COUNTERS);
const MAPS = new Set<string | symbol>(['localReplies', 'dropped', 'sentToNode', 'receivedFromNode']);

export function digestOf(s: ProxyStats): StatsDigest {
  const counters = {} as Record<CounterName, number>;
  for (const c of COUNTERS) counters[c] = s[c];
  const requestsByMethod = {} as Record<Transport, [string, number][]>;
  const responsesByClass = {} as Record<Transport, number[]>;
  for (const t of SIP_TRANSPORTS) {
    requestsByMethod[t] = [...s.requestsByMethod[t]];
    responsesByClass[t] = [...s.responsesByClass[t]];
  }
  return {
    counters, localReplies: [...s.localReplies], dropped: [...s.dropped], requestsByMethod, responsesByClass,
    sentToNode: [...s.sentToNode], receivedFromNode: [...s.receivedFromNode],
  };
}

function mergedMap<K>(own: ReadonlyMap<K, number>, others: Iterable<[K, number][]>): Map<K, number> {
  const out = new Map(own);
  for (const entries of others) for (const [k, v] of entries) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/**
 * A ProxyStats whose counters read as `own` plus the digests `others()` returns; writes, methods
 * and everything else go to `own` (the proxy keeps counting there).
 */
export function summedStats(own: ProxyStats, others: () => Iterable<StatsDigest>): ProxyStats {
  const sum: ProxyStats = new Proxy(own, {
    get(target, prop) {
      if (COUNTER_SET.has(prop)) {
        let n = target[prop as CounterName];
        for (const d of others()) n += d.counters[prop as CounterName] ?? 0;
        return n;
      }
      if (MAPS.has(prop)) {
        const key = prop as 'localReplies' | 'dropped' | 'sentToNode' | 'receivedFromNode';
        return mergedMap<unknown>(target[key] as Map<unknown, number>, [...others()].map((d) => d[key] as [unknown, number][]));
      }
      if (prop === 'requestsByMethod') {
        const out = {} as Record<Transport, Map<string, number>>;
        for (const t of SIP_TRANSPORTS) out[t] = mergedMap(target.requestsByMethod[t], [...others()].map((d) => d.requestsByMethod[t] ?? []));
        return out;
      }
      if (prop === 'responsesByClass') {
        const out = {} as Record<Transport, number[]>;
        for (const t of SIP_TRANSPORTS) {
          const row = [...target.responsesByClass[t]];
          for (const d of others()) (d.responsesByClass[t] ?? []).forEach((v, i) => { row[i] = (row[i] ?? 0) + v; });
          out[t] = row;
        }
        return out;
      }
      if (prop === 'toJSON') return () => ProxyStats.prototype.toJSON.call(sum);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return sum;
}
