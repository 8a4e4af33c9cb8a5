// One SIP OPTIONS to a balancer, over UDP or TCP, the way WebSphere's SIP advisor asks: the
// Request-URI names the balancer itself (no user part), which siplb answers locally with 200
// while it has a node to send calls to and 503 when it has none or is stopping.
//
// A probe passes only on a 2xx final response to this very transaction (Call-ID, CSeq and the
// top Via's branch all ours). Any other final status fails it ("503 Service Unavailable (no node
// available)"), and so do silence until the timeout, an ICMP port unreachable (each UDP probe
// has its own connected socket, so the kernel reports it) and a refused or reset connection.
// Provisional responses and anything that is not our answer are ignored: nothing a peer sends
// can throw out of here.

import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net, { isIPv6 } from 'node:net';
import { StreamFramer } from '../sip/framing.ts';
import { splitCommaRanges } from '../sip/lists.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../sip/message.ts';
import { T1_MS, T2_MS } from '../sip/timers.ts';
import { parseVia } from '../sip/via.ts';
import { endpointName, type Endpoint } from './nft-script.ts';

export type ProbeTransport = 'udp' | 'tcp';

export interface ProbeOutcome {
  ok: boolean;
  /** The final status received, null when none was. */
  code: number | null;
  /** "200 OK", "503 Service Unavailable", "no answer within 2000 ms", "TCP connection refused"... */
  reason: string;
  /** From the first byte sent to the answer (or the failure). */
  rttMs: number;
}

/** What identifies our transaction in an answer. */
interface Transaction {
  callId: string;
  cseq: number;
  branch: string;
}

const MAX_ANSWER_BYTES = 65_535;

/** The OPTIONS text, and the transaction it opens. `via` is the probe's own host:port. */
export function optionsRequest(target: Endpoint, transport: ProbeTransport, via: string): { bytes: Buffer; tx: Transaction } {
  const tx: Transaction = {
    callId: `adv-${randomBytes(10).toString('hex')}@siplb-advisor`,
    cseq: 1 + randomBytes(2).readUInt16BE(0),
    branch: `z9hG4bK-adv-${randomBytes(8).toString('hex')}`,
  };
  const uri = `sip:${endpointName(target)}${transport === 'tcp' ? ';transport=tcp' : ''}`;
  const bytes = Buffer.from([
    `OPTIONS ${uri} SIP/2.0`,
    `Via: SIP/2.0/${transport.toUpperCase()} ${via};branch=${tx.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:siplb-advisor@${via}>;tag=${randomBytes(6).toString('hex')}`,
    `To: <sip:${endpointName(target)}>`,
    `Call-ID: ${tx.callId}`,
    `CSeq: ${tx.cseq} OPTIONS`,
    'Accept: application/sdp',
    'User-Agent: siplb-advisor',
    'Content-Length: 0',
    '', '',
  ].join('\r\n'), 'latin1');
  return { bytes, tx };
}

/**
 * The outcome an answer gives the transaction: null when it is not a final response to it
 * (a provisional one, someone else's, unreadable), else pass on 2xx, fail on anything else.
 */
export function judgeAnswer(data: Buffer, tx: Transaction, datagram: boolean): Omit<ProbeOutcome, 'rttMs'> | null {
  const msg = parseSipMessage(data, datagram);
  if (isParseFailure(msg) || msg.isRequest || msg.status < 200 || msg.status > 699) return null;
  if (msg.callId !== tx.callId || msg.cseqNum !== tx.cseq || msg.cseqMethod !== 'OPTIONS' || topBranch(msg) !== tx.branch) return null;
  const phrase = reasonPhrase(msg);
  const reason = phrase.length > 0 ? `${msg.status} ${phrase}` : String(msg.status);
  return { ok: msg.status < 300, code: msg.status, reason };
}

function topBranch(msg: SipMessage): string | null {
  const i = msg.indexOf('via');
  if (i === -1) return null;
  const value = msg.value(i);
  const ranges = splitCommaRanges(value, 0, value.length);
  if (ranges.length < 2) return null;
  return parseVia(value.slice(ranges[0], ranges[1]))?.branch ?? null;
}

