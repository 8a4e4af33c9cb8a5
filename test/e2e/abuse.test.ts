// End to end: a flood of INVITEs from one address against a real siplb with pikeRequests on,
// while sipp places calls from another address through it to two sipp UASes, all on loopback.
// The legitimate calls must all complete; the flood must be dropped (counted as rate-limited in
// /api/v1/stats) after the limit, with the flooding address named in one warn line and shown in
// the blocked gauge.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { describeResult, runSippUac, startSippUas, type SippUas } from './harness/sipp.ts';

const FLOOD_IP = '127.0.0.2';
const CLIENT_IP = '127.0.0.3';
const FLOOD_INVITES = 20_000;
/**
 * INVITEs per second: 50 times the limit, and paced so that the flood lasts about as long as
 * the calls. Unpaced (60 000/s) the kernel dropped most of it on siplb's full socket buffer
 * whenever another test loaded the machine, and the test then measured the kernel.
 */
const FLOOD_RATE = 5000;
/** The flood gives up after this long, sent or not: the test must end. */
const FLOOD_MAX_MS = 15_000;
const PIKE_REQUESTS = 200;
const PIKE_WINDOW_MS = 2000;
/**
 * The sliding window is two fixed windows, the previous one weighted as if its requests were
 * spread evenly over it (source-rate-limit.ts). When a window boundary falls while the flood is
 * still under the limit, the previous window's requests, in fact all at its end, weigh a little
 * less than they should: at most limit × (time to reach the limit) / window more get through,
 * plus one for rounding down.
 */
const WINDOW_EDGE_SLACK = Math.ceil(PIKE_REQUESTS * (PIKE_REQUESTS / FLOOD_RATE * 1000) / PIKE_WINDOW_MS) + 1;
const CALLS = 200;
const RATE = 40; // calls/s from sipp: 80 INVITEs per window, well under the limit

function floodInvite(i: number, lbPort: number, fromPort: number): Buffer {
  const callId = `flood-${i}@${FLOOD_IP}`;
  return Buffer.from([
    `INVITE sip:service@127.0.0.1:${lbPort} SIP/2.0`,
    `Via: SIP/2.0/UDP ${FLOOD_IP}:${fromPort};branch=z9hG4bK-flood-${i}`,
    'From: <sip:flood@example.org>;tag=flood',
    `To: <sip:service@127.0.0.1:${lbPort}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:flood@${FLOOD_IP}:${fromPort}>`,
    'Max-Forwards: 70',
    'Content-Length: 0',
  ].join('\r\n') + '\r\n\r\n', 'latin1');
}

/**
 * Sends `count` INVITEs from FLOOD_IP at FLOOD_RATE (a few in flight at a time, so sends are not
 * queued without bound), within FLOOD_MAX_MS. Returns how many were sent.
 */
async function flood(lbPort: number, count: number): Promise<number> {
  const socket = dgram.createSocket('udp4');
  // Answers (100 Trying, the nodes' responses to the first INVITEs) are not read.
  socket.on('message', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, FLOOD_IP, () => resolve());
  });
  const fromPort = socket.address().port;
  const started = Date.now();
  const deadline = started + FLOOD_MAX_MS;
  let sent = 0;
  try {
    while (sent < count && Date.now() < deadline) {
      const ahead = sent / FLOOD_RATE * 1000 - (Date.now() - started);
      if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead));
      const batch = Math.min(64, count - sent);
      await Promise.all(Array.from({ length: batch }, (_, k) => new Promise<void>((resolve) => {
        socket.send(floodInvite(sent + k, lbPort, fromPort), lbPort, '127.0.0.1', () => resolve());
      })));
      sent += batch;
    }
  } finally {
    socket.close();
  }
  return sent;
}

interface SipStats {
  requestsIn: number;
  callsStarted: number;
  sourcesBlocked: number;
  dropped: Record<string, number>;
}

