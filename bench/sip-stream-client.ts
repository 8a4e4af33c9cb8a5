// SIP load client (UAC) over stream transports: TLS, WebSocket (plain or TLS) and plain TCP.
//
// sipp cannot speak WebSocket, and Debian's sipp is built without TLS, so bench/stream-load.ts
// drives siplb's TLS and WS listeners with this client instead. It keeps N connections open and
// places calls over them, round robin, at a fixed rate:
//
//   INVITE ──► (1xx) ◄── 200 ──► ACK ──► BYE ──► 200 = one successful call
//
// ACK and BYE follow the dialog's route set (RFC 3261 §12.1.2: the 200's Record-Route entries in
// reverse order, as Route; the Request-URI is the 200's Contact) and go out on the connection the
// INVITE used: a stream client behind siplb can only be reached through its own connection, and
// siplb's Record-Route entry facing it names that connection (its flow token).
//
// Over a reliable transport nothing is retransmitted (RFC 3261 §17.1.1.2, Timer A is not used
// over TCP): a call not finished within the call timeout (10 s) is failed. Each run is bounded in
// calls and in time (calls / rate × 2 + 30 s by default), after which unfinished calls are failed.
//
// TLS/TCP streams are cut into messages by siplb's own StreamFramer (Content-Length framing);
// over WebSocket every message is one SIP message (RFC 7118), offered with subprotocol "sip".
//
// Used two ways:
//   - by bench/stream-load.ts, as a child process (its own CPU, so the benchmark process never
//     becomes the bottleneck and the client's CPU can be reported apart): over the IPC channel it
//     says "ready" once every connection is up, starts the load on "go" and answers "done" with
//     the result before it closes the connections, so the balancer's CPU can be read around the
//     load alone, without the handshakes and the closes;
//   - standalone, to check a balancer by hand:
//       node bench/sip-stream-client.ts --transport tls --target 127.0.0.1:5061 \
//            [--connections 50] [--rate 500] [--calls 5000] [--call-timeout 10000] [--max-seconds S]
//     prints a summary on stderr and the result as one JSON line on stdout; exit 0 only when
//     every call succeeded.
// It also exports openFlow() and openIdleFlows(), which stream-load.ts uses in its own process to
// hold many idle connections for the memory measurement.

import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import type { RawData } from 'ws';
import { StreamFramer } from '../src/sip/framing.ts';
import { isParseFailure, parseSipMessage } from '../src/sip/message.ts';
import type { SipMessage } from '../src/sip/message.ts';
import { splitCommaRanges } from '../src/sip/lists.ts';

export type StreamTransport = 'tcp' | 'tls' | 'ws' | 'wss';
export const STREAM_TRANSPORTS: readonly StreamTransport[] = ['tcp', 'tls', 'ws', 'wss'];

/** Large enough for any message of these calls; a bigger one means the stream is broken. */
const MAX_MESSAGE_BYTES = 65_535;

// ---- one connection -----------------------------------------------------------------------------

export interface FlowHandlers {
  /** A parsed SIP message (request or response); keep-alive pongs and unparsable input are not passed on. */
  message(msg: SipMessage): void;
  /** The connection is gone (closed by either side, or failed); called once. */
  closed(reason: string): void;
}

/** One open connection that carries whole SIP messages each way. */
export interface SipFlow {
  readonly transport: StreamTransport;
  /** Via sent-by (host[:port]) and Contact host of this connection's requests. */
  readonly sentBy: string;
  /** Via transport token: TCP, TLS, WS or WSS (RFC 3261 §18, RFC 7118 §5.2). */
  readonly viaTransport: string;
  /** The transport= parameter of SIP URIs for this connection (tcp, tls or ws; WSS URIs say ws too). */
  readonly uriTransport: string;
  /** Writes one SIP message (ASCII text); false when the connection is no longer open. */
  send(text: string): boolean;
  isOpen(): boolean;
  /** Closes the connection; `closed` follows. */
  close(): void;
}

export interface FlowOptions {
  transport: StreamTransport;
  host: string;
  port: number;
  /** Source address (any 127.0.0.0/8 address on loopback), to spread connections over sources. */
  localAddress?: string;
  /** Connect + TLS handshake + WebSocket upgrade must finish within this; default 10 000 ms. */
  timeoutMs?: number;
}

