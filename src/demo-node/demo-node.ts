// A small SIP application server (a user agent server, RFC 3261 §8.2, §13.3, §17.2) for demos and
// tests of siplb: it answers calls with 180 then 200 + SDP, absorbs ACKs, ends calls on BYE, lets
// a CANCEL end an unanswered call with 487, and answers OPTIONS, REGISTER and MESSAGE with 200.
// It keeps just enough per-call state to answer retransmissions with the same response instead
// of starting a new call, and (over UDP) to retransmit its final INVITE responses until the ACK.
//
// Input from the network never throws out of here: what does not parse as a valid request is
// counted and dropped.

import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { BindError, ConfigError } from '../core/errors.ts';
import { rateLimit } from '../core/log.ts';
import { StreamFramer } from '../sip/framing.ts';
import { T1_MS, T2_MS, TRANSACTION_TIMEOUT_MS } from '../sip/timers.ts';
import { splitCommaRanges } from '../sip/lists.ts';
import { isParseFailure, parseSipMessage } from '../sip/message.ts';
import type { SipMessage } from '../sip/message.ts';
import { formatHost, headerParam } from '../sip/uri.ts';
import { parseVia, responseTarget } from '../sip/via.ts';
import type { Via } from '../sip/via.ts';

export type DemoTransport = 'udp' | 'tcp';

export interface DemoNodeOptions {
  /** IP literal to bind and to advertise in Contact and SDP. */
  ip: string;
  /** One port for every transport; 0 lets TCP pick one and UDP follows it. */
  port: number;
  transports: readonly DemoTransport[];
  /** Delay between 180 Ringing and 200 OK; a CANCEL inside it ends the call with 487. */
  answerDelayMs?: number;
  logger: Logger;
}

export interface DemoNodeStats {
  /** Valid requests received (retransmissions included). */
  requests: number;
  /** New INVITE transactions outside a dialog: calls offered. */
  invites: number;
  inviteRetransmissions: number;
  /** INVITEs inside a dialog (To tag present), answered 200. */
  reinvites: number;
  callsAnswered: number;
  /** Calls ended by CANCEL before the answer (487 sent). */
  callsCancelled: number;
  /** BYEs that ended a call this node knew. */
  callsEnded: number;
  acks: number;
  byes: number;
  cancels: number;
  options: number;
  registers: number;
  messages: number;
  /** Requests answered 501 Not Implemented. */
  unsupported: number;
  /** Final INVITE responses sent again because no ACK came yet (UDP). */
  responsesRetransmitted: number;
  /** Final INVITE responses never acknowledged within 64*T1. */
  finalResponsesUnacked: number;
  /** Calls being set up or established right now. */
  activeCalls: number;
  ignoredMalformed: number;
  ignoredResponses: number;
  sendErrors: number;
}

type CounterName = Exclude<keyof DemoNodeStats, 'activeCalls'>;

export const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE';
/** RFC 3261 Timer H / 13.3.1.4: give up on an ACK after 64*T1. */
const ACK_WAIT_MS = TRANSACTION_TIMEOUT_MS;
/** An established call without BYE is forgotten after this long (the demo has no session timer). */
const CALL_MAX_MS = 60 * 60_000;
/** Bound on tracked calls, so a flood of INVITEs without BYE cannot exhaust memory. */
const MAX_CALLS = 100_000;
const SWEEP_MS = 10_000;
const MAX_MESSAGE_BYTES = 65_535;
const TCP_IDLE_MS = 10 * 60_000;
const DEFAULT_REGISTER_EXPIRES = 3600;

type Reply = (data: Buffer) => void;

interface Source {
  transport: DemoTransport;
  ip: string;
  port: number;
  /** The connection the request came on (TCP only): responses go back over it. */
  socket: net.Socket | null;
}

/** A request with what every response to it needs: the Via list as received (RFC 3261 §18.2.1) and where to send. */
interface Incoming {
  msg: SipMessage;
  vias: string[];
  top: Via;
  reply: Reply;
  transport: DemoTransport;
}

type CallState = 'ringing' | 'answered' | 'confirmed' | 'cancelled';

interface Call {
  callId: string;
  cseq: number;
  branch: string | null;
  toTag: string;
  state: CallState;
  invite: Incoming;
  /** Latest response to the INVITE: a retransmitted INVITE gets it again. */
  lastResponse: Buffer;
  answerTimer: NodeJS.Timeout | null;
  retransmitTimer: NodeJS.Timeout | null;
  expiresAt: number;
}

