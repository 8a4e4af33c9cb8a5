// Graceful stop of the real siplb process under real sipp calls: SIGTERM while calls are up; the
// calls end normally (0 failed), a new INVITE meanwhile gets 503, and siplb exits 0 once the
// last call has ended, well before shutdownTimeout. A second SIGTERM exits at once, calls or not.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { SCENARIOS, describeResult, startSippUac, startSippUas, type SippUas } from './harness/sipp.ts';
import { eventually } from '../helpers/wait.ts';

const CALLS = 40;
const HOLD_MS = 3000;
const SHUTDOWN_TIMEOUT_MS = 15_000;

/** One INVITE from a throwaway UDP socket; resolves with the first final status line. */
function inviteStatus(lbPort: number, callId: string, timeoutMs: number): Promise<string> {
  const socket = dgram.createSocket('udp4');
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no final answer to ${callId} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('message', (m) => {
      const line = m.toString('latin1').split('\r\n')[0];
      if (/^SIP\/2\.0 1\d\d/.test(line)) return;
      clearTimeout(timer);
      socket.close();
      resolve(line);
    });
    socket.bind(0, '127.0.0.1', () => {
      const port = socket.address().port;
      socket.send([
        `INVITE sip:service@127.0.0.1:${lbPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId};rport`,
        'Max-Forwards: 70', 'From: <sip:late@example.org>;tag=l1', 'To: <sip:service@example.org>', `Call-ID: ${callId}`,
        'CSeq: 1 INVITE', `Contact: <sip:late@127.0.0.1:${port}>`, 'Content-Length: 0', '', '',
      ].join('\r\n'), lbPort, '127.0.0.1');
    });
  });
}

function exitedWithin(siplb: SiplbHandle, ms: number): Promise<boolean> {
  return Promise.race([siplb.exit.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

test('SIGTERM under sipp calls: no new call (503), every call in progress completes, exit 0 when the last has ended', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(4);
  const [lbPort, uasA, uasB, uacPort] = ports;
  const uases: SippUas[] = [];
  let siplb: SiplbHandle | undefined;
  try {
    for (const port of [uasA, uasB]) uases.push(await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: port, timeoutS: 40, traceErrors: true }));
    siplb = await startSiplb({
      externalUdpPort: String(lbPort), nodes: `127.0.0.1:${uasA};transport=udp,127.0.0.1:${uasB};transport=udp`,
      shutdownTimeout: String(SHUTDOWN_TIMEOUT_MS), healthCheckInterval: '0',
    }, { logLevel: 'info', stopGraceMs: SHUTDOWN_TIMEOUT_MS + 5000 });
    // All calls start within one second and each is held HOLD_MS before its BYE.
    const uac = await startSippUac({
      scenario: SCENARIOS.uacRr, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: CALLS, calls: CALLS, timeoutS: 30, traceErrors: true, extraArgs: ['-d', String(HOLD_MS)],
    });
    await new Promise((r) => setTimeout(r, 1500));
    const signalled = Date.now();
    process.kill(siplb.pid, 'SIGTERM');
    // The signal is handled on siplb's next turn: a call that starts once it has been is refused,
    // and the balancer is still there for the others.
    const handle = siplb;
    await eventually('siplb logs its graceful stop', 3000, () => handle.logs().some((l) => l.includes('graceful stop: new calls get 503')));
    assert.match(await inviteStatus(lbPort, 'after-sigterm', 3000), /^SIP\/2\.0 503 /);
    assert.equal(siplb.hasExited(), false, 'siplb must wait for the calls in progress');
    const result = await uac.done;
    assert.equal(result.stats?.successful, CALLS, describeResult('UAC', result));
    assert.equal(result.stats?.failed, 0, describeResult('UAC', result));
    assert.ok(await exitedWithin(siplb, 5000), 'siplb exits soon after the last call ended');
    const status = await siplb.exit;
    assert.equal(status.code, 0, siplb.logs().slice(-20).join('\n'));
    const took = Date.now() - signalled;
    assert.ok(took < SHUTDOWN_TIMEOUT_MS, `exited ${took} ms after SIGTERM, before shutdownTimeout (${SHUTDOWN_TIMEOUT_MS} ms)`);
    assert.ok(siplb.logs().some((l) => l.includes('graceful stop: closing')), 'the graceful path was taken');
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await siplb?.stop();
    releasePorts(ports);
  }
});

