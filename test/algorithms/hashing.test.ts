// Distribution properties every hashing algorithm must have, checked the same way for plain
// rendezvous, bounded rendezvous and the three algorithms built on it (header hash, persistent
// hash, user-based): an even spread, minimal movement when a node leaves or comes back, shares
// proportional to weight, and bounded load that actually bounds, on placement and (last part) on
// the failover of a dead node's calls through two balancers that agree through one shared store.
// The algorithms are driven with real parsed requests (keys in the Call-ID or the To user) over a
// MemoryStateStore, or the test double of the Redis tier.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Algorithm, AlgorithmContext, LoadView, PickResult } from '../../src/algorithms/algorithm.ts';
import { HeaderConsistentHash } from '../../src/algorithms/header-hash.ts';
import { hashKey, rendezvous, rendezvousBounded } from '../../src/algorithms/hashing.ts';
import { PersistentConsistentHash } from '../../src/algorithms/persistent-hash.ts';
import { UserBased } from '../../src/algorithms/user-based.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot } from '../../src/cluster/snapshot.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import { CLIENT } from '../helpers/cluster.ts';
import { FakeSharedTier } from '../helpers/shared-tier.ts';

const KEYS = 60_000;

function node(n: number, weight = 1): SipNode {
  return { id: `10.0.0.${n}:5060`, ip: `10.0.0.${n}`, ports: { udp: 5060 }, weight };
}

const SIX = [1, 2, 3, 4, 5, 6].map((n) => node(n));
const REMOVED = SIX[2];

function cluster(nodes: readonly SipNode[]): ClusterSnapshot {
  return new ClusterSnapshot(nodes.map((n) => ({ node: n, state: 'active' as const })));
}

/** Key i: Call-ID `call-i@host` and To user `user<i>`. */
function request(i: number): SipMessage {
  const m = parseSipMessage(Buffer.from(
    `INVITE sip:user${i}@example.com SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-${i}\r\n` +
    `From: "Caller" <sip:caller@example.org>;tag=f${i}\r\n` +
    `To: <sip:user${i}@example.com>\r\n` +
    `Call-ID: call-${i}@host\r\n` +
    'CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n', 'latin1'), true);
  if (isParseFailure(m) || m.error !== null) throw new Error(`test request ${i} does not parse`);
  return m;
}

/** Active calls as the picks so far made them: every placement adds one, every move shifts one. */
class CallCounter implements LoadView {
  readonly counts = new Map<string, number>();

  activeCalls(nodeId: string): number {
    return this.counts.get(nodeId) ?? 0;
  }

  add(nodeId: string, delta = 1): void {
    this.counts.set(nodeId, this.activeCalls(nodeId) + delta);
  }

  get total(): number {
    let t = 0;
    for (const v of this.counts.values()) t += v;
    return t;
  }
}

type Placer = (i: number, c: ClusterSnapshot, newCall: boolean) => string | null;

interface Subject {
  name: string;
  /** Keeps assignments: a membership change moves nothing already placed. */
  persistent: boolean;
  /** The plain rendezvous key of request i (what factor 0 must reproduce). */
  keyOf(i: number): string;
  /** hashLoadFactor for the distribution tests. */
  factor: number;
  make(t: TestContext, loads: LoadView, factor: number): Placer;
}

function sync(r: PickResult): string | null {
  if (r instanceof Promise) throw new Error('a memory store never makes a pick wait');
  return r === null ? null : r.id;
}

function algorithmPlacer(t: TestContext, build: (ctx: AlgorithmContext) => { pick: HeaderConsistentHash['pick']; close(): void }, cfg: Partial<Config>, loads: LoadView): Placer {
  const ctx: AlgorithmContext = { config: { ...defaultConfig(), ...cfg }, store: new MemoryStateStore(), loads, log: pino({ level: 'silent' }) };
  const a = build(ctx);
  t.after(() => a.close());
  return (i, c, newCall) => {
    const msg = request(i);
    return sync(a.pick({ msg, callId: msg.callId, newCall, src: CLIENT }, c));
  };
}

const callKey = (i: number): string => `call-${i}@host`;
const userKey = (i: number): string => `user${i}`;

