// Restcomm's own configuration files, unchanged (test/fixtures/restcomm, copied from
// RestComm/load-balancer), given to the real siplb command as a migrating operator would: each
// must start the balancer it describes, with the ports it names bound (and no others), its
// algorithm and its nodes, and carry real SIP. The performance files are run with Restcomm's
// own performance sipp scenarios as sipp_scenarios/performance/performance-test.sh runs them:
// two UAS on 5090 and 5091 (the file's extraServerNodes), the UAC sending to 5060.
//
// The files bind fixed ports (5060, 5061, 5065, 5090, 5091), which is why this file's tests run
// one after the other, and why the suite's other tests allocate ports from a window far above.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { boundPorts, socketInodes } from './harness/procnet.ts';
import { REPO_ROOT, startSiplbWithFile, type SiplbHandle } from './harness/siplb.ts';
import { eventually } from '../helpers/wait.ts';
import { describeResult, runSippUac, SCENARIOS, startSippUas, type SippUas } from './harness/sipp.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'restcomm');
const PERFORMANCE = join(FIXTURES, 'performance');

interface ReadyLine {
  algorithm?: string;
  nodes?: string[];
  external?: string;
  internal?: string;
  http?: string;
}

function readyLine(siplb: SiplbHandle): ReadyLine {
  const line = siplb.jsonLogs().find((l) => l['msg'] === 'siplb ready');
  assert.ok(line !== undefined, 'no "siplb ready" line');
  return line as ReadyLine;
}

/** The warn-level lines (pino level 40), once `expected` is among them: the start-up log may trail the ready line. */
async function warnings(siplb: SiplbHandle, expected: RegExp): Promise<string[]> {
  const current = (): string[] => siplb.jsonLogs().filter((l) => l['level'] === 40).map((l) => String(l['msg']));
  await eventually(`a warning like ${expected}`, 3000, () => current().some((m) => expected.test(m)));
  return current();
}

/** The SIP ports the process has bound, as "udp:5060"-style strings, sorted. */
function sipSockets(pid: number): string[] {
  const inodes = socketInodes(pid);
  const out: string[] = [];
  for (const proto of ['udp', 'tcp'] as const) {
    for (const port of boundPorts(proto, inodes)) if (port >= 5000 && port < 6000) out.push(`${proto}:${port}`);
  }
  return out.sort();
}

/** The HTTP ports (2080, 2081) the process has bound over TCP, sorted. */
function httpSockets(pid: number): number[] {
  return [...boundPorts('tcp', socketInodes(pid))].filter((p) => p === 2080 || p === 2081).sort();
}

