// Micro-benchmark of the SIP data path without sockets: one call = INVITE, 180, 200, ACK, BYE,
// 200 through SipProxy.onMessage, with a fake UAS answering the forwarded requests. Prints the
// CPU microseconds per call spent in parsing, routing and rewriting (the part siplb controls;
// the socket cost comes on top and is measured by bench/sipp-load.ts).
//
//   node bench/proxy-micro.ts [--calls 200000] [--send-trying] [--pike N] [--pollute KB]
//
// --send-trying turns isSendTrying on: siplb then also builds and sends a 100 Trying per INVITE
// (the fake UAS sends no 100 of its own, as sipp's uas does not).
// --pike N sets pikeRequests=N (0: off) and moves the nodes to 127.0.0.2, so that the client is
// not on a node's address (those are never limited) and every INVITE goes through the per-source
// limit; compare --pike 0 with --pike 1000000 (a limit this run never reaches).
// --pollute KB writes one byte per cache line of a KB-sized array before every message (outside
// the timed part), so that each message starts with caches full of someone else's data, as in a
// real run where the kernel, Node's receive and send and the sipp processes run between two
// messages. A hot loop keeps the whole data path in the CPU's caches and so understates the cost:
// on the 2-core VM (2 MiB L2 per core) 56 µs per call became 81 µs with 1024 KB and 214 µs with
// 4096 KB, against about 140 µs of JavaScript per call that perf measures in siplb under sipp.
// What touches less memory per message shows here and not in the hot loop.

import { pino } from 'pino';
import { CallIdAffinity } from '../src/algorithms/callid-affinity.ts';
import { algorithmContext } from '../test/helpers/cluster.ts';
import { ClusterSnapshot } from '../src/cluster/snapshot.ts';
import { defaultConfig } from '../src/config/load.ts';
import { LocalAddresses } from '../src/proxy/local-addresses.ts';
import { proxyPolicy } from '../src/proxy/policy.ts';
import { SipProxy } from '../src/proxy/proxy.ts';
import { ProxyStats } from '../src/proxy/stats.ts';
import type { Inbound } from '../src/transport/types.ts';

const argCalls = process.argv.indexOf('--calls');
const calls = argCalls === -1 ? 200_000 : Number(process.argv[argCalls + 1]);
const sendTrying = process.argv.includes('--send-trying');
const argPike = process.argv.indexOf('--pike');
const pike = argPike === -1 ? null : Number(process.argv[argPike + 1]);
const argPollute = process.argv.indexOf('--pollute');
const polluteKb = argPollute === -1 ? 0 : Number(process.argv[argPollute + 1]);
if (!Number.isInteger(polluteKb) || polluteKb < 0 || polluteKb > 1 << 20) throw new Error(`--pollute: KB as an integer 0..${1 << 20}, got ${process.argv[argPollute + 1]}`);
const nodeIp = pike === null ? '127.0.0.1' : '127.0.0.2';

const cfg = { ...defaultConfig(), externalHost: '127.0.0.1', externalPort: 5060, pikeRequests: pike ?? 0 };
const nodes = [5071, 5072].map((port) => ({ id: `${nodeIp}:${port}`, ip: nodeIp, ports: { udp: port }, weight: 1 }));
const cluster = new ClusterSnapshot(nodes.map((node) => ({ node, state: 'active' as const })));
const stats = new ProxyStats();
let lastSent: Buffer = Buffer.alloc(0);
let sent = 0;
const proxy = new SipProxy({
  addresses: new LocalAddresses(cfg),
  cluster: () => cluster,
  algorithm: new CallIdAffinity(algorithmContext()),
  out: { send: (_dest, data) => { lastSent = data; sent++; } },
  log: pino({ level: 'warn' }),
  stats,
  secret: 'micro-benchmark-secret',
  // Off by default, like bench/sipp-load.ts, so the figure compares with Kamailio's stateless
  // forward() and with the history in bench/README.md.
  policy: proxyPolicy({ ...cfg, isSendTrying: sendTrying }),
});

const client: Inbound = { transport: 'udp', side: 'external', ip: '127.0.0.1', port: 5080, connectionId: 0 };
const node1: Inbound = { transport: 'udp', side: 'external', ip: nodeIp, port: 5071, connectionId: 0 };