/** An RFC 7118 §5.2 style host for Via and Contact of a WebSocket client, which has no reachable address. */
function invalidHost(): string {
  return `${randomBytes(6).toString('hex')}.invalid`;
}

/** Opens a connection and resolves once it can carry SIP (TCP connected, TLS handshake done, WebSocket upgraded with subprotocol sip). */
export function openFlow(o: FlowOptions, h: FlowHandlers): Promise<SipFlow> {
  return o.transport === 'ws' || o.transport === 'wss' ? openWsFlow(o, h) : openSocketFlow(o, h);
}

function openSocketFlow(o: FlowOptions, h: FlowHandlers): Promise<SipFlow> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise<SipFlow>((resolve, reject) => {
    const secure = o.transport === 'tls';
    const tcpOptions: net.TcpNetConnectOpts = { host: o.host, port: o.port, localAddress: o.localAddress };
    // tls.connect hands the socket options (localAddress included) to net's connect; its type
    // only lists the TLS ones. A self-signed benchmark certificate: the point is the balancer's
    // TLS cost, not trust.
    const tlsOptions: tls.ConnectionOptions & net.TcpNetConnectOpts = { ...tcpOptions, rejectUnauthorized: false };
    const socket: net.Socket = secure ? tls.connect(tlsOptions) : net.connect(tcpOptions);
    let up = false;
    let ended = false;
    const finish = (reason: string): void => {
      if (ended) return;
      ended = true;
      if (up) h.closed(reason);
      else reject(new Error(`${o.transport} connect to ${o.host}:${o.port} failed: ${reason}`));
    };
    const timer = setTimeout(() => {
      if (!up) {
        socket.destroy();
        finish(`not connected within ${timeoutMs} ms`);
      }
    }, timeoutMs);
    const framer = new StreamFramer(MAX_MESSAGE_BYTES, {
      message: (data) => {
        const msg = parseSipMessage(data, false);
        if (!isParseFailure(msg)) h.message(msg);
      },
      // The server does not ping a client; nothing to answer.
      ping: () => undefined,
      error: (reason) => {
        socket.destroy();
        finish(`unframable stream from the server: ${reason}`);
      },
    });
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      // Each SIP message is written whole; Nagle would only hold the next one back.
      socket.setNoDelay(true);
      up = true;
      const localPort = socket.localPort ?? 0;
      const local = socket.localAddress ?? '127.0.0.1';
      const flow: SipFlow = {
        transport: o.transport,
        sentBy: `${local.includes(':') ? `[${local}]` : local}:${localPort}`,
        viaTransport: o.transport.toUpperCase(),
        uriTransport: o.transport,
        send: (text) => {
          if (ended || socket.destroyed) return false;
          socket.write(text, 'latin1');
          return true;
        },
        isOpen: () => !ended && !socket.destroyed,
        close: () => {
          socket.end();
          // A peer that does not close its side within a second is not waited for.
          setTimeout(() => socket.destroy(), 1_000).unref();
        },
      };
      resolve(flow);
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', (err) => finish(err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      finish('closed');
    });
  });
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function openWsFlow(o: FlowOptions, h: FlowHandlers): Promise<SipFlow> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise<SipFlow>((resolve, reject) => {
    const scheme = o.transport === 'wss' ? 'wss' : 'ws';
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    const ws = new WebSocket(`${scheme}://${host}:${o.port}/`, 'sip', {
      // Compression would make both sides pay for it and no SIP UA here negotiates it.
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
      rejectUnauthorized: false,
      maxPayload: MAX_MESSAGE_BYTES,
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
    });
    let up = false;
    let ended = false;
    let lastError = '';
    const finish = (reason: string): void => {
      if (ended) return;
      ended = true;
      if (up) h.closed(reason);
      else reject(new Error(`${o.transport} connect to ${o.host}:${o.port} failed: ${reason}`));
    };
    ws.on('open', () => {
      // RFC 7118 §4.1: without the sip subprotocol agreed, this is not a SIP connection.
      if (ws.protocol !== 'sip') {
        ws.terminate();
        finish(`server agreed subprotocol '${ws.protocol}', not 'sip'`);
        return;
      }
      up = true;
      const sentBy = invalidHost();
      resolve({
        transport: o.transport,
        sentBy,
        viaTransport: o.transport.toUpperCase(),
        uriTransport: 'ws',
        send: (text) => {
          if (ended || ws.readyState !== WebSocket.OPEN) return false;
          // A string is sent as a text frame: one SIP message per WebSocket message.
          ws.send(text);
          return true;
        },
        isOpen: () => !ended && ws.readyState === WebSocket.OPEN,
        close: () => {
          ws.close(1000);
          setTimeout(() => ws.terminate(), 1_000).unref();
        },
      });
    });
    ws.on('message', (data: RawData) => {
      const buf = rawToBuffer(data);
      // A whole WebSocket message is one SIP message; Content-Length is optional there
      // (RFC 7118 §5), as in a datagram. A bare CRLF is a keep-alive pong.
      const msg = parseSipMessage(buf, true);
      if (!isParseFailure(msg)) h.message(msg);
    });
    ws.on('error', (err) => {
      lastError = err.message;
    });
    ws.on('close', (code, reason) => {
      finish(lastError !== '' ? lastError : `closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`);
    });
  });
}