function zeroStats(): Record<CounterName, number> {
  return {
    requests: 0, invites: 0, inviteRetransmissions: 0, reinvites: 0, callsAnswered: 0, callsCancelled: 0,
    callsEnded: 0, acks: 0, byes: 0, cancels: 0, options: 0, registers: 0, messages: 0, unsupported: 0,
    responsesRetransmitted: 0, finalResponsesUnacked: 0, ignoredMalformed: 0, ignoredResponses: 0, sendErrors: 0,
  };
}

/** Via values of a request in order, each element of a comma list on its own. */
function viaValues(msg: SipMessage): string[] {
  const out: string[] = [];
  for (let i = 0; i < msg.headerCount; i++) {
    if (msg.names[i] !== 'via') continue;
    const v = msg.value(i);
    const ranges = splitCommaRanges(v, 0, v.length);
    for (let r = 0; r < ranges.length; r += 2) out.push(v.slice(ranges[r], ranges[r + 1]));
  }
  return out;
}

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4: the receiver notes the source address in the top Via
 * (`received`, and `rport` when the sender asked for it), and responses carry it back.
 */
function stampTopVia(value: string, via: Via, ip: string, port: number): string {
  let out = value;
  if (via.rport === null) out = out.replace(/;\s*rport\s*(?:=\s*)?(?=;|$)/i, `;rport=${port}`);
  if (via.received === null && (via.host !== ip || via.rport === null)) out += `;received=${ip}`;
  return out;
}

function newTag(): string {
  return randomBytes(6).toString('hex');
}

