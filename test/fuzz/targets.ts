// What the fuzzer drives, and what it checks beyond "does not throw". A target throws on a crash
// or a broken invariant, and otherwise returns a short signature of what the input made the code
// do: an input with a signature never seen before joins the corpus (behaviour as a cheap
// stand-in for coverage).

import { pino } from 'pino';
import { CallIdAffinity } from '../../src/algorithms/callid-affinity.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { ClusterSnapshot, type NodeState } from '../../src/cluster/snapshot.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { LocalAddresses } from '../../src/proxy/local-addresses.ts';
import { proxyPolicy } from '../../src/proxy/policy.ts';
import { SipProxy } from '../../src/proxy/proxy.ts';
import { ProxyStats } from '../../src/proxy/stats.ts';
import { StreamFramer } from '../../src/sip/framing.ts';
import { splitCommaRanges, unfold } from '../../src/sip/lists.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { headerParam, nameAddrUri, parseSipUri, sipUriHostPort } from '../../src/sip/uri.ts';
import { parseVia, responseTarget } from '../../src/sip/via.ts';
import type { Destination, Inbound } from '../../src/transport/types.ts';
import { algorithmContext } from '../helpers/cluster.ts';
import { loadSeeds } from './corpus.ts';
import type { FuzzInput } from './mutate.ts';

export interface Target {
  readonly name: TargetName;
  /** Number of distinct `variant` values. */
  readonly variants: number;
  readonly seeds: readonly FuzzInput[];
  /** One input; throws on a crash or a broken invariant; returns a behaviour signature. */
  run(input: FuzzInput): string;
  /** Frees what the target holds (timers of the proxy's algorithm). */
  close(): void;
}

export type TargetName = 'parser' | 'framer' | 'proxy';
export const TARGETS: readonly TargetName[] = ['parser', 'framer', 'proxy'];

export class InvariantError extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new InvariantError(what);
}

const MAX_MESSAGE_SIZE = defaultConfig().maxMessageSize;

export function makeTarget(name: TargetName): Target {
  switch (name) {
    case 'parser': return parserTarget();
    case 'framer': return framerTarget();
    case 'proxy': return proxyTarget();
  }
}

function staticSeeds(variants: number): FuzzInput[] {
  return loadSeeds().map((s, i) => ({ data: s.data, variant: i % variants }));
}

// ------------------------------------------------------------------------------------ parser

function parserTarget(): Target {
  return {
    name: 'parser', variants: 2, seeds: staticSeeds(2),
    run(input) {
      // Both modes every time; the variant decides which one's outcome is the signature.
      const a = exerciseParse(input.data, true);
      const b = exerciseParse(input.data, false);
      return input.variant === 0 ? a : b;
    },
    close() {},
  };
}

/** parseSipMessage and every accessor the proxy reads a message with; returns a signature. */
export function exerciseParse(data: Buffer, datagram: boolean): string {
  const m = parseSipMessage(data, datagram);
  if (isParseFailure(m)) return `F:${m.failure}`;
  checkMessageShape(m);
  for (let i = 0; i < m.headerCount; i++) {
    m.value(i);
    m.flatValue(i);
  }
  void m.body;
  let sig = `${m.isRequest ? 'Q' : 'S'}:${m.error ?? 'ok'}`;
  let vias = 0;
  for (let i = 0; i < m.headerCount; i++) {
    const name = m.names[i];
    if (name === 'via') {
      const r = splitCommaRanges(m.head, m.valueStarts[i], m.lineEnds[i]);
      check(r.length % 2 === 0, 'splitCommaRanges returned an odd count');
      for (let k = 0; k < r.length; k += 2) {
        check(r[k] >= m.valueStarts[i] && r[k] < r[k + 1] && r[k + 1] <= m.lineEnds[i], 'Via range outside its line');
        const via = parseVia(unfold(m.head.slice(r[k], r[k + 1])));
        if (via !== null) {
          const t = responseTarget(via);
          check(Number.isInteger(t.port) && t.port >= 0, `response target port ${t.port}`);
          if (vias === 0) sig += `|via:${via.branch === null ? 'nobranch' : 'branch'}:${via.rport === undefined ? '' : 'rport'}`;
        } else if (vias === 0) sig += '|via:bad';
        vias++;
      }
    } else if (name === 'from' || name === 'to' || name === 'route' || name === 'record-route' || name === 'contact') {
      const v = m.value(i);
      const r = splitCommaRanges(v, 0, v.length);
      for (let k = 0; k < r.length; k += 2) {
        const uri = nameAddrUri(v.slice(r[k], r[k + 1]));
        if (uri !== null) {
          parseSipUri(uri);
          sipUriHostPort(uri);
        }
      }
      headerParam(v, 'tag');
      headerParam(v, 'lbnode');
    }
  }
  if (m.isRequest) {
    const u = parseSipUri(m.requestUri);
    sipUriHostPort(m.requestUri);
    sig += u === null ? '|ruri:bad' : `|ruri:${u.scheme}`;
  }
  return sig;
}

