// A scripted SIP node on UDP loopback, standing in for an application server behind siplb: it is
// registrar and callee for the clients siplb fronts, and it can start requests towards them.
//
//   - REGISTER: 200, storing the binding (Contact URI and the Path set, RFC 3327), Path echoed.
//   - OPTIONS: 200 (so siplb's active health checks keep it up).
//   - INVITE: 100 then 200 with SDP, the Record-Route set copied and its own Contact; the 200 is
//     retransmitted a few times until the ACK (RFC 3261 §13.3.1.4), the ACK is absorbed.
//   - BYE: 200 (481 outside a dialog). CANCEL: 200 (every INVITE is answered at once, so there
//     is never one pending to cancel). Anything else: 501.
//
// On demand it sends in-dialog requests towards the caller as RFC 3261 §12.2.1.1 builds them:
// Request-URI = the remote target, Route = the route set (for the callee: the INVITE's
// Record-Route in order, not reversed), sent to the first Route's host:port (loose routing).
// And inviteRegistered() starts a new call to a registered Contact through its Path, which is how
// a registrar reaches a client behind an outbound proxy.
//
// Everything received is recorded (parsed with siplb's own parser) for the test to assert on.
// Only the UDP transport: the node side of siplb is what is being driven, not the node's stack.

import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { elements } from './sip.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { formatHost, headerParam, nameAddrUri, parseSipUri } from '../../src/sip/uri.ts';
import { parseVia } from '../../src/sip/via.ts';
import { T1_MS } from '../../src/sip/timers.ts';

export interface ReceivedMessage {
  readonly msg: SipMessage;
  /** The datagram as text (latin1), for failure messages. */
  readonly text: string;
  readonly source: { address: string; port: number };
  /** performance.now() at arrival. */
  readonly at: number;
}

export interface Binding {
  readonly aor: string;
  /** The Contact URI the client registered (e.g. sip:x@y.invalid;transport=ws). */
  readonly contact: string;
  /** The Path header elements of the REGISTER, in order (each `<uri>` with its parameters). */
  readonly path: readonly string[];
}

export interface DialogInfo {
  readonly callId: string;
  /** 'uas': the client called this node; 'uac': this node called the client. */
  readonly role: 'uas' | 'uac';
  readonly localTag: string;
  readonly remoteTag: string;
  /** Where in-dialog requests go: the remote Contact URI (updated by target refreshes). */
  readonly remoteTarget: string;
  /** Route set in the order it goes into Route headers. */
  readonly routeSet: readonly string[];
  /** The Record-Route header elements of the initial INVITE (uas) or of its 2xx (uac), as received. */
  readonly recordRoute: readonly string[];
  readonly state: 'confirmed' | 'terminated';
}

export interface InDialogOptions {
  /** Bound on the wait for the final response; default 5000 ms. */
  timeoutMs?: number;
  /**
   * Rewrites the Route set for this one request (e.g. to tamper with siplb's flow token). The
   * request still goes to the first Route of the returned set.
   */
  routes?: (routeSet: readonly string[]) => string[];
}

export interface SentRequestResult {
  readonly status: number;
  readonly reason: string;
  readonly callId: string;
  /** The final response as received. */
  readonly response: SipMessage;
}

export interface ScriptedUasOptions {
  /** UDP port on 127.0.0.1; default 0 (any free port). */
  port?: number;
  /** Default bound on waits for final responses (ms); default 5000. */
  timeoutMs?: number;
}

interface MutableDialog {
  callId: string;
  role: 'uas' | 'uac';
  localTag: string;
  remoteTag: string;
  /** From header value for requests this node sends in the dialog (with our tag). */
  localHeader: string;
  /** To header value for requests this node sends in the dialog (with the remote tag). */
  remoteHeader: string;
  remoteTarget: string;
  routeSet: string[];
  recordRoute: string[];
  localCseq: number;
  sdpVersion: number;
  state: 'confirmed' | 'terminated';
}

interface OutgoingRequest {
  readonly bytes: Buffer;
  readonly target: { host: string; port: number };
  readonly branch: string;
  readonly method: string;
  readonly callId: string;
  readonly requestUri: string;
  /** The Route header values as sent. */
  readonly routes: readonly string[];
  readonly from: string;
  readonly cseq: number;
  readonly lines: readonly string[];
}

