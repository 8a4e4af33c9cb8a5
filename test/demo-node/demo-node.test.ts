// The demo SIP application server over real UDP and TCP sockets on loopback: call set-up and
// tear-down, CANCEL, retransmissions, the other methods, hostile input, a real sipp UAC, and the
// siplb-demo-node command (stats over HTTP, registration by heartbeats, exit line).

import { afterEach, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { DemoNode } from '../../src/demo-node/demo-node.ts';
import type { DemoNodeOptions, DemoNodeStats } from '../../src/demo-node/demo-node.ts';
import { HeartbeatAgent } from '../../src/node-agent/agent.ts';
import { StreamFramer } from '../../src/sip/framing.ts';
import { isParseFailure, parseSipMessage } from '../../src/sip/message.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { headerParam } from '../../src/sip/uri.ts';
import { LineBuffer, terminate } from '../e2e/harness/children.ts';
import { allocatePort, releasePorts } from '../e2e/harness/ports.ts';
import { startSiplb } from '../e2e/harness/siplb.ts';
import { describeResult, runSippUac } from '../e2e/harness/sipp.ts';
import type { SippTransport } from '../e2e/harness/sipp.ts';
import { runRepoScript, type RepoScript } from '../e2e/harness/repo-script.ts';
import { eventually } from '../helpers/wait.ts';

const silent = pino({ level: 'silent' });
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Bounded wait on real time (also while a test mocks setTimeout for the node's timers). */
function waitFor(what: string, condition: () => boolean, timeoutMs = 3000): Promise<void> {
  return eventually(what, timeoutMs, condition, 5);
}

/** RFC 3261 T1, the node's first retransmission interval for final INVITE responses over UDP. */
const T1 = 500;

/**
 * The node's timers (answer delay, retransmissions of final INVITE responses) on mocked time from
 * here on: a test moves time with t.mock.timers.tick() and reads the node's counters, which change
 * inside the tick, so "sent at T1, not before" and "never sent again" are facts, not time windows.
 */
function mockNodeTimers(t: TestContext): void {
  t.mock.timers.enable({ apis: ['setTimeout'] });
}

let barriers = 0;

/**
 * Round trip of an OPTIONS on the peer's path to the node. The node handles a peer's messages in
 * order and answers each at once, and loopback keeps one socket pair's datagrams in order, so
 * anything the node sent this peer before answering it has arrived once the answer is here.
 */
async function barrier(ua: UdpPeer, node: DemoNode): Promise<void> {
  const callId = `barrier-${++barriers}`;
  ua.request({ method: 'OPTIONS', callId, cseq: 1, branch: callId }, node);
  await waitFor(`the answer to ${callId}`, () => ua.received.some((m) => m.callId === callId));
}

async function startNode(opts: Partial<DemoNodeOptions> = {}): Promise<DemoNode> {
  const port = await allocatePort();
  const node = new DemoNode({ ip: '127.0.0.1', port, transports: ['udp', 'tcp'], logger: silent, ...opts });
  await node.start();
  cleanups.push(() => releasePorts([port]));
  cleanups.push(() => node.close());
  return node;
}

interface RequestSpec {
  method: string;
  callId: string;
  cseq: number;
  branch: string;
  toTag?: string;
  cseqMethod?: string;
  /** Replaces the Via this peer would put in. */
  via?: string;
  headers?: string[];
  body?: string;
}

function sipRequest(r: RequestSpec, transport: 'UDP' | 'TCP', localPort: number, nodePort: number): Buffer {
  const body = r.body ?? '';
  const lines = [
    `${r.method} sip:service@127.0.0.1:${nodePort} SIP/2.0`,
    `Via: ${r.via ?? `SIP/2.0/${transport} 127.0.0.1:${localPort};branch=z9hG4bK${r.branch};rport`}`,
    'Max-Forwards: 70',
    'From: "Alice" <sip:alice@127.0.0.1>;tag=alice1',
    `To: <sip:service@127.0.0.1>${r.toTag === undefined ? '' : `;tag=${r.toTag}`}`,
    `Call-ID: ${r.callId}`,
    `CSeq: ${r.cseq} ${r.cseqMethod ?? r.method}`,
    `Contact: <sip:alice@127.0.0.1:${localPort}>`,
    ...(r.headers ?? []),
  ];
  if (body.length > 0) lines.push('Content-Type: application/sdp');
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

const OFFER = 'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n';

function parse(buf: Buffer, datagram: boolean): SipMessage {
  const msg = parseSipMessage(buf, datagram);
  assert.ok(!isParseFailure(msg), `response parses: ${buf.toString('latin1')}`);
  assert.equal(msg.error, null, `valid response: ${buf.toString('latin1')}`);
  return msg;
}

/** A UDP user agent on loopback that keeps everything it receives. */
class UdpPeer {
  readonly received: SipMessage[] = [];
  readonly raw: Buffer[] = [];
  private readonly socket = dgram.createSocket('udp4');

  static async open(): Promise<UdpPeer> {
    const peer = new UdpPeer();
    await new Promise<void>((resolve) => peer.socket.bind({ address: '127.0.0.1', port: 0 }, resolve));
    peer.socket.on('message', (data) => {
      peer.raw.push(data);
      peer.received.push(parse(data, true));
    });
    cleanups.push(() => new Promise<void>((resolve) => peer.socket.close(() => resolve())));
    return peer;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(data: Buffer | string, port: number): void {
    this.socket.send(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, port, '127.0.0.1');
  }

  request(r: RequestSpec, node: DemoNode): void {
    this.send(sipRequest(r, 'UDP', this.port, node.port), node.port);
  }

  async waitCount(n: number, timeoutMs = 3000): Promise<SipMessage[]> {
    await waitFor(`${n} messages (have ${this.received.length})`, () => this.received.length >= n, timeoutMs);
    return this.received.slice(0, n);
  }
}

/** A TCP user agent: one connection, messages framed as SIP over a stream. */
class TcpPeer {
  readonly received: SipMessage[] = [];
  pongs = 0;
  closed = false;
  private readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const framer = new StreamFramer(65535, {
      message: (data) => this.received.push(parse(Buffer.from(data), false)),
      ping: () => undefined,
      error: (reason) => assert.fail(`node sent an unframeable stream: ${reason}`),
    });
    socket.on('data', (chunk: Buffer) => {
      // A lone CRLF is the keep-alive pong (RFC 5626 §3.5.1); the framer skips it otherwise.
      if (chunk.toString('latin1') === '\r\n') this.pongs++;
      else framer.push(chunk);
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<TcpPeer> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const peer = new TcpPeer(socket);
    cleanups.push(() => {
      socket.destroy();
    });
    return peer;
  }

  get port(): number {
    return this.socket.localPort ?? 0;
  }

  write(data: Buffer | string): void {
    this.socket.write(data);
  }

  request(r: RequestSpec, node: DemoNode): void {
    this.write(sipRequest(r, 'TCP', this.port, node.port));
  }

  async waitCount(n: number, timeoutMs = 3000): Promise<SipMessage[]> {
    await waitFor(`${n} messages (have ${this.received.length})`, () => this.received.length >= n, timeoutMs);
    return this.received.slice(0, n);
  }
}

function toTag(msg: SipMessage): string | null {
  return headerParam(msg.to, 'tag');
}

function assertEchoes(resp: SipMessage, callId: string, cseq: string): void {
  assert.equal(resp.callId, callId);
  assert.equal(resp.get('cseq'), cseq);
  assert.equal(resp.from, '"Alice" <sip:alice@127.0.0.1>;tag=alice1');
}

function pick(stats: DemoNodeStats, ...names: Array<keyof DemoNodeStats>): Partial<DemoNodeStats> {
  return Object.fromEntries(names.map((n) => [n, stats[n]]));
}

describe('demo node over UDP', () => {
  test('INVITE -> 180 then 200 with SDP, one To tag and a Contact; ACK absorbed; BYE -> 200', async (t) => {
    mockNodeTimers(t);
    const node = await startNode();
    const ua = await UdpPeer.open();
    const rr = '<sip:127.0.0.1:5060;lr;lbnode=x>';
    ua.request({ method: 'INVITE', callId: 'call-1', cseq: 1, branch: 'inv1', body: OFFER,
      headers: [`Record-Route: ${rr}`, 'Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKbelow'] }, node);
    const [ringing, ok] = await ua.waitCount(2);
    assert.equal(ringing.status, 180);
    assert.equal(ok.status, 200);
    for (const r of [ringing, ok]) {
      assertEchoes(r, 'call-1', '1 INVITE');
      // Both Vias, in order; the top one stamped with where the request came from (RFC 3581).
      assert.deepEqual(r.getAll('via'), [
        `SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bKinv1;rport=${ua.port};received=127.0.0.1`,
        'SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKbelow',
      ]);
      assert.deepEqual(r.getAll('record-route'), [rr]);
      assert.equal(r.get('contact'), `<sip:demo@127.0.0.1:${node.port}>`);
    }
    assert.match(String(toTag(ok)), /^[0-9a-f]{12}$/);
    assert.equal(toTag(ringing), toTag(ok));
    assert.equal(ok.get('content-type'), 'application/sdp');
    const sdp = ok.body.toString('latin1');
    assert.match(sdp, /^v=0\r\n/);
    assert.match(sdp, /\r\nc=IN IP4 127\.0\.0\.1\r\n/);
    assert.match(sdp, /\r\nm=audio \d+ RTP\/AVP 0\r\n/);
    assert.equal(Number(ok.get('content-length')), ok.body.length);

    ua.request({ method: 'ACK', callId: 'call-1', cseq: 1, branch: 'ack1', toTag: String(toTag(ok)) }, node);
    await waitFor('the ACK at the node', () => node.stats().acks === 1);
    // Past every retransmission time of the 200 (64*T1): an unacknowledged 200 would go out again.
    t.mock.timers.tick(64 * T1);
    assert.equal(node.stats().responsesRetransmitted, 0, 'the ACK stops the 200');
    assert.equal(ua.received.length, 2, 'the ACK is not answered');

    ua.request({ method: 'BYE', callId: 'call-1', cseq: 2, branch: 'bye1', toTag: String(toTag(ok)) }, node);
    const [, , byeOk] = await ua.waitCount(3);
    assert.equal(byeOk.status, 200);
    assertEchoes(byeOk, 'call-1', '2 BYE');
    assert.equal(toTag(byeOk), toTag(ok));
    assert.deepEqual(pick(node.stats(), 'invites', 'callsAnswered', 'acks', 'byes', 'callsEnded', 'activeCalls', 'responsesRetransmitted'),
      { invites: 1, callsAnswered: 1, acks: 1, byes: 1, callsEnded: 1, activeCalls: 0, responsesRetransmitted: 0 });
  });

  test('a retransmitted INVITE gets the same answer again, not a new call', async () => {
    const node = await startNode();
    const ua = await UdpPeer.open();
    const invite = { method: 'INVITE', callId: 'call-rt', cseq: 7, branch: 'rt', body: OFFER };
    ua.request(invite, node);
    await ua.waitCount(2);
    ua.request(invite, node);
    await ua.waitCount(3);
    assert.deepEqual(ua.raw[2], ua.raw[1], 'byte-identical 200');
    assert.deepEqual(pick(node.stats(), 'invites', 'inviteRetransmissions', 'callsAnswered', 'activeCalls'),
      { invites: 1, inviteRetransmissions: 1, callsAnswered: 1, activeCalls: 1 });
  });

  test('an unacknowledged 200 is sent again at T1 then 2*T1 until the ACK', async (t) => {
    mockNodeTimers(t);
    const node = await startNode();
    const ua = await UdpPeer.open();
    const retransmitted = (): number => node.stats().responsesRetransmitted;
    ua.request({ method: 'INVITE', callId: 'call-noack', cseq: 1, branch: 'na', body: OFFER }, node);
    await ua.waitCount(2);
    t.mock.timers.tick(T1 - 1);
    assert.equal(retransmitted(), 0, 'not before T1');
    t.mock.timers.tick(1);
    assert.equal(retransmitted(), 1, 'again at T1');
    await ua.waitCount(3);
    t.mock.timers.tick(2 * T1 - 1);
    assert.equal(retransmitted(), 1, 'not before 2*T1 after that');
    t.mock.timers.tick(1);
    assert.equal(retransmitted(), 2, 'again 2*T1 after the first retransmission');
    await ua.waitCount(4);
    assert.deepEqual(ua.raw[2], ua.raw[1]);
    assert.deepEqual(ua.raw[3], ua.raw[1]);
    ua.request({ method: 'ACK', callId: 'call-noack', cseq: 1, branch: 'na-ack', toTag: String(toTag(ua.received[1])) }, node);
    await waitFor('the ACK at the node', () => node.stats().acks === 1);
    t.mock.timers.tick(64 * T1);
    assert.equal(retransmitted(), 2, 'no retransmission after the ACK');
    await barrier(ua, node);
    assert.equal(ua.received.length, 5, 'nothing but the barrier\'s answer after the ACK');
  });

  test('responses go to rport when asked for, else to the Via sent-by (received is added)', async () => {
    const node = await startNode();
    const sender = await UdpPeer.open();
    const listener = await UdpPeer.open();
    // No rport: the response goes to the sent-by port, not to where the request came from.
    sender.send(sipRequest({ method: 'OPTIONS', callId: 'o-1', cseq: 1, branch: 'o1',
      via: `SIP/2.0/UDP localhost:${listener.port};branch=z9hG4bKo1` }, 'UDP', sender.port, node.port), node.port);
    const [first] = await listener.waitCount(1);
    assert.equal(first.get('via'), `SIP/2.0/UDP localhost:${listener.port};branch=z9hG4bKo1;received=127.0.0.1`);
    // rport: back to the source port, whatever the sent-by says.
    sender.send(sipRequest({ method: 'OPTIONS', callId: 'o-2', cseq: 1, branch: 'o2',
      via: `SIP/2.0/UDP 127.0.0.1:${listener.port};rport;branch=z9hG4bKo2` }, 'UDP', sender.port, node.port), node.port);
    const [second] = await sender.waitCount(1);
    assert.equal(second.get('via'), `SIP/2.0/UDP 127.0.0.1:${listener.port};rport=${sender.port};branch=z9hG4bKo2;received=127.0.0.1`);
    assert.equal(listener.received.length, 1);
  });

  test('CANCEL before the answer: 200 for the CANCEL, 487 for the INVITE, ACK absorbed, never a 200', async (t) => {
    mockNodeTimers(t);
    const node = await startNode({ answerDelayMs: 600 });
    const ua = await UdpPeer.open();
    ua.request({ method: 'INVITE', callId: 'call-c', cseq: 3, branch: 'c1', body: OFFER }, node);
    const [ringing] = await ua.waitCount(1);
    assert.equal(ringing.status, 180);
    ua.request({ method: 'CANCEL', callId: 'call-c', cseq: 3, branch: 'c1' }, node);
    const [, cancelOk, terminated] = await ua.waitCount(3);
    assert.equal(cancelOk.status, 200);
    assertEchoes(cancelOk, 'call-c', '3 CANCEL');
    assert.equal(terminated.status, 487);
    assertEchoes(terminated, 'call-c', '3 INVITE');
    assert.equal(toTag(terminated), toTag(ringing));
    ua.request({ method: 'ACK', callId: 'call-c', cseq: 3, branch: 'c1', toTag: String(toTag(terminated)) }, node);
    await waitFor('the ACK at the node', () => node.stats().acks === 1);
    // Past the answer delay and every retransmission time of the 487.
    t.mock.timers.tick(600 + 64 * T1);
    assert.equal(node.stats().responsesRetransmitted, 0, 'the ACK stops the 487');
    await barrier(ua, node);
    assert.deepEqual(ua.received.map((m) => m.status), [180, 200, 487, 200], 'nothing but the barrier\'s answer after the 487');
    assert.deepEqual(pick(node.stats(), 'invites', 'cancels', 'callsCancelled', 'callsAnswered', 'acks', 'activeCalls'),
      { invites: 1, cancels: 1, callsCancelled: 1, callsAnswered: 0, acks: 1, activeCalls: 0 });
  });

  test('CANCEL after the answer gets 200 only; CANCEL of an unknown transaction gets 481', async (t) => {
    // The 200 stays unacknowledged: its retransmission (at T1) is held by mocked time.
    mockNodeTimers(t);
    const node = await startNode();
    const ua = await UdpPeer.open();
    ua.request({ method: 'INVITE', callId: 'call-late', cseq: 1, branch: 'l1', body: OFFER }, node);
    await ua.waitCount(2);
    ua.request({ method: 'CANCEL', callId: 'call-late', cseq: 1, branch: 'l1' }, node);
    ua.request({ method: 'CANCEL', callId: 'call-late', cseq: 1, branch: 'other' }, node);
    ua.request({ method: 'CANCEL', callId: 'nobody', cseq: 1, branch: 'n1' }, node);
    const msgs = await ua.waitCount(5);
    assert.deepEqual(msgs.slice(2).map((m) => `${m.status} ${m.callId} ${m.get('cseq')}`), [
      '200 call-late 1 CANCEL', '481 call-late 1 CANCEL', '481 nobody 1 CANCEL',
    ]);
    await barrier(ua, node);
    assert.equal(ua.received.length, 6, 'no 487 for an answered call (only the barrier\'s answer came)');
    assert.equal(node.stats().callsCancelled, 0);
  });

  test('OPTIONS, REGISTER and MESSAGE get 200; other methods 501; ACK is never answered', async () => {
    const node = await startNode();
    const ua = await UdpPeer.open();
    ua.request({ method: 'OPTIONS', callId: 'm-1', cseq: 1, branch: 'm1' }, node);
    const [options] = await ua.waitCount(1);
    assert.equal(options.status, 200);
    assert.equal(options.get('allow'), 'INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE');
    assert.ok(toTag(options) !== null);

    ua.request({ method: 'REGISTER', callId: 'm-2', cseq: 1, branch: 'm2',
      headers: ['Expires: 600', 'Contact: <sip:bob@127.0.0.1:5099>, <sip:bob@127.0.0.1:5098>;expires=30, <sip:old@127.0.0.1>;expires=0'] }, node);
    const [, register] = await ua.waitCount(2);
    assert.equal(register.status, 200);
    // Every binding of the request (the peer's own Contact line first) but the one being removed.
    assert.deepEqual(register.getAll('contact'), [
      `<sip:alice@127.0.0.1:${ua.port}>;expires=600`, '<sip:bob@127.0.0.1:5099>;expires=600', '<sip:bob@127.0.0.1:5098>;expires=30',
    ]);

    ua.request({ method: 'MESSAGE', callId: 'm-3', cseq: 1, branch: 'm3', headers: ['Content-Type: text/plain'] }, node);
    const [, , message] = await ua.waitCount(3);
    assert.equal(message.status, 200);
    assertEchoes(message, 'm-3', '1 MESSAGE');

    ua.request({ method: 'SUBSCRIBE', callId: 'm-4', cseq: 1, branch: 'm4', headers: ['Event: presence'] }, node);
    const [, , , unknown] = await ua.waitCount(4);
    assert.equal(unknown.status, 501);
    assert.equal(unknown.get('allow'), 'INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE');

    ua.request({ method: 'ACK', callId: 'm-5', cseq: 1, branch: 'm5', toTag: 'x' }, node);
    await barrier(ua, node);
    assert.equal(ua.received.length, 5, 'the ACK got no answer (only the barrier\'s OPTIONS did)');
    assert.deepEqual(pick(node.stats(), 'options', 'registers', 'messages', 'unsupported', 'acks'),
      { options: 2, registers: 1, messages: 1, unsupported: 1, acks: 1 });
  });

  test('garbage, invalid requests and stray responses are ignored; the node still answers', async () => {
    const node = await startNode();
    const ua = await UdpPeer.open();
    const junk = [
      Buffer.from([0, 1, 2, 3, 255, 254, 13, 10]),
      '\r\n\r\n',
      'INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n',
      sipRequest({ method: 'OPTIONS', callId: 'bad', cseq: 1, branch: 'b', cseqMethod: 'INVITE' }, 'UDP', ua.port, node.port),
      `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bKnocallid\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCSeq: 1 OPTIONS\r\n\r\n`,
      `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bKr\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@b>;tag=2\r\nCall-ID: r\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
      'x'.repeat(60_000),
    ];
    for (const j of junk) ua.send(j, node.port);
    ua.request({ method: 'OPTIONS', callId: 'after-junk', cseq: 1, branch: 'ok' }, node);
    const [answer] = await ua.waitCount(1);
    assert.equal(answer.status, 200);
    assert.equal(answer.callId, 'after-junk');
    // The OPTIONS went last: an answer to any of the junk would have arrived before its answer.
    assert.equal(ua.received.length, 1, 'nothing but the OPTIONS was answered');
    const stats = node.stats();
    assert.equal(stats.ignoredResponses, 1);
    assert.equal(stats.ignoredMalformed, junk.length - 1, JSON.stringify(stats));
  });
});

describe('demo node over TCP', () => {
  test('a call over one connection: 180/200 on the connection, Contact with transport=tcp, BYE -> 200', async (t) => {
    mockNodeTimers(t);
    const node = await startNode();
    const ua = await TcpPeer.connect(node.port);
    ua.request({ method: 'INVITE', callId: 'tcp-1', cseq: 1, branch: 't1', body: OFFER }, node);
    const [ringing, ok] = await ua.waitCount(2);
    assert.deepEqual([ringing.status, ok.status], [180, 200]);
    assert.equal(ok.get('contact'), `<sip:demo@127.0.0.1:${node.port};transport=tcp>`);
    assert.match(ok.body.toString('latin1'), /^v=0\r\n/);
    assert.equal(toTag(ringing), toTag(ok));
    // Not acknowledged yet, past every time a UDP 200 would be sent again: over TCP it is not.
    t.mock.timers.tick(64 * T1);
    assert.equal(node.stats().responsesRetransmitted, 0, 'no 200 retransmission over TCP');
    ua.request({ method: 'ACK', callId: 'tcp-1', cseq: 1, branch: 't1a', toTag: String(toTag(ok)) }, node);
    ua.request({ method: 'BYE', callId: 'tcp-1', cseq: 2, branch: 't1b', toTag: String(toTag(ok)) }, node);
    const [, , bye] = await ua.waitCount(3);
    assert.equal(bye.status, 200);
    assertEchoes(bye, 'tcp-1', '2 BYE');
    assert.equal(ua.received.length, 3, 'nothing else on the connection before the answer to the BYE');
    assert.deepEqual(pick(node.stats(), 'invites', 'callsAnswered', 'acks', 'byes', 'callsEnded'),
      { invites: 1, callsAnswered: 1, acks: 1, byes: 1, callsEnded: 1 });
  });

  test('messages split across writes and pipelined in one write; CRLF keep-alive gets a pong', async (t) => {
    // Watches what the node's stream framer is given, to know the first part was read on its own.
    const pushed = t.mock.method(StreamFramer.prototype, 'push');
    const node = await startNode();
    const ua = await TcpPeer.connect(node.port);
    const a = sipRequest({ method: 'OPTIONS', callId: 's-1', cseq: 1, branch: 's1' }, 'TCP', ua.port, node.port);
    const b = sipRequest({ method: 'MESSAGE', callId: 's-2', cseq: 1, branch: 's2', body: 'hello' }, 'TCP', ua.port, node.port);
    const head = a.subarray(0, 20);
    ua.write(head);
    await waitFor('the node to read the first 20 bytes on their own', () => pushed.mock.calls.some((c) => head.equals(c.arguments[0])));
    ua.write(Buffer.concat([a.subarray(20), b]));
    const msgs = await ua.waitCount(2);
    assert.deepEqual(msgs.map((m) => `${m.status} ${m.callId}`), ['200 s-1', '200 s-2']);
    ua.write('\r\n\r\n');
    await waitFor('pong', () => ua.pongs === 1);
  });

  test('an unframeable stream closes that connection only; the node keeps serving', async () => {
    const node = await startNode();
    const bad = await TcpPeer.connect(node.port);
    bad.write('OPTIONS sip:x SIP/2.0\r\nContent-Length: many\r\n\r\n');
    await waitFor('connection closed by the node', () => bad.closed);
    const good = await TcpPeer.connect(node.port);
    good.request({ method: 'OPTIONS', callId: 'after', cseq: 1, branch: 'a' }, node);
    const [answer] = await good.waitCount(1);
    assert.equal(answer.status, 200);
    assert.equal(node.stats().ignoredMalformed, 1);
  });
});

describe('demo node with sipp', () => {
  for (const transport of ['u1', 't1'] as SippTransport[]) {
    test(`sipp's built-in uac completes 20 calls (${transport === 'u1' ? 'UDP' : 'TCP'}, -m 20 -r 10)`, async () => {
      const node = await startNode();
      const uacPort = await allocatePort();
      cleanups.push(() => releasePorts([uacPort]));
      const result = await runSippUac({
        scenario: 'uac', transport, localPort: uacPort, remote: `127.0.0.1:${node.port}`,
        rate: 10, calls: 20, timeoutS: 30, traceErrors: true,
      });
      assert.equal(result.stats.successful, 20, describeResult('sipp uac', result));
      assert.equal(result.stats.failed, 0, describeResult('sipp uac', result));
      assert.deepEqual(pick(node.stats(), 'invites', 'callsAnswered', 'acks', 'byes', 'callsEnded', 'activeCalls'),
        { invites: 20, callsAnswered: 20, acks: 20, byes: 20, callsEnded: 20, activeCalls: 0 });
    });
  }
});

describe('demo nodes registered with a real siplb by heartbeats', () => {
  test('sipp calls through siplb reach both nodes; after the nodes drain and stop siplb answers 503', async () => {
    const [lbPort, hbPort, uacPort] = [await allocatePort(), await allocatePort(), await allocatePort()];
    cleanups.push(() => releasePorts([lbPort, hbPort, uacPort]));
    const siplb = await startSiplb({ host: '127.0.0.1', externalPort: String(lbPort), heartbeatPort: String(hbPort) }, { logLevel: 'info' });
    cleanups.push(() => siplb.stop());
    const nodes = [await startNode(), await startNode()];
    const agents = nodes.map((n) => new HeartbeatAgent({
      balancers: `127.0.0.1:${hbPort}`, node: { ip: '127.0.0.1', udpPort: n.port, tcpPort: n.port },
      intervalMs: 200, shutdownGraceMs: 300, logger: silent,
    }));
    const answers: string[] = [];
    for (const a of agents) {
      a.on('answer', (e) => answers.push(`${e.request}:${e.outcome}`));
      cleanups.push(() => a.stop());
      a.start();
    }
    await waitFor('both nodes registered', () => agents.every((a) => a.status()[0].state === 'registered'));

    const result = await runSippUac({
      scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 10, calls: 20, timeoutS: 30, traceErrors: true,
    });
    assert.equal(result.stats.successful, 20, describeResult('sipp uac through siplb', result));
    const invites = nodes.map((n) => n.stats().invites);
    assert.equal(invites[0] + invites[1], 20);
    assert.ok(invites.every((i) => i > 0), `calls per node: ${invites.join(', ')}`);
    assert.deepEqual(nodes.map((n) => n.stats().callsEnded), invites);

    // siplb answers stop OK once the node is out of its registry.
    await Promise.all(agents.map((a) => a.shutdown()));
    assert.deepEqual(answers.filter((a) => !a.startsWith('heartbeat:')),
      ['start:ok', 'start:ok', 'shutdown:ok', 'shutdown:ok', 'stop:ok', 'stop:ok']);
    assert.ok(answers.every((a) => a.endsWith(':ok')), answers.join(','));
    const ua = await UdpPeer.open();
    ua.send(sipRequest({ method: 'INVITE', callId: 'no-node', cseq: 1, branch: 'nn', body: OFFER }, 'UDP', ua.port, lbPort), lbPort);
    const [answer] = await ua.waitCount(1);
    assert.equal(answer.status, 503);
  });
});

describe('siplb-demo-node command', () => {
  function run(args: string[]): RepoScript {
    const script = runRepoScript('src/cli/siplb-demo-node.ts', args);
    cleanups.push(() => terminate(script.child, 'SIGKILL', 1000));
    return script;
  }

  function jsonLines(lines: LineBuffer): Array<Record<string, unknown>> {
    return lines.snapshot().flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async function getJson(port: number): Promise<Record<string, unknown>> {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, unknown>;
  }

  test('serves its counters on --stats-port, logs them as one JSON line on SIGTERM, exits 0', async () => {
    const [sipPort, statsPort] = [await allocatePort(), await allocatePort()];
    cleanups.push(() => releasePorts([sipPort, statsPort]));
    const { child, lines, closed } = run(['--ip', '127.0.0.1', '--port', String(sipPort), '--transport', 'udp', '--stats-port', String(statsPort), '--log-level', 'warn']);
    await waitFor('ready', () => jsonLines(lines).some((l) => l.msg === 'siplb-demo-node ready'), 10_000);
    const ua = await UdpPeer.open();
    ua.send(sipRequest({ method: 'OPTIONS', callId: 'cli-1', cseq: 1, branch: 'c' }, 'UDP', ua.port, sipPort), sipPort);
    await ua.waitCount(1);
    const stats = await getJson(statsPort);
    assert.equal(stats.options, 1);
    assert.equal(stats.requests, 1);
    child.process.kill('SIGTERM');
    assert.deepEqual(await child.exited, { code: 0, signal: null });
    await closed;
    const last = jsonLines(lines).filter((l) => l.msg === 'siplb-demo-node stats');
    assert.equal(last.length, 1);
    assert.equal((last[0].stats as DemoNodeStats).options, 1);
  });

  test('registers with --balancers (udpPort and tcpPort = --port), drains on SIGTERM, stops after --grace', async () => {
    const seen: Array<{ kind: string; value: Record<string, unknown>; at: number }> = [];
    const balancer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, Record<string, unknown>>;
        const kind = Object.keys(body)[0];
        seen.push({ kind, value: body[kind], at: Date.now() });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ [kind]: 'OK' }));
      });
    });
    await new Promise<void>((resolve) => balancer.listen({ host: '127.0.0.1', port: 0 }, resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      balancer.closeAllConnections();
      balancer.close(() => resolve());
    }));
    const hbPort = (balancer.address() as AddressInfo).port;
    const sipPort = await allocatePort();
    cleanups.push(() => releasePorts([sipPort]));
    const { child, lines, closed } = run(['--ip', '127.0.0.1', '--port', String(sipPort), '--balancers', `127.0.0.1:${hbPort}`,
      '--version', '2', '--interval', '100', '--grace', '300', '--answer-delay', '0']);
    await waitFor('heartbeats', () => seen.filter((s) => s.kind === 'heartbeat').length >= 2, 10_000);
    assert.equal(seen[0].kind, 'start');
    assert.deepEqual({ ...seen[0].value, sessionId: 'S' }, { ip: '127.0.0.1', udpPort: sipPort, tcpPort: sipPort, version: '2', sessionId: 'S' });
    const t0 = Date.now();
    child.process.kill('SIGTERM');
    // While draining the node still answers.
    const ua = await UdpPeer.open();
    ua.send(sipRequest({ method: 'OPTIONS', callId: 'drain', cseq: 1, branch: 'd' }, 'UDP', ua.port, sipPort), sipPort);
    await ua.waitCount(1);
    assert.deepEqual(await child.exited, { code: 0, signal: null });
    await closed;
    const kinds = seen.map((s) => s.kind);
    assert.ok(kinds.includes('shutdown'));
    assert.equal(kinds.at(-1), 'stop');
    assert.ok(seen.at(-1)!.at - t0 >= 290);
    const stats = jsonLines(lines).find((l) => l.msg === 'siplb-demo-node stats');
    assert.equal((stats?.stats as DemoNodeStats | undefined)?.options, 1);
  });

  const BAD: Array<{ args: string[]; mention: string }> = [
    { args: ['--port', '5080'], mention: '--ip' },
    { args: ['--ip', '127.0.0.1'], mention: '--port' },
    { args: ['--ip', '0.0.0.0', '--port', '5080'], mention: '--ip "0.0.0.0"' },
    { args: ['--ip', '127.0.0.1', '--port', '5080', '--transport', 'tls'], mention: '--transport "tls"' },
    { args: ['--ip', '127.0.0.1', '--port', '5080', '--answer-delay', '-1'], mention: '--answer-delay' },
    { args: ['--ip', '127.0.0.1', '--port', '5080', '--balancers', 'a b'], mention: '--balancers "a b"' },
    { args: ['--ip', '127.0.0.1', '--port', '5080', '--bogus'], mention: '--bogus' },
  ];
  for (const c of BAD) {
    test(`bad command line: ${c.args.join(' ')} -> one stderr line, exit 2`, async () => {
      const { child, lines, closed } = run(c.args);
      assert.equal((await child.exited).code, 2);
      await closed;
      const out = lines.snapshot().filter((l) => l.trim() !== '');
      assert.equal(out.length, 1, out.join('\n'));
      assert.ok(out[0].startsWith('siplb-demo-node: ') && out[0].includes(c.mention), out[0]);
    });
  }

  test('a port in use: one stderr line, exit 1', async () => {
    const holder = await startNode({ transports: ['tcp'] });
    const { child, lines, closed } = run(['--ip', '127.0.0.1', '--port', String(holder.port), '--transport', 'tcp']);
    assert.equal((await child.exited).code, 1);
    await closed;
    const out = lines.snapshot().filter((l) => l.trim() !== '');
    assert.equal(out.length, 1, out.join('\n'));
    assert.match(out[0], /^siplb-demo-node: cannot bind TCP 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});