function checkMessageShape(m: SipMessage): void {
  const n = m.names.length;
  check(m.lineStarts.length === n && m.lineEnds.length === n && m.valueStarts.length === n && m.nextStarts.length === n, 'header index arrays differ in length');
  check(m.bodyStart >= 0 && m.bodyStart <= m.bodyEnd && m.bodyEnd <= m.buf.length, `body [${m.bodyStart}, ${m.bodyEnd}) outside ${m.buf.length} bytes`);
  check(m.headersStart <= m.head.length && m.startLineEnd <= m.headersStart, 'start line past the head');
  for (let i = 0; i < n; i++) {
    check(m.lineStarts[i] < m.valueStarts[i] && m.valueStarts[i] <= m.lineEnds[i] + 1 && m.lineEnds[i] <= m.nextStarts[i] && m.nextStarts[i] <= m.head.length, `header ${i} offsets out of order`);
  }
  if (m.error === null) {
    check(m.callId.length > 0 && m.cseqNum >= 0 && m.cseqMethod.length > 0, 'valid message without Call-ID or CSeq');
  }
}

// ------------------------------------------------------------------------------------ framer

interface Framed {
  messages: Buffer[];
  pings: number;
  error: string | null;
  pending: number;
}

function frameAll(chunks: readonly Buffer[], maxSize: number): Framed {
  const out: Framed = { messages: [], pings: 0, error: null, pending: 0 };
  let given = 0;
  const framer = new StreamFramer(maxSize, {
    message(data) { out.messages.push(Buffer.from(data)); },
    ping() { out.pings++; },
    error(reason) {
      check(out.error === null, 'framer reported a second error');
      out.error = reason;
    },
  });
  for (const chunk of chunks) {
    framer.push(chunk);
    given += chunk.length;
    if (out.error === null) check(framer.pendingBytes <= maxSize, `framer holds ${framer.pendingBytes} bytes, limit ${maxSize}`);
    let handed = out.pings * 4;
    for (const m of out.messages) handed += m.length;
    check(handed + framer.pendingBytes <= given || out.error !== null, `framer handed out ${handed} + ${framer.pendingBytes} pending of ${given} bytes`);
  }
  check(framer.framed === out.messages.length, 'framed count differs from messages handed out');
  for (const m of out.messages) check(m.length <= maxSize, `message of ${m.length} bytes over the limit ${maxSize}`);
  out.pending = framer.pendingBytes;
  return out;
}