const SUBJECTS: Subject[] = [
  {
    name: 'rendezvous',
    persistent: false,
    keyOf: callKey,
    factor: 0,
    make: () => (i, c) => rendezvous(hashKey(callKey(i)), c.selectable, (n) => c.weightOf(n))?.id ?? null,
  },
  {
    name: 'rendezvousBounded (load = placements)',
    persistent: false,
    keyOf: callKey,
    factor: 0.1,
    make: (_t, loads, factor) => (i, c) => rendezvousBounded(hashKey(callKey(i)), c.selectable, (n) => c.weightOf(n), (n) => loads.activeCalls(n.id), factor)?.id ?? null,
  },
  {
    name: 'header hash (Call-ID)',
    persistent: false,
    keyOf: callKey,
    factor: 0,
    make: (t, loads) => algorithmPlacer(t, (ctx) => new HeaderConsistentHash(ctx), { sipHeaderAffinityKey: 'Call-ID' }, loads),
  },
  {
    name: 'header hash (To user)',
    persistent: false,
    keyOf: userKey,
    factor: 0,
    make: (t, loads) => algorithmPlacer(t, (ctx) => new HeaderConsistentHash(ctx), { sipHeaderAffinityKey: 'To' }, loads),
  },
  ...[0, 0.1].flatMap((factor): Subject[] => [
    {
      name: `persistent hash (Call-ID, hashLoadFactor ${factor})`,
      persistent: true,
      keyOf: callKey,
      factor,
      make: (t, loads, f) => algorithmPlacer(t, (ctx) => new PersistentConsistentHash(ctx), { sipHeaderAffinityKey: 'Call-ID', hashLoadFactor: f }, loads),
    },
    {
      name: `user-based (To user, hashLoadFactor ${factor})`,
      persistent: true,
      keyOf: userKey,
      factor,
      make: (t, loads, f) => algorithmPlacer(t, (ctx) => new UserBased(ctx), { sipHeaderAffinityKey: 'To', hashLoadFactor: f }, loads),
    },
  ]),
];

/** Place keys [from, to) as new calls, counting each placement as an active call. */
function placeAll(place: Placer, c: ClusterSnapshot, loads: CallCounter, from: number, to: number): (string | null)[] {
  const out: (string | null)[] = [];
  for (let i = from; i < to; i++) {
    const id = place(i, c, true);
    if (id !== null) loads.add(id);
    out.push(id);
  }
  return out;
}

