// Micro-benchmark of the balancing algorithms alone: CPU nanoseconds per pick for a new call
// (distinct Call-IDs, so every pick places a key) and for an in-call request of a call already
// placed, at 2, 16 and 128 nodes. Messages are parsed before timing, the store is the in-memory
// one, every algorithm is built through createAlgorithm exactly as the balancer builds it. Runs
// in a few seconds (bounded: 3 x 2 x --picks picks per line).
//
//   node bench/algorithms-micro.ts [--picks 50000]

import { pino } from 'pino';
import type { Algorithm, AlgorithmContext } from '../src/algorithms/algorithm.ts';
import { BUILT_IN, createAlgorithm } from '../src/algorithms/catalog.ts';
import type { SipNode } from '../src/cluster/node.ts';
import { ClusterSnapshot } from '../src/cluster/snapshot.ts';
import { defaultConfig } from '../src/config/load.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../src/sip/message.ts';
import { MemoryStateStore } from '../src/state/memory-store.ts';
import { CLIENT } from '../test/helpers/cluster.ts';

const argPicks = process.argv.indexOf('--picks');
const PICKS = argPicks === -1 ? 50_000 : Number(process.argv[argPicks + 1]);
const WARMUP = Math.min(10_000, PICKS);
const NODE_COUNTS = [2, 16, 128];

function message(i: number): SipMessage {
  const m = parseSipMessage(Buffer.from(
    `INVITE sip:user${i}@192.0.2.1 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-${i}\r\n` +
    `From: "Caller" <sip:caller${i % 997}@example.org>;tag=f${i}\r\n` +
    `To: <sip:user${i}@example.com>\r\n` +
    `Call-ID: ${i}-bench@192.0.2.10\r\n` +
    'CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n', 'latin1'), true);
  if (isParseFailure(m) || m.error !== null) throw new Error(`bench message ${i} does not parse`);
  return m;
}

const messages: SipMessage[] = Array.from({ length: PICKS }, (_, i) => message(i));

function cluster(n: number): ClusterSnapshot {
  const views = Array.from({ length: n }, (_, i) => {
    const node: SipNode = { id: `10.1.${i >> 8}.${i & 255}:5080`, ip: `10.1.${i >> 8}.${i & 255}`, ports: { udp: 5080 }, weight: 1 };
    return { node, state: 'active' as const };
  });
  return new ClusterSnapshot(views);
}

async function build(short: string): Promise<{ algorithm: Algorithm; store: MemoryStateStore; counts: Map<string, number> }> {
  const store = new MemoryStateStore();
  const counts = new Map<string, number>();
  const ctx: AlgorithmContext = {
    // user-based keys by the To user, as it is meant to be run; the others by their defaults.
    config: { ...defaultConfig(), algorithmClass: short, sipHeaderAffinityKey: short === 'user' ? 'To' : 'Call-ID', subclusterMap: [] },
    store,
    loads: { activeCalls: (id) => counts.get(id) ?? 0 },
    log: pino({ level: 'silent' }),
  };
  return { algorithm: await createAlgorithm(ctx), store, counts };
}

/** CPU ns per pick over `count` messages; newCall picks count as active calls on their node. */
function run(a: Algorithm, c: ClusterSnapshot, counts: Map<string, number>, count: number, newCall: boolean): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const msg = messages[i];
    const r = a.pick({ msg, callId: msg.callId, newCall, src: CLIENT }, c);
    if (r === null || r instanceof Promise) throw new Error(`${a.name}: no synchronous node for ${msg.callId}`);
    if (newCall) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
  }
  const cpu = process.cpuUsage(t0);
  return ((cpu.user + cpu.system) * 1000) / count;
}

const REPEATS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Median over REPEATS fresh instances, each after a warm-up instance of its own. */
async function measure(short: string, nodes: number): Promise<{ newNs: number; inCallNs: number }> {
  const c = cluster(nodes);
  const newNs: number[] = [];
  const inCallNs: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const warm = await build(short);
    run(warm.algorithm, c, warm.counts, WARMUP, true);
    run(warm.algorithm, c, warm.counts, WARMUP, false);
    warm.algorithm.close();
    await warm.store.close();

    const { algorithm, store, counts } = await build(short);
    newNs.push(run(algorithm, c, counts, PICKS, true));
    inCallNs.push(run(algorithm, c, counts, PICKS, false));
    algorithm.close();
    await store.close();
  }
  return { newNs: median(newNs), inCallNs: median(inCallNs) };
}

const started = process.hrtime.bigint();
console.log(`CPU ns per pick, median of ${REPEATS} runs of ${PICKS} picks (each after ${WARMUP} warm-up picks)`);
console.log(`${'algorithm'.padEnd(16)} ${'nodes'.padStart(5)} ${'new call'.padStart(10)} ${'in call'.padStart(10)}`);
const results: { algorithm: string; nodes: number; newCallNs: number; inCallNs: number }[] = [];
for (const entry of BUILT_IN) {
  for (const nodes of NODE_COUNTS) {
    const r = await measure(entry.short, nodes);
    console.log(`${entry.short.padEnd(16)} ${String(nodes).padStart(5)} ${r.newNs.toFixed(0).padStart(10)} ${r.inCallNs.toFixed(0).padStart(10)}`);
    results.push({ algorithm: entry.short, nodes, newCallNs: Math.round(r.newNs), inCallNs: Math.round(r.inCallNs) });
  }
}
console.log(`total ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`);
console.log(JSON.stringify({ bench: 'algorithms-micro', picks: PICKS, results }));