/** Sends one request over UDP from 127.0.0.1 and returns the first response's status line. */
async function askUdp(port: number, method: string): Promise<string> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const local = socket.address().port;
  const callId = `restcomm-files-${Date.now()}-${Math.random()}`;
  const request = [
    `${method} sip:service@127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${callId.replace(/[^a-z0-9]/gi, '')};rport`,
    'Max-Forwards: 70',
    `From: <sip:alice@127.0.0.1:${local}>;tag=1`,
    'To: <sip:service@127.0.0.1>',
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:alice@127.0.0.1:${local}>`,
    'Content-Length: 0',
    '', '',
  ].join('\r\n');
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${method} on udp ${port} within 3 s`)), 3000);
      socket.on('message', (data) => {
        const status = data.toString('latin1').split('\r\n')[0];
        if (/^SIP\/2\.0 1\d\d/.test(status)) return; // provisional: wait for the final answer
        clearTimeout(timer);
        resolve(status);
      });
      socket.send(request, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

describe("Restcomm's configuration files, unchanged", { concurrency: 1 }, () => {
  test('lb-configuration.properties (repository root): UDP 5060 for clients, UDP 5065 for nodes, Call-ID affinity', async () => {
    const siplb = await startSiplbWithFile(join(FIXTURES, 'lb-configuration.properties'), { logLevel: 'info' });
    try {
      assert.deepEqual(sipSockets(siplb.pid), ['udp:5060', 'udp:5065']);
      const ready = readyLine(siplb);
      assert.equal(ready.algorithm, 'callid');
      assert.deepEqual(ready.nodes, []);
      // No nodes yet: a call is refused by the balancer itself, on the client port.
      assert.match(await askUdp(5060, 'INVITE'), /^SIP\/2\.0 503 /);
      // httpPort=2080 opens the HTTP balancer; httpsPort=2081 comes without a certificate (Restcomm
      // read a Java keystore), so HTTPS stays off with a warning and the file still starts.
      assert.deepEqual(httpSockets(siplb.pid), [2080]);
      assert.equal(ready.http, '127.0.0.1:2080, https off (httpsPort=2081 needs tlsCertFile and tlsKeyFile)');
      const w = await warnings(siplb, /^the SMPP load balancer is not part of siplb/);
      assert.ok(w.some((m) => m.startsWith('httpsPort=2081 needs tlsCertFile and tlsKeyFile: no HTTPS listener')), w.join('\n'));
      assert.ok(!w.some((m) => m.startsWith('unknown configuration key')), w.join('\n'));
    } finally {
      await siplb.stop();
    }
  });

  test('lb-configuration.xml (repository root), chosen by content: UDP and TCP on 5061 and 5065', async () => {
    const siplb = await startSiplbWithFile(join(FIXTURES, 'lb-configuration.xml'), { logLevel: 'info' });
    try {
      assert.deepEqual(sipSockets(siplb.pid), ['tcp:5061', 'tcp:5065', 'udp:5061', 'udp:5065']);
      assert.equal(readyLine(siplb).algorithm, 'callid');
      assert.match(await askUdp(5061, 'INVITE'), /^SIP\/2\.0 503 /);
      assert.deepEqual(httpSockets(siplb.pid), [2080]);
      const w = await warnings(siplb, /^httpsPort=2081 needs tlsCertFile and tlsKeyFile: no HTTPS listener/);
      assert.ok(!w.some((m) => m.startsWith('unknown configuration key')), w.join('\n'));
    } finally {
      await siplb.stop();
    }
  });

  test("lb-configuration-test.xml (Restcomm's unit-test file): user-based algorithm, 5060 and 5065", async () => {
    const siplb = await startSiplbWithFile(join(FIXTURES, 'lb-configuration-test.xml'), { logLevel: 'info' });
    try {
      assert.deepEqual(sipSockets(siplb.pid), ['tcp:5060', 'tcp:5065', 'udp:5060', 'udp:5065']);
      assert.equal(readyLine(siplb).algorithm, 'user');
      await warnings(siplb, /Kubernetes heartbeat is not available/);
    } finally {
      await siplb.stop();
    }
  });

  for (const file of ['lb-configuration.properties', 'lb-configuration.xml']) {
    test(`performance/${file}: performanceTestingMode makes 127.0.0.1:5090 and :5091 nodes; calls complete on both`, async () => {
      const uases: SippUas[] = [];
      let siplb: SiplbHandle | undefined;
      try {
        for (const port of [5090, 5091]) {
          uases.push(await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: port, timeoutS: 40, traceErrors: true }));
        }
        siplb = await startSiplbWithFile(join(PERFORMANCE, file), { logLevel: 'info' });
        assert.deepEqual(sipSockets(siplb.pid).filter((s) => !s.endsWith(':5090') && !s.endsWith(':5091')),
          ['tcp:5060', 'tcp:5065', 'udp:5060', 'udp:5065']);
        assert.deepEqual([...(readyLine(siplb).nodes ?? [])].sort(), ['127.0.0.1:5090', '127.0.0.1:5091'].sort());
        const calls = 40;
        const uac = await runSippUac({
          scenario: SCENARIOS.uacRr, transport: 'u1', localPort: 5055, remote: '127.0.0.1:5060',
          rate: 40, calls, timeoutS: 20, traceErrors: true,
        });
        const results = await Promise.all(uases.map((u) => u.stop()));
        const context = [describeResult('UAC', uac), ...results.map((r, i) => describeResult(`UAS ${5090 + i}`, r))].join('\n');
        assert.equal(uac.stats.successful, calls, context);
        assert.equal(uac.stats.failed, 0, context);
        for (const r of results) assert.ok(r.stats.incoming > 0, `a node got no call\n${context}`);
      } finally {
        await Promise.allSettled(uases.map((u) => u.stop(1_000)));
        await siplb?.stop();
      }
    });
  }

  // Restcomm's own performance scenarios, unchanged: the UAC holds each call 59 s and the UAS
  // sends the BYE after 60 s, back through the balancer's internal port. Two calls, one minute.
  test("performance/lb-configuration.xml with Restcomm's performance-proxy-uac/uas scenarios", { timeout: 120_000 }, async () => {
    const uases: SippUas[] = [];
    let siplb: SiplbHandle | undefined;
    try {
      for (const port of [5090, 5091]) {
        uases.push(await startSippUas({
          scenario: { file: join(PERFORMANCE, 'performance-proxy-uas.xml') }, transport: 'u1', localPort: port, timeoutS: 100, traceErrors: true,
        }));
      }
      siplb = await startSiplbWithFile(join(PERFORMANCE, 'lb-configuration.xml'), { logLevel: 'info' });
      const calls = 2;
      const uac = await runSippUac({
        scenario: { file: join(PERFORMANCE, 'performance-proxy-uac.xml') }, transport: 'u1', localPort: 5055,
        remote: '127.0.0.1:5060', rate: 2, calls, timeoutS: 90, traceErrors: true,
      });
      const results = await Promise.all(uases.map((u) => u.stop(2_000)));
      const context = [describeResult('UAC', uac), ...results.map((r, i) => describeResult(`UAS ${5090 + i}`, r))].join('\n');
      assert.equal(uac.stats.successful, calls, context);
      assert.equal(uac.stats.failed, 0, context);
      assert.equal(results.reduce((n, r) => n + r.stats.successful, 0), calls, context);
    } finally {
      await Promise.allSettled(uases.map((u) => u.stop(1_000)));
      await siplb?.stop();
    }
  });
});