export class DemoNode {
  private readonly ip: string;
  private requestedPort: number;
  private boundPort = 0;
  private readonly transports: readonly DemoTransport[];
  private readonly answerDelayMs: number;
  private readonly log: Logger;
  private readonly counters = zeroStats();
  private readonly calls = new Map<string, Call>();
  private readonly sockets = new Set<net.Socket>();
  private readonly malformedLogGate = rateLimit(10_000);
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: DemoNodeOptions) {
    if (net.isIP(opts.ip) === 0) throw new ConfigError('ip', opts.ip, 'the demo node address must be an IP literal');
    if (opts.transports.length === 0) throw new ConfigError('transports', '', 'the demo node needs at least one transport');
    this.ip = opts.ip;
    this.requestedPort = opts.port;
    this.transports = [...new Set(opts.transports)];
    this.answerDelayMs = opts.answerDelayMs ?? 0;
    this.log = opts.logger;
  }

  /** The SIP port every transport listens on (known after start()). */
  get port(): number {
    return this.boundPort;
  }

  stats(): DemoNodeStats {
    return { ...this.counters, activeCalls: this.calls.size };
  }

  /** Binds every transport; throws BindError when a socket cannot be bound. */
  async start(): Promise<void> {
    let port = this.requestedPort;
    // TCP first: with port 0 it picks the port and UDP takes the same one.
    if (this.transports.includes('tcp')) port = await this.listenTcp(port);
    if (this.transports.includes('udp')) port = await this.bindUdp(port);
    this.boundPort = port;
    this.requestedPort = port;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** Closes every socket and forgets every call. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
      for (const call of this.calls.values()) this.clearTimers(call);
      this.calls.clear();
      for (const s of this.sockets) s.destroy();
      const udp = this.udp;
      const tcp = this.tcp;
      await Promise.all([
        udp === null ? undefined : new Promise<void>((resolve) => udp.close(() => resolve())),
        tcp === null ? undefined : new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    })();
    return this.closing;
  }

  private listenTcp(port: number): Promise<number> {
    const server = net.createServer({ noDelay: true }, (socket) => this.adopt(socket));
    server.maxConnections = 10_000;
    this.tcp = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new BindError(`cannot bind TCP ${this.ip}:${port}: ${err.message}`)));
      server.listen({ host: this.ip, port, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.log.warn({ err: err.message }, 'TCP server error'));
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private bindUdp(port: number): Promise<number> {
    const socket = dgram.createSocket(net.isIPv6(this.ip) ? 'udp6' : 'udp4');
    this.udp = socket;
    socket.on('message', (data, rinfo) => {
      const ip = rinfo.address.startsWith('::ffff:') ? rinfo.address.slice(7) : rinfo.address;
      this.receive(data, true, { transport: 'udp', ip, port: rinfo.port, socket: null });
    });
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => reject(new BindError(`cannot bind UDP ${this.ip}:${port}: ${err.message}`)));
      socket.bind({ address: this.ip, port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        // ICMP port unreachable from an earlier send surfaces here; it must not end the node.
        socket.on('error', () => this.counters.sendErrors++);
        resolve(socket.address().port);
      });
    });
  }

  private adopt(socket: net.Socket): void {
    this.sockets.add(socket);
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:(?=\d)/, '');
    const port = socket.remotePort ?? 0;
    const framer = new StreamFramer(MAX_MESSAGE_BYTES, {
      message: (data) => this.receive(data, false, { transport: 'tcp', ip, port, socket }),
      ping: () => socket.write('\r\n'),
      error: (reason) => {
        // The stream cannot be resynchronised after a framing error: drop the connection.
        this.counters.ignoredMalformed++;
        this.noteMalformed(`TCP framing: ${reason}`, ip, port);
        socket.destroy();
      },
    });
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private noteMalformed(reason: string, ip: string, port: number): void {
    if (this.malformedLogGate()) this.log.warn({ from: `${ip}:${port}`, reason }, 'ignored malformed SIP input');
  }

  private receive(data: Buffer, datagram: boolean, src: Source): void {
    try {
      this.dispatch(data, datagram, src);
    } catch (err) {
      // A bug hit by some input must cost that message only, not the node.
      this.counters.ignoredMalformed++;
      this.log.error({ err, from: `${src.ip}:${src.port}` }, 'error handling SIP message');
    }
  }

  private dispatch(data: Buffer, datagram: boolean, src: Source): void {
    const msg = parseSipMessage(data, datagram);
    if (isParseFailure(msg) || msg.error !== null) {
      this.counters.ignoredMalformed++;
      this.noteMalformed(isParseFailure(msg) ? msg.failure : msg.error ?? '', src.ip, src.port);
      return;
    }
    if (!msg.isRequest) {
      // This node never sends requests, so no response can be for it.
      this.counters.ignoredResponses++;
      return;
    }
    const vias = viaValues(msg);
    const top = vias.length === 0 ? null : parseVia(vias[0]);
    if (top === null) {
      this.counters.ignoredMalformed++;
      this.noteMalformed('unreadable top Via', src.ip, src.port);
      return;
    }
    vias[0] = stampTopVia(vias[0], top, src.ip, src.port);
    const incoming: Incoming = { msg, vias, top, reply: this.replier(src, vias[0]), transport: src.transport };
    this.counters.requests++;
    switch (msg.method) {
      case 'INVITE': return this.onInvite(incoming);
      case 'ACK': return this.onAck(incoming);
      case 'BYE': return this.onBye(incoming);
      case 'CANCEL': return this.onCancel(incoming);
      case 'OPTIONS':
        this.counters.options++;
        return incoming.reply(this.response(incoming, 200, 'OK', { toTag: newTag(), headers: [`Allow: ${ALLOW}`, 'Accept: application/sdp'] }));
      case 'REGISTER': return this.onRegister(incoming);
      case 'MESSAGE':
        this.counters.messages++;
        return incoming.reply(this.response(incoming, 200, 'OK', { toTag: newTag() }));
      default:
        this.counters.unsupported++;
        return incoming.reply(this.response(incoming, 501, 'Not Implemented', { toTag: newTag(), headers: [`Allow: ${ALLOW}`] }));
    }
  }

  /** UDP: to the stamped top Via (received/rport, else sent-by). TCP: back on the connection. */
  private replier(src: Source, stampedTop: string): Reply {
    const socket = src.socket;
    if (socket !== null) {
      return (data) => {
        if (socket.destroyed || !socket.writable) this.counters.sendErrors++;
        else socket.write(data);
      };
    }
    const via = parseVia(stampedTop);
    const target = via === null ? null : responseTarget(via);
    return (data) => {
      const udp = this.udp;
      // Only IP literals: a demo node does no DNS (stamping puts `received` in for a name).
      if (udp === null || target === null || net.isIP(target.host) === 0) {
        this.counters.sendErrors++;
        return;
      }
      udp.send(data, target.port, target.host, (err) => {
        if (err) this.counters.sendErrors++;
      });
    };
  }

  private onInvite(req: Incoming): void {
    const msg = req.msg;
    if (headerParam(msg.to, 'tag') !== null) {
      // A re-INVITE inside a dialog: accept the session as it is.
      this.counters.reinvites++;
      req.reply(this.response(req, 200, 'OK', { headers: this.dialogHeaders(req), sdp: true }));
      return;
    }
    const existing = this.calls.get(msg.callId);
    if (existing !== undefined && existing.cseq === msg.cseqNum && existing.branch === req.top.branch) {
      // Same transaction (RFC 3261 §17.2.1): the latest response again, not a new call.
      this.counters.inviteRetransmissions++;
      req.reply(existing.lastResponse);
      return;
    }
    if (existing !== undefined) this.forget(existing);
    if (this.calls.size >= MAX_CALLS) {
      const oldest = this.calls.values().next().value;
      if (oldest !== undefined) this.forget(oldest);
    }
    this.counters.invites++;
    const toTag = newTag();
    const ringing = this.response(req, 180, 'Ringing', { toTag, headers: this.dialogHeaders(req) });
    const call: Call = {
      callId: msg.callId, cseq: msg.cseqNum, branch: req.top.branch, toTag, state: 'ringing', invite: req,
      lastResponse: ringing, answerTimer: null, retransmitTimer: null, expiresAt: Date.now() + CALL_MAX_MS,
    };
    this.calls.set(call.callId, call);
    req.reply(ringing);
    if (this.answerDelayMs <= 0) this.answer(call);
    else call.answerTimer = setTimeout(() => this.answer(call), this.answerDelayMs);
  }

  private answer(call: Call): void {
    call.answerTimer = null;
    if (call.state !== 'ringing' || this.calls.get(call.callId) !== call) return;
    call.state = 'answered';
    this.counters.callsAnswered++;
    this.sendFinal(call, this.response(call.invite, 200, 'OK', {
      toTag: call.toTag, headers: this.dialogHeaders(call.invite), sdp: true,
    }));
  }

  /**
   * Sends a final INVITE response and, over UDP, repeats it at T1, 2*T1, ... capped at T2 until
   * the ACK (RFC 3261 §13.3.1.4 for 2xx, §17.2.1 Timer G for the rest) or 64*T1.
   */
  private sendFinal(call: Call, response: Buffer): void {
    call.lastResponse = response;
    call.invite.reply(response);
    if (call.invite.transport !== 'udp') return;
    const giveUpAt = Date.now() + ACK_WAIT_MS;
    let interval = T1_MS;
    const again = (): void => {
      if (Date.now() >= giveUpAt) {
        call.retransmitTimer = null;
        this.counters.finalResponsesUnacked++;
        this.forget(call);
        return;
      }
      this.counters.responsesRetransmitted++;
      call.invite.reply(response);
      interval = Math.min(interval * 2, T2_MS);
      call.retransmitTimer = setTimeout(again, interval);
    };
    call.retransmitTimer = setTimeout(again, interval);
  }

  private onAck(req: Incoming): void {
    this.counters.acks++;
    const call = this.calls.get(req.msg.callId);
    if (call === undefined || call.cseq !== req.msg.cseqNum) return;
    if (call.retransmitTimer !== null) clearTimeout(call.retransmitTimer);
    call.retransmitTimer = null;
    if (call.state === 'answered') call.state = 'confirmed';
    // The ACK of the 487 ends the INVITE transaction and with it all there is of the call.
    else if (call.state === 'cancelled') this.forget(call);
  }

  private onBye(req: Incoming): void {
    this.counters.byes++;
    const call = this.calls.get(req.msg.callId);
    if (call !== undefined && call.state !== 'cancelled') {
      this.counters.callsEnded++;
      this.forget(call);
    }
    req.reply(this.response(req, 200, 'OK', {}));
  }

  private onCancel(req: Incoming): void {
    this.counters.cancels++;
    const call = this.calls.get(req.msg.callId);
    // RFC 3261 §9.2: the CANCEL matches the INVITE transaction by branch and CSeq number.
    if (call === undefined || call.cseq !== req.msg.cseqNum || call.branch !== req.top.branch) {
      req.reply(this.response(req, 481, 'Call/Transaction Does Not Exist', { toTag: newTag() }));
      return;
    }
    req.reply(this.response(req, 200, 'OK', { toTag: call.toTag }));
    if (call.state !== 'ringing') return; // already answered: the CANCEL has no effect
    if (call.answerTimer !== null) clearTimeout(call.answerTimer);
    call.answerTimer = null;
    call.state = 'cancelled';
    call.expiresAt = Date.now() + ACK_WAIT_MS;
    this.counters.callsCancelled++;
    this.sendFinal(call, this.response(call.invite, 487, 'Request Terminated', { toTag: call.toTag }));
  }

  private onRegister(req: Incoming): void {
    this.counters.registers++;
    const msg = req.msg;
    const expiresHeader = msg.get('expires');
    const defaultExpires = expiresHeader !== undefined && /^\d{1,10}$/.test(expiresHeader) ? Number(expiresHeader) : DEFAULT_REGISTER_EXPIRES;
    const contacts: string[] = [];
    for (const line of msg.getAll('contact')) {
      const ranges = splitCommaRanges(line, 0, line.length);
      for (let r = 0; r < ranges.length; r += 2) {
        const c = line.slice(ranges[r], ranges[r + 1]);
        if (c === '*') continue; // remove-all: no bindings remain to echo
        const own = headerParam(c, 'expires');
        const expires = own !== null && /^\d{1,10}$/.test(own) ? Number(own) : defaultExpires;
        // A binding being removed (expires 0) is not among the current ones the 200 lists.
        if (expires === 0) continue;
        contacts.push(own !== null ? c : `${c};expires=${expires}`);
      }
    }
    req.reply(this.response(req, 200, 'OK', { toTag: newTag(), headers: contacts.map((c) => `Contact: ${c}`) }));
  }

  /** Contact and the copied Record-Route set, for responses that create a dialog (RFC 3261 §12.1.1). */
  private dialogHeaders(req: Incoming): string[] {
    const headers = req.msg.getAll('record-route').map((rr) => `Record-Route: ${rr}`);
    const transport = req.transport === 'tcp' ? ';transport=tcp' : '';
    headers.push(`Contact: <sip:demo@${formatHost(this.ip)}:${this.boundPort}${transport}>`);
    return headers;
  }

  private response(req: Incoming, status: number, reason: string, opts: { toTag?: string; headers?: string[]; sdp?: boolean }): Buffer {
    const msg = req.msg;
    // The To tag is the UAS's to choose, once: a request already carrying one keeps it.
    const to = opts.toTag === undefined || headerParam(msg.to, 'tag') !== null ? msg.to : `${msg.to};tag=${opts.toTag}`;
    const lines = [`SIP/2.0 ${status} ${reason}`];
    for (const v of req.vias) lines.push(`Via: ${v}`);
    lines.push(`From: ${msg.from}`, `To: ${to}`, `Call-ID: ${msg.callId}`, `CSeq: ${msg.cseqNum} ${msg.cseqMethod}`);
    if (opts.headers !== undefined) lines.push(...opts.headers);
    lines.push('Server: siplb-demo-node');
    const body = opts.sdp === true ? this.sdp() : '';
    if (body.length > 0) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`, '', body);
    return Buffer.from(lines.join('\r\n'), 'latin1');
  }

  /** An answer offering PCMU audio on this node's address; the demo sends and receives no media. */
  private sdp(): string {
    const family = net.isIPv6(this.ip) ? 'IP6' : 'IP4';
    const version = Math.floor(Date.now() / 1000);
    return [
      'v=0',
      `o=siplb-demo ${version} ${version} IN ${family} ${this.ip}`,
      's=siplb demo node',
      `c=IN ${family} ${this.ip}`,
      't=0 0',
      'm=audio 6000 RTP/AVP 0',
      'a=rtpmap:0 PCMU/8000',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }

  private clearTimers(call: Call): void {
    if (call.answerTimer !== null) clearTimeout(call.answerTimer);
    if (call.retransmitTimer !== null) clearTimeout(call.retransmitTimer);
    call.answerTimer = null;
    call.retransmitTimer = null;
  }

  private forget(call: Call): void {
    this.clearTimers(call);
    if (this.calls.get(call.callId) === call) this.calls.delete(call.callId);
  }

  private sweep(): void {
    const now = Date.now();
    for (const call of this.calls.values()) if (call.expiresAt <= now) this.forget(call);
  }
}
