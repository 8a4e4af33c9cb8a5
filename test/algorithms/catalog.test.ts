// algorithmClass -> algorithm: siplb short names, Restcomm simple and fully qualified class names,
// Restcomm's test-only algorithm, unknown names, and user modules (fixtures under
// test/fixtures/algorithms/).

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { Algorithm, AlgorithmContext } from '../../src/algorithms/algorithm.ts';
import { CallTracker } from '../../src/cluster/call-tracker.ts';
import { BUILT_IN, builtInEntry, createAlgorithm } from '../../src/algorithms/catalog.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot } from '../../src/cluster/snapshot.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';
import { contexts as factoryContexts } from '../fixtures/algorithms/round-robin-factory.ts';
import { CLIENT, subnetNode, syncId } from '../helpers/cluster.ts';
import { invite } from '../helpers/sip.ts';

const FIXTURES = resolve(import.meta.dirname, '../fixtures');
const ALGORITHMS = join(FIXTURES, 'algorithms');
const PKG = 'org.mobicents.tools.sip.balancer.';

function context(t: TestContext, algorithmClass: string): AlgorithmContext {
  const store = new MemoryStateStore();
  const loads = new CallTracker(60_000);
  t.after(async () => {
    loads.close();
    await store.close();
  });
  return { config: { ...defaultConfig(), algorithmClass }, store, loads, log: pino({ level: 'silent' }) };
}

async function create(t: TestContext, algorithmClass: string, baseDir?: string): Promise<Algorithm> {
  const a = await createAlgorithm(context(t, algorithmClass), baseDir);
  t.after(() => a.close());
  return a;
}

async function rejects(t: TestContext, algorithmClass: string, reason: RegExp, baseDir?: string): Promise<void> {
  await assert.rejects(createAlgorithm(context(t, algorithmClass), baseDir), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.key, 'algorithmClass');
    assert.equal(err.value, algorithmClass.trim());
    assert.match(err.reason, reason);
    return true;
  });
}

const MSG: SipMessage = invite('registry');

const node = (n: number): SipNode => subnetNode(7, n);
const NODES = [node(1), node(2), node(3)];
const CLUSTER = new ClusterSnapshot(NODES.map((n) => ({ node: n, state: 'active' as const })));

async function pickIds(a: Algorithm, c: ClusterSnapshot, n: number): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) out.push((await a.pick({ msg: MSG, callId: `p-${i}`, newCall: true, src: CLIENT }, c))?.id ?? null);
  return out;
}

describe('createAlgorithm: built-in names', () => {
  const NAMES: [string, string][] = [
    // siplb short names, any case, surrounding blanks ignored
    ['callid', 'callid'], ['hash', 'hash'], ['persistent-hash', 'persistent-hash'], ['subcluster', 'subcluster'],
    ['user', 'user'], ['active-standby', 'active-standby'], ['least-calls', 'least-calls'], ['wrr', 'wrr'],
    ['CallID', 'callid'], ['HASH', 'hash'], ['Persistent-Hash', 'persistent-hash'], ['SubCluster', 'subcluster'],
    ['User', 'user'], ['Active-Standby', 'active-standby'], ['LEAST-CALLS', 'least-calls'], ['WRR', 'wrr'], ['  wrr ', 'wrr'],
    // Restcomm simple class names
    ['CallIDAffinityBalancerAlgorithm', 'callid'],
    ['HeaderConsistentHashBalancerAlgorithm', 'hash'],
    ['PureConsistentHashBalancerAlgorithm', 'hash'],
    ['PersistentConsistentHashBalancerAlgorithm', 'persistent-hash'],
    ['ClusterSubdomainAffinityAlgorithm', 'subcluster'],
    ['UserBasedAlgorithm', 'user'],
    ['ActiveStandbyAlgorithm', 'active-standby'],
    // Restcomm fully qualified class names
    [`${PKG}CallIDAffinityBalancerAlgorithm`, 'callid'],
    [`${PKG}HeaderConsistentHashBalancerAlgorithm`, 'hash'],
    [`${PKG}PureConsistentHashBalancerAlgorithm`, 'hash'],
    [`${PKG}PersistentConsistentHashBalancerAlgorithm`, 'persistent-hash'],
    [`${PKG}ClusterSubdomainAffinityAlgorithm`, 'subcluster'],
    [`${PKG}UserBasedAlgorithm`, 'user'],
    [`${PKG}ActiveStandbyAlgorithm`, 'active-standby'],
    [` ${PKG}UserBasedAlgorithm `, 'user'],
  ];
  for (const [value, name] of NAMES) {
    test(`${JSON.stringify(value)} -> ${name}`, async (t) => {
      const a = await create(t, value);
      assert.equal(a.name, name);
      assert.equal(builtInEntry(value)?.short, name);
      // Every built-in places a call on the cluster it is given.
      const first = await a.pick({ msg: MSG, callId: 'first', newCall: true, src: CLIENT }, CLUSTER);
      assert.ok(first !== null && NODES.some((n) => n.id === first.id), `${name} picked ${first?.id}`);
    });
  }

  test('the table names every built-in short name and every Restcomm name in BUILT_IN, simple and qualified', () => {
    const covered = new Set(NAMES.map(([v]) => v));
    for (const entry of BUILT_IN) {
      assert.ok(covered.has(entry.short), entry.short);
      for (const r of entry.restcomm) {
        assert.ok(covered.has(r), r);
        assert.ok(covered.has(`${PKG}${r}`), `${PKG}${r}`);
      }
    }
  });

  test('the default configuration selects callid', async (t) => {
    const a = await createAlgorithm({ ...context(t, ''), config: defaultConfig() });
    t.after(() => a.close());
    assert.equal(a.name, 'callid');
  });
});