// ---- SIP text ----------------------------------------------------------------------------------

let idCounter = 0;
const RUN_ID = randomBytes(4).toString('hex');

function uniqueId(): string {
  return `${RUN_ID}${(idCounter++).toString(36)}`;
}

/** A branch that is unique per transaction and carries RFC 3261's magic cookie. */
function newBranch(): string {
  return `z9hG4bK${uniqueId()}`;
}

const SDP = [
  'v=0',
  'o=bench 53655765 2353687637 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 6000 RTP/AVP 0',
  'a=rtpmap:0 PCMU/8000',
  '',
].join('\r\n');

function viaLine(flow: SipFlow, branch: string): string {
  return `Via: SIP/2.0/${flow.viaTransport} ${flow.sentBy};branch=${branch};rport`;
}

/** The URI inside a name-addr (<...>), or an addr-spec up to its header parameters. */
function uriOf(value: string): string {
  const lt = value.indexOf('<');
  if (lt !== -1) {
    const gt = value.indexOf('>', lt);
    return gt === -1 ? value.slice(lt + 1) : value.slice(lt + 1, gt);
  }
  const semi = value.indexOf(';');
  return (semi === -1 ? value : value.slice(0, semi)).trim();
}

/** Every Record-Route entry of a message, top first, whichever lines and commas carry them. */
function recordRoutes(msg: SipMessage): string[] {
  const out: string[] = [];
  for (const value of msg.getAll('record-route')) {
    const ranges = splitCommaRanges(value, 0, value.length);
    for (let i = 0; i < ranges.length; i += 2) out.push(value.slice(ranges[i], ranges[i + 1]));
  }
  return out;
}

interface DialogTarget {
  requestUri: string;
  /** The Route header line, or '' for an empty route set. */
  route: string;
}

/**
 * Request-URI and Route of requests inside the dialog a 2xx to INVITE set up (RFC 3261 §12.1.2,
 * §12.2.1.1): the route set is the Record-Route list reversed; with a loose router first (lr) the
 * Request-URI is the remote target (Contact) and the route set goes in Route as it is; with a
 * strict router first, its URI becomes the Request-URI and the remote target ends the Route list.
 */
function dialogTarget(ok: SipMessage): DialogTarget | null {
  const contact = ok.get('contact');
  if (contact === undefined) return null;
  const remoteTarget = uriOf(contact);
  const routeSet = recordRoutes(ok).reverse();
  if (routeSet.length === 0) return { requestUri: remoteTarget, route: '' };
  const first = uriOf(routeSet[0]);
  if (/;lr(?:[;=>]|$)/i.test(first)) return { requestUri: remoteTarget, route: `Route: ${routeSet.join(', ')}` };
  const rest = [...routeSet.slice(1), `<${remoteTarget}>`];
  return { requestUri: first, route: `Route: ${rest.join(', ')}` };
}

// ---- the call load ----------------------------------------------------------------------------

