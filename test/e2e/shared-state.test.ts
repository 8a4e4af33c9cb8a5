// End to end: several balancers sharing one real redis-server (stateStore=redis), real sipp
// clients, nodes that are real siplb-demo-node processes (see bed() for why not sipp UASes), real
// siplb processes. A call whose INVITE passes balancer 1 and whose ACK and BYE pass balancer 2
// stays on one node; a restarted balancer still routes the calls it placed before; a node that
// heartbeats to one balancer gets calls through the other; Redis going away under load costs no
// calls and its state converges when it returns.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startDemoNode, type DemoNodeHandle } from './harness/demo-node.ts';
import { eventually, sleep } from '../helpers/wait.ts';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { describeResult, runSippUac, SCENARIOS, startSippUac } from './harness/sipp.ts';

/** Keys under a prefix in the real Redis (redis-cli, so the check does not share code with siplb). */
function redisKeys(redis: RedisServer, pattern: string): string[] {
  const out = execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', pattern], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.length > 0);
}

function balancerProps(port: number, hbPort: number, redis: RedisServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    host: '127.0.0.1', externalPort: String(port), heartbeatPort: String(hbPort),
    stateStore: 'redis', redisUrl: redis.url, redisKeyPrefix: 'e2e:',
    // The demo nodes answer OPTIONS; a node without traffic is probed once a second.
    healthCheckInterval: '1000',
    ...extra,
  };
}

interface Bed {
  redis: RedisServer;
  lbPorts: number[];
  hbPorts: number[];
  uacPort: number;
  lbs: SiplbHandle[];
  nodes: DemoNodeHandle[];
  /** A node only the last balancer knows (static `nodes=`), or null. */
  decoy: DemoNodeHandle | null;
  close(): Promise<void>;
}

/**
 * Redis, `balancers` siplb processes sharing it, and `nodeCount` demo nodes (real SIP servers
 * that answer by the Via, as RFC 3261 requires; sipp's UAS answers the address the call came
 * from, which is wrong once a call crosses balancers) heartbeating to the first balancer or to all.
 */