describe('createAlgorithm: names it refuses', () => {
  for (const value of ['WorstCaseUdpTestAffinityAlgorithm', `${PKG}WorstCaseUdpTestAffinityAlgorithm`]) {
    test(`${value}: a Restcomm test algorithm`, async (t) => {
      await rejects(t, value, /a Restcomm test algorithm/);
    });
  }

  for (const value of ['roundRobin', `${PKG}RoundRobinAlgorithm`, 'least_calls', 'com.example.MyAlgorithm']) {
    test(`unknown ${value}: the reason lists what is available`, async (t) => {
      await assert.rejects(createAlgorithm(context(t, value)), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.key, 'algorithmClass');
        assert.equal(err.value, value);
        assert.match(err.reason, /^unknown algorithm; available: /);
        for (const entry of BUILT_IN) {
          assert.ok(err.reason.includes(entry.short), `lists ${entry.short}`);
          if (entry.restcomm.length > 0) assert.ok(err.reason.includes(entry.restcomm[0]), `lists ${entry.restcomm[0]}`);
        }
        assert.match(err.reason, /path to a module/);
        return true;
      });
    });
  }

  test('builtInEntry is undefined for user modules and unknown names', () => {
    assert.equal(builtInEntry('./algorithms/round-robin-factory.ts'), undefined);
    assert.equal(builtInEntry('roundRobin'), undefined);
  });
});

describe('createAlgorithm: user modules', () => {
  const FACTORY = join(ALGORITHMS, 'round-robin-factory.ts');

  const LOADS: { name: string; value: string; baseDir?: string }[] = [
    { name: 'absolute path', value: FACTORY },
    { name: './ relative to baseDir', value: './algorithms/round-robin-factory.ts', baseDir: FIXTURES },
    { name: '../ relative to baseDir', value: '../fixtures/algorithms/round-robin-factory.ts', baseDir: import.meta.dirname },
    { name: 'bare relative path ending in .ts', value: 'algorithms/round-robin-factory.ts', baseDir: FIXTURES },
  ];
  for (const c of LOADS) {
    test(`createAlgorithm(ctx) module, ${c.name}: loads and picks nodes`, async (t) => {
      const ctx = context(t, c.value);
      const a = await createAlgorithm(ctx, c.baseDir);
      t.after(() => a.close());
      assert.equal(a.name, 'fixture-round-robin');
      assert.equal(factoryContexts.at(-1), ctx, 'the factory got the context');
      assert.deepEqual(await pickIds(a, CLUSTER, 6), [...NODES, ...NODES].map((n) => n.id));
      assert.notEqual(syncId(a.repick({ msg: MSG, callId: 'x', newCall: false, src: CLIENT }, NODES[0].id, CLUSTER)), NODES[0].id);
    });
  }

  test('default-exported class: constructed with the context, named after the value', async (t) => {
    const value = './algorithms/class-default.ts';
    const ctx = context(t, value);
    const a = await createAlgorithm(ctx, FIXTURES);
    t.after(() => a.close());
    assert.equal(a.name, value);
    assert.equal((a as unknown as { ctx: AlgorithmContext }).ctx, ctx);
    assert.deepEqual(await pickIds(a, CLUSTER, 3), [NODES[0].id, NODES[0].id, NODES[0].id]);
    assert.equal(syncId(a.repick({ msg: MSG, callId: 'x', newCall: false, src: CLIENT }, NODES[0].id, CLUSTER)), NODES[1].id);
  });

  test('a path that does not exist: module does not load', async (t) => {
    await rejects(t, './algorithms/no-such-algorithm.ts', /^module does not load/, FIXTURES);
    await rejects(t, join(ALGORITHMS, 'no-such-algorithm.ts'), /^module does not load/);
  });

  test('the algorithm lacks methods: refused, naming them', async (t) => {
    await rejects(t, './algorithms/missing-methods.ts', /^the algorithm lacks repick, callEnded$/, FIXTURES);
  });

  test('pickHttp and the membership hooks are optional: a SIP-only module loads and picks', async (t) => {
    const a = await create(t, './algorithms/sip-only.ts', FIXTURES);
    assert.equal(a.name, 'fixture-sip-only');
    assert.equal(a.pickHttp, undefined);
    assert.deepEqual(await pickIds(a, CLUSTER, 2), [NODES[0].id, NODES[0].id]);
  });

  test('an optional method that is not a function: refused, naming it', async (t) => {
    await rejects(t, './algorithms/bad-optional.ts', /^pickHttp must be a function when present$/, FIXTURES);
  });

  test('a factory that throws: refused with its message', async (t) => {
    await rejects(t, './algorithms/throws.ts', /^module failed to create the algorithm: fixture refuses: no tenant map configured$/, FIXTURES);
  });

  test('a module without createAlgorithm or a default export: refused', async (t) => {
    await rejects(t, resolve(import.meta.dirname, '../../src/core/errors.ts'), /must export createAlgorithm\(ctx\) or a default function or class/);
  });
});