function request(method: string, callId: string, cseq: number, branch: string, toTag: string): Buffer {
  return Buffer.from(
    `${method} sip:service@127.0.0.1:5060 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5080;branch=${branch}\r\n` +
    `From: sipp <sip:sipp@127.0.0.1:5080>;tag=${callId}-from\r\n` +
    `To: service <sip:service@127.0.0.1:5060>${toTag}\r\n` +
    `Call-ID: ${callId}\r\n` +
    `CSeq: ${cseq} ${method}\r\n` +
    'Contact: sip:sipp@127.0.0.1:5080\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n' +
    (method === 'INVITE'
      ? 'Content-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n'
      : 'Content-Length: 0\r\n\r\n'), 'latin1');
}

/** What a UAS answers to the request the proxy just sent: its Vias, From, To(+tag), Call-ID, CSeq. */
function response(forwarded: Buffer, status: string): Buffer {
  const lines = forwarded.toString('latin1').split('\r\n');
  const keep = lines.filter((l) => /^(Via|From|To|Call-ID|CSeq|Record-Route):/i.test(l))
    .map((l) => (/^To:/i.test(l) && !l.includes('tag=') ? `${l};tag=uas` : l));
  return Buffer.from(`SIP/2.0 ${status}\r\n${keep.join('\r\n')}\r\nContact: <sip:${nodeIp}:5071>\r\nContent-Length: 0\r\n\r\n`, 'latin1');
}

function oneCall(i: number): void {
  const callId = `${i}-bench@127.0.0.1`;
  proxy.onMessage(request('INVITE', callId, 1, `z9hG4bK-${i}-1`, ''), client);
  const inv = lastSent;
  const r180 = response(inv, '180 Ringing');
  const r200 = response(inv, '200 OK');
  proxy.onMessage(r180, node1);
  proxy.onMessage(r200, node1);
  proxy.onMessage(request('ACK', callId, 1, `z9hG4bK-${i}-2`, ';tag=uas'), client);
  proxy.onMessage(request('BYE', callId, 2, `z9hG4bK-${i}-3`, ';tag=uas'), client);
  proxy.onMessage(response(lastSent, '200 OK'), node1);
}

// Message construction is not the proxy's cost: build the client side up front, time only onMessage.
for (let i = 0; i < 20_000; i++) oneCall(i); // warm-up
const before = sent;
let proxyNs = 0n;
const polluter = new Uint8Array(polluteKb * 1024);

/** One message through the proxy, timed; the caches polluted first (--pollute) outside the time. */
function timed(data: Buffer, from: Inbound): void {
  for (let k = 0; k < polluter.length; k += 64) polluter[k]++;
  const s = process.hrtime.bigint();
  proxy.onMessage(data, from);
  proxyNs += process.hrtime.bigint() - s;
}

const t0 = process.cpuUsage();
for (let i = 0; i < calls; i++) {
  const callId = `${i + 1_000_000}-bench@127.0.0.1`;
  const inv = request('INVITE', callId, 1, `z9hG4bK-${i}-1`, '');
  const ack = request('ACK', callId, 1, `z9hG4bK-${i}-2`, ';tag=uas');
  const bye = request('BYE', callId, 2, `z9hG4bK-${i}-3`, ';tag=uas');
  timed(inv, client);
  const r180 = response(lastSent, '180 Ringing');
  const r200 = response(lastSent, '200 OK');
  timed(r180, node1);
  timed(r200, node1);
  timed(ack, client);
  timed(bye, client);
  timed(response(lastSent, '200 OK'), node1);
}
const cpu = process.cpuUsage(t0);
const perCall = sendTrying ? 7 : 6;
if (sent - before !== calls * perCall) throw new Error(`expected ${calls * perCall} messages sent, got ${sent - before}`);
const usPerCall = Number(proxyNs) / 1000 / calls;
console.log(`calls=${calls} proxy_us_per_call=${usPerCall.toFixed(2)} proxy_us_per_message=${(usPerCall / 6).toFixed(2)} (whole loop incl. message construction: ${((cpu.user + cpu.system) / calls).toFixed(2)} us/call)`);
if (pike !== null && stats.dropped.size > 0) throw new Error(`requests dropped: ${JSON.stringify(Object.fromEntries(stats.dropped))}`);
console.log(JSON.stringify({ bench: 'proxy-micro', calls, sendTrying, pike, polluteKb, proxyUsPerCall: Number(usPerCall.toFixed(2)) }));