function framerTarget(): Target {
  return {
    name: 'framer', variants: 1 << 16, seeds: staticSeeds(1 << 16),
    run(input) {
      const v = input.variant;
      // Small limits too, so the "message too large" paths are reached by ordinary inputs.
      const maxSize = [MAX_MESSAGE_SIZE, 4096, 600, 64][v & 3];
      const whole = frameAll([input.data], maxSize);
      // The same stream cut differently must frame to the same messages: chunk boundaries are
      // the transport's business, never the framer's.
      const chunks: Buffer[] = [];
      let seed = (v >>> 2) | 1;
      const mode = (v >>> 2) & 3;
      for (let p = 0; p < input.data.length;) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        // Byte by byte only for short inputs: a 90 kB input would take 90k pushes.
        const size = mode === 0 && input.data.length <= 4096 ? 1 : mode <= 1 ? 1 + (seed % 7) : 1 + (seed % Math.max(1, input.data.length));
        chunks.push(input.data.subarray(p, p + size));
        p += size;
      }
      const cut = frameAll(chunks, maxSize);
      // Which limit trips first may depend on the cut (a head too long before its end arrived,
      // or a message too long once it did); that the stream fails may not.
      check((whole.error === null) === (cut.error === null), `chunking changed the outcome: ${whole.error} vs ${cut.error}`);
      if (whole.error === null) {
        check(whole.messages.length === cut.messages.length && whole.pings === cut.pings, `chunking changed the messages: ${whole.messages.length}/${whole.pings} vs ${cut.messages.length}/${cut.pings}`);
        for (let i = 0; i < whole.messages.length; i++) check(whole.messages[i].equals(cut.messages[i]), `message ${i} differs when chunked`);
        check(whole.pending === cut.pending, `pending ${whole.pending} vs ${cut.pending} when chunked`);
      }
      for (const m of whole.messages) exerciseParse(m, false);
      return `${whole.error === null ? 'ok' : whole.error.replace(/\d+/g, 'N')}|m${Math.min(whole.messages.length, 4)}|p${Math.min(whole.pings, 2)}|${whole.pending > 0 ? 'pend' : ''}|${maxSize}`;
    },
    close() {},
  };
}

// ------------------------------------------------------------------------------------ proxy

const LB_IP = '10.0.0.1';
const NODE_A: SipNode = { id: '10.0.0.11:5080', ip: '10.0.0.11', ports: { udp: 5080, tcp: 5080 }, weight: 1 };
const NODE_B: SipNode = { id: '10.0.0.12:5080', ip: '10.0.0.12', ports: { udp: 5080, tcp: 5080 }, weight: 1 };

/** Where fuzzed messages come from: clients and nodes, datagrams and streams. */
const SOURCES: readonly { transport: Inbound['transport']; ip: string; port: number; connectionId: number; node: boolean }[] = [
  { transport: 'udp', ip: '192.0.2.10', port: 5061, connectionId: 0, node: false },
  { transport: 'tcp', ip: '192.0.2.10', port: 40000, connectionId: 7, node: false },
  { transport: 'udp', ip: '10.0.0.11', port: 5080, connectionId: 0, node: true },
  { transport: 'tcp', ip: '10.0.0.12', port: 5080, connectionId: 9, node: true },
  { transport: 'ws', ip: '192.0.2.50', port: 50000, connectionId: 11, node: false },
];

/** Two balancers: one port for both sides, all nodes up; two ports, node B down (heirs, repicks). */
const SETUPS = [
  { internalPort: null, states: {} as Record<string, NodeState> },
  { internalPort: 5065, states: { [NODE_B.id]: 'down' } as Record<string, NodeState> },
];

interface ProxyRig {
  proxy: SipProxy;
  stats: ProxyStats;
  sent: { dest: Destination; data: Buffer }[];
  close(): void;
}

function proxyRig(setup: number, errors?: string[]): ProxyRig {
  const s = SETUPS[setup];
  const cfg = { ...defaultConfig(), host: LB_IP, externalHost: LB_IP, internalHost: LB_IP, externalPort: 5060, internalPort: s.internalPort, externalTlsPort: 5061, externalWsPort: 5062,
    // Overload control samples the loop on a timer: the fuzzer's busy loop would make verdicts vary.
    overloadControl: false };
  const cluster = new ClusterSnapshot([NODE_A, NODE_B].map((node) => ({ node, state: s.states[node.id] ?? 'active' })), []);
  const algorithm = new CallIdAffinity(algorithmContext());
  const stats = new ProxyStats();
  const sent: ProxyRig['sent'] = [];
  const log = errors === undefined ? pino({ level: 'silent' }) : pino({ level: 'error' }, { write: (line: string) => { errors.push(line); } });
  const proxy = new SipProxy({
    addresses: new LocalAddresses(cfg), cluster: () => cluster, algorithm, log, stats,
    out: { send(dest, data) { sent.push({ dest, data: Buffer.from(data) }); } },
    secret: 'fuzz-secret', policy: proxyPolicy(cfg),
  });
  return { proxy, stats, sent, close() { proxy.close(); algorithm.close(); } };
}

