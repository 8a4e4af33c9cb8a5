// End to end: nodes that register by heartbeats (real siplb-demo-node processes) under real sipp
// load through a real siplb. A node killed with SIGKILL is taken out and its calls fail over; a
// node that drains takes no new calls while its calls finish on it; a node restarted with a new
// session rejoins, and a newer version takes the new calls.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers/wait.ts';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { describeResult, runSippUac, startSippUac } from './harness/sipp.ts';
import { startDemoNode, type DemoNodeHandle } from './harness/demo-node.ts';

/** siplb's first log line with this msg about the node (detail starting so), if any. */
function loggedLine(lb: SiplbHandle, msg: string, nodeId: string, detailPrefix = ''): Record<string, unknown> | undefined {
  return lb.jsonLogs().find((l) => l.msg === msg && l.node === nodeId && String(l.detail ?? '').startsWith(detailPrefix));
}

function logged(lb: SiplbHandle, msg: string, nodeId: string, detailPrefix = ''): boolean {
  return loggedLine(lb, msg, nodeId, detailPrefix) !== undefined;
}

/** Waits until the node has answered at least `answered` calls and `open` of them are still going. */
async function carrying(node: DemoNodeHandle, answered: number, open: number): Promise<void> {
  await eventually(`node ${node.port} to carry calls (${answered} answered, ${open} still open)`, 10_000, async () => {
    const s = await node.stats();
    return s.callsAnswered >= answered && s.callsAnswered - s.callsEnded >= open;
  }, 50);
}

const NODE_TIMEOUT_MS = 1000;
const HEARTBEAT_CHECK_MS = 100;

interface Cluster {
  lb: SiplbHandle;
  lbPort: number;
  uacPort: number;
  hbPort: number;
  nodes: DemoNodeHandle[];
  ports: number[];
  close(): Promise<void>;
}

async function cluster(nodeOpts: { version?: string; graceMs?: number }[]): Promise<Cluster> {
  const ports = await allocatePorts(3 + nodeOpts.length);
  const [lbPort, hbPort, uacPort] = ports;
  const nodes: DemoNodeHandle[] = [];
  let lb: SiplbHandle | undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await lb?.stop();
    releasePorts(ports);
  };
  try {
    lb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), heartbeatPort: String(hbPort),
      nodeTimeout: String(NODE_TIMEOUT_MS), heartbeatInterval: String(HEARTBEAT_CHECK_MS), healthCheckInterval: '300', healthCheckTimeout: '250',
    }, { logLevel: 'info' });
    for (const [i, o] of nodeOpts.entries()) {
      nodes.push(await startDemoNode({ port: ports[3 + i], balancers: `127.0.0.1:${hbPort}`, version: o.version, graceMs: o.graceMs }));
    }
    for (const n of nodes) await eventually(`node ${n.port} registered`, 5_000, () => logged(lb!, 'node added', `127.0.0.1:${n.port}`));
    return { lb, lbPort, uacPort, hbPort, nodes, ports, close };
  } catch (err) {
    await close();
    throw err;
  }
}