function countBy(ids: readonly (string | null)[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) if (id !== null) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

/** Largest |share - expected| / expected over the nodes, with `expected(id)` the expected count. */
function worstDeviation(counts: Map<string, number>, nodes: readonly SipNode[], expected: (n: SipNode) => number): number {
  let worst = 0;
  for (const n of nodes) worst = Math.max(worst, Math.abs((counts.get(n.id) ?? 0) - expected(n)) / expected(n));
  return worst;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

for (const s of SUBJECTS) {
  describe(`distribution: ${s.name}`, () => {
    test('6 nodes, 60,000 keys: each node gets 1/6 within 3 %', (t) => {
      const loads = new CallCounter();
      const ids = placeAll(s.make(t, loads, s.factor), cluster(SIX), loads, 0, KEYS);
      const dev = worstDeviation(countBy(ids), SIX, () => KEYS / 6);
      t.diagnostic(`worst deviation from 1/6: ${pct(dev)}`);
      assert.ok(dev <= 0.03, `worst deviation ${pct(dev)}`);
    });

    // A bounded placement depends on the loads of its moment, not on the key alone, so membership
    // changes can only preserve it when it is written down: the persistent subjects with a factor.
    const pure = s.persistent || s.factor === 0;
    if (pure) test('removing a node moves only its keys, spread evenly; adding it back moves keys only to it', (t) => {
      const loads = new CallCounter();
      const place = s.make(t, loads, s.factor);
      const all = cluster(SIX);
      const before = placeAll(place, all, loads, 0, KEYS);
      const survivors = SIX.filter((n) => n !== REMOVED);
      const without = cluster(survivors);
      // Stateless hashes place again; persistent ones answer the calls' later requests.
      const after = before.map((_, i) => place(i, without, !s.persistent));
      const moved = new Map<string, number>();
      for (let i = 0; i < KEYS; i++) {
        if (before[i] !== REMOVED.id) assert.equal(after[i], before[i], `key ${i} moved off a surviving node`);
        else {
          assert.ok(after[i] !== null && after[i] !== REMOVED.id);
          moved.set(after[i] as string, (moved.get(after[i] as string) ?? 0) + 1);
          loads.add(REMOVED.id, -1);
          loads.add(after[i] as string);
        }
      }
      const counts = countBy(after);
      const mean = KEYS / survivors.length;
      const over = Math.max(...survivors.map((n) => (counts.get(n.id) ?? 0) / mean - 1));
      const orphans = before.filter((id) => id === REMOVED.id).length;
      const spread = worstDeviation(moved, survivors, () => orphans / survivors.length);
      t.diagnostic(`after removal: most loaded survivor ${pct(over)} above the mean; the removed node's ${orphans} keys spread within ${pct(spread)}`);
      assert.ok(over <= 0.1, `a survivor is ${pct(over)} above the mean`);
      assert.ok(spread <= 0.1, `the removed node's keys spread unevenly (${pct(spread)})`);

      const back = after.map((_, i) => place(i, all, s.persistent));
      if (s.persistent) {
        assert.deepEqual(back, after, 'with assignments kept, a node coming back moves nothing already placed');
        const fresh = countBy(placeAll(place, all, loads, KEYS, 2 * KEYS));
        const share = (fresh.get(REMOVED.id) ?? 0) / KEYS;
        t.diagnostic(`the node that came back gets ${pct(share)} of the new keys`);
        if (s.factor === 0) assert.ok(Math.abs(share * 6 - 1) <= 0.03, `the returning node gets ${pct(share)} of new keys`);
        else {
          // Bounded load sends it more than its share until it has caught up with the others.
          assert.ok(share > 1 / 6, `the returning node gets ${pct(share)} of new keys`);
          const bound = Math.ceil((1 + s.factor) * loads.total / 6);
          for (const n of SIX) assert.ok(loads.activeCalls(n.id) <= bound, `${n.id} holds ${loads.activeCalls(n.id)} > ${bound}`);
        }
      } else {
        for (let i = 0; i < KEYS; i++) {
          if (back[i] !== after[i]) assert.equal(back[i], REMOVED.id, `key ${i} moved between old nodes`);
        }
        assert.deepEqual(back, before, 'the node gets back exactly the keys it had');
      }
    });

    test('weights 1, 2, 3: shares proportional to weight within 3 %', (t) => {
      const loads = new CallCounter();
      const weighted = [node(1, 1), node(2, 2), node(3, 3)];
      const ids = placeAll(s.make(t, loads, s.factor), cluster(weighted), loads, 0, KEYS);
      const dev = worstDeviation(countBy(ids), weighted, (n) => (KEYS * n.weight) / 6);
      t.diagnostic(`worst deviation from weight share: ${pct(dev)}`);
      assert.ok(dev <= 0.03, `worst deviation ${pct(dev)}`);
    });
  });
}

describe('bounded load', () => {
  const bounded = SUBJECTS.filter((s) => s.factor > 0);

  for (const s of bounded.filter((x) => x.persistent)) {
    test(`${s.name}: factor 0 is exactly plain rendezvous, whatever the loads`, (t) => {
      const loads = new CallCounter();
      const place = s.make(t, loads, 0);
      const c = cluster(SIX);
      for (let i = 0; i < KEYS; i++) {
        const id = place(i, c, true);
        assert.equal(id, rendezvous(hashKey(s.keyOf(i)), c.selectable)?.id, `key ${i}`);
        if (id !== null) loads.add(id, i % 7); // loads as skewed as they come
      }
    });
  }

  test('rendezvousBounded: factor 0 is exactly plain rendezvous, whatever the loads', () => {
    const loads = new CallCounter();
    const c = cluster(SIX);
    const weightOf = (n: SipNode): number => c.weightOf(n);
    for (let i = 0; i < KEYS; i++) {
      const h = hashKey(callKey(i));
      const id = rendezvousBounded(h, c.selectable, weightOf, (n) => loads.activeCalls(n.id), 0)?.id;
      assert.equal(id, rendezvous(h, c.selectable, weightOf)?.id);
      if (id !== undefined) loads.add(id, i % 7);
    }
  });

  /**
   * Place [from, to) as new calls over `c`; after every placement the node that took it must hold
   * at most ceil((1 + factor) * total / n) calls. Returns the placements and how many broke that.
   */
  function placeBounded(place: Placer, c: ClusterSnapshot, loads: CallCounter, from: number, to: number, factor: number): { ids: string[]; violations: number } {
    const ids: string[] = [];
    let violations = 0;
    const n = c.selectable.length;
    for (let i = from; i < to; i++) {
      const id = place(i, c, true);
      if (id === null) throw new Error('no node');
      ids.push(id);
      loads.add(id);
      let total = 0;
      for (const x of c.selectable) total += loads.activeCalls(x.id);
      if (loads.activeCalls(id) > Math.ceil(((1 + factor) * total) / n)) violations++;
    }
    return { ids, violations };
  }

  for (const s of bounded) {
    test(`${s.name}: factor 0.1 with one of 6 nodes removed, no node ever exceeds ceil(1.1 x mean)`, (t) => {
      const loads = new CallCounter();
      const place = s.make(t, loads, 0.1);
      const first = placeBounded(place, cluster(SIX), loads, 0, KEYS / 2, 0.1);
      assert.equal(first.violations, 0, 'with 6 nodes');
      // The removed node's calls fail over along their plain ranking (the persistent algorithms
      // do it themselves on the calls' next request) and take their load with them.
      const without = cluster(SIX.filter((n) => n !== REMOVED));
      for (let i = 0; i < first.ids.length; i++) {
        if (first.ids[i] !== REMOVED.id) continue;
        const now = s.persistent ? place(i, without, false) : rendezvous(hashKey(s.keyOf(i)), without.selectable)?.id ?? null;
        assert.ok(now !== null && now !== REMOVED.id);
        loads.add(REMOVED.id, -1);
        loads.add(now);
      }
      assert.equal(loads.activeCalls(REMOVED.id), 0);
      const second = placeBounded(place, without, loads, KEYS / 2, KEYS, 0.1);
      assert.equal(second.violations, 0, 'with 5 nodes');
      const mean = loads.total / 5;
      const max = Math.max(...without.selectable.map((n) => loads.activeCalls(n.id)));
      t.diagnostic(`most loaded node ${max}, mean ${mean}, bound ${Math.ceil(1.1 * mean)}`);
      assert.ok(max <= Math.ceil(1.1 * mean));
    });
  }

  test('the same check catches plain rendezvous (factor 0), so it has teeth', (t) => {
    const loads = new CallCounter();
    const rv = SUBJECTS[0].make(t, loads, 0);
    assert.ok(placeBounded(rv, cluster(SIX), loads, 0, KEYS / 2, 0.1).violations > 0);
  });
});

describe('bounded failover across two balancers (hashLoadFactor on a dead node\'s calls)', () => {
  const KEYS_PLACED = 12_000;
  const HOT = SIX[1];
  const FACTOR = 0.1;
  const without = new ClusterSnapshot(SIX.map((n) => ({ node: n, state: n === REMOVED ? 'down' as const : 'active' as const })));
  type Build = (ctx: AlgorithmContext) => Algorithm;
  const subjects: { name: string; build: Build; cfg: Partial<Config> }[] = [
    { name: 'hash (Call-ID)', build: (ctx) => new HeaderConsistentHash(ctx), cfg: { sipHeaderAffinityKey: 'Call-ID' } },
    { name: 'persistent-hash (Call-ID)', build: (ctx) => new PersistentConsistentHash(ctx), cfg: { sipHeaderAffinityKey: 'Call-ID' } },
    { name: 'user (To user)', build: (ctx) => new UserBased(ctx), cfg: { sipHeaderAffinityKey: 'To' } },
  ];

  /** A survivor's cap as the loads stand, ceil((1 + e)(total + 1) w / W) over the survivors (equal weights). */
  function capOf(loads: CallCounter): number {
    let total = 0;
    for (const n of without.selectable) total += loads.activeCalls(n.id);
    return Math.ceil(((1 + FACTOR) * (total + 1)) / without.selectable.length);
  }

  for (const s of subjects) {
    for (const factor of [FACTOR, 0]) {
      test(`${s.name}, hashLoadFactor ${factor}: ${factor > 0 ? 'no survivor above its cap, both balancers agree' : 'unbounded failover breaks the cap (the check has teeth)'}`, async (t) => {
        const tier = new FakeSharedTier();
        const loads = new CallCounter();
        const open = (): Algorithm => {
          const ctx: AlgorithmContext = { config: { ...defaultConfig(), ...s.cfg, hashLoadFactor: factor }, store: tier.store(), loads, log: pino({ level: 'silent' }) };
          const a = s.build(ctx);
          t.after(() => a.close());
          return a;
        };
        const balancers = [open(), open()];
        const onRemoved: number[] = [];
        for (let i = 0; i < KEYS_PLACED; i++) {
          const msg = request(i);
          const n = await balancers[0].pick({ msg, callId: msg.callId, newCall: true, src: CLIENT }, cluster(SIX));
          assert.ok(n !== null);
          loads.add(n.id);
          if (n.id === REMOVED.id) onRemoved.push(i);
        }
        // Other balancers' calls make one survivor hot: past its cap before the failure, and still
        // past it when the dead node's calls have been spread (the cap grows with them).
        loads.add(HOT.id, capOf(loads) - loads.activeCalls(HOT.id) + 500);
        let above = 0;
        let worst = 0;
        const heirs = new Map<number, string>();
        for (const [k, i] of onRemoved.entries()) {
          const msg = request(i);
          const cap = new Map(without.selectable.map((n) => [n.id, capOf(loads)]));
          // The dead node's calls show up on either balancer.
          const heir = await balancers[k % 2].repick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, REMOVED.id, without);
          assert.ok(heir !== null && heir.id !== REMOVED.id);
          heirs.set(i, heir.id);
          loads.add(REMOVED.id, -1);
          loads.add(heir.id);
          const over = loads.activeCalls(heir.id) - (cap.get(heir.id) as number);
          if (over > 0) above++;
          worst = Math.max(worst, over);
        }
        let agreed = 0;
        for (const [k, i] of onRemoved.entries()) {
          const msg = request(i);
          const other = await balancers[(k + 1) % 2].repick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, REMOVED.id, without);
          if (other?.id === heirs.get(i)) agreed++;
        }
        const max = Math.max(...without.selectable.map((n) => loads.activeCalls(n.id)));
        console.log(`${s.name}, hashLoadFactor ${factor}: ${onRemoved.length} calls failed over, ${above} moves left a survivor above its cap (worst by ${worst}), most loaded ${max} against a final cap of ${capOf(loads)}; the other balancer agreed on ${agreed}`);
        if (factor > 0) {
          assert.equal(above, 0);
          assert.equal(agreed, onRemoved.length);
        } else {
          assert.ok(above > 0);
        }
      });
    }

    test(`${s.name}: group failover sends every call of the dead node to one survivor on both balancers, hashLoadFactor or not`, async (t) => {
      const tier = new FakeSharedTier();
      const loads = new CallCounter();
      const heirs = new Set<string>();
      const balancers = [0, 1].map(() => {
        const ctx: AlgorithmContext = { config: { ...defaultConfig(), ...s.cfg, hashLoadFactor: FACTOR, callIdAffinityGroupFailover: true, userAffinityGroupFailover: true }, store: tier.store(), loads, log: pino({ level: 'silent' }) };
        const a = s.build(ctx);
        t.after(() => a.close());
        return a;
      });
      let moved = 0;
      for (let i = 0; i < 3000; i++) {
        const msg = request(i);
        const n = await balancers[0].pick({ msg, callId: msg.callId, newCall: true, src: CLIENT }, cluster(SIX));
        if (n?.id !== REMOVED.id) continue;
        for (const b of balancers) heirs.add((await b.repick({ msg, callId: msg.callId, newCall: false, src: CLIENT }, REMOVED.id, without))?.id ?? 'none');
        moved++;
      }
      assert.ok(moved > 300, `${moved} calls were on the dead node`);
      assert.equal(heirs.size, 1, [...heirs].join(', '));
      assert.ok(!heirs.has(REMOVED.id) && !heirs.has('none'));
    });
  }
});
