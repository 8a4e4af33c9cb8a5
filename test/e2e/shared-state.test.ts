// End to end: several balancers sharing one real redis-server (stateStore=redis), real sipp
// clients, nodes that are real siplb-demo-node processes (see bed() for why not sipp UASes), real
// siplb processes. A call whose INVITE passes balancer 1 and whose ACK and BYE pass balancer 2
// stays on one node; a restarted balancer still routes the calls it placed before; a node that
// heartbeats to one balancer gets calls through the other; Redis going away under load costs no
// calls and its state converges when it returns. Copies of one INVITE sprayed to two balancers
// reach one node; active-standby keeps one active node across two balancers and a restart.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
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

/** An initial INVITE from the test's UDP client at 127.0.0.1:`port`; the same bytes each time for one Call-ID. */
function inviteBytes(callId: string, port: number): Buffer {
  return Buffer.from([
    'INVITE sip:service@example.com SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId};rport`,
    'Max-Forwards: 70',
    `From: <sip:caller@example.org>;tag=${callId}-from`,
    'To: <sip:service@example.com>',
    `Call-ID: ${callId}@e2e`,
    'CSeq: 1 INVITE',
    `Contact: <sip:caller@127.0.0.1:${port}>`,
    'Content-Length: 0',
    '', '',
  ].join('\r\n'), 'latin1');
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

describe('balancers sharing state on Redis', { concurrency: 3 }, () => {
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

  test('callid: an INVITE through balancer 1 and its retransmission through balancer 2 reach one node (20 calls, 0 split)', { timeout: 60_000 }, async () => {
    const b = await bed(2, 2, 'all', { algorithmClass: 'callid', redisReadTimeout: '2000' });
    const client = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => client.bind(b.uacPort, '127.0.0.1', resolve));
      const send = (bytes: Buffer, lbPort: number): Promise<void> => new Promise((resolve, reject) => {
        client.send(bytes, lbPort, '127.0.0.1', (err) => (err ? reject(err) : resolve()));
      });
      // One call through balancer 2 alone turns its round robin a step ahead of balancer 1's: from
      // then on the two would place every call on different nodes by themselves.
      await send(inviteBytes('desync', b.uacPort), b.lbPorts[1]);
      await eventually('the first call answered', 5_000, async () => (await nodeSum(b, 'callsAnswered')) === 1, 50);
      const calls = 20;
      for (let i = 0; i < calls; i++) {
        const bytes = inviteBytes(`sprayed-${i}`, b.uacPort);
        // Even calls: both copies at once (the race); odd calls: the retransmission 100 ms later.
        const first = send(bytes, b.lbPorts[0]);
        if (i % 2 === 1) await sleep(100);
        await Promise.all([first, send(bytes, b.lbPorts[1])]);
      }
      await eventually(`both copies of ${calls} calls at the nodes`, 10_000, async () => {
        const st = await Promise.all(b.nodes.map((n) => n.stats()));
        return st.reduce((x, s) => x + s.invites + s.inviteRetransmissions, 0) >= 2 * calls + 1;
      }, 50);
      const st = await Promise.all(b.nodes.map((n) => n.stats()));
      const invites = st.map((s) => s.invites);
      const retransmissions = st.reduce((x, s) => x + s.inviteRetransmissions, 0);
      // A split call is two new INVITE transactions, one at each node; a call kept together is one
      // INVITE and its retransmission at one node (both balancers compute the same branch).
      const split = invites.reduce((x, y) => x + y, 0) - 1 - calls;
      console.log(`copies of one INVITE through two balancers: ${calls} calls, ${split} split; new INVITEs per node ${invites.join(' / ')}, retransmissions ${retransmissions}`);
      assert.equal(split, 0);
      assert.equal(retransmissions, calls);
      assert.ok(invites.every((n) => n > 0), 'round robin used both nodes');
    } finally {
      client.close();
      await b.close();
    }
  });

  test('active-standby: one active node across two balancers, kept after a switch-over, adopted by a restarted balancer', { timeout: 90_000 }, async () => {
    const extra = { algorithmClass: 'active-standby', redisReadTimeout: '2000' };
    const b = await bed(2, 2, 'all', extra);
    try {
      // The first node by id is the first elected; the other one is its standby.
      const byId = [...b.nodes].sort((x, y) => (`127.0.0.1:${x.port}` < `127.0.0.1:${y.port}` ? -1 : 1));
      const [first, second] = byId;
      const answered = async (): Promise<[number, number]> => [(await first.stats()).callsAnswered, (await second.stats()).callsAnswered];
      const through = async (lb: number, calls: number): Promise<void> => {
        const r = await runSippUac({ scenario: 'uac', transport: 'u1', localPort: b.uacPort, remote: `127.0.0.1:${b.lbPorts[lb]}`, rate: 20, calls, timeoutS: 20 });
        assert.equal(r.stats.successful, calls, describeResult('UAC', r));
      };
      await through(0, 5);
      await through(1, 5);
      assert.deepEqual(await answered(), [10, 0], 'both balancers use the first node');

      // The first node drains (it stops after its grace time): both balancers elect the second.
      first.drain();
      for (const lb of b.lbs) {
        await eventually('the drain seen', 10_000, () => lb.jsonLogs().some((l) => l.node === `127.0.0.1:${first.port}` && l.msg === 'node state' && /draining/.test(String(l.detail))), 50);
      }
      await through(1, 5);
      await through(0, 5);
      assert.deepEqual(await answered(), [10, 10], 'both balancers moved to the second node');

      // The first node comes back, first by id again: neither balancer goes back to it.
      await first.stop();
      const targets = b.hbPorts.map((p) => `127.0.0.1:${p}`).join(';');
      const back = await startDemoNode({ port: first.port, balancers: targets });
      b.nodes[b.nodes.indexOf(first)] = back;
      const id = `127.0.0.1:${first.port}`;
      for (const lb of b.lbs) {
        await eventually('the first node back on both balancers', 10_000, () => lb.jsonLogs().filter((l) => l.node === id && /^node (added|replaced)$/.test(String(l.msg))).length >= 2, 50)
          .catch((err: unknown) => { throw new Error(`${String(err)}\n${lb.jsonLogs().filter((l) => l.node === id).map((l) => JSON.stringify(l)).join('\n')}`); });
      }
      await through(0, 5);
      await through(1, 5);
      assert.equal((await back.stats()).callsAnswered, 0, 'no fail-back');
      assert.equal((await second.stats()).callsAnswered, 20);

      // Balancer 1 restarts with no memory of the election: it adopts the stored active node.
      await b.lbs[0].stop();
      b.lbs[0] = await startSiplb(balancerProps(b.lbPorts[0], b.hbPorts[0], b.redis, extra), { logLevel: 'info' });
      await eventually('both nodes known to the restarted balancer', 10_000, () => b.nodes.every((n) => b.lbs[0].jsonLogs().some((l) => l.msg === 'node added' && l.node === `127.0.0.1:${n.port}`)), 50);
      await through(0, 5);
      const after = [(await back.stats()).callsAnswered, (await second.stats()).callsAnswered];
      console.log(`active-standby over two balancers: calls on the first node after it came back ${after[0]}, on the second ${after[1]} (25 placed since the switch-over, 5 through the restarted balancer)`);
      assert.deepEqual(after, [0, 25], 'the restarted balancer adopted the second node');
      assert.deepEqual(redisKeys(b.redis, 'e2e:a:active-standby:*'), ['e2e:a:active-standby:active']);
    } finally {
      await b.close();
    }
  });

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
