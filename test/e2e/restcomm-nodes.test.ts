// End to end: two Restcomm node behaviours with a real siplb process, real sipp and plain UDP
// sockets on loopback.
//
//   - performanceTestingMode: extraServerNodes become nodes that need no heartbeat. With it on,
//     calls reach both sipp UASes; with it off, the same file has no nodes and calls get 503.
//   - maxRequestNumberWithoutResponse / maxResponseTime: a node that takes requests and never
//     answers (a UDP socket that reads and says nothing, so its port is open, as a hung SIP
//     stack's is) is taken out of new-call selection after a few calls, without any OPTIONS
//     probing (healthCheckInterval=0), and every later call completes on the live node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { callsTaken, describeResult, runSippUac, startSippUas, type SippUas } from './harness/sipp.ts';
import { eventually } from '../helpers/wait.ts';


test('performanceTestingMode: extraServerNodes take calls without heartbeats; without it, the same file answers 503', { timeout: 15_000 }, async () => {
  const ports = await allocatePorts(4);
  const [lbPort, portA, portB, uacPort] = ports;
  const uases: SippUas[] = [];
  let lb: SiplbHandle | undefined;
  try {
    for (const port of [portA, portB]) {
      uases.push(await startSippUas({ scenario: 'uas', transport: 'u1', localPort: port, timeoutS: 12, statsEveryMs: 100 }));
    }
    const props = (mode: boolean): Record<string, string> => ({
      host: '127.0.0.1', externalPort: String(lbPort),
      extraServerNodes: `127.0.0.1:${portA},127.0.0.1:${portB}`, performanceTestingMode: String(mode),
    });
    const uac = (calls: number, traceMessages = false) => runSippUac({
      scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 20, calls, timeoutS: 8, traceMessages,
    });

    lb = await startSiplb(props(true), { logLevel: 'info' });
    const on = await uac(20);
    assert.equal(on.stats.successful, 20, describeResult('performanceTestingMode=true', on));
    assert.equal(on.stats.failed, 0, describeResult('performanceTestingMode=true', on));
    await eventually('both UASes to count their calls', 3_000, () => callsTaken(uases[0]) + callsTaken(uases[1]) >= 20);
    const taken = uases.map(callsTaken);
    assert.ok(taken.every((n) => n >= 5), `calls per extra server node: ${taken.join(', ')}`);
    assert.ok(!lb.jsonLogs().some((l) => l.event === 'removed'), 'no node expired without heartbeats');
    await lb.stop();

    lb = await startSiplb(props(false), { logLevel: 'info' });
    const off = await uac(3, true);
    assert.equal(off.stats.successful, 0, describeResult('performanceTestingMode=false', off));
    assert.equal(off.stats.failed, 3, describeResult('performanceTestingMode=false', off));
    // (sipp logs an unexpected message twice: as received, and again as unexpected.)
    const answers = [...off.messageLog.matchAll(/message received \[\d+\] bytes :\s+SIP\/2\.0 (\d{3}) /g)].map((m) => m[1]);
    assert.deepEqual(answers, ['503', '503', '503'], off.messageLog.slice(0, 3000));
    assert.deepEqual(uases.map(callsTaken), taken, 'no call reached the extra server nodes');
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await lb?.stop();
    releasePorts(ports);
  }
});

test('maxRequestNumberWithoutResponse=3, maxResponseTime=500: a node that never answers stops getting calls; the rest complete on the live node', { timeout: 15_000 }, async () => {
  const ports = await allocatePorts(4);
  const [lbPort, livePort, silentPort, uacPort] = ports;
  const silentId = `127.0.0.1:${silentPort}`;
  // Reads every request, answers none: a hung SIP stack with its port open.
  const silent = dgram.createSocket('udp4');
  const invitesAtSilent = new Set<string>();
  silent.on('message', (data) => {
    const text = data.toString('latin1');
    const callId = /^Call-ID:\s*(.+?)\s*$/im.exec(text)?.[1];
    if (text.startsWith('INVITE ') && callId !== undefined) invitesAtSilent.add(callId);
  });
  let live: SippUas | undefined;
  let lb: SiplbHandle | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      silent.once('error', reject);
      silent.bind(silentPort, '127.0.0.1', () => resolve());
    });
    live = await startSippUas({ scenario: 'uas', transport: 'u1', localPort: livePort, timeoutS: 12, statsEveryMs: 100 });
    lb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), nodes: `127.0.0.1:${livePort},${silentId}`,
      maxRequestNumberWithoutResponse: '3', maxResponseTime: '500', healthCheckInterval: '0',
    }, { logLevel: 'info' });
    const uac = (calls: number, rate: number) => runSippUac({
      scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate, calls, timeoutS: 8,
      // A call placed on the silent node gets siplb's 100 Trying and then nothing: give up soon.
      extraArgs: ['-recv_timeout', '1500'],
    });

    // Round robin puts every other call on the silent node, one INVITE each 400 ms: its 4th
    // unanswered INVITE, 1.2 s after its 1st, takes it out; the calls after that go to the live node.
    const first = await uac(14, 5);
    const out = lb.jsonLogs().find((l) => l.msg === 'node state' && l.node === silentId && String(l.detail).startsWith('out of new-call selection'));
    assert.ok(out !== undefined, `the silent node taken out; INVITEs it got: ${invitesAtSilent.size}\n${describeResult('first calls', first)}`);
    assert.match(String(out.detail), /\(\d+ requests unanswered for \d+ ms\)$/);
    const silentCalls = invitesAtSilent.size;
    assert.ok(silentCalls >= 4 && silentCalls <= 6, `the silent node got ${silentCalls} calls before it was taken out`);
    assert.equal(first.stats.failed, silentCalls, describeResult('first calls: only those on the silent node fail', first));
    assert.equal(first.stats.successful, 14 - silentCalls, describeResult('first calls', first));

    const later = await uac(20, 20);
    assert.equal(later.stats.successful, 20, describeResult('calls after the silent node was taken out', later));
    assert.equal(later.stats.failed, 0, describeResult('calls after the silent node was taken out', later));
    assert.equal(invitesAtSilent.size, silentCalls, 'no new call reached the silent node');
    await eventually('the live node to count every completed call', 3_000, () => callsTaken(live!) >= 14 - silentCalls + 20);
  } finally {
    silent.close();
    await live?.stop(1_000);
    await lb?.stop();
    releasePorts(ports);
  }
});