export interface LoadOptions {
  transport: StreamTransport;
  host: string;
  port: number;
  /** Connections opened before the load and shared round robin by the calls. */
  connections: number;
  /** Calls started per second. */
  rate: number;
  /** Calls placed in total. */
  calls: number;
  /** A call not finished (200 to BYE) this long after its INVITE is failed. */
  callTimeoutMs: number;
  /** The whole load ends by then at the latest; unfinished calls are failed. */
  maxSeconds: number;
  /** Source address of the connections; default the system's choice (127.0.0.1 towards 127.0.0.1). */
  localAddress?: string;
  /** User part of the INVITE's Request-URI and To. */
  service?: string;
}

export interface LoadResult {
  transport: StreamTransport;
  connections: number;
  /** Calls whose INVITE was sent. */
  attempted: number;
  successful: number;
  failed: number;
  /** Failed calls, by reason: 'timeout', 'connection closed', 'INVITE 503', 'BYE 481', 'send failed', 'unfinished'. */
  failures: Record<string, number>;
  timeouts: number;
  /** 2xx to an INVITE received again after the ACK (the node retransmitted it: the ACK was late or lost). */
  retransmitted2xx: number;
  /** Responses that matched no call in progress (late, duplicated, or for a failed call). */
  strayResponses: number;
  /** Requests received from the server (none are expected in these calls); not answered. */
  unexpectedRequests: number;
  /** Connections that closed during the load. */
  connectionsLost: number;
  /** First INVITE to the end of the last call. */
  wallSeconds: number;
  achievedCps: number;
  /** INVITE sent to 200 received, ms, over successful calls. */
  setupMs: { p50: number; p99: number; max: number };
  /** The client's own CPU (user + system) over the load, ms, and as % of one core. */
  clientCpuMs: number;
  clientCpuPercent: number;
}