function inboundOf(setup: number, source: number): Inbound {
  const s = SOURCES[source];
  const twoPorts = SETUPS[setup].internalPort !== null;
  return { transport: s.transport, side: s.node && twoPorts ? 'internal' : 'external', ip: s.ip, port: s.port, connectionId: s.connectionId };
}

function viaCount(m: SipMessage): number {
  let n = 0;
  for (let i = 0; i < m.headerCount; i++) if (m.names[i] === 'via') n += splitCommaRanges(m.head, m.valueStarts[i], m.lineEnds[i]).length / 2;
  return n;
}

/** Responses a node would send to what siplb forwarded, so the response path gets past its MAC check. */
function responsesTo(req: SipMessage): string[] {
  const out: string[] = [];
  const vias: string[] = [];
  for (let i = 0; i < req.headerCount; i++) if (req.names[i] === 'via') vias.push(req.head.slice(req.lineStarts[i], req.lineEnds[i]));
  const to = /;\s*tag=/i.test(req.to) ? req.to : `${req.to};tag=node1`;
  for (const status of req.method === 'INVITE' ? ['100 Trying', '180 Ringing', '200 OK', '486 Busy Here', '503 Service Unavailable'] : ['200 OK', '481 Gone']) {
    out.push([`SIP/2.0 ${status}`, ...vias, `From: ${req.from}`, `To: ${to}`, `Call-ID: ${req.callId}`, `CSeq: ${req.cseqNum} ${req.cseqMethod}`,
      'Record-Route: <sip:10.0.0.1:5060;lr;lbnode=10.0.0.11:5080>', 'Contact: <sip:node@10.0.0.11:5080>', 'Content-Length: 0', '', ''].join('\r\n'));
  }
  return out;
}

const RIG_LIFETIME = 20_000; // inputs; the algorithm's table of calls grows with every new Call-ID

function proxyTarget(): Target {
  const variants = SETUPS.length * SOURCES.length;
  const seeds = staticSeeds(variants);
  // Each request seed goes through each balancer once; what comes out becomes node responses.
  for (let setup = 0; setup < SETUPS.length; setup++) {
    const rig = proxyRig(setup);
    for (const seed of loadSeeds()) {
      rig.sent.length = 0;
      rig.proxy.onMessage(seed.data, inboundOf(setup, 0));
      for (const s of rig.sent) {
        const m = parseSipMessage(s.data, true);
        if (isParseFailure(m) || !m.isRequest || m.error !== null) continue;
        const node = SOURCES.findIndex((x) => x.ip === s.dest.host && x.node);
        for (const r of responsesTo(m)) seeds.push({ data: Buffer.from(r, 'latin1'), variant: setup * SOURCES.length + (node === -1 ? 2 : node) });
      }
    }
    rig.close();
  }
  const rigs = SETUPS.map((_, i) => proxyRig(i));
  let used = 0;
  return {
    name: 'proxy', variants, seeds,
    run(input) {
      if (++used % RIG_LIFETIME === 0) {
        for (let i = 0; i < rigs.length; i++) {
          rigs[i].close();
          rigs[i] = proxyRig(i);
        }
      }
      const setup = Math.floor(input.variant / SOURCES.length) % SETUPS.length;
      const src = inboundOf(setup, input.variant % SOURCES.length);
      const rig = rigs[setup];
      if (src.transport !== 'tcp') return feedProxy(rig, setup, input.data, src);
      // A stream reaches the proxy through the framer, as in socket-connection.ts.
      let sig = 'tcp';
      const framed: Buffer[] = [];
      const framer = new StreamFramer(MAX_MESSAGE_SIZE, { message(d) { framed.push(Buffer.from(d)); }, ping() {}, error() { sig += '|frame-error'; } });
      framer.push(input.data);
      for (const m of framed) sig += `|${feedProxy(rig, setup, m, src)}`;
      return sig;
    },
    close() { for (const r of rigs) r.close(); },
  };
}