test('a second SIGTERM stops at once, calls in progress or not', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(3);
  const [lbPort, uas, uacPort] = ports;
  let node: SippUas | undefined;
  let siplb: SiplbHandle | undefined;
  try {
    node = await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: uas, timeoutS: 40 });
    siplb = await startSiplb({ externalUdpPort: String(lbPort), nodes: `127.0.0.1:${uas};transport=udp`, shutdownTimeout: '30000', healthCheckInterval: '0' },
      { logLevel: 'info' });
    const uac = await startSippUac({
      scenario: SCENARIOS.uacRr, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: 5, calls: 5, timeoutS: 30, extraArgs: ['-d', '20000'],
    });
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(siplb.pid, 'SIGTERM');
    assert.equal(await exitedWithin(siplb, 1000), false, 'the first SIGTERM waits for the calls');
    process.kill(siplb.pid, 'SIGTERM');
    assert.ok(await exitedWithin(siplb, 4000), 'the second SIGTERM stops at once');
    assert.equal((await siplb.exit).code, 0);
    await uac.abort(1000);
  } finally {
    await node?.stop(1_000);
    await siplb?.stop();
    releasePorts(ports);
  }
});

/** One OPTIONS to the balancer itself; resolves with the status line. */
function optionsStatus(lbPort: number, tag: string, timeoutMs: number): Promise<string> {
  const socket = dgram.createSocket('udp4');
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no answer to OPTIONS ${tag} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('message', (m) => {
      clearTimeout(timer);
      socket.close();
      resolve(m.toString('latin1').split('\r\n')[0]);
    });
    socket.bind(0, '127.0.0.1', () => {
      const port = socket.address().port;
      socket.send([
        `OPTIONS sip:127.0.0.1:${lbPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-opt-${tag};rport`,
        'Max-Forwards: 70', 'From: <sip:advisor@example.org>;tag=o1', `To: <sip:127.0.0.1:${lbPort}>`, `Call-ID: opt-${tag}`,
        'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
      ].join('\r\n'), lbPort, '127.0.0.1');
    });
  });
}

test('shutdownAnnounceTime: OPTIONS get 503 at once while new calls are still taken, then 503 for new calls, exit once nothing is forwarded', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(3);
  const [lbPort, uas, uacPort] = ports;
  let node: SippUas | undefined;
  let siplb: SiplbHandle | undefined;
  const ANNOUNCE_MS = 2500;
  try {
    node = await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: uas, timeoutS: 40 });
    siplb = await startSiplb({
      externalUdpPort: String(lbPort), nodes: `127.0.0.1:${uas};transport=udp`, healthCheckInterval: '0',
      shutdownTimeout: '30000', shutdownAnnounceTime: String(ANNOUNCE_MS),
    }, { logLevel: 'info', stopGraceMs: 35_000 });
    assert.equal(await optionsStatus(lbPort, 'before', 3000), 'SIP/2.0 200 OK');
    // A held call: in a lone balancer its BYE comes here; behind a sprayer it would go elsewhere.
    const uac = await startSippUac({
      scenario: SCENARIOS.uacRr, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: 1, calls: 1, timeoutS: 30, extraArgs: ['-d', '3000'],
    });
    await new Promise((r) => setTimeout(r, 800));
    const signalled = Date.now();
    process.kill(siplb.pid, 'SIGTERM');
    const handle = siplb;
    await eventually('siplb announces its stop', 3000, () => handle.logs().some((l) => l.includes('graceful stop: OPTIONS get 503')));
    assert.match(await optionsStatus(lbPort, 'announced', 3000), /^SIP\/2\.0 503 .*balancer stopping/);
    // Still within the announcement: a new call is taken (the node answers it).
    assert.match(await inviteStatus(lbPort, 'during-announce', 3000), /^SIP\/2\.0 200 /);
    await eventually('the announcement ends', ANNOUNCE_MS + 2000, () => handle.logs().some((l) => l.includes('graceful stop: new calls get 503')));
    assert.match(await inviteStatus(lbPort, 'after-announce', 3000), /^SIP\/2\.0 503 /);
    const result = await uac.done;
    assert.equal(result.stats.failed, 0, describeResult('held call', result));
    // The INVITE answered during the announcement never got its ACK or BYE: the call stays in the
    // tracker, so only "nothing forwarded for 2 s" can end the stop before shutdownTimeout.
    assert.ok(await exitedWithin(siplb, 8000), 'siplb exits once nothing has been forwarded for 2 s');
    assert.equal((await siplb.exit).code, 0);
    const took = Date.now() - signalled;
    assert.ok(took < 15_000, `exited ${took} ms after SIGTERM, long before shutdownTimeout`);
    assert.ok(siplb.logs().some((l) => l.includes('"idle":true')), 'ended by the idle rule');
  } finally {
    await node?.stop(1_000);
    await siplb?.stop();
    releasePorts(ports);
  }
});