interface Call {
  readonly callId: string;
  readonly flow: SipFlow;
  readonly startedAt: number;
  readonly fromLine: string;
  readonly inviteBranch: string;
  readonly inviteUri: string;
  state: 'inviting' | 'ending';
  /** ACK of the 2xx, kept to answer a retransmitted 2xx with it again (RFC 3261 §13.2.2.4). */
  ack: string;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** Opens the connections (in parallel, bounded): the load's connection phase. */
export async function openLoadFlows(o: LoadOptions, h: (index: number) => FlowHandlers): Promise<SipFlow[]> {
  const flows: SipFlow[] = [];
  // 50 handshakes at a time: enough to be quick, few enough not to make the server's accept
  // queue or TLS handshakes the thing being measured.
  const parallel = 50;
  for (let start = 0; start < o.connections; start += parallel) {
    const batch: Promise<SipFlow>[] = [];
    for (let i = start; i < Math.min(o.connections, start + parallel); i++) {
      batch.push(openFlow({ transport: o.transport, host: o.host, port: o.port, localAddress: o.localAddress }, h(i)));
    }
    const settled = await Promise.allSettled(batch);
    for (const s of settled) if (s.status === 'fulfilled') flows.push(s.value);
    const failure = settled.find((s) => s.status === 'rejected');
    if (failure !== undefined) {
      // A load with fewer connections than asked for is not the load asked for: close and report.
      for (const f of flows) f.close();
      throw failure.reason;
    }
  }
  return flows;
}

/**
 * A prepared load: connections are opened by prepareLoad(), the calls are placed by run(), and
 * close() ends the connections afterwards, so a caller can measure the load apart from both.
 */
export interface PreparedLoad {
  readonly flows: readonly SipFlow[];
  run(): Promise<LoadResult>;
  close(): Promise<void>;
}

export async function prepareLoad(o: LoadOptions): Promise<PreparedLoad> {
  const service = o.service ?? 'bench';
  const hostPort = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  // Calls in progress by Call-ID. A Map iterates in insertion order, which is start order, so the
  // timeout sweep only looks at the oldest calls.
  const active = new Map<string, Call>();
  const failures: Record<string, number> = {};
  const setup = new Float64Array(o.calls);
  let setupCount = 0;
  let successful = 0;
  let failed = 0;
  let retransmitted2xx = 0;
  let strayResponses = 0;
  let unexpectedRequests = 0;
  let connectionsLost = 0;
  let running = false;
  let lastEnd = 0;
  let onIdle: (() => void) | null = null;

  const fail = (call: Call, reason: string): void => {
    active.delete(call.callId);
    failed++;
    failures[reason] = (failures[reason] ?? 0) + 1;
    lastEnd = performance.now();
    if (active.size === 0) onIdle?.();
  };

  const onResponse = (msg: SipMessage): void => {
    const call = active.get(msg.callId);
    if (call === undefined) {
      strayResponses++;
      return;
    }
    if (msg.status < 200) return;
    if (msg.cseqMethod === 'INVITE') {
      if (call.state === 'ending') {
        // The 2xx again: our ACK did not reach the UAS in time (it retransmits over UDP).
        if (msg.status < 300) {
          retransmitted2xx++;
          call.flow.send(call.ack);
        }
        return;
      }
      if (msg.status >= 300) {
        // RFC 3261 §17.1.1.3: the INVITE transaction acknowledges a non-2xx final response
        // itself, same branch and Request-URI, so the UAS stops retransmitting it.
        call.flow.send([
          `ACK ${call.inviteUri} SIP/2.0`,
          viaLine(call.flow, call.inviteBranch),
          'Max-Forwards: 70',
          call.fromLine,
          `To: ${msg.get('to') ?? ''}`,
          `Call-ID: ${call.callId}`,
          'CSeq: 1 ACK',
          'Content-Length: 0',
          '', '',
        ].join('\r\n'));
        fail(call, `INVITE ${msg.status}`);
        return;
      }
      const target = dialogTarget(msg);
      if (target === null) {
        fail(call, '200 without Contact');
        return;
      }
      setup[setupCount++] = performance.now() - call.startedAt;
      const to = `To: ${msg.get('to') ?? ''}`;
      const inDialog = (method: string, cseq: number): string => [
        `${method} ${target.requestUri} SIP/2.0`,
        viaLine(call.flow, newBranch()),
        'Max-Forwards: 70',
        ...(target.route === '' ? [] : [target.route]),
        call.fromLine,
        to,
        `Call-ID: ${call.callId}`,
        `CSeq: ${cseq} ${method}`,
        'Content-Length: 0',
        '', '',
      ].join('\r\n');
      call.ack = inDialog('ACK', 1);
      call.state = 'ending';
      // The ACK and the BYE leave back to back, as sipp's uac does with its zero pause: the call
      // lasts as long as its signalling, so the load is the messages, not held calls.
      if (!call.flow.send(call.ack) || !call.flow.send(inDialog('BYE', 2))) fail(call, 'send failed');
      return;
    }
    if (msg.cseqMethod === 'BYE' && call.state === 'ending') {
      if (msg.status >= 300) {
        fail(call, `BYE ${msg.status}`);
        return;
      }
      active.delete(call.callId);
      successful++;
      lastEnd = performance.now();
      if (active.size === 0) onIdle?.();
    }
  };

  const flows = await openLoadFlows(o, () => ({
    message: (msg) => {
      if (msg.isRequest) unexpectedRequests++;
      else onResponse(msg);
    },
    closed: () => {
      if (!running) return;
      connectionsLost++;
      // The calls on a lost connection cannot finish: their responses had no other way back.
      for (const call of [...active.values()]) if (!call.flow.isOpen()) fail(call, 'connection closed');
    },
  }));

  const startCall = (flow: SipFlow): void => {
    const callId = `${uniqueId()}@bench`;
    const branch = newBranch();
    const fromLine = `From: <sip:bench@${flow.sentBy}>;tag=${uniqueId()}`;
    const inviteUri = `sip:${service}@${hostPort};transport=${flow.uriTransport}`;
    const call: Call = {
      callId, flow, startedAt: performance.now(), fromLine, inviteBranch: branch, inviteUri, state: 'inviting', ack: '',
    };
    active.set(callId, call);
    const sent = flow.send([
      `INVITE ${inviteUri} SIP/2.0`,
      viaLine(flow, branch),
      'Max-Forwards: 70',
      fromLine,
      `To: <sip:${service}@${hostPort}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:bench@${flow.sentBy};transport=${flow.uriTransport}>`,
      'Subject: Performance Test',
      'Content-Type: application/sdp',
      `Content-Length: ${SDP.length}`,
      '',
      SDP,
    ].join('\r\n'));
    if (!sent) fail(call, 'send failed');
  };

  const run = async (): Promise<LoadResult> => {
    running = true;
    const cpuBefore = process.cpuUsage();
    const t0 = performance.now();
    lastEnd = t0;
    let started = 0;
    let next = 0;
    const deadline = t0 + o.maxSeconds * 1000;
    await new Promise<void>((resolve) => {
      let finished = false;
      const end = (): void => {
        if (finished) return;
        finished = true;
        clearInterval(pacer);
        clearInterval(sweeper);
        clearTimeout(hardStop);
        resolve();
      };
      // Calls due by now at the target rate are started on each tick (1 ms timers fire every
      // 1-4 ms here): the offered rate holds however late a tick is, as sipp's -r does.
      const pacer = setInterval(() => {
        const due = Math.min(o.calls, Math.floor(((performance.now() - t0) * o.rate) / 1000) + 1);
        while (started < due) {
          // Round robin over the connections still open; none left ends the load.
          let flow: SipFlow | null = null;
          for (let k = 0; k < flows.length && flow === null; k++) {
            const candidate = flows[(next + k) % flows.length];
            if (candidate.isOpen()) {
              flow = candidate;
              next = (next + k + 1) % flows.length;
            }
          }
          if (flow === null) {
            failures['no connection'] = (failures['no connection'] ?? 0) + (o.calls - started);
            failed += o.calls - started;
            started = o.calls;
            break;
          }
          startCall(flow);
          started++;
        }
        if (started >= o.calls) {
          clearInterval(pacer);
          if (active.size === 0) end();
          else onIdle = end;
        }
      }, 1);
      // Calls older than the call timeout are failed; the oldest come first in the map.
      const sweeper = setInterval(() => {
        const limit = performance.now() - o.callTimeoutMs;
        for (const call of active.values()) {
          if (call.startedAt > limit) break;
          fail(call, 'timeout');
        }
      }, 100);
      const hardStop = setTimeout(end, Math.max(0, deadline - performance.now()));
    });
    onIdle = null;
    for (const call of [...active.values()]) fail(call, 'unfinished');
    running = false;
    const cpu = process.cpuUsage(cpuBefore);
    const wallSeconds = Math.max(1e-3, (lastEnd - t0) / 1000);
    const clientCpuMs = (cpu.user + cpu.system) / 1000;
    const sorted = setup.slice(0, setupCount).sort();
    return {
      transport: o.transport,
      connections: flows.length,
      attempted: started,
      successful,
      failed,
      failures,
      timeouts: failures['timeout'] ?? 0,
      retransmitted2xx,
      strayResponses,
      unexpectedRequests,
      connectionsLost,
      wallSeconds,
      achievedCps: successful / wallSeconds,
      setupMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: setupCount === 0 ? 0 : sorted[setupCount - 1] },
      clientCpuMs,
      clientCpuPercent: (clientCpuMs / (performance.now() - t0)) * 100,
    };
  };

