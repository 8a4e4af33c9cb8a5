// End to end: static nodes (no heartbeats) are watched by SIP OPTIONS. A node killed with SIGKILL
// is taken out after one failed probe, calls then all go to the survivor without failures, and
// the node is taken back in once it answers again. Real sipp (-aa answers OPTIONS) and a real
// siplb process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { nodeStateLine, startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { callsTaken, describeResult, runSippUac, startSippUas, type SippUas } from './harness/sipp.ts';
import { eventually } from '../helpers/wait.ts';

function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  return eventually(what, ms, check);
}

function nodeEvent(lb: SiplbHandle, nodeId: string, detailPrefix: string): boolean {
  return nodeStateLine(lb, nodeId, detailPrefix) !== undefined;
}


test('static nodes: an OPTIONS-dead node is taken out, calls go to the survivor, and it is taken back when it answers again', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(4);
  const [lbPort, portA, portB, uacPort] = ports;
  const idB = `127.0.0.1:${portB}`;
  const uases: SippUas[] = [];
  let lb: SiplbHandle | undefined;
  try {
    const uas = (port: number) => startSippUas({ scenario: 'uas', transport: 'u1', localPort: port, timeoutS: 50, statsEveryMs: 200, extraArgs: ['-aa'] });
    uases.push(await uas(portA), await uas(portB));
    const intervalMs = 300;
    const timeoutMs = 250;
    lb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), nodes: `127.0.0.1:${portA},${idB}`,
      healthCheckInterval: String(intervalMs), healthCheckTimeout: String(timeoutMs), healthCheckFailures: '1', healthCheckSuccesses: '1',
    }, { logLevel: 'info' });
    const calls = (count: number) => runSippUac({ scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 20, calls: count, timeoutS: 20 });

    // Both nodes prove themselves (answer an OPTIONS probe), then B is killed outright.
    await waitFor(() => uases.every((u) => (u.currentStats()?.autoAnswered ?? 0) >= 1), 5_000, 'both nodes to answer an OPTIONS probe');
    assert.equal(nodeEvent(lb, idB, 'down'), false, 'B is up before the kill');
    const killedAt = Date.now();
    process.kill(uases[1].pid, 'SIGKILL');
    await waitFor(() => nodeEvent(lb!, idB, 'down'), 5_000, 'B taken out');
    // Measured at siplb (the time of its log line), so the test's own polling does not count.
    const removalMs = Number(nodeStateLine(lb, idB, 'down')?.time) - killedAt;
    console.log(`static node killed -> taken out in ${removalMs} ms (interval ${intervalMs} ms, timeout ${timeoutMs} ms)`);
    // One failed probe takes B out: the next round starts within an interval and a probe fails
    // within its timeout (at once when the port refuses), 550 ms; 1.5 s more for a loaded machine.
    assert.ok(removalMs < intervalMs + timeoutMs + 1_500, `took ${removalMs} ms`);

    const before = callsTaken(uases[0]);
    const r1 = await calls(20);
    assert.equal(r1.stats.failed, 0, describeResult('UAC with B dead', r1));
    assert.equal(r1.stats.successful, 20, describeResult('UAC with B dead', r1));
    await waitFor(() => callsTaken(uases[0]) - before >= 20, 3_000, 'A to count the 20 calls');

    // B comes back on the same port: the next probe takes it back in.
    uases[1] = await uas(portB);
    await waitFor(() => nodeEvent(lb!, idB, 'healthy'), 5_000, 'B taken back');
    const r2 = await calls(20);
    assert.equal(r2.stats.failed, 0, describeResult('UAC with B back', r2));
    await waitFor(() => callsTaken(uases[1]) >= 5, 3_000, 'B to take calls again');
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await lb?.stop();
    releasePorts(ports);
  }
});

test('a node that ignores OPTIONS (sipp without -aa) stays in service while idle, is taken out when killed and back when restarted', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(3);
  const [lbPort, portA, uacPort] = ports;
  const idA = `127.0.0.1:${portA}`;
  let uas: SippUas | undefined;
  let lb: SiplbHandle | undefined;
  try {
    uas = await startSippUas({ scenario: 'uas', transport: 'u1', localPort: portA, timeoutS: 50, statsEveryMs: 200 });
    lb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), nodes: idA,
      healthCheckInterval: '200', healthCheckTimeout: '150', healthCheckFailures: '1',
    }, { logLevel: 'info' });
    // Five probes reach the node (sipp counts each as an incoming call it fails) and at least four
    // of them have gone unanswered past their timeout: that proves nothing about a node that
    // never answered one.
    const probesSeen = (): number => uas?.currentStats()?.incoming ?? 0;
    await waitFor(() => probesSeen() >= 5, 5_000, 'five OPTIONS probes at the node');
    assert.ok(lb.jsonLogs().some((l) => l.node === idA && String(l.msg).startsWith('node does not answer OPTIONS')), 'siplb noticed the silence');
    assert.equal(nodeEvent(lb, idA, 'down'), false, 'not taken out for ignoring OPTIONS');
    const r = await runSippUac({ scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 20, calls: 20, timeoutS: 20 });
    assert.equal(r.stats.failed, 0, describeResult('UAC after the idle period', r));
    process.kill(uas.pid, 'SIGKILL');
    await waitFor(() => nodeEvent(lb!, idA, 'down'), 5_000, 'the killed node (its port now refuses) to be taken out');
    uas = await startSippUas({ scenario: 'uas', transport: 'u1', localPort: portA, timeoutS: 50 });
    await waitFor(() => nodeEvent(lb!, idA, 'healthy'), 5_000, 'the restarted node (its port open again) to be taken back');
    const r2 = await runSippUac({ scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 20, calls: 10, timeoutS: 20 });
    assert.equal(r2.stats.failed, 0, describeResult('UAC after the restart', r2));
  } finally {
    await uas?.stop(1_000);
    await lb?.stop();
    releasePorts(ports);
  }
});