interface ClientTransaction {
  readonly request: OutgoingRequest;
  readonly method: string;
  readonly callId: string;
  readonly resolve: (response: SipMessage) => void;
  readonly reject: (err: Error) => void;
  readonly timers: NodeJS.Timeout[];
  provisional: boolean;
}

interface ServerInvite {
  /** The last response sent, re-sent for a retransmitted INVITE. */
  response: Buffer;
  target: { host: string; port: number };
  acked: boolean;
  timers: NodeJS.Timeout[];
}

const MAX_RECORDED = 2_000;
// "Lightly" per the UDP timers: a few retransmissions, T1 doubling, then the bounded wait decides.
const REQUEST_RETRANSMITS = 2;
const RESPONSE_RETRANSMITS = 3;

function token(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * Host and port a URI of a Route or Request-URI designates, for sending over UDP. Only IP
 * literals: a test node has no DNS, and a name here (a WebSocket client's `*.invalid` Contact)
 * means the request would have needed a Route through the proxy it lacks, so fail loudly.
 */
function uriTarget(uri: string): { host: string; port: number } {
  const parsed = parseSipUri(uri);
  if (parsed === null) throw new Error(`scripted UAS: cannot send to a non-SIP URI: ${uri}`);
  if (isIP(parsed.host) === 0) throw new Error(`scripted UAS: cannot send to ${uri} (not an IP literal; no Route through the proxy?)`);
  return { host: parsed.host, port: parsed.port ?? (parsed.scheme === 'sips' ? 5061 : 5060) };
}

/** The URI of a Route/Record-Route/Path element (`<sip:...;lr>;param`). */
function elementUri(element: string): string {
  const uri = nameAddrUri(element);
  if (uri === null) throw new Error(`malformed route element: ${element}`);
  return uri;
}

function isLooseRoute(element: string): boolean {
  const parsed = parseSipUri(elementUri(element));
  return parsed !== null && parsed.params.has('lr');
}

/** First element of the first header line with this name (Via and Contact may be lists). */
function firstElement(m: SipMessage, name: string): string | undefined {
  const all = elements(m, name);
  return all.length === 0 ? undefined : all[0];
}

export class ScriptedUas {
  readonly address = '127.0.0.1';
  /** Everything received, oldest first (bounded). */
  readonly received: ReceivedMessage[] = [];
  private readonly socket: Socket;
  private readonly defaultTimeoutMs: number;
  private readonly bindings = new Map<string, Binding>();
  private readonly dialogs = new Map<string, MutableDialog>();
  private readonly clientTransactions = new Map<string, ClientTransaction>();
  private readonly serverInvites = new Map<string, ServerInvite>();
  /** ACKs sent for 2xx responses, by Call-ID and CSeq number, re-sent if the 2xx comes again. */
  private readonly acksFor2xx = new Map<string, { bytes: Buffer; target: { host: string; port: number } }>();
  /** ACKs sent for non-2xx final responses to INVITE, by branch, re-sent if the response comes again. */
  private readonly acksForFailures = new Map<string, { bytes: Buffer; target: { host: string; port: number } }>();
  private readonly sessionId = String(Date.now());
  private readonly waiters = new Set<() => void>();
  private boundPort = 0;
  private closed = false;

  private constructor(socket: Socket, defaultTimeoutMs: number) {
    this.socket = socket;
    this.defaultTimeoutMs = defaultTimeoutMs;
  }

  /** Binds the UDP socket and starts answering. */
  static async start(opts: ScriptedUasOptions = {}): Promise<ScriptedUas> {
    const socket = createSocket('udp4');
    const uas = new ScriptedUas(socket, opts.timeoutMs ?? 5_000);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: '127.0.0.1', port: opts.port ?? 0, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    uas.boundPort = socket.address().port;
    socket.on('message', (buf, rinfo) => uas.onDatagram(buf, rinfo));
    // A send to a closed port shows up as an error event on Linux; that is the peer's problem,
    // not a reason to crash the test process.
    socket.on('error', () => undefined);
    return uas;
  }

  get port(): number {
    return this.boundPort;
  }

  /** This node's own URI (its Contact). */
  get contactUri(): string {
    return `sip:uas@${this.address}:${this.port};transport=udp`;
  }

  /** The binding a REGISTER left for this AOR (compared case-insensitively, URI only). */
  binding(aor: string): Binding | undefined {
    return this.bindings.get(aor.toLowerCase());
  }

  dialog(callId: string): DialogInfo | undefined {
    const d = this.dialogs.get(callId);
    return d === undefined ? undefined : { ...d, routeSet: [...d.routeSet], recordRoute: [...d.recordRoute] };
  }

  /** Requests received with this method (and Call-ID when given), oldest first. */
  requests(method: string, callId?: string): SipMessage[] {
    return this.received
      .filter((r) => r.msg.isRequest && r.msg.method === method && (callId === undefined || r.msg.callId === callId))
      .map((r) => r.msg);
  }

  /** Resolves with the first request (already received or arriving) that matches; bounded. */
  waitForRequest(method: string, predicate: (m: SipMessage) => boolean = () => true, timeoutMs = this.defaultTimeoutMs): Promise<SipMessage> {
    const find = (): SipMessage | undefined => this.requests(method).find(predicate);
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = find();
        if (m === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`scripted UAS: no matching ${method} within ${timeoutMs} ms; received:\n${this.describe()}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** The start lines of the recent traffic, for failure messages. */
  describe(last = 30): string {
    const lines = this.received.slice(-last).map((r) => {
      const first = r.text.slice(0, Math.max(0, r.text.indexOf('\r\n')));
      return `  from ${r.source.address}:${r.source.port}: ${first} (Call-ID ${r.msg.callId})`;
    });
    return lines.length === 0 ? '  (nothing)' : lines.join('\n');
  }

  /** A re-INVITE with a new SDP offer in the dialog of callId; resolves with the final status. */
  async reinvite(callId: string, opts: InDialogOptions = {}): Promise<number> {
    return (await this.inDialog(callId, 'INVITE', opts)).status;
  }

  /** A BYE in the dialog of callId; resolves with the final status (see inDialog for when the dialog ends). */
  async bye(callId: string, opts: InDialogOptions = {}): Promise<number> {
    const result = await this.inDialog(callId, 'BYE', opts);
    return result.status;
  }

  /**
   * Any in-dialog request (INVITE carries an SDP offer; INVITE 2xx is ACKed along the route set);
   * resolves with the whole final response.
   */
  async inDialog(callId: string, method: string, opts: InDialogOptions = {}): Promise<SentRequestResult> {
    const d = this.dialogs.get(callId);
    if (d === undefined) throw new Error(`scripted UAS: no dialog with Call-ID ${callId}`);
    if (d.state === 'terminated') throw new Error(`scripted UAS: the dialog ${callId} has ended`);
    const routeSet = opts.routes === undefined ? d.routeSet : opts.routes(d.routeSet);
    d.localCseq++;
    const cseq = d.localCseq;
    const body = method === 'INVITE' ? this.sdp(++d.sdpVersion) : '';
    const request = this.buildRequest({
      method, requestUri: d.remoteTarget, routeSet, from: d.localHeader, to: d.remoteHeader,
      callId, cseq, body,
    });
    const response = await this.runClientTransaction(request, opts.timeoutMs);
    // A BYE ends the dialog when it was taken (2xx) or the far end no longer has it (481, 408
    // per §15.1.1 terms); a BYE refused on the way (403 for a forged route, 430 for a dead flow)
    // leaves the dialog as it was, so a test can still use it or try again.
    if (method === 'BYE' && ((response.status >= 200 && response.status < 300) || response.status === 481 || response.status === 408)) {
      d.state = 'terminated';
    }
    if (method === 'INVITE' && response.status >= 200 && response.status < 300) {
      // A 2xx to a re-INVITE may refresh the remote target (RFC 3261 §12.2.1.2).
      const contact = firstElement(response, 'contact');
      if (contact !== undefined) d.remoteTarget = elementUri(contact);
      this.ackFor2xx(d, routeSet, cseq, response);
    }
    return { status: response.status, reason: reasonOf(response), callId, response };
  }

  /**
   * A new INVITE to the Contact registered for `aor`, with the binding's Path as Route (in
   * order). On 2xx it ACKs and keeps the dialog (so bye(callId) works afterwards).
   */
  async inviteRegistered(aor: string, opts: { timeoutMs?: number } = {}): Promise<{ status: number; callId: string }> {
    const b = this.binding(aor);
    if (b === undefined) throw new Error(`scripted UAS: nothing registered for ${aor}; received:\n${this.describe()}`);
    const callId = `${token(8)}@${this.address}`;
    const localTag = token(4);
    const from = `<sip:uas@${this.address}:${this.port}>;tag=${localTag}`;
    const to = `<${b.aor}>`;
    const request = this.buildRequest({
      method: 'INVITE', requestUri: b.contact, routeSet: [...b.path], from, to, callId, cseq: 1, body: this.sdp(1),
    });
    const response = await this.runClientTransaction(request, opts.timeoutMs);
    if (response.status >= 200 && response.status < 300) {
      const contact = firstElement(response, 'contact');
      if (contact === undefined) throw new Error(`scripted UAS: 2xx to INVITE ${callId} without Contact`);
      const recordRoute = elements(response, 'record-route');
      const d: MutableDialog = {
        callId, role: 'uac', localTag, remoteTag: headerParam(response.to, 'tag') ?? '',
        localHeader: from, remoteHeader: response.to, remoteTarget: elementUri(contact),
        // The caller's route set is the 2xx's Record-Route reversed (RFC 3261 §12.1.2).
        routeSet: [...recordRoute].reverse(), recordRoute, localCseq: 1, sdpVersion: 1, state: 'confirmed',
      };
      this.dialogs.set(callId, d);
      // The ACK of the initial INVITE follows the new dialog's route set (§13.2.2.4).
      this.ackFor2xx(d, d.routeSet, 1, response);
    }
    return { status: response.status, callId };
  }

  /** Stops answering and closes the socket; pending waits fail. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.clientTransactions.values()) {
      for (const timer of t.timers) clearTimeout(timer);
      t.reject(new Error(`scripted UAS closed while waiting for the response to ${t.method} ${t.callId}`));
    }
    this.clientTransactions.clear();
    for (const s of this.serverInvites.values()) for (const timer of s.timers) clearTimeout(timer);
    this.serverInvites.clear();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  // --- receiving -------------------------------------------------------------------------------

  private onDatagram(buf: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    // A bare CRLF keep-alive (RFC 5626 §4.4.1 style) is not a message.
    if (buf.every((b) => b === 13 || b === 10)) return;
    const parsed = parseSipMessage(buf, true);
    if (isParseFailure(parsed)) return;
    this.received.push({ msg: parsed, text: buf.toString('latin1'), source: { address: rinfo.address, port: rinfo.port }, at: performance.now() });
    if (this.received.length > MAX_RECORDED) this.received.splice(0, this.received.length - MAX_RECORDED);
    for (const w of [...this.waiters]) w();
    if (parsed.error !== null) {
      // 400 only when there is enough to build a response from (CSeq is validated last).
      if (parsed.isRequest && parsed.method !== 'ACK' && parsed.cseqNum >= 0) this.respond(parsed, rinfo, 400, 'Bad Request');
      return;
    }
    if (parsed.isRequest) this.onRequest(parsed, rinfo);
    else this.onResponse(parsed);
  }

  private onRequest(m: SipMessage, rinfo: RemoteInfo): void {
    switch (m.method) {
      case 'REGISTER': this.onRegister(m, rinfo); break;
      case 'OPTIONS': this.respond(m, rinfo, 200, 'OK', ['Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER', 'Accept: application/sdp']); break;
      case 'INVITE': this.onInvite(m, rinfo); break;
      case 'ACK': this.onAck(m); break;
      case 'BYE': this.onBye(m, rinfo); break;
      case 'CANCEL': this.respond(m, rinfo, 200, 'OK'); break;
      default: this.respond(m, rinfo, 501, 'Not Implemented');
    }
  }

  private onRegister(m: SipMessage, rinfo: RemoteInfo): void {
    const aor = nameAddrUri(m.to);
    if (aor === null) {
      this.respond(m, rinfo, 400, 'Bad To');
      return;
    }
    const contacts = elements(m, 'contact');
    const path = elements(m, 'path');
    const expiresHeader = m.get('expires');
    const extra: string[] = [];
    for (const contact of contacts) {
      if (contact === '*') {
        this.bindings.delete(aor.toLowerCase());
        continue;
      }
      const uri = elementUri(contact);
      const expires = Number(headerParam(contact, 'expires') ?? expiresHeader ?? '3600');
      if (expires === 0) this.bindings.delete(aor.toLowerCase());
      else {
        this.bindings.set(aor.toLowerCase(), { aor, contact: uri, path });
        extra.push(`Contact: <${uri}>;expires=${expires}`);
      }
    }
    // RFC 3327 §5.3: the registrar returns the Path it stored when the client supports it.
    if (path.length > 0) extra.push(`Path: ${path.join(', ')}`);
    this.respond(m, rinfo, 200, 'OK', extra);
  }

  private onInvite(m: SipMessage, rinfo: RemoteInfo): void {
    const branch = this.topBranch(m);
    const key = `${branch}|INVITE`;
    const known = this.serverInvites.get(key);
    if (known !== undefined) {
      // A retransmitted INVITE: the same final response again.
      this.sendBytes(known.response, known.target);
      return;
    }
    const existing = this.dialogs.get(m.callId);
    const toTag = headerParam(m.to, 'tag');
    if (toTag !== null) {
      // A re-INVITE from the client: accept its offer, refresh the target.
      if (existing === undefined || existing.state === 'terminated' || toTag !== existing.localTag) {
        this.respond(m, rinfo, 481, 'Call/Transaction Does Not Exist');
        return;
      }
      const contact = firstElement(m, 'contact');
      if (contact !== undefined) existing.remoteTarget = elementUri(contact);
      this.answerInvite(m, rinfo, key, existing.localTag, existing);
      return;
    }
    this.respond(m, rinfo, 100, 'Trying');
    const localTag = token(4);
    const contact = firstElement(m, 'contact');
    if (contact === undefined) {
      this.respond(m, rinfo, 400, 'Missing Contact');
      return;
    }
    const recordRoute = elements(m, 'record-route');
    const d: MutableDialog = {
      callId: m.callId, role: 'uas', localTag, remoteTag: headerParam(m.from, 'tag') ?? '',
      localHeader: `${m.to};tag=${localTag}`, remoteHeader: m.from, remoteTarget: elementUri(contact),
      // The callee's route set is the Record-Route in order (RFC 3261 §12.1.1).
      routeSet: [...recordRoute], recordRoute, localCseq: 0, sdpVersion: 1, state: 'confirmed',
    };
    this.dialogs.set(m.callId, d);
    this.answerInvite(m, rinfo, key, localTag, d);
  }

  private answerInvite(m: SipMessage, rinfo: RemoteInfo, key: string, localTag: string, d: MutableDialog): void {
    const extra = [
      ...m.getAll('record-route').map((v) => `Record-Route: ${v}`),
      `Contact: <${this.contactUri}>`,
      'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS',
    ];
    const body = this.sdp(++d.sdpVersion);
    const { bytes, target } = this.responseBytes(m, rinfo, 200, 'OK', extra, localTag, body);
    this.sendBytes(bytes, target);
    const entry: ServerInvite = { response: bytes, target, acked: false, timers: [] };
    // The UAS core retransmits a 2xx until the ACK, whatever the transport (§13.3.1.4).
    let delay = 0;
    for (let i = 0; i < RESPONSE_RETRANSMITS; i++) {
      delay += T1_MS * 2 ** i;
      entry.timers.push(setTimeout(() => {
        if (!entry.acked && !this.closed) this.sendBytes(bytes, target);
      }, delay));
    }
    this.serverInvites.set(key, entry);
    this.serverInvites.set(`${m.callId}|${m.cseqNum}`, entry);
  }

  private onAck(m: SipMessage): void {
    // An ACK for a 2xx is a new transaction: match it by Call-ID and CSeq number.
    const entry = this.serverInvites.get(`${m.callId}|${m.cseqNum}`);
    if (entry === undefined) return;
    entry.acked = true;
    for (const timer of entry.timers) clearTimeout(timer);
  }

  private onBye(m: SipMessage, rinfo: RemoteInfo): void {
    const d = this.dialogs.get(m.callId);
    if (d === undefined) {
      this.respond(m, rinfo, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    d.state = 'terminated';
    this.respond(m, rinfo, 200, 'OK');
  }

  private onResponse(m: SipMessage): void {
    const branch = this.topBranch(m);
    const t = this.clientTransactions.get(branch);
    if (t === undefined) {
      // A retransmitted final response after the transaction ended: the ACK again (§13.2.2.4, §17.1.1.2).
      if (m.cseqMethod === 'INVITE' && m.status >= 200) {
        const ack = m.status < 300 ? this.acksFor2xx.get(`${m.callId}|${m.cseqNum}`) : this.acksForFailures.get(branch);
        if (ack !== undefined) this.sendBytes(ack.bytes, ack.target);
      }
      return;
    }
    if (m.status < 200) {
      // A provisional response stops INVITE retransmissions (§17.1.1.2).
      if (t.method === 'INVITE' && !t.provisional) {
        t.provisional = true;
        for (const timer of t.timers.splice(1)) clearTimeout(timer);
      }
      return;
    }
    this.clientTransactions.delete(branch);
    for (const timer of t.timers) clearTimeout(timer);
    if (t.method === 'INVITE' && m.status >= 300) this.ackForFailure(t.request, m);
    t.resolve(m);
  }

  private topBranch(m: SipMessage): string {
    const top = firstElement(m, 'via');
    const via = top === undefined ? null : parseVia(top);
    return via?.branch ?? '';
  }

  // --- sending ---------------------------------------------------------------------------------

  private respond(m: SipMessage, rinfo: RemoteInfo, status: number, reason: string, extra: string[] = []): void {
    const localTag = status === 100 ? null : (this.dialogs.get(m.callId)?.localTag ?? token(4));
    const { bytes, target } = this.responseBytes(m, rinfo, status, reason, extra, localTag, '');
    this.sendBytes(bytes, target);
  }

  /** A response echoing Via, From, To (tagged), Call-ID and CSeq; addressed per §18.2.2 / RFC 3581. */
  private responseBytes(
    m: SipMessage, rinfo: RemoteInfo, status: number, reason: string, extra: string[], localTag: string | null, body: string,
  ): { bytes: Buffer; target: { host: string; port: number } } {
    const to = localTag === null || headerParam(m.to, 'tag') !== null ? m.to : `${m.to};tag=${localTag}`;
    const lines = [
      `SIP/2.0 ${status} ${reason}`,
      ...m.getAll('via').map((v) => `Via: ${v}`),
      `From: ${m.from}`,
      `To: ${to}`,
      `Call-ID: ${m.callId}`,
      `CSeq: ${m.cseqNum} ${m.cseqMethod}`,
      ...extra,
      'Server: siplb-test-scripted-uas',
    ];
    const bytes = this.withBody(lines, body);
    const top = firstElement(m, 'via');
    const via = top === undefined ? null : parseVia(top);
    let target = { host: rinfo.address, port: rinfo.port };
    if (via !== null) {
      // Sent-by unless the source differs (then "received"); rport asks for the source port.
      const host = via.received ?? (via.host === rinfo.address ? via.host : rinfo.address);
      const port = via.rport === null ? rinfo.port : typeof via.rport === 'number' ? via.rport : (via.port ?? 5060);
      target = { host, port };
    }
    return { bytes, target };
  }

  private buildRequest(r: {
    method: string; requestUri: string; routeSet: readonly string[]; from: string; to: string;
    callId: string; cseq: number; body: string; branch?: string; cseqMethod?: string;
  }): OutgoingRequest {
    let requestUri = r.requestUri;
    let routes = [...r.routeSet];
    if (routes.length > 0 && !isLooseRoute(routes[0])) {
      // A strict router first in the set: it becomes the Request-URI and the remote target goes
      // last in the Route set (RFC 3261 §12.2.1.1).
      requestUri = elementUri(routes[0]);
      routes = [...routes.slice(1), `<${r.requestUri}>`];
    }
    // Loose routing sends to the first Route; strict routing (or none) to the Request-URI.
    const target = r.routeSet.length > 0 && isLooseRoute(r.routeSet[0]) ? uriTarget(elementUri(r.routeSet[0])) : uriTarget(requestUri);
    const branch = r.branch ?? `z9hG4bK-uas-${token(8)}`;
    const lines = [
      `${r.method} ${requestUri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${formatHost(this.address)}:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      ...routes.map((route) => `Route: ${route}`),
      `From: ${r.from}`,
      `To: ${r.to}`,
      `Call-ID: ${r.callId}`,
      `CSeq: ${r.cseq} ${r.cseqMethod ?? r.method}`,
    ];
    if (r.method === 'INVITE') lines.push(`Contact: <${this.contactUri}>`, 'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS');
    return {
      bytes: this.withBody(lines, r.body), target, branch, method: r.method, callId: r.callId,
      requestUri, routes, from: r.from, cseq: r.cseq, lines,
    };
  }

  private withBody(lines: string[], body: string): Buffer {
    const all = body.length > 0 ? [...lines, 'Content-Type: application/sdp'] : [...lines];
    all.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
    return Buffer.from(all.join('\r\n') + '\r\n\r\n' + body, 'latin1');
  }

  /** Sends a request, retransmits it lightly (timer A/E from T1), resolves with the final response. */
  private runClientTransaction(
    request: OutgoingRequest,
    timeoutMs = this.defaultTimeoutMs,
  ): Promise<SipMessage> {
    if (this.closed) return Promise.reject(new Error('scripted UAS is closed'));
    return new Promise<SipMessage>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const t: ClientTransaction = { request, method: request.method, callId: request.callId, resolve, reject, timers, provisional: false };
      // timers[0] is the overall bound; the rest are retransmissions (cleared on a provisional).
      timers.push(setTimeout(() => {
        this.clientTransactions.delete(request.branch);
        for (const timer of timers) clearTimeout(timer);
        reject(new Error(
          `scripted UAS: no final response to ${request.method} (Call-ID ${request.callId}) sent to ` +
            `${request.target.host}:${request.target.port} within ${timeoutMs} ms; request:\n${request.lines.join('\n')}\nreceived:\n${this.describe()}`,
        ));
      }, timeoutMs));
      let delay = 0;
      for (let i = 0; i < REQUEST_RETRANSMITS; i++) {
        delay += T1_MS * 2 ** i;
        timers.push(setTimeout(() => {
          if (this.clientTransactions.get(request.branch) === t) this.sendBytes(request.bytes, request.target);
        }, delay));
      }
      this.clientTransactions.set(request.branch, t);
      this.sendBytes(request.bytes, request.target);
    });
  }

  /** ACK for a 2xx: a new transaction along the route set to the remote target (§13.2.2.4). */
  private ackFor2xx(d: MutableDialog, routeSet: readonly string[], cseq: number, response: SipMessage): void {
    const contact = firstElement(response, 'contact');
    const requestUri = contact === undefined ? d.remoteTarget : elementUri(contact);
    const ack = this.buildRequest({
      method: 'ACK', requestUri, routeSet, from: d.localHeader, to: response.to, callId: d.callId, cseq, body: '',
    });
    this.acksFor2xx.set(`${d.callId}|${cseq}`, { bytes: ack.bytes, target: ack.target });
    this.sendBytes(ack.bytes, ack.target);
  }

  /**
   * ACK for a non-2xx final response to INVITE: part of the INVITE transaction, so same branch,
   * Request-URI and Route as the INVITE, To from the response, same destination (§17.1.1.3).
   */
  private ackForFailure(invite: OutgoingRequest, response: SipMessage): void {
    const lines = [
      `ACK ${invite.requestUri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${formatHost(this.address)}:${this.port};branch=${invite.branch};rport`,
      'Max-Forwards: 70',
      ...invite.routes.map((route) => `Route: ${route}`),
      `From: ${invite.from}`,
      `To: ${response.to}`,
      `Call-ID: ${invite.callId}`,
      `CSeq: ${invite.cseq} ACK`,
    ];
    const ack = { bytes: this.withBody(lines, ''), target: invite.target };
    this.acksForFailures.set(invite.branch, ack);
    this.sendBytes(ack.bytes, ack.target);
  }

  private sendBytes(bytes: Buffer, target: { host: string; port: number }): void {
    if (this.closed) return;
    this.socket.send(bytes, target.port, target.host);
  }

  private sdp(version: number): string {
    // A plain audio offer/answer: nothing is ever sent to it, the signalling is what is tested.
    return [
      'v=0',
      `o=uas ${this.sessionId} ${version} IN IP4 ${this.address}`,
      's=-',
      `c=IN IP4 ${this.address}`,
      't=0 0',
      'm=audio 9 RTP/AVP 0',
      'a=rtpmap:0 PCMU/8000',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }
}

function reasonOf(m: SipMessage): string {
  const line = m.head.slice(0, m.startLineEnd);
  return line.split(' ').slice(2).join(' ');
}