/** The status line's reason phrase (latin1, control characters dropped so it is safe in logs). */
function reasonPhrase(msg: SipMessage): string {
  const line = msg.head.slice(0, msg.startLineEnd);
  const m = /^SIP\/2\.0\s+\d{3}\s?(.*)$/i.exec(line);
  return m === null ? '' : m[1].replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 200);
}

/** One OPTIONS over `transport`; always resolves, never rejects. */
export function probeBalancer(target: Endpoint, transport: ProbeTransport, timeoutMs: number): Promise<ProbeOutcome> {
  return transport === 'udp' ? probeUdp(target, timeoutMs) : probeTcp(target, timeoutMs);
}

function probeUdp(target: Endpoint, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = dgram.createSocket(isIPv6(target.host) ? 'udp6' : 'udp4');
    const timers: NodeJS.Timeout[] = [];
    let tx: Transaction | null = null;
    let settled = false;
    const finish = (o: Omit<ProbeOutcome, 'rttMs'>): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      try {
        socket.close();
      } catch {
        // Already closed by an error: nothing to release.
      }
      resolve({ ...o, rttMs: Math.round((performance.now() - started) * 10) / 10 });
    };
    timers.push(setTimeout(() => finish({ ok: false, code: null, reason: `no answer within ${timeoutMs} ms` }), timeoutMs));
    socket.on('error', (err: NodeJS.ErrnoException) => finish({
      ok: false, code: null,
      reason: err.code === 'ECONNREFUSED' ? 'UDP port unreachable (nothing listening)' : `UDP error: ${err.code ?? err.message}`,
    }));
    socket.on('message', (data: Buffer) => {
      if (tx === null || settled) return;
      try {
        const judged = judgeAnswer(data, tx, true);
        if (judged !== null) finish(judged);
      } catch {
        // A bug meeting odd input: the datagram is ignored like any other that is not our answer.
      }
    });
    // Connected: only the balancer's datagrams reach this socket, and its ICMP errors do too.
    socket.connect(target.port, target.host, () => {
      if (settled) return;
      const local = socket.address();
      const req = optionsRequest(target, 'udp', endpointName({ host: local.address, port: local.port }));
      tx = req.tx;
      const send = (): void => {
        if (!settled) socket.send(req.bytes);
      };
      send();
      // RFC 3261 §17.1.2.2 timer E: one lost datagram is not a dead balancer.
      for (let at = T1_MS, step = T1_MS; at < timeoutMs; step = Math.min(step * 2, T2_MS), at += step) timers.push(setTimeout(send, at));
    });
  });
}

function probeTcp(target: Endpoint, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    let tx: Transaction | null = null;
    let settled = false;
    const socket = net.connect({ host: target.host, port: target.port });
    const finish = (o: Omit<ProbeOutcome, 'rttMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...o, rttMs: Math.round((performance.now() - started) * 10) / 10 });
    };
    const timer = setTimeout(() => finish({ ok: false, code: null, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    const framer = new StreamFramer(MAX_ANSWER_BYTES, {
      message: (data) => {
        if (tx === null) return;
        const judged = judgeAnswer(data, tx, false);
        if (judged !== null) finish(judged);
      },
      ping: () => undefined,
      error: (why) => finish({ ok: false, code: null, reason: `unreadable answer on TCP: ${why}` }),
    });
    socket.on('connect', () => {
      const req = optionsRequest(target, 'tcp', endpointName({ host: socket.localAddress ?? target.host, port: socket.localPort ?? 0 }));
      tx = req.tx;
      socket.write(req.bytes);
    });
    socket.on('data', (chunk: Buffer) => {
      // The guard for bugs where input enters: a bad answer fails the probe, never the advisor.
      try {
        framer.push(chunk);
      } catch (err) {
        finish({ ok: false, code: null, reason: `unreadable answer on TCP: ${(err as Error).message}` });
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish({
      ok: false, code: null,
      reason: err.code === 'ECONNREFUSED' ? 'TCP connection refused' : err.code === 'ECONNRESET' ? 'TCP connection reset' : `TCP error: ${err.code ?? err.message}`,
    }));
    socket.on('close', () => finish({ ok: false, code: null, reason: 'TCP connection closed without an answer' }));
  });
}