describe('nodes registered by heartbeats, under sipp load', { concurrency: true }, () => {
  test('SIGKILL of a node: taken out quickly, its calls fail over, the survivor fails none', { timeout: 60_000 }, async () => {
    const c = await cluster([{}, {}]);
    try {
      const [a, b] = c.nodes;
      const idB = `127.0.0.1:${b.port}`;
      // A call whose 200 died with B would wait for it forever (sipp does not resend an INVITE
      // after a 180): -recv_timeout fails it after 10 s instead (INVITE retransmissions, which find
      // the survivor once B is out, go at 0.5, 1.5, 3.5 and 7.5 s), so every call ends counted.
      const uac = await startSippUac({ scenario: 'uac', transport: 'u1', localPort: c.uacPort, remote: `127.0.0.1:${c.lbPort}`, rate: 30, calls: 240, timeoutS: 40, extraArgs: ['-d', '1000', '-recv_timeout', '10000'] });
      // B has established calls (answered, BYE still to come) when it is killed.
      await carrying(b, 15, 5);
      const killedAt = Date.now();
      await b.kill();
      const takenOut = (): Record<string, unknown> | undefined => loggedLine(c.lb, 'node state', idB, 'down') ?? loggedLine(c.lb, 'node removed', idB);
      await eventually('B taken out', 5_000, () => takenOut() !== undefined);
      // Measured at siplb (the time of its log line), so the test's own polling does not count.
      const removalMs = Number(takenOut()?.time) - killedAt;
      console.log(`registered node killed -> taken out in ${removalMs} ms (nodeTimeout ${NODE_TIMEOUT_MS} ms, checked every ${HEARTBEAT_CHECK_MS} ms; OPTIONS every 300 ms)`);
      const r = await uac.done;
      const sa = await a.stats();
      console.log(`after the kill: ${r.stats.failed} of 240 calls failed; A ended ${sa.byes - sa.callsEnded} calls B had answered`);
      // At the latest the heartbeat timeout takes B out: nodeTimeout after its last heartbeat,
      // noticed within one check (1100 ms); 1 s more for a loaded machine.
      assert.ok(removalMs < NODE_TIMEOUT_MS + HEARTBEAT_CHECK_MS + 1_000, `removal took ${removalMs} ms`);
      // Only a call B had answered with 180 but not yet 200 at the instant of the kill can be lost.
      assert.ok(r.stats.failed <= 2, `failed calls: ${r.stats.failed}\n${describeResult('UAC', r)}`);
      assert.equal(r.stats.successful + r.stats.failed, 240, describeResult('UAC', r));
      assert.ok(sa.byes - sa.callsEnded > 0, `in-dialog requests of B's calls reached A (A got ${sa.byes} BYEs, ended ${sa.callsEnded} of its own calls)`);
      assert.equal(sa.finalResponsesUnacked, 0, 'every call A answered was acknowledged');
    } finally {
      await c.close();
    }
  });

  test('graceful drain during load: no failed call, no new call on the draining node, its calls end on it', { timeout: 60_000 }, async () => {
    const c = await cluster([{}, { graceMs: 15_000 }]);
    try {
      const [a, b] = c.nodes;
      const idB = `127.0.0.1:${b.port}`;
      const uac = await startSippUac({ scenario: 'uac', transport: 'u1', localPort: c.uacPort, remote: `127.0.0.1:${c.lbPort}`, rate: 30, calls: 180, timeoutS: 40, extraArgs: ['-d', '1500'] });
      // B has taken calls and has calls in progress when it starts draining.
      await carrying(b, 15, 5);
      b.drain();
      await eventually('B draining', 3_000, () => logged(c.lb, 'node state', idB, 'draining'));
      const atDrain = (await b.stats()).invites;
      const r = await uac.done;
      const sb = await b.stats();
      const sa = await a.stats();
      assert.equal(r.stats.failed, 0, describeResult('UAC', r));
      assert.equal(r.stats.successful, 180, describeResult('UAC', r));
      assert.ok(atDrain > 10, `B took calls before the drain (${atDrain})`);
      // A call whose INVITE was already on its way when the drain landed may still arrive.
      assert.ok(sb.invites - atDrain <= 2, `B got ${sb.invites - atDrain} new calls after draining`);
      assert.equal(sb.callsEnded, sb.callsAnswered, `every call B answered ended on B (${sb.callsEnded}/${sb.callsAnswered})`);
      assert.equal(sa.byes, sa.callsEnded, 'A only saw BYEs of its own calls');
      assert.equal(sa.invites + sb.invites, 180);
    } finally {
      await c.close();
    }
  });

  test('a node restarted with a new session rejoins; a newer version takes the new calls', { timeout: 60_000 }, async () => {
    const c = await cluster([{ version: '1.0' }, { version: '1.0' }]);
    try {
      const [a, b] = c.nodes;
      const calls = (n: number) => runSippUac({ scenario: 'uac', transport: 'u1', localPort: c.uacPort, remote: `127.0.0.1:${c.lbPort}`, rate: 20, calls: n, timeoutS: 20 });
      const r1 = await calls(20);
      assert.equal(r1.stats.failed, 0, describeResult('UAC before restart', r1));
      const aBefore = (await a.stats()).invites;
      assert.ok(aBefore >= 5 && (await b.stats()).invites >= 5, 'both nodes take calls');

      // B restarts as version 1.1 on the same port: a new sessionId replaces its entry.
      await b.kill();
      const b2 = await startDemoNode({ port: b.port, balancers: `127.0.0.1:${c.hbPort}`, version: '1.1' });
      c.nodes[1] = b2;
      await eventually('B re-registered', 5_000, () => logged(c.lb, 'node replaced', `127.0.0.1:${b.port}`) || logged(c.lb, 'node added', `127.0.0.1:${b.port}`, 'session'));
      await eventually('B rejoined', 5_000, () => c.lb.jsonLogs().filter((l) => l.msg === 'node added' || l.msg === 'node replaced').length >= 3);
      const r2 = await calls(20);
      assert.equal(r2.stats.failed, 0, describeResult('UAC after upgrade', r2));
      assert.equal((await b2.stats()).invites, 20, 'every new call went to version 1.1');
      assert.equal((await a.stats()).invites, aBefore, 'version 1.0 took no new call');
    } finally {
      await c.close();
    }
  });
});
