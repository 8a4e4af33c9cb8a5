// End to end: two of the Restcomm switches the proxy honours, with a real siplb process, real sipp
// and plain UDP sockets on loopback.
//
//   - isSendTrying: the UAS (sipp's built-in uas) answers 180 and 200 and never 100. With the
//     switch on, a UAC whose scenario requires a 100 before anything else completes every call:
//     the 100 can only be the balancer's. With it off, a UAC whose scenario fails a call on any
//     100 completes every call, and its message log holds no 100.
//   - blockedValues: requests from a scanner (User-Agent friendly-scanner, From sipvicious) get
//     no answer and never reach the node, while sipp's calls from the same address complete.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { callsTaken, describeResult, runSippUac, SCENARIO_DIR, startSippUas, type SippScenario, type SippUas } from './harness/sipp.ts';
import { eventually } from '../helpers/wait.ts';

const CALLS = 5;
const UAC_TRYING: SippScenario = { file: join(SCENARIO_DIR, 'uac-trying.xml') };
const UAC_NO_TRYING: SippScenario = { file: join(SCENARIO_DIR, 'uac-no-trying.xml') };


/** Responses with this status in a sipp -trace_msg log that sipp received. */
function received(messageLog: string, status: number): number {
  return messageLog
    .split(/^-{10,}.*$/m)
    .filter((block) => /message received/.test(block))
    .filter((block) => new RegExp(`^SIP/2\\.0 ${status} `, 'm').test(block)).length;
}

async function tryingCase(sendTrying: boolean): Promise<void> {
  const ports = await allocatePorts(3);
  const [lbPort, uasPort, uacPort] = ports;
  let uas: SippUas | undefined;
  let lb: SiplbHandle | undefined;
  try {
    uas = await startSippUas({ scenario: 'uas', transport: 'u1', localPort: uasPort, timeoutS: 8, statsEveryMs: 100 });
    lb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), nodes: `127.0.0.1:${uasPort}`, isSendTrying: String(sendTrying),
    }, { logLevel: 'info' });
    const uac = await runSippUac({
      scenario: sendTrying ? UAC_TRYING : UAC_NO_TRYING, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: 20, calls: CALLS, timeoutS: 6, traceMessages: true, traceErrors: true,
      // A call that waits for a 100 that never comes fails at once instead of after 32 s.
      extraArgs: ['-recv_timeout', '2000'],
    });
    const context = `${describeResult('UAC', uac)}\nsiplb log (tail):\n${lb.logs().slice(-20).join('\n')}`;
    assert.equal(uac.stats.successful, CALLS, context);
    assert.equal(uac.stats.failed, 0, context);
    assert.equal(received(uac.messageLog, 100), sendTrying ? CALLS : 0, `100 Trying received by the UAC\n${context}`);
    assert.equal(received(uac.messageLog, 180), CALLS, `the UAS's 180s are relayed\n${context}`);
    await eventually('the UAS to count its calls', 3_000, () => callsTaken(uas!) >= CALLS);
  } finally {
    await uas?.stop(1_000);
    await lb?.stop();
    releasePorts(ports);
  }
}

test('isSendTrying=true: each INVITE is answered with siplb\'s 100 Trying before the UAS (which sends none) answers; calls complete', { timeout: 10_000 }, () => tryingCase(true));

test('isSendTrying=false: no 100 reaches the client; calls complete', { timeout: 10_000 }, () => tryingCase(false));

function scannerRequest(method: string, callId: string, port: number, lbPort: number, header: string): string {
  return [
    `${method} sip:100@127.0.0.1:${lbPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    header.startsWith('From:') ? header : 'From: "100" <sip:100@127.0.0.1>;tag=scan',
    'To: "100" <sip:100@127.0.0.1>',
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:100@127.0.0.1:${port}>`,
    ...(header.startsWith('From:') ? [] : [header]),
    'Content-Length: 0',
    '', '',
  ].join('\r\n');
}

test('blockedValues: a scanner\'s INVITE and OPTIONS get no answer and never reach the node; calls from the same address complete', { timeout: 10_000 }, async () => {
  const ports = await allocatePorts(3);
  const [lbPort, uasPort, uacPort] = ports;
  const scanner = dgram.createSocket('udp4');
  const answers: string[] = [];
  scanner.on('message', (m) => answers.push(m.toString('latin1')));
  let uas: SippUas | undefined;
  let lb: SiplbHandle | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      scanner.once('error', reject);
      scanner.bind(0, '127.0.0.1', () => resolve());
    });
    const scanPort = scanner.address().port;
    uas = await startSippUas({ scenario: 'uas', transport: 'u1', localPort: uasPort, timeoutS: 8, statsEveryMs: 100, traceMessages: true });
    // The default blockedValues (sipvicious, sipcli, friendly-scanner).
    lb = await startSiplb({ host: '127.0.0.1', externalPort: String(lbPort), nodes: `127.0.0.1:${uasPort}` }, { logLevel: 'info' });

    const send = (text: string): void => scanner.send(Buffer.from(text, 'latin1'), lbPort, '127.0.0.1');
    send(scannerRequest('OPTIONS', 'scan-options', scanPort, lbPort, 'User-Agent: friendly-scanner'));
    send(scannerRequest('INVITE', 'scan-invite', scanPort, lbPort, 'User-Agent: Friendly-Scanner'));
    send(scannerRequest('REGISTER', 'scan-register', scanPort, lbPort, 'From: "sipvicious" <sip:100@127.0.0.1>;tag=scan'));
    // siplb answers this one itself (483), and handles its socket's datagrams in order: any answer
    // to the three before it would arrive before this one.
    send(scannerRequest('OPTIONS', 'barrier', scanPort, lbPort, 'User-Agent: curious').replace('Max-Forwards: 70', 'Max-Forwards: 0'));
    await eventually('siplb\'s 483 to the barrier request', 3_000, () => answers.length > 0);
    assert.equal(answers.length, 1, `only the barrier answered:\n${answers.join('\n---\n')}`);
    assert.match(answers[0], /^SIP\/2\.0 483 Too Many Hops\r\n/);
    assert.match(answers[0], /\r\nCall-ID: barrier\r\n/);

    const uac = await runSippUac({
      scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 20, calls: CALLS, timeoutS: 6, traceErrors: true,
    });
    assert.equal(uac.stats.successful, CALLS, describeResult('UAC', uac));
    assert.equal(uac.stats.failed, 0, describeResult('UAC', uac));
    await eventually('the UAS to count the calls', 3_000, () => callsTaken(uas!) >= CALLS);
    assert.equal(callsTaken(uas), CALLS, 'the node took the calls and nothing else');
    const uasResult = await uas.stop(1_000);
    uas = undefined;
    const invitesAtNode = uasResult.messageLog.match(/^INVITE /gm)?.length ?? 0;
    assert.ok(invitesAtNode >= CALLS, `the calls' INVITEs reached the node (${invitesAtNode})`);
    assert.doesNotMatch(uasResult.messageLog, /scan-|friendly-scanner|sipvicious/i, 'no scanner request reached the node');
    assert.equal(answers.length, 1, 'and still nothing answered the scanner');
  } finally {
    scanner.close();
    await uas?.stop(1_000);
    await lb?.stop();
    releasePorts(ports);
  }
});
