// A flood of TCP connections that never send a SIP message (and some that send half of one)
// against a real siplb, while sipp places real calls over TCP from another address: the calls
// all complete. Each flooding address is held to maxConnectionsPerSource, the silent connections
// make room for new peers when the listener is full, and they are closed after the first-message
// deadline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { describeResult, runSippUac, startSippUas, type SippUas } from './harness/sipp.ts';

const FLOOD_SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const PER_SOURCE = 500;
const PARTIAL = 200;

function openSilent(port: number, from: string): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(null));
  });
}

test('a flood of silent and half-sent TCP connections from three addresses does not stop sipp calls from a fourth', { timeout: 120_000 }, async () => {
  const ports = await allocatePorts(4);
  const [lbPort, uasA, uasB, uacPort] = ports;
  const uases: SippUas[] = [];
  const flood: net.Socket[] = [];
  let siplb: SiplbHandle | undefined;
  try {
    for (const port of [uasA, uasB]) uases.push(await startSippUas({ scenario: 'uas', transport: 't1', localPort: port, timeoutS: 60 }));
    siplb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), externalTransport: 'udp,tcp',
      nodes: `127.0.0.1:${uasA};transport=tcp,127.0.0.1:${uasB};transport=tcp`,
      maxConnectionsPerSource: String(PER_SOURCE),
    }, { logLevel: 'info' });
    // Each flooding address tries for one connection more than it may hold.
    let refused = 0;
    for (const from of FLOOD_SOURCES) {
      for (let i = 0; i <= PER_SOURCE; i++) {
        const s = await openSilent(lbPort, from);
        if (s === null) {
          refused++;
          continue;
        }
        s.on('error', () => undefined);
        flood.push(s);
      }
    }
    // Half a message each: the framer holds them until the slow-sender or first-message deadline.
    for (let i = 0; i < PARTIAL; i++) {
      const s = await openSilent(lbPort, '127.0.0.5');
      if (s === null) continue;
      s.on('error', () => undefined);
      s.write(`INVITE sip:flood@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.5:1;branch=z9hG4bK-f${i}\r\nContent-Le`);
      flood.push(s);
    }
    const closedByServer = (): number => flood.filter((s) => s.readyState !== 'open').length;
    // A refused connection is accepted by the kernel and closed by siplb at once.
    await new Promise((r) => setTimeout(r, 500));
    const overLimit = closedByServer() + refused;
    const result = await runSippUac({
      scenario: 'uac', transport: 't1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: 50, calls: 200, timeoutS: 40, traceErrors: true,
    });
    console.log(`flood: ${flood.length + refused} connections opened, ${overLimit} over maxConnectionsPerSource closed at once; sipp: ${result.stats.successful} calls completed, ${result.stats.failed} failed`);
    assert.equal(result.stats.failed, 0, describeResult('calls during the flood', result));
    assert.equal(result.stats.successful, 200, describeResult('calls during the flood', result));
    assert.equal(overLimit, FLOOD_SOURCES.length, 'one connection over the bound per flooding address was closed');
    assert.equal(siplb.hasExited(), false);
  } finally {
    for (const s of flood) s.destroy();
    await Promise.allSettled(uases.map((u) => u.stop(1000)));
    await siplb?.stop();
    releasePorts(ports);
  }
});