  const close = async (): Promise<void> => {
    const open = flows.filter((f) => f.isOpen());
    await Promise.all(open.map((f) => new Promise<void>((resolve) => {
      // closed() of the handlers is not ours to wrap; poll the flow instead, bounded.
      f.close();
      const deadline = Date.now() + 2_000;
      const check = setInterval(() => {
        if (!f.isOpen() || Date.now() > deadline) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    })));
  };

  return { flows, run, close };
}

/** Opens the connections, places the calls, closes the connections. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const load = await prepareLoad(o);
  try {
    return await load.run();
  } finally {
    await load.close();
  }
}

// ---- idle connections (memory per connection) -------------------------------------------------

export interface IdleFlowsOptions {
  transport: StreamTransport;
  host: string;
  port: number;
  count: number;
  /** Source addresses, used in turn, each for at most perSource connections. */
  sources: readonly string[];
  perSource: number;
  /** Connections being opened at once (the ramp). */
  parallel: number;
  /** Per connection: connect, then the OPTIONS answered, within this. */
  timeoutMs: number;
  /** The whole ramp ends by then; connections not opened by then are counted as failed. */
  deadlineMs: number;
}

export interface IdleFlows {
  flows: SipFlow[];
  opened: number;
  /** Connections whose OPTIONS got a response: live SIP flows through the server's SIP stack. */
  answered: number;
  /** Status codes of those responses (siplb answers Max-Forwards: 0 with 483 itself). */
  statuses: Record<string, number>;
  /** Connections that could not be opened, by reason. */
  failures: Record<string, number>;
  /** Connections that closed while held. */
  lost: number;
  seconds: number;
}

/**
 * Opens `count` connections, ramped (`parallel` at a time), each of which sends one OPTIONS with
 * Max-Forwards: 0 and waits for its answer: a request siplb parses and answers itself (483, RFC
 * 3261 §16.3 step 3) without bothering a node, so every connection carries a real SIP exchange
 * (framer, parser, connection table, flow state) and then stays idle. The caller closes them.
 */
export async function openIdleFlows(o: IdleFlowsOptions): Promise<IdleFlows> {
  const t0 = performance.now();
  const result: IdleFlows = { flows: [], opened: 0, answered: 0, statuses: {}, failures: {}, lost: 0, seconds: 0 };
  const countFailure = (reason: string): void => {
    // Reasons carry ports and addresses; their kind is what matters in a summary.
    const kind = reason.replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, 'ADDR').slice(0, 120);
    result.failures[kind] = (result.failures[kind] ?? 0) + 1;
  };
  let nextIndex = 0;
  const openOne = async (index: number): Promise<void> => {
    const source = o.sources[Math.floor(index / o.perSource) % o.sources.length];
    let answer: ((status: number) => void) | null = null;
    let held = false;
    try {
      const flow = await openFlow({ transport: o.transport, host: o.host, port: o.port, localAddress: source, timeoutMs: o.timeoutMs }, {
        message: (msg) => {
          if (!msg.isRequest) answer?.(msg.status);
        },
        closed: () => {
          if (held) result.lost++;
        },
      });
      result.opened++;
      result.flows.push(flow);
      const hostPort = `${o.host}:${o.port}`;
      const status = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), o.timeoutMs);
        answer = (s) => {
          clearTimeout(timer);
          resolve(s);
        };
        flow.send([
          `OPTIONS sip:${hostPort};transport=${flow.uriTransport} SIP/2.0`,
          viaLine(flow, newBranch()),
          'Max-Forwards: 0',
          `From: <sip:hold@${flow.sentBy}>;tag=${uniqueId()}`,
          `To: <sip:${hostPort}>`,
          `Call-ID: ${uniqueId()}@hold`,
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '', '',
        ].join('\r\n'));
      });
      answer = null;
      held = true;
      if (status === null) countFailure('OPTIONS not answered');
      else {
        result.answered++;
        result.statuses[String(status)] = (result.statuses[String(status)] ?? 0) + 1;
      }
    } catch (err) {
      countFailure((err as Error).message);
    }
  };
  const worker = async (): Promise<void> => {
    while (nextIndex < o.count && performance.now() - t0 < o.deadlineMs) await openOne(nextIndex++);
  };
  await Promise.all(Array.from({ length: Math.min(o.parallel, o.count) }, worker));
  const notTried = o.count - nextIndex;
  if (notTried > 0) result.failures['ramp deadline passed'] = notTried;
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/** Closes held connections and waits (bounded) until they are gone. */
export async function closeFlows(flows: readonly SipFlow[], timeoutMs = 10_000): Promise<number> {
  for (const f of flows) f.close();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && flows.some((f) => f.isOpen())) await new Promise((resolve) => setTimeout(resolve, 50));
  return flows.filter((f) => f.isOpen()).length;
}