async function sipStats(apiPort: number): Promise<SipStats> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/stats`);
  assert.equal(res.status, 200);
  const body = await res.json() as { sip: SipStats };
  return body.sip;
}

describe('a flood from one address while sipp places calls from another', () => {
  test(`${FLOOD_INVITES} INVITEs from ${FLOOD_IP} are dropped after ${PIKE_REQUESTS}; ${CALLS} calls from ${CLIENT_IP} all complete`, { timeout: 90_000 }, async () => {
    const ports = await allocatePorts(5);
    const [lbPort, uasPortA, uasPortB, uacPort, apiPort] = ports;
    const uases: SippUas[] = [];
    let siplb: SiplbHandle | undefined;
    try {
      for (const port of [uasPortA, uasPortB]) {
        uases.push(await startSippUas({ scenario: 'uas', transport: 'u1', localPort: port, timeoutS: 60 }));
      }
      siplb = await startSiplb({
        host: '127.0.0.1',
        externalPort: String(lbPort),
        externalTransport: 'udp',
        apiPort: String(apiPort),
        nodes: `127.0.0.1:${uasPortA},127.0.0.1:${uasPortB}`,
        pikeRequests: String(PIKE_REQUESTS),
        pikeWindow: String(PIKE_WINDOW_MS),
        // The flood's forwarded INVITEs are calls that never end: the stop need not wait for them.
        shutdownTimeout: '1000',
      }, { logLevel: 'info' });

      const calls = runSippUac({
        scenario: 'uac', transport: 'u1', localIp: CLIENT_IP, localPort: uacPort,
        remote: `127.0.0.1:${lbPort}`, rate: RATE, calls: CALLS, timeoutS: 40,
      });
      // The flood starts once calls are under way, and overlaps most of them (5 s of calls).
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      const sent = await flood(lbPort, FLOOD_INVITES);
      const floodMs = Date.now() - started;
      const during = await sipStats(apiPort);
      const metrics = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
      const uac = await calls;
      const after = await sipStats(apiPort);
      const lb = siplb;
      const context = (): string => [
        `flood: ${sent} INVITEs in ${floodMs} ms; stats during: ${JSON.stringify(during)}; after: ${JSON.stringify(after)}`,
        describeResult('UAC', uac),
        `siplb log (tail):\n${lb.logs().slice(-30).join('\n')}`,
      ].join('\n');
      console.log(`flood: ${sent} INVITEs in ${floodMs} ms (${Math.round(sent / (floodMs / 1000))}/s); rate-limited ${after.dropped['rate-limited'] ?? 0}; calls started ${after.callsStarted}; requests in ${after.requestsIn}; sipp ${uac.stats.successful} ok / ${uac.stats.failed} failed`);

      assert.equal(sent, FLOOD_INVITES, `the flood was sent whole\n${context()}`);
      assert.equal(uac.stats.failed, 0, `failed calls\n${context()}`);
      assert.equal(uac.stats.successful, CALLS, `successful calls\n${context()}`);

      // Of the flood's INVITEs that reached siplb (the kernel may drop some on a full socket
      // buffer), all but the first window's worth were dropped: calls started are the legitimate
      // ones plus at most what the limit let through before the block.
      // sipp's retransmissions (UDP) are requests too, and a retransmitted INVITE is forwarded
      // again: they blur the split between the two sources by that many.
      const slack = uac.stats.retransmissions + WINDOW_EDGE_SLACK;
      const rateLimited = after.dropped['rate-limited'] ?? 0;
      const floodIn = after.requestsIn - uac.stats.successful * 3; // sipp's INVITE, ACK, BYE per call
      const floodForwarded = after.callsStarted - CALLS;
      assert.ok(floodForwarded <= PIKE_REQUESTS + slack, `${floodForwarded} flood INVITEs forwarded (limit ${PIKE_REQUESTS})\n${context()}`);
      assert.ok(rateLimited >= floodIn - PIKE_REQUESTS - slack && rateLimited > 0, `rate-limited ${rateLimited} of ${floodIn} flood INVITEs received\n${context()}`);
      assert.ok(floodIn >= FLOOD_INVITES / 2, `most of the flood reached siplb (${floodIn} of ${sent}); otherwise this test measured the kernel\n${context()}`);
      assert.equal(during.sourcesBlocked, 1, `the flooding address is blocked right after the flood\n${context()}`);
      assert.match(metrics, /^siplb_sources_blocked 1$/m);
      assert.match(metrics, /^siplb_sip_dropped_messages_total\{reason="rate-limited"\} [1-9][0-9]*$/m);

      const warns = lb.jsonLogs().filter((l) => l.level === 40 && String(l.msg).startsWith('source blocked'));
      assert.equal(warns.length, 1, `one warn line for the one blocked address\n${context()}`);
      assert.equal(warns[0].source, FLOOD_IP);

      await lb.stop();
      assert.equal(await lb.exitCode, 0);
    } finally {
      await Promise.allSettled(uases.map((u) => u.stop(1_000)));
      await siplb?.stop();
      releasePorts(ports);
    }
  });
});