function feedProxy(rig: ProxyRig, setup: number, data: Buffer, src: Inbound): string {
  const stats = rig.stats;
  const internalBefore = stats.dropped.get('internal-error') ?? 0;
  const droppedBefore = new Map(stats.dropped);
  const repliesBefore = new Map(stats.localReplies);
  rig.sent.length = 0;
  rig.proxy.onMessage(data, src);
  if ((stats.dropped.get('internal-error') ?? 0) !== internalBefore) {
    // onMessage's guard caught a throw: a crash all the same. A fresh rig logs its stack.
    const errors: string[] = [];
    const fresh = proxyRig(setup, errors);
    fresh.proxy.onMessage(data, src);
    fresh.close();
    throw new InvariantError(`proxy threw on input (caught by its guard): ${errors[0] ?? 'no log line'}`);
  }
  const input = parseSipMessage(data, src.transport !== 'tcp');
  let sig = '';
  for (const [k, v] of stats.dropped) if (droppedBefore.get(k) !== v) sig += `d:${k}|`;
  for (const [k, v] of stats.localReplies) if (repliesBefore.get(k) !== v) sig += `r:${k}|`;
  for (const out of rig.sent) {
    const t = out.dest.transport;
    const datagram = t === 'udp' || t === 'ws' || t === 'wss';
    const m = parseSipMessage(out.data, datagram);
    check(!isParseFailure(m), `siplb sent what its own parser cannot read (${isParseFailure(m) ? m.failure : ''}): ${JSON.stringify(out.data.toString('latin1', 0, 400))}`);
    if (isParseFailure(m)) continue;
    if (!datagram) {
      // Over a stream the bytes must frame to exactly this one message.
      let framed = 0;
      let error: string | null = null;
      const f = new StreamFramer(1 << 30, { message(d) { framed++; check(d.length === out.data.length, `sent ${out.data.length} bytes over ${t}, framed as ${d.length}`); }, ping() {}, error(r) { error = r; } });
      f.push(out.data);
      check(error === null && framed === 1 && f.pendingBytes === 0, `sent over ${t} what does not frame as one message (${error}, ${framed}, ${f.pendingBytes} pending)`);
    }
    if (isParseFailure(input) || !input.isRequest) {
      sig += m.isRequest ? 'fwdQ?|' : 'fwdS|';
      if (!isParseFailure(input) && !m.isRequest && m.status === input.status) {
        check(viaCount(m) === viaCount(input) - 1, `forwarded response has ${viaCount(m)} Vias, received ${viaCount(input)}`);
      }
      continue;
    }
    if (m.isRequest) {
      // A forwarded request: valid, one Via more, Max-Forwards one less.
      check(m.error === null, `forwarded request is invalid: ${m.error}`);
      check(m.method === input.method, `forwarded ${m.method} for ${input.method}`);
      check(viaCount(m) === viaCount(input) + 1, `forwarded request has ${viaCount(m)} Vias, received ${viaCount(input)}`);
      const mfIn = input.get('max-forwards');
      const mfOut = m.get('max-forwards');
      check(mfOut === String(mfIn === undefined ? 70 : Number(mfIn) - 1), `Max-Forwards ${mfIn} became ${mfOut}`);
      sig += `fwd:${t}|`;
    } else {
      // A local reply echoes the Call-ID as value() reads it (trimmed of a stray CR, say), the
      // 100 Trying its raw line: either reading of the request's Call-ID will do.
      if (input.error === null) {
        check(m.error === null && (m.callId === input.callId || m.callId === input.get('call-id')), `local reply to a valid request is invalid (${m.error}) or names another Call-ID`);
      }
      sig += `reply:${m.status}:${m.error === null ? 'ok' : 'bad'}|`;
    }
  }
  return sig;
}