// ---- command line and the child-process protocol ----------------------------------------------

/** Messages over the IPC channel between stream-load.ts (parent) and this client (child). */
export type ClientToParent =
  | { type: 'ready'; connections: number }
  | { type: 'done'; result: LoadResult }
  | { type: 'error'; message: string };
export type ParentToClient = { type: 'go' };

function usage(message: string): never {
  process.stderr.write(`sip-stream-client: ${message}\n` +
    'usage: node bench/sip-stream-client.ts --transport tcp|tls|ws|wss --target HOST:PORT [--connections 50]\n' +
    '                                       [--rate 500] [--calls N (default rate*10)] [--call-timeout 10000]\n' +
    '                                       [--max-seconds S (default calls/rate*2+30)] [--source ADDR]\n');
  process.exit(2);
}

function intFlag(raw: string | undefined, fallback: number, name: string, min: number, max: number): number {
  const value = Number(raw ?? String(fallback));
  if (!Number.isInteger(value) || value < min || value > max) usage(`--${name} must be an integer ${min}..${max}, got ${raw}`);
  return value;
}

export function parseClientArgs(argv: string[]): LoadOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      transport: { type: 'string' },
      target: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      calls: { type: 'string' },
      'call-timeout': { type: 'string' },
      'max-seconds': { type: 'string' },
      source: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const transport = values.transport as StreamTransport | undefined;
  if (transport === undefined || !STREAM_TRANSPORTS.includes(transport)) usage(`--transport must be one of ${STREAM_TRANSPORTS.join(', ')}`);
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(values.target ?? '');
  if (m === null) usage('--target HOST:PORT is required');
  const host = m[1].replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) usage(`bad port in --target ${values.target}`);
  const rate = intFlag(values.rate, 500, 'rate', 1, 50_000);
  const calls = intFlag(values.calls, rate * 10, 'calls', 1, 2_000_000);
  return {
    transport, host, port, rate, calls,
    connections: intFlag(values.connections, 50, 'connections', 1, 10_000),
    callTimeoutMs: intFlag(values['call-timeout'], 10_000, 'call-timeout', 100, 120_000),
    maxSeconds: intFlag(values['max-seconds'], Math.ceil(calls / rate) * 2 + 30, 'max-seconds', 1, 86_400),
    ...(values.source === undefined ? {} : { localAddress: values.source }),
  };
}

