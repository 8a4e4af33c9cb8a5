// Warm-up before the listeners open: synthetic calls through a private SipProxy, so that V8 has
// compiled the parser, the request and response paths and the editor by the time the first real
// message arrives.
//
// Why: a cold Node process spends its first few thousand calls in the interpreter and in the
// optimising compilers (measured: the first 2000 calls cost about twice the CPU per call of the
// steady state). At a few thousand calls per second that is the moment UDP receive buffers
// overflow and clients' INVITEs go unanswered; Kamailio, compiled ahead of time, has no such
// moment. Code is shared by every instance of a class, so what runs hot here is hot for the real
// proxy. The private proxy has its own cluster view, algorithm, statistics and output (a
// function that drops what it is given): nothing of it reaches a socket, the shared store or
// the metrics.

import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { CallIdAffinity } from '../algorithms/callid-affinity.ts';
import type { SipNode } from '../cluster/node.ts';
import { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { Config } from '../config/types.ts';
import { MemoryStateStore } from '../state/memory-store.ts';
import type { Destination, Inbound } from '../transport/types.ts';
import { LocalAddresses } from './local-addresses.ts';
import { proxyPolicy } from './policy.ts';
import { SipProxy } from './proxy.ts';
import { ProxyStats } from './stats.ts';

export interface WarmUpResult {
  calls: number;
  /** Messages the private proxy forwarded: 6 per call when every path ran. */
  forwarded: number;
  ms: number;
}

// Documentation addresses (RFC 5737): nothing is ever sent to them, they only have to differ.
const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '198.51.100.7', port: 5080, connectionId: 0 };
const NODES: SipNode[] = [1, 2].map((n) => ({ id: `192.0.2.${n}:5070`, ip: `192.0.2.${n}`, ports: { udp: 5070 }, weight: 1 }));
const SDP = 'v=0\r\no=user1 53655765 2353687637 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

/**
 * Runs `calls` calls (INVITE, 180, 200, ACK, BYE, 200) through a proxy built like the real one
 * from `cfg`, then discards it. Never throws: a warm-up that fails only leaves the code colder.
 */
export function warmUp(cfg: Config, calls: number): WarmUpResult {
  const started = performance.now();
  let forwarded = 0;
  if (calls <= 0) return { calls: 0, forwarded, ms: 0 };
  let last: { dest: Destination; data: Buffer } | null = null;
  const log = pino({ level: 'silent' });
  const store = new MemoryStateStore();
  const algorithm = new CallIdAffinity({ config: cfg, store, loads: { activeCalls: () => 0 }, log });
  const cluster = new ClusterSnapshot(NODES.map((node) => ({ node, state: 'active' as const })));
  // The path as configured (Record-Route, addresses), without what keeps state about sources or
  // load: one synthetic source sending thousands of requests must not be limited or shed.
  const policy = { ...proxyPolicy(cfg), sourceLimit: null, overloadControl: false, blocked: null, sendTrying: false };
  const proxy = new SipProxy({
    addresses: new LocalAddresses(cfg), cluster: () => cluster, algorithm, log, stats: new ProxyStats(),
    secret: randomBytes(18).toString('base64url'), policy,
    out: { send: (dest, data) => { last = { dest, data }; forwarded++; } },
  });
  const take = (): { dest: Destination; data: Buffer } | null => {
    const l = last;
    last = null;
    return l;
  };
  try {
    for (let i = 0; i < calls; i++) {
      const callId = `${i}-${started.toFixed(0)}-warm-up@198.51.100.7`;
      proxy.onMessage(request('INVITE', callId, 1, i, ''), CLIENT);
      const invite = take();
      if (invite === null) continue;
      const node = nodeOf(invite.dest);
      proxy.onMessage(answer(invite.data, '180 Ringing', false), node);
      proxy.onMessage(answer(invite.data, '200 OK', true), node);
      const toTag = `;tag=${i}-uas`;
      proxy.onMessage(request('ACK', callId, 1, i, toTag), CLIENT);
      proxy.onMessage(request('BYE', callId, 2, i, toTag), CLIENT);
      const bye = take();
      if (bye !== null) proxy.onMessage(answer(bye.data, '200 OK', true), nodeOf(bye.dest));
    }
  } catch {
    // onMessage does not throw; building the synthetic messages is all that could.
  } finally {
    proxy.close();
    algorithm.close();
    void store.close();
  }
  return { calls, forwarded, ms: performance.now() - started };
}

function nodeOf(dest: Destination): Inbound {
  return { transport: 'udp', side: dest.side, ip: dest.host, port: dest.port, connectionId: 0 };
}

/** A request as a UAC (sipp's uac scenario) sends it. */
function request(method: string, callId: string, cseq: number, i: number, toTag: string): Buffer {
  const body = method === 'INVITE' ? SDP : '';
  return Buffer.from(
    `${method} sip:service@192.0.2.100:5060 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 198.51.100.7:5080;branch=z9hG4bK-${i}-${cseq}-${method.length}\r\n` +
    `From: sipp <sip:sipp@198.51.100.7:5080>;tag=${i}SIPpTag00\r\n` +
    `To: service <sip:service@192.0.2.100:5060>${toTag}\r\n` +
    `Call-ID: ${callId}\r\n` +
    `CSeq: ${cseq} ${method}\r\n` +
    'Contact: sip:sipp@198.51.100.7:5080\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n' +
    (body === '' ? '' : 'Content-Type: application/sdp\r\n') +
    `Content-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
}

/** A node's response to a request the proxy forwarded: its Vias, Record-Routes, From, To (tagged), Call-ID, CSeq. */
function answer(forwarded: Buffer, status: string, withBody: boolean): Buffer {
  const text = forwarded.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const echoed: string[] = [];
  for (const line of head.split('\r\n').slice(1)) {
    const name = line.slice(0, line.indexOf(':')).toLowerCase();
    if (name === 'to' && !line.includes('tag=')) echoed.push(`${line};tag=uas`);
    else if (name === 'via' || name === 'record-route' || name === 'from' || name === 'to' || name === 'call-id' || name === 'cseq') echoed.push(line);
  }
  const body = withBody ? SDP : '';
  return Buffer.from(`SIP/2.0 ${status}\r\n${echoed.join('\r\n')}\r\nContact: <sip:192.0.2.1:5070;transport=UDP>\r\n` +
    (body === '' ? '' : 'Content-Type: application/sdp\r\n') + `Content-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
}