async function bed(balancers: number, nodeCount: number, heartbeatTo: 'first' | 'all', extra: Record<string, string> = {}, withDecoy = false): Promise<Bed> {
  const ports = await allocatePorts(2 * balancers + 2 + nodeCount);
  const decoyPort = ports[ports.length - 1];
  const lbPorts = ports.slice(0, balancers);
  const hbPorts = ports.slice(balancers, 2 * balancers);
  const uacPort = ports[2 * balancers];
  const nodePorts = ports.slice(2 * balancers + 1, ports.length - 1);
  const lbs: SiplbHandle[] = [];
  const nodes: DemoNodeHandle[] = [];
  let decoy: DemoNodeHandle | null = null;
  let redis: RedisServer | undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled([...nodes, ...(decoy === null ? [] : [decoy])].map((n) => n.stop()));
    await Promise.allSettled(lbs.map((l) => l.stop()));
    await redis?.stop();
    releasePorts(ports);
  };
  try {
    redis = await startRedis();
    // The decoy makes the last balancer's view differ from the others' (round robin out of phase,
    // a different hash ring), so only shared state can make it agree with them about a call.
    if (withDecoy) decoy = await startDemoNode({ port: decoyPort, balancers: '' });
    for (let i = 0; i < balancers; i++) {
      const own: Record<string, string> = withDecoy && balancers > 1 && i === balancers - 1 ? { nodes: `127.0.0.1:${decoyPort}` } : {};
      lbs.push(await startSiplb(balancerProps(lbPorts[i], hbPorts[i], redis, { ...extra, ...own }), { logLevel: 'info' }));
    }
    const targets = (heartbeatTo === 'first' ? hbPorts.slice(0, 1) : hbPorts).map((p) => `127.0.0.1:${p}`).join(';');
    for (const p of nodePorts) nodes.push(await startDemoNode({ port: p, balancers: targets }));
    for (const lb of lbs) {
      for (const p of nodePorts) await eventually(`node ${p} known to every balancer`, 5_000, () => lb.jsonLogs().some((l) => l.msg === 'node added' && l.node === `127.0.0.1:${p}`));
    }
    return { redis, lbPorts, hbPorts, uacPort, lbs, nodes, decoy, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Sum of one counter over the bed's nodes (the decoy left out). */
async function nodeSum(b: Bed, counter: 'callsAnswered' | 'callsEnded' | 'acks'): Promise<number> {
  const stats = await Promise.all(b.nodes.map((n) => n.stats()));
  return stats.reduce((x, s) => x + s[counter], 0);
}

/** Calls each node completed, and BYEs that reached a node (decoy included) that did not have the call. */
async function nodeTotals(b: Bed): Promise<{ ended: number[]; strayByes: number }> {
  const stats = await Promise.all(b.nodes.map((n) => n.stats()));
  const decoy = b.decoy === null ? null : await b.decoy.stats();
  return {
    ended: stats.map((s) => s.callsEnded),
    strayByes: stats.reduce((x, s) => x + (s.byes - s.callsEnded), 0) + (decoy?.byes ?? 0),
  };
}

describe('balancers sharing state on Redis', { concurrency: true }, () => {
  for (const algorithm of ['callid', 'persistent-hash']) {
    test(`${algorithm}: INVITE through balancer 1, ACK and BYE through balancer 2, every call stays on its node`, { timeout: 60_000 }, async () => {
      // A read that outlasts redisReadTimeout is decided without Redis by design; the default
      // (100 ms) can be too short on a loaded test machine, and that fallback is not under test.
      const b = await bed(2, 2, 'all', { algorithmClass: algorithm, redisReadTimeout: '2000' }, true);
      try {
        const calls = 40;
        const r = await runSippUac({
          scenario: SCENARIOS.uacSplit, transport: 'u1', localPort: b.uacPort, remote: `127.0.0.1:${b.lbPorts[0]}`,
          rate: 20, calls, timeoutS: 30, extraArgs: ['-d', '200', '-set', 'lb2host', '127.0.0.1', '-set', 'lb2port', String(b.lbPorts[1])],
        });
        assert.equal(r.stats.successful, calls, describeResult('UAC', r));
        assert.equal(r.stats.failed, 0, describeResult('UAC', r));
        const t = await nodeTotals(b);
        console.log(`${algorithm}: ${calls} split calls, ended per node ${t.ended.join(' / ')}, BYEs at a node without the call ${t.strayByes}`);
        assert.equal(t.ended.reduce((x, y) => x + y, 0), calls, 'every call ended at the node that answered it');
        assert.equal(t.strayByes, 0, 'no BYE reached a node that did not have the call');
        if (algorithm === 'callid') assert.ok(t.ended.every((n) => n > 0), 'round robin used both nodes');
      } finally {
        await b.close();
      }
    });
  }

  test('balancer 1 restarted mid-call: the BYEs of calls it placed before still reach their nodes', { timeout: 60_000 }, async () => {
    const b = await bed(1, 2, 'first', {}, true);
    try {
      const calls = 20;
      const uac = await startSippUac({
        scenario: 'uac', transport: 'u1', localPort: b.uacPort, remote: `127.0.0.1:${b.lbPorts[0]}`,
        rate: 20, calls, timeoutS: 40, extraArgs: ['-d', '6000'],
      });
      // All calls established (answered and acknowledged at the nodes) and their assignments in
      // Redis; then the balancer goes away and comes back empty, long before the BYEs (after 6 s).
      await eventually(`all ${calls} calls established`, 10_000, async () => (await nodeSum(b, 'callsAnswered')) === calls && (await nodeSum(b, 'acks')) >= calls, 50);
      await eventually(`the ${calls} assignments in Redis`, 5_000, () => redisKeys(b.redis, 'e2e:a:callid:*').length >= calls, 50);
      await b.lbs[0].stop();
      // Restarted with one more node (the decoy): without shared state it would place BYEs anew.
      b.lbs[0] = await startSiplb(balancerProps(b.lbPorts[0], b.hbPorts[0], b.redis, { nodes: `127.0.0.1:${b.decoy?.port}` }), { logLevel: 'info' });
      const r = await uac.done;
      assert.equal(r.stats.successful, calls, describeResult('UAC', r));
      const t = await nodeTotals(b);
      console.log(`restart mid-call: ${r.stats.successful} of ${calls} calls completed; ended per node ${t.ended.join(' / ')}; BYEs at a node without the call ${t.strayByes}`);
      assert.equal(t.strayByes, 0, 'every BYE after the restart reached the node that had the call');
      assert.equal(t.ended.reduce((x, y) => x + y, 0), calls);
    } finally {
      await b.close();
    }
  });

  test('a node heartbeating only to balancer 1 receives calls sent through balancer 2', { timeout: 60_000 }, async () => {
    const nodeTimeoutMs = 2000;
    const b = await bed(2, 1, 'first', { nodeTimeout: String(nodeTimeoutMs) });
    try {
      const node = b.nodes[0];
      const id = `127.0.0.1:${node.port}`;
      const r = await runSippUac({ scenario: 'uac', transport: 'u1', localPort: b.uacPort, remote: `127.0.0.1:${b.lbPorts[1]}`, rate: 20, calls: 20, timeoutS: 20 });
      assert.equal(r.stats.successful, 20, describeResult('UAC', r));
      const s = await node.stats();
      assert.equal(s.invites, 20, 'the node answered all 20 INVITEs');
      assert.equal(s.callsEnded, 20, 'and every BYE reached it');
      // It keeps heartbeating to balancer 1 only; balancer 2 must keep it past its nodeTimeout.
      // Proving an absence takes a window: had balancer 2 heard of the node only when it added
      // it, it would drop it nodeTimeout after that, noticed within one check (heartbeatInterval,
      // 150 ms); the window ends 1 s after that. On a loaded machine siplb's check may run past
      // the window: the test can then miss a removal, never report one that did not happen.
      const addedAt = Number(b.lbs[1].jsonLogs().find((l) => l.msg === 'node added' && l.node === id)?.time);
      assert.ok(Number.isFinite(addedAt), 'balancer 2 logged when it added the node');
      await sleep(Math.max(0, addedAt + nodeTimeoutMs + 150 + 1_000 - Date.now()));
      assert.ok(!b.lbs[1].jsonLogs().some((l) => l.msg === 'node removed' && l.node === id), 'balancer 2 kept the node alive through balancer 1\'s heartbeats');
    } finally {
      await b.close();
    }
  });

  test('Redis stopped under load: no crash, no failed call; Redis back: the state converges', { timeout: 90_000 }, async () => {
    const b = await bed(1, 2, 'first');
    try {
      const calls = 300;
      const uac = await startSippUac({
        scenario: 'uac', transport: 'u1', localPort: b.uacPort, remote: `127.0.0.1:${b.lbPorts[0]}`,
        rate: 30, calls, timeoutS: 60, extraArgs: ['-d', '500'],
      });
      // Under load, with the calls' state in Redis.
      await eventually('30 calls answered', 10_000, async () => (await nodeSum(b, 'callsAnswered')) >= 30, 50);
      await eventually('assignments in Redis', 5_000, () => redisKeys(b.redis, 'e2e:a:callid:*').length > 0, 50);
      await b.redis.stop();
      // The balancer noticed, and a good number of calls were placed and ended during the outage.
      await eventually('the outage noticed', 5_000, () => b.lbs[0].jsonLogs().some((l) => l.level === 40 && /redis/i.test(String(l.msg))), 50);
      const endedAtStop = await nodeSum(b, 'callsEnded');
      await eventually('60 calls placed and ended without Redis', 15_000, async () => (await nodeSum(b, 'callsEnded')) >= endedAtStop + 60, 50);
      const keysBefore = Date.now();
      await b.redis.restart();
      const r = await uac.done;
      assert.equal(r.stats.failed, 0, describeResult('UAC', r));
      assert.equal(r.stats.successful, calls, describeResult('UAC', r));
      assert.equal(b.lbs[0].hasExited(), false, 'siplb is still running');
      // The restarted Redis is empty: the balancer writes back what it placed while Redis was away.
      await eventually('assignments written back to Redis', 10_000, () => redisKeys(b.redis, 'e2e:a:callid:*').length > 0);
      await eventually('call counts published again', 10_000, () => redisKeys(b.redis, 'e2e:calls').length === 1);
      const logs = b.lbs[0].jsonLogs();
      const outageLines = logs.filter((l) => l.level === 40 && /redis/i.test(String(l.msg)) && /unavailable|down|lost/i.test(String(l.msg)));
      console.log(`redis outage under 30 calls/s: ${r.stats.successful} of ${calls} calls completed, ${r.stats.failed} failed; ${outageLines.length} outage warning(s); state back in Redis ${Date.now() - keysBefore} ms after restart`);
      assert.equal(outageLines.length, 1, `one outage warning, got ${JSON.stringify(outageLines)}`);
      const t = await nodeTotals(b);
      assert.equal(t.strayByes, 0);
      assert.equal(t.ended.reduce((x, y) => x + y, 0), calls);
    } finally {
      await b.close();
    }
  });
});
