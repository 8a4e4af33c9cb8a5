// End to end: siplb with workers=2 (one supervisor, two worker processes sharing the SIP port with
// SO_REUSEPORT) under real sipp load, with a static demo node A and a demo node B that registers
// by heartbeats (with worker 0, the only one with the heartbeat endpoint). sipp's UAC opens a
// socket per call (-t un), so the kernel spreads the calls over both workers by source port.
// Checked: every call completes; both workers carried calls and both sent calls to B (their own
// counters, printed when they stop), and each heard the nodes' answers to what it forwarded; a
// worker killed with SIGKILL is started again by the supervisor and knows B at once; a pin and a
// reload through worker 0's admin API reach worker 1; B's drain,
// heard by worker 0 alone, keeps new calls off B on both workers; SIGTERM stops the supervisor
// and both workers with exit code 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sleep } from '../helpers/wait.ts';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { describeResult, runSippUac } from './harness/sipp.ts';
import { startDemoNode, type DemoNodeHandle } from './harness/demo-node.ts';

const CALLS = 150;
const RATE = 100;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function lines(lb: SiplbHandle, msg: string, node?: string, detail?: RegExp): Record<string, unknown>[] {
  return lb.jsonLogs().filter((l) => l.msg === msg && (node === undefined || l.node === node) && (detail === undefined || detail.test(String(l.detail ?? ''))));
}

test('workers=2: calls spread over both workers, one node view, a dead worker restarted, SIGTERM stops all', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(6);
  const [lbPort, hbPort, uacPort, portA, portB, apiPort] = ports;
  const nodes: DemoNodeHandle[] = [];
  let lb: SiplbHandle | undefined;
  try {
    const a = await startDemoNode({ port: portA, balancers: '' });
    nodes.push(a);
    const b = await startDemoNode({ port: portB, balancers: `127.0.0.1:${hbPort}`, graceMs: 30_000, intervalMs: 200 });
    nodes.push(b);
    const idB = `127.0.0.1:${portB}`;
    lb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), heartbeatPort: String(hbPort), apiPort: String(apiPort), workers: '2',
      nodes: `127.0.0.1:${portA};transport=udp`, nodeTimeout: '1500', heartbeatInterval: '100',
      healthCheckInterval: '0', warmUpCalls: '0',
    }, { logLevel: 'info', readyTimeoutMs: 15_000 });
    const siplb = lb;
    const ready = lines(siplb, 'siplb ready')[0];
    const pids = ready?.pids as number[];
    assert.equal(ready?.workers, 2);
    assert.equal(pids.length, 2);
    assert.ok(pids.every(isAlive));

    // B registered with worker 0; worker 1 learns it from worker 0's view (a line from each).
    await eventually('B known to both workers', 5_000, () => lines(siplb, 'node added', idB).length >= 2);
    const calls = async (label: string): Promise<void> => {
      const r = await runSippUac({
        scenario: 'uac', transport: 'un', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: RATE, calls: CALLS, timeoutS: 20,
        extraArgs: ['-max_socket', '1000'],
      });
      assert.equal(r.stats.failed, 0, `${label}: ${describeResult('UAC', r)}`);
      assert.equal(r.stats.successful, CALLS, `${label}: ${describeResult('UAC', r)}`);
    };

    await calls('two workers');
    const afterFirst = [await a.stats(), await b.stats()];
    assert.ok(afterFirst[0].invites > 0 && afterFirst[1].invites > 0, `both nodes took calls (A ${afterFirst[0].invites}, B ${afterFirst[1].invites})`);

    // Worker 1 dies; the supervisor starts it again, with worker 0's last view (B included).
    process.kill(pids[1], 'SIGKILL');
    await eventually('worker 1 restarted', 10_000, () => lines(siplb, 'siplb worker restarted and ready').length >= 1);
    const restarted = lines(siplb, 'siplb worker restarted and ready')[0];
    assert.equal(restarted.worker, 1);
    const newPid = restarted.pid as number;
    assert.notEqual(newPid, pids[1]);
    await calls('after the restart');
    const afterRestart = await b.stats();
    assert.ok(afterRestart.invites > afterFirst[1].invites, 'B still takes calls after the restart');

    // A pin set through worker 0's admin API (sipp's From user) reaches worker 1: every call to A.
    const api = (path: string, init?: RequestInit): Promise<Response> => fetch(`http://127.0.0.1:${apiPort}${path}`, init);
    assert.equal((await api(`/lbnoderegex?regex=sipp&ip=127.0.0.1&port=${portA}`)).status, 200);
    await sleep(1500);
    const atPin = (await b.stats()).invites;
    await calls('pinned to A');
    assert.equal((await b.stats()).invites, atPin, 'no call reached B while pinned to A');
    assert.equal((await api('/lbnoderegex?regex=sipp')).status, 200);
    // A reload through worker 0's admin API makes the other worker read the file too.
    assert.equal((await api('/api/v1/reload', { method: 'POST' })).status, 200);
    await eventually('worker 1 reloaded', 5_000, () => lines(siplb, 'configuration reloaded: no key changed').length >= 1);
    await sleep(1500);

    // B drains (heartbeat shutdown, heard by worker 0 only): no new call reaches it from either worker.
    b.drain();
    await eventually('both workers see B draining', 5_000, () => lines(siplb, 'node state', idB, /draining/).length >= 2);
    const atDrain = (await b.stats()).invites;
    await calls('B draining');
    assert.ok((await b.stats()).invites - atDrain <= 1, `B got ${(await b.stats()).invites - atDrain} new calls while draining`);

    // SIGTERM: every process stops, code 0; each worker says what it carried.
    await siplb.stop();
    assert.equal(await siplb.exitCode, 0);
    assert.ok(!isAlive(pids[0]) && !isAlive(newPid), 'both workers exited');
    const stopped = lines(siplb, 'siplb worker stopping');
    const byWorker = new Map(stopped.map((l) => [l.worker as number, l]));
    assert.deepEqual([...byWorker.keys()].sort(), [0, 1]);
    for (const [w, l] of byWorker) {
      const stats = l.stats as { callsStarted: number; responsesIn: number };
      const sent = l.sentToNode as Record<string, number>;
      // Worker 1's counters start at its restart: two rounds of calls.
      assert.ok(stats.callsStarted > 0, `worker ${w} started calls (${stats.callsStarted})`);
      // The nodes answered each worker's requests to that worker's own socket (its Via asks for
      // rport): 180, 200 and the BYE's 200 for each of its calls.
      assert.ok(stats.responsesIn >= 2 * stats.callsStarted, `worker ${w} heard the answers to what it forwarded (${stats.responsesIn} responses, ${stats.callsStarted} calls)`);
      assert.ok((sent[idB] ?? 0) > 0, `worker ${w} sent messages to the registered node B (${JSON.stringify(sent)})`);
    }
  } finally {
    await lb?.stop();
    await Promise.allSettled(nodes.map((n) => n.stop()));
    releasePorts(ports);
  }
});