export function describeLoad(r: LoadResult): string {
  const reasons = Object.entries(r.failures).map(([k, v]) => `${k}=${v}`).join(', ');
  return `${r.transport}: ${r.successful}/${r.attempted} calls ok over ${r.connections} connections, failed ${r.failed}` +
    `${reasons === '' ? '' : ` (${reasons})`}, ${r.achievedCps.toFixed(1)} calls/s over ${r.wallSeconds.toFixed(2)} s, ` +
    `setup p50 ${r.setupMs.p50.toFixed(2)} ms p99 ${r.setupMs.p99.toFixed(2)} ms, 2xx retransmitted ${r.retransmitted2xx}, ` +
    `stray responses ${r.strayResponses}, client CPU ${r.clientCpuMs.toFixed(0)} ms (${r.clientCpuPercent.toFixed(0)} % of a core)`;
}

async function main(): Promise<void> {
  const o = parseClientArgs(process.argv.slice(2));
  const send = process.send?.bind(process);
  if (send === undefined) {
    // Standalone: connect, load, report.
    const r = await runLoad(o);
    process.stderr.write(describeLoad(r) + '\n');
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exitCode = r.failed === 0 && r.successful === o.calls ? 0 : 1;
    return;
  }
  // Under stream-load.ts: the parent reads the balancer's CPU between 'go' and 'done'.
  let load: PreparedLoad;
  try {
    load = await prepareLoad(o);
  } catch (err) {
    send({ type: 'error', message: (err as Error).message } satisfies ClientToParent);
    process.disconnect?.();
    process.exitCode = 1;
    return;
  }
  send({ type: 'ready', connections: load.flows.length } satisfies ClientToParent);
  // A parent that is gone will never say go (nor read a result): end rather than wait.
  const orphaned = (): void => process.exit(1);
  process.once('disconnect', orphaned);
  await new Promise<void>((resolve) => {
    process.on('message', (m: ParentToClient) => {
      if (m.type === 'go') resolve();
    });
  });
  const result = await load.run();
  await new Promise<void>((resolve) => send({ type: 'done', result } satisfies ClientToParent, () => resolve()));
  await load.close();
  process.removeListener('disconnect', orphaned);
  process.disconnect?.();
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`sip-stream-client: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
