// End to end: a real sipp UAC places calls through a real siplb process to two real sipp UASes
// on loopback, over UDP and over TCP, with sipp's built-in uac/uas (ACK and BYE addressed to the
// balancer, routed by Call-ID affinity) and with uac-rr/uas-rr (ACK and BYE follow the
// Record-Route set learned from the 200). Every call must complete, and round-robin must give
// each node a fair share.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb } from './harness/siplb.ts';
import type { SiplbHandle } from './harness/siplb.ts';
import { SCENARIOS, describeResult, runSippUac, startSippUas } from './harness/sipp.ts';
import type { SippResult, SippTransport, SippUas } from './harness/sipp.ts';

const CALLS = 200;
const RATE = 100;            // calls/s: 2 s of traffic per case
const MIN_SHARE = 0.3;       // round-robin over two nodes gives 50 %; 30 % leaves room for nothing but bugs

interface Case {
  name: string;
  transport: SippTransport;
  routeSet: boolean;          // uac-rr/uas-rr instead of the built-in scenarios
  twoPorts: boolean;          // separate internalPort toward the nodes
  nodeTransport?: SippTransport; // the nodes' transport when it differs from the client's
}

const CASES: Case[] = [
  { name: 'UDP, built-in uac -> uas', transport: 'u1', routeSet: false, twoPorts: false },
  { name: 'UDP, uac-rr -> uas-rr (Record-Route set)', transport: 'u1', routeSet: true, twoPorts: false },
  { name: 'TCP, built-in uac -> uas', transport: 't1', routeSet: false, twoPorts: false },
  { name: 'TCP, uac-rr -> uas-rr (Record-Route set)', transport: 't1', routeSet: true, twoPorts: false },
  { name: 'UDP, two-port mode (internalPort), uac-rr -> uas-rr', transport: 'u1', routeSet: true, twoPorts: true },
  // One port, TCP client, UDP nodes: double Record-Route (transport=tcp for the client's side).
  { name: 'TCP client, UDP nodes, uac-rr -> uas-rr (Record-Route set)', transport: 't1', routeSet: true, twoPorts: false, nodeTransport: 'u1' },
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Sent requests of one method in a sipp -trace_msg log, each as its full message text. */
function sentRequests(messageLog: string, method: string): string[] {
  return messageLog
    .split(/^-{10,}.*$/m)
    .filter((block) => /message sent/.test(block))
    .map((block) => block.slice(block.indexOf('\n', block.indexOf('message sent')) + 1).trimStart())
    .filter((msg) => msg.startsWith(`${method} `));
}

async function runCase(c: Case): Promise<void> {
  const ports = await allocatePorts(c.twoPorts ? 5 : 4);
  const [lbPort, uasPortA, uasPortB, uacPort] = ports;
  const internalPort = c.twoPorts ? ports[4] : null;
  const uasTransport = c.nodeTransport ?? c.transport;
  const nodeTransport = uasTransport === 'u1' ? 'udp' : 'tcp';
  const uasScenario = c.routeSet ? SCENARIOS.uasRr : 'uas';
  const uacScenario = c.routeSet ? SCENARIOS.uacRr : 'uac';

  const uases: SippUas[] = [];
  let siplb: SiplbHandle | undefined;
  try {
    for (const port of [uasPortA, uasPortB]) {
      uases.push(await startSippUas({
        scenario: uasScenario, transport: uasTransport, localPort: port, timeoutS: 40, traceErrors: true,
      }));
    }
    const props: Record<string, string> = {
      host: '127.0.0.1',
      externalPort: String(lbPort),
      externalTransport: 'udp,tcp',
      nodes: `127.0.0.1:${uasPortA};transport=${nodeTransport},127.0.0.1:${uasPortB};transport=${nodeTransport}`,
    };
    if (internalPort !== null) {
      props['internalPort'] = String(internalPort);
      props['internalTransport'] = 'udp,tcp';
    }
    siplb = await startSiplb(props, { logLevel: 'info' });

    const uac = await runSippUac({
      scenario: uacScenario,
      transport: c.transport,
      localPort: uacPort,
      remote: `127.0.0.1:${lbPort}`,
      rate: RATE,
      calls: CALLS,
      timeoutS: 25,
      traceErrors: true,
      // Only the route-set cases need the messages, to check what was actually routed.
      traceMessages: c.routeSet,
    });
    // Stop the UASes before siplb so that closing the balancer's TCP connections cannot fail
    // calls still in their timewait.
    const [resA, resB] = await Promise.all(uases.map((u) => u.stop()));
    const context = (): string => [
      describeResult('UAC', uac),
      describeResult(`UAS ${uasPortA}`, resA),
      describeResult(`UAS ${uasPortB}`, resB),
      `siplb log (tail):\n${siplb?.logs().slice(-40).join('\n') ?? ''}`,
    ].join('\n');

    assert.equal(uac.stats.failed, 0, `failed calls\n${context()}`);
    assert.equal(uac.stats.successful, CALLS, `successful calls\n${context()}`);
    assert.equal(uac.exit.code, 0, `sipp UAC exit code\n${context()}`);

    // Each call reached exactly one node, and every call a node took ended there (its ACK and BYE
    // reached the same node as its INVITE).
    const incoming = [resA.stats.incoming, resB.stats.incoming];
    assert.equal(incoming[0] + incoming[1], CALLS, `calls received by the nodes\n${context()}`);
    for (const [i, res] of [resA, resB].entries()) {
      assert.ok(incoming[i] >= CALLS * MIN_SHARE, `node ${i} got ${incoming[i]} of ${CALLS} calls\n${context()}`);
      assert.equal(res.stats.successful, res.stats.incoming, `node ${i} calls completed\n${context()}`);
      assert.equal(res.stats.failed, 0, `node ${i} failed calls\n${context()}`);
    }

    if (c.routeSet) assertRouteSet(uac, lbPort, context);

    await siplb.stop();
    assert.equal(await siplb.exitCode, 0, `siplb exit code after SIGTERM\n${siplb.logs().slice(-20).join('\n')}`);
  } finally {
    // Reached with processes still running only when something above failed.
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await siplb?.stop();
    releasePorts(ports);
  }
}

/** The balancer record-routed the INVITE and the UAC's ACK and BYE carried that route. */
function assertRouteSet(uac: SippResult, lbPort: number, context: () => string): void {
  const log = uac.messageLog;
  // A client on a stream connection finds a flow token in the user part of the entry facing it.
  const ownRecordRoute = new RegExp(`^Record-Route:.*<sip:(?:lbf[\\w-]+@)?127\\.0\\.0\\.1:${escapeRegExp(String(lbPort))}[^>]*;lr[;>]`, 'mi');
  // assert.ok, not assert.match: a failing match would print the whole multi-megabyte log.
  assert.ok(ownRecordRoute.test(log), `no Record-Route of the balancer (port ${lbPort}, ;lr) in the responses the UAC received\n${context()}`);
  for (const method of ['ACK', 'BYE']) {
    const sent = sentRequests(log, method);
    assert.ok(sent.length > 0, `the UAC message log holds no ${method}\n${context()}`);
    const withoutRoute = sent.filter((msg) => !/^Route:\s*<sip:(?:lbf[\w-]+@)?127\.0\.0\.1:/mi.test(msg));
    assert.equal(withoutRoute.length, 0, `${withoutRoute.length} of ${sent.length} ${method}s carried no Route to the balancer; first:\n${withoutRoute[0] ?? ''}`);
  }
}

// The cases share nothing (each allocates its own ports and processes) and each is mostly
// waiting (2 s of calls at 100/s, then the UASes' 4 s timewait), so they run side by side.
describe('sipp UAC -> siplb -> two sipp UAS', { concurrency: true }, () => {
  for (const c of CASES) {
    test(c.name, { timeout: 45_000 }, () => runCase(c));
  }
});
