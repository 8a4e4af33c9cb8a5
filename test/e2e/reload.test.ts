// End to end: a real siplb process reloads its configuration file on SIGHUP while a real sipp
// UAC places calls through it to real sipp UASes (uac-rr/uas-rr: ACK and BYE follow the
// Record-Route set, so they carry siplb's node hint). The reload adds a node and removes
// another while calls on it are in progress; a second SIGHUP with a changed port is refused and
// changes nothing. Every call must complete: the new node takes calls, the removed one finishes
// its calls and takes no more.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { propertiesText, startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { SCENARIOS, describeResult, startSippUac, startSippUas, type SippResult, type SippUas } from './harness/sipp.ts';
import { eventually, sleep } from '../helpers/wait.ts';

const CALLS = 200;
const RATE = 20;          // calls/s: 10 s of traffic
const HOLD_MS = 2000;     // each call lasts 2 s, so calls are in progress on every node at each reload

/** The properties file as written, key by key. */
function readProperties(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

test('SIGHUP during traffic: a node added and a node removed, a refused change ignored, no call fails', { timeout: 90_000 }, async () => {
  const ports = await allocatePorts(6);
  // A heartbeat port of its own: the default (2610) is what Restcomm's own files bind, in another test.
  const [lbPort, uacPort, portA, portB, portC, heartbeatPort] = ports;
  const uases: SippUas[] = [];
  let siplb: SiplbHandle | undefined;
  try {
    for (const port of [portA, portB, portC]) {
      uases.push(await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: port, timeoutS: 60, traceErrors: true }));
    }
    const node = (port: number): string => `127.0.0.1:${port};transport=udp`;
    siplb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), externalTransport: 'udp', heartbeatPort: String(heartbeatPort), healthCheckInterval: '0',
      nodes: `${node(portA)},${node(portB)}`,
    }, { logLevel: 'info' });
    const lb = siplb;
    const props = readProperties(lb.propertiesPath);
    const logged = (msg: string): Array<Record<string, unknown>> => lb.jsonLogs().filter((l) => l['msg'] === msg);

    const uac = await startSippUac({
      scenario: SCENARIOS.uacRr, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: RATE, calls: CALLS, timeoutS: 60, traceErrors: true, extraArgs: ['-d', String(HOLD_MS)],
    });
    await sleep(3000);

    // A removed, C added.
    writeFileSync(lb.propertiesPath, propertiesText({ ...props, nodes: `${node(portB)},${node(portC)}` }));
    process.kill(lb.pid, 'SIGHUP');
    await eventually('"configuration reloaded" logged', 5000, () => logged('configuration reloaded').length === 1);
    assert.deepEqual(logged('configuration reloaded')[0]['applied'], ['nodes']);

    await sleep(2000);
    // A port change: refused, naming the key; the file is then put back.
    writeFileSync(lb.propertiesPath, propertiesText({ ...props, nodes: `${node(portB)},${node(portC)}`, externalPort: String(lbPort + 1) }));
    process.kill(lb.pid, 'SIGHUP');
    await eventually('"configuration not reloaded" logged', 5000, () => logged('configuration not reloaded: nothing was changed').length === 1);
    const refused = logged('configuration not reloaded: nothing was changed')[0]['refused'] as { key: string }[];
    assert.deepEqual(refused.map((r) => r.key), ['externalPort']);
    writeFileSync(lb.propertiesPath, propertiesText({ ...props, nodes: `${node(portB)},${node(portC)}` }));

    const result = await uac.done;
    // Node A is still there, draining, until its last calls' transactions are over.
    const api = `http://127.0.0.1:${props['apiPort']}`;
    const views = (await (await fetch(`${api}/api/v1/nodes`)).json()) as { nodes: { id: string; state: string; why: string }[] };
    const results: SippResult[] = await Promise.all(uases.map((u) => u.stop()));
    const [resA, resB, resC] = results;
    const context = (): string => [
      describeResult('UAC', result), describeResult('UAS A (removed)', resA), describeResult('UAS B', resB), describeResult('UAS C (added)', resC),
      `siplb log (tail):\n${lb.logs().slice(-30).join('\n')}`,
    ].join('\n');

    console.log(`reload under traffic: ${result.stats.successful} of ${CALLS} calls completed, ${result.stats.failed} failed; node A (removed) took ${resA.stats.incoming}, B ${resB.stats.incoming}, C (added) ${resC.stats.incoming}`);
    assert.equal(result.stats.failed, 0, `failed calls\n${context()}`);
    assert.equal(result.stats.successful, CALLS, `successful calls\n${context()}`);
    assert.equal(resA.stats.incoming + resB.stats.incoming + resC.stats.incoming, CALLS, `calls the nodes received\n${context()}`);
    assert.ok(resA.stats.incoming > 0, `the removed node had calls before the reload\n${context()}`);
    assert.ok(resA.stats.incoming < CALLS / 2 - 20, `the removed node took no new calls after the reload\n${context()}`);
    assert.ok(resC.stats.incoming > 0, `the added node took calls\n${context()}`);
    for (const [name, r] of [['A', resA], ['B', resB], ['C', resC]] as const) {
      assert.equal(r.stats.failed, 0, `node ${name} failed calls\n${context()}`);
      assert.equal(r.stats.successful, r.stats.incoming, `node ${name}: every call it took completed\n${context()}`);
    }
    const viewA = views.nodes.find((n) => n.id === `127.0.0.1:${portA}`);
    assert.equal(viewA?.state, 'draining', JSON.stringify(views));
    assert.match(viewA?.why ?? '', /removed from nodes=/);

    await lb.stop();
    assert.equal(await lb.exitCode, 0);
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await siplb?.stop();
    releasePorts(ports);
  }
});
