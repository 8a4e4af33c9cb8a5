// End to end: a static node whose SIP port closes (the process killed) answers siplb's next
// request with ICMP port unreachable; siplb's connected socket towards the node hears it and
// takes the node down at once, with no health checks configured, so its calls fail over on the
// client's retransmission and none fails. Restarted on the same port it comes back on trial.
// Before connected node sockets, such a node stayed in new-call selection for good.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { nodeStateLine, startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { callsTaken, describeResult, runSippUac, startSippUas, type SippUas } from './harness/sipp.ts';
import { eventually } from '../helpers/wait.ts';
import { UNREACHABLE_TRIAL_MS } from '../../src/cluster/passive-health.ts';

test('a static node killed: the ICMP port unreachable takes it down at once, its calls fail over, it comes back on trial', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(4);
  const [lbPort, portA, portB, uacPort] = ports;
  const idB = `127.0.0.1:${portB}`;
  const uases: SippUas[] = [];
  let lb: SiplbHandle | undefined;
  try {
    const uas = (port: number) => startSippUas({ scenario: 'uas', transport: 'u1', localPort: port, timeoutS: 50, statsEveryMs: 200 });
    uases.push(await uas(portA), await uas(portB));
    // No active health checks: only the ICMP error can tell siplb that B is gone.
    lb = await startSiplb({ host: '127.0.0.1', externalPort: String(lbPort), nodes: `127.0.0.1:${portA},${idB}`, healthCheckInterval: '0' }, { logLevel: 'info' });
    const calls = (count: number) => runSippUac({ scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 20, calls: count, timeoutS: 30 });

    const r0 = await calls(10);
    assert.equal(r0.stats.failed, 0, describeResult('UAC, both nodes up', r0));
    await eventually('B to take calls', 3_000, () => callsTaken(uases[1]) >= 1);

    process.kill(uases[1].pid, 'SIGKILL');
    const before = callsTaken(uases[0]);
    const r1 = await calls(20);
    assert.equal(r1.stats.failed, 0, describeResult('UAC with B dead', r1));
    assert.equal(r1.stats.successful, 20, describeResult('UAC with B dead', r1));
    const down = nodeStateLine(lb, idB, 'down (ICMP port unreachable');
    assert.ok(down !== undefined, `B taken down by the ICMP error; log: ${JSON.stringify(lb.jsonLogs().filter((l) => l.node === idB))}`);
    // The client's INVITE that met the closed port is resent after T1 (500 ms) and placed on A:
    // at most a retransmission or two, never a failed call.
    assert.ok(r1.stats.retransmissions <= 2, describeResult('UAC with B dead', r1));
    await eventually('A to count the 20 calls', 3_000, () => callsTaken(uases[0]) - before >= 20);

    // B back on the same port: let in again on trial, and it takes calls.
    uases[1] = await uas(portB);
    await eventually('B back in new-call selection', UNREACHABLE_TRIAL_MS + 3_000, () => nodeStateLine(lb!, idB, 'back in new-call selection') !== undefined);
    const r2 = await calls(20);
    assert.equal(r2.stats.failed, 0, describeResult('UAC with B back', r2));
    await eventually('B to take calls again', 3_000, () => callsTaken(uases[1]) >= 5);
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await lb?.stop();
    releasePorts(ports);
  }
});
