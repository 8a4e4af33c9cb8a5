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

/** Milliseconds until the server closes `s`, or null if it is still open after `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<number | null> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    s.resume();
  });
}

test('the stream hygiene keys reach the listeners: tcpFirstMessageTimeout, tcpMessageTimeout, tcpIdleTimeout, maxTcpConnections', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(1);
  const [lbPort] = ports;
  const open: net.Socket[] = [];
  let siplb: SiplbHandle | undefined;
  try {
    siplb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), externalTransport: 'udp,tcp', nodes: '127.0.0.1:5999;transport=tcp',
      tcpFirstMessageTimeout: '1000', tcpMessageTimeout: '1000', tcpIdleTimeout: '10000', maxTcpConnections: '3',
    }, { logLevel: 'info' });
    // One that speaks (an OPTIONS to the balancer, answered) and then says nothing: closed after
    // the idle timeout, watched while the other checks run.
    const talker = await openSilent(lbPort, '127.0.0.10');
    assert.ok(talker !== null);
    open.push(talker);
    let answered = '';
    talker.on('data', (d: Buffer) => { answered += d.toString('latin1'); });
    talker.write(`OPTIONS sip:127.0.0.1:${lbPort} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.10:1;branch=z9hG4bK-idle\r\nFrom: <sip:t@x>;tag=1\r\n` +
      'To: <sip:127.0.0.1>\r\nCall-ID: idle-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n');
    const talkerClosed = closedWithin(talker, 14_000);
    // Silent: closed after the first-message deadline, not the idle timeout.
    const silent = await openSilent(lbPort, '127.0.0.5');
    assert.ok(silent !== null);
    open.push(silent);
    const silentMs = await closedWithin(silent, 5_000);
    assert.ok(silentMs !== null && silentMs >= 900 && silentMs < 3_000, `silent connection closed after ${silentMs} ms`);
    // Half a message: closed within the message deadline (between half of it and all of it, plus a tick).
    const slow = await openSilent(lbPort, '127.0.0.5');
    assert.ok(slow !== null);
    open.push(slow);
    slow.write('OPTIONS sip:lb@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.5:1;branch=z9hG4bK-slow\r\n');
    const slowMs = await closedWithin(slow, 5_000);
    assert.ok(slowMs !== null && slowMs < 3_000, `slow sender closed after ${slowMs} ms`);
    // The listener holds 3 connections in all: the talker and two silent ones; then a fourth comes.
    const held: net.Socket[] = [];
    for (const from of ['127.0.0.6', '127.0.0.7']) {
      const s = await openSilent(lbPort, from);
      assert.ok(s !== null);
      held.push(s);
      open.push(s);
    }
    const closed = new Set<net.Socket>();
    for (const s of held) s.once('close', () => closed.add(s));
    const fourth = await openSilent(lbPort, '127.0.0.9');
    assert.ok(fourth !== null);
    open.push(fourth);
    fourth.once('close', () => closed.add(fourth));
    // Full: the oldest silent connection makes room for the newcomer (the talker, which spoke, is
    // kept), so the listener never holds more than 3 and connections that never spoke cannot lock
    // a new client out.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([...closed], [held[0]], 'the oldest silent connection closed, and only it');
    const talkerMs = await talkerClosed;
    assert.match(answered, /^SIP\/2\.0 (200|503) /, `the OPTIONS to the balancer answered: ${JSON.stringify(answered.slice(0, 80))}`);
    assert.ok(talkerMs !== null && talkerMs >= 9_500, `a connection that spoke closed after ${talkerMs} ms (tcpIdleTimeout 10000)`);
  } finally {
    for (const s of open) s.destroy();
    await siplb?.stop();
    releasePorts(ports);
  }
});
