// SipProxy forwarding rules (RFC 3261 §16, §16.11, RFC 3581) through onMessage with a capturing
// Outbound: every message the proxy sends is recorded with side, transport, ip and port.
//
// Topology: balancer 10.0.0.1:5060 (internal port 5065 when two ports are configured), nodes
// A = 10.0.0.11:5080 and B = 10.0.0.12:5080, clients in 192.0.2.0/24, a victim 192.0.2.1.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Algorithm, PickRequest } from '../../src/algorithms/algorithm.ts';
import { CallTracker } from '../../src/cluster/call-tracker.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { nameAddrUri, parseSipUri } from '../../src/sip/uri.ts';
import { parseVia, type Via } from '../../src/sip/via.ts';
import type { Transport } from '../../src/config/types.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, LB_IP, NODE_A, NODE_B, type Sent } from '../helpers/proxy.ts';
import { prng } from '../helpers/prng.ts';
import { elements } from '../helpers/sip.ts';

const CRLF = '\r\n';
const NODE_IPS = new Set([NODE_A.ip, NODE_B.ip]);
const VICTIM = '192.0.2.1';

const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5060, connectionId: 0 };
const FROM_A: Inbound = { transport: 'udp', side: 'external', ip: NODE_A.ip, port: 5080, connectionId: 0 };

interface RequestOptions {
  method?: string;
  ruri?: string;
  /** Via values, one header line each (a value may hold several, comma-separated). */
  via?: string[];
  callId?: string;
  cseq?: number;
  fromTag?: string;
  toTag?: string;
  /** null: no Max-Forwards header. */
  maxForwards?: string | null;
  /** Route header lines (values). */
  route?: string[];
  extra?: string[];
  body?: string;
  /** null: no Content-Length header. */
  contentLength?: boolean;
}

function request(o: RequestOptions = {}): Buffer {
  const method = o.method ?? 'INVITE';
  const lines = [`${method} ${o.ruri ?? `sip:service@${LB_IP}:5060`} SIP/2.0`];
  for (const v of o.via ?? [`SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-client-1`]) lines.push(`Via: ${v}`);
  if (o.maxForwards !== null) lines.push(`Max-Forwards: ${o.maxForwards ?? '70'}`);
  for (const r of o.route ?? []) lines.push(`Route: ${r}`);
  lines.push(`From: Alice <sip:alice@example.org>;tag=${o.fromTag ?? 'from-1'}`);
  lines.push(`To: Service <sip:service@example.com>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`);
  lines.push(`Call-ID: ${o.callId ?? 'call-1@192.0.2.10'}`);
  lines.push(`CSeq: ${o.cseq ?? 1} ${method}`);
  lines.push(`Contact: <sip:alice@${CLIENT.ip}:${CLIENT.port}>`);
  lines.push(...(o.extra ?? []));
  const body = o.body ?? '';
  if (o.contentLength !== false) lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF + body, 'latin1');
}

function parsed(data: Buffer, datagram = true): SipMessage {
  const m = parseSipMessage(data, datagram);
  if (isParseFailure(m)) assert.fail(`ParseFailure: ${m.failure}`);
  assert.equal(m.error, null, `error: ${m.error}\n${data.toString('latin1')}`);
  return m;
}

function vias(m: SipMessage): Via[] {
  return elements(m, 'via').map((v) => {
    const via = parseVia(v);
    assert.ok(via !== null, `unparseable Via ${v}`);
    return via;
  });
}

function topBranch(s: Sent): string {
  return vias(parsed(s.data, s.transport === 'udp'))[0].branch ?? '';
}

/** Exactly one message sent, besides the 100 Trying of a forwarded INVITE (checked by withoutTrying). */
function one(sent: Sent[]): Sent {
  const rest = withoutTrying(sent);
  assert.equal(rest.length, 1, `expected exactly one message sent, got ${rest.length}: ${describeSent(sent)}`);
  return rest[0];
}

/**
 * The messages a fed message caused, with the 100 Trying the proxy answers a forwarded INVITE
 * with (isSendTrying, on by default) checked and set aside: one per forwarded INVITE and none
 * otherwise, sent before the INVITE, back to the INVITE's sender (the source the proxy wrote
 * into the Via below ours), echoing its Vias, From, To, Call-ID and CSeq.
 */
function withoutTrying(sent: Sent[]): Sent[] {
  const isTrying = (s: Sent): boolean => s.data.toString('latin1', 0, 19) === 'SIP/2.0 100 Trying\r';
  const trying = sent.filter(isTrying);
  const invites = sent.filter((s) => s.data.toString('latin1', 0, 7) === 'INVITE ');
  assert.equal(trying.length, invites.length, `one 100 Trying per forwarded INVITE: ${describeSent(sent)}`);
  if (invites.length === 0) return sent;
  assert.equal(invites.length, 1, describeSent(sent));
  assert.ok(sent.indexOf(trying[0]) < sent.indexOf(invites[0]), `the 100 Trying goes before the INVITE: ${describeSent(sent)}`);
  const inv = parsed(invites[0].data, invites[0].transport === 'udp');
  const t = parsed(trying[0].data, trying[0].transport === 'udp');
  const sender = vias(inv)[1];
  // The source port shows in the Via only when rport was asked for (or over TCP); the exact
  // destination, connection included, is checked by the isSendTrying tests of policy.test.ts.
  assert.deepEqual([trying[0].ip, trying[0].transport], [sender.received ?? sender.host, sender.transport.toLowerCase()], '100 Trying sent back to the INVITE sender');
  if (typeof sender.rport === 'number') assert.equal(trying[0].port, sender.rport);
  assert.equal(vias(t).length, vias(inv).length - 1, 'the 100 carries the INVITE Vias as received');
  assert.equal(vias(t)[0].branch, sender.branch);
  for (const name of ['from', 'to', 'call-id', 'cseq']) assert.equal(t.get(name), inv.get(name), `100 Trying echoes ${name}`);
  return sent.filter((s) => s !== trying[0]);
}

function describeSent(sent: Sent[]): string {
  return JSON.stringify(sent.map((s) => `${s.side} ${s.transport} ${s.ip}:${s.port} ${s.data.toString('latin1').split(CRLF)[0]}`));
}

function toNode(sent: Sent[], node: SipNode): Sent {
  const s = one(sent);
  assert.equal(s.ip, node.ip, `expected the request at ${node.id}, sent ${describeSent(sent)}`);
  assert.equal(s.port, 5080);
  return s;
}

/** A local reply sent back to `src`, with this status. */
function replyTo(sent: Sent[], src: Inbound, status: number): SipMessage {
  const s = one(sent);
  assert.equal(s.ip, src.ip);
  assert.equal(s.port, src.port);
  assert.equal(s.side, src.side);
  assert.equal(s.transport, src.transport);
  // A stream reply names the connection the request came on (the router sends it there).
  assert.equal(s.connectionId, src.connectionId);
  const m = parsed(s.data, s.transport === 'udp');
  assert.equal(m.isRequest, false);
  assert.equal(m.status, status);
  return m;
}

function recordRoutes(m: SipMessage): { host: string; port: number | null; params: Map<string, string> }[] {
  return elements(m, 'record-route').map((rr) => {
    const uriText = nameAddrUri(rr);
    const uri = uriText === null ? null : parseSipUri(uriText);
    assert.ok(uri !== null, `unparseable Record-Route ${rr}`);
    return uri;
  });
}

const REASONS: Record<number, string> = { 100: 'Trying', 180: 'Ringing', 200: 'OK', 486: 'Busy Here' };

interface AnswerOptions {
  /** All Via values on one header line. */
  joined?: boolean;
  mutateVias?: (vias: string[]) => string[];
  callId?: string;
  cseq?: string;
  body?: string;
}

/** The response a UAS sends to a request it received: Vias, From, To (+tag), Call-ID, CSeq. */
function answer(forwarded: Buffer, status: number, o: AnswerOptions = {}): Buffer {
  const m = parsed(forwarded);
  let vs = elements(m, 'via');
  if (o.mutateVias !== undefined) vs = o.mutateVias(vs);
  const to = m.get('to') ?? '';
  const body = o.body ?? '';
  const lines = [
    `SIP/2.0 ${status} ${REASONS[status] ?? 'Whatever'}`,
    ...(o.joined === true ? [`Via: ${vs.join(', ')}`] : vs.map((v) => `Via: ${v}`)),
    ...m.getAll('record-route').map((r) => `Record-Route: ${r}`),
    `From: ${m.get('from')}`,
    `To: ${/;\s*tag=/i.test(to) ? to : `${to};tag=uas-1`}`,
    `Call-ID: ${o.callId ?? m.get('call-id')}`,
    `CSeq: ${o.cseq ?? m.get('cseq')}`,
    'Contact: <sip:uas@10.0.0.11:5080>',
    `Content-Length: ${body.length}`,
  ];
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF + body, 'latin1');
}

// ====================================================================================== requests

describe('requests: Max-Forwards (RFC 3261 16.3 step 3, 16.6 step 3)', () => {
  test('decremented by one', () => {
    const h = harness();
    const m = parsed(toNode(h.feed(request({ maxForwards: '70' }), CLIENT), NODE_A).data);
    assert.deepEqual(m.getAll('max-forwards'), ['69']);
  });

  test('1 is forwarded as 0', () => {
    const h = harness();
    const m = parsed(one(h.feed(request({ maxForwards: '1' }), CLIENT)).data);
    assert.deepEqual(m.getAll('max-forwards'), ['0']);
  });

  test('absent -> Max-Forwards: 70 added', () => {
    const h = harness();
    const m = parsed(one(h.feed(request({ maxForwards: null }), CLIENT)).data);
    assert.deepEqual(m.getAll('max-forwards'), ['70']);
  });

  test('0 -> 483 Too Many Hops sent back to the source, nothing forwarded', () => {
    const h = harness();
    const m = replyTo(h.feed(request({ maxForwards: '0' }), CLIENT), CLIENT, 483);
    assert.equal(m.get('call-id'), 'call-1@192.0.2.10');
    assert.equal(m.get('cseq'), '1 INVITE');
    assert.deepEqual(elements(m, 'via'), [`SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-client-1`]);
    assert.match(m.get('to') ?? '', /;tag=/, 'the local reply carries a To tag');
  });

  test('0 on an ACK -> dropped, never answered', () => {
    const h = harness();
    assert.deepEqual(h.feed(request({ method: 'ACK', maxForwards: '0', toTag: 'uas-1' }), CLIENT), []);
  });
});

describe('requests: our Via and the branch (RFC 3261 16.6 step 8, 16.11)', () => {
  test('own Via on top, branch starts with z9hG4bKLb, the client Via follows', () => {
    const h = harness();
    const s = toNode(h.feed(request(), CLIENT), NODE_A);
    const m = parsed(s.data);
    const [top, next, ...rest] = vias(m);
    assert.equal(top.transport, 'UDP');
    assert.equal(top.host, LB_IP);
    assert.equal(top.port, 5060);
    assert.ok(top.branch !== null && top.branch.startsWith('z9hG4bKLb'), `branch ${top.branch}`);
    assert.ok(top.branch.length > 'z9hG4bKLb'.length);
    assert.equal(next.host, CLIENT.ip);
    assert.equal(next.branch, 'z9hG4bK-client-1');
    assert.deepEqual(rest, []);
    assert.ok(s.data.toString('latin1').split(CRLF)[1].startsWith(`Via: SIP/2.0/UDP ${LB_IP}:5060;branch=z9hG4bKLb`), 'our Via is the first header line');
  });

  test('the same INVITE twice (retransmission) -> identical branch, same node', () => {
    const h = harness();
    const first = toNode(h.feed(request(), CLIENT), NODE_A);
    const again = toNode(h.feed(request(), CLIENT), NODE_A);
    assert.equal(topBranch(again), topBranch(first));
  });

  test('CANCEL and non-2xx ACK of that INVITE -> same branch as the INVITE, same node', () => {
    const h = harness();
    h.feed(request({ callId: 'other@192.0.2.10', via: [`SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-other`] }), CLIENT); // moves round robin to B next
    const invite = toNode(h.feed(request(), CLIENT), NODE_B);
    const cancel = toNode(h.feed(request({ method: 'CANCEL' }), CLIENT), NODE_B);
    const ack = toNode(h.feed(request({ method: 'ACK', toTag: 'uas-1' }), CLIENT), NODE_B);
    assert.equal(topBranch(cancel), topBranch(invite));
    assert.equal(topBranch(ack), topBranch(invite));
  });

  test('different transactions get different branches', () => {
    const h = harness();
    const invite = one(h.feed(request(), CLIENT));
    const bye = one(h.feed(request({ method: 'BYE', cseq: 2, toTag: 'uas-1', via: [`SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-client-2`] }), CLIENT));
    assert.notEqual(topBranch(bye), topBranch(invite));
  });

  test('new INVITEs with other Call-IDs go round robin over the nodes', () => {
    const h = harness();
    const order = ['c1', 'c2', 'c3', 'c4'].map((c) => one(h.feed(request({ callId: c, via: [`SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-${c}`] }), CLIENT)).ip);
    assert.deepEqual(order, [NODE_A.ip, NODE_B.ip, NODE_A.ip, NODE_B.ip]);
  });

  test('later requests of a call stick to its node', () => {
    const h = harness();
    toNode(h.feed(request({ callId: 'c1' }), CLIENT), NODE_A);
    toNode(h.feed(request({ callId: 'c2' }), CLIENT), NODE_B);
    toNode(h.feed(request({ method: 'ACK', callId: 'c1', toTag: 't' }), CLIENT), NODE_A);
    toNode(h.feed(request({ method: 'BYE', callId: 'c2', cseq: 2, toTag: 't' }), CLIENT), NODE_B);
    toNode(h.feed(request({ method: 'BYE', callId: 'c1', cseq: 2, toTag: 't' }), CLIENT), NODE_A);
  });
});

describe('requests: received and rport on the sender Via (RFC 3261 18.2.1, RFC 3581)', () => {
  const cases: { name: string; src: Inbound; via: string; received: string | null; rport: number | null | undefined; transport: Transport }[] = [
    { name: 'Via host equals the source, no rport -> Via untouched', src: CLIENT, via: `SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bKv1`, received: null, rport: undefined, transport: 'udp' },
    { name: 'Via host is a name -> received added', src: CLIENT, via: 'SIP/2.0/UDP client.example.com:5060;branch=z9hG4bKv2', received: CLIENT.ip, rport: undefined, transport: 'udp' },
    { name: 'Via host is another IP (NAT) -> received added', src: CLIENT, via: 'SIP/2.0/UDP 172.16.0.5:5060;branch=z9hG4bKv3', received: CLIENT.ip, rport: undefined, transport: 'udp' },
    { name: ';rport without value -> rport filled with the source port, received added', src: { ...CLIENT, port: 40000 }, via: `SIP/2.0/UDP ${CLIENT.ip}:5060;rport;branch=z9hG4bKv4`, received: CLIENT.ip, rport: 40000, transport: 'udp' },
    { name: 'TCP source -> received and rport always', src: { ...CLIENT, transport: 'tcp', port: 40001 }, via: `SIP/2.0/TCP ${CLIENT.ip}:5060;branch=z9hG4bKv5`, received: CLIENT.ip, rport: 40001, transport: 'tcp' },
    { name: 'a forged received is replaced by the real source', src: CLIENT, via: 'SIP/2.0/UDP client.example.com;received=203.0.113.50;branch=z9hG4bKv6', received: CLIENT.ip, rport: undefined, transport: 'udp' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const h = harness();
      const s = toNode(h.feed(request({ via: [c.via] }), c.src), NODE_A);
      assert.equal(s.transport, c.transport);
      const m = parsed(s.data, s.transport === 'udp');
      const sender = vias(m)[1];
      assert.equal(sender.received, c.received);
      assert.equal(sender.rport, c.rport);
      assert.equal(sender.branch, parseVia(c.via)?.branch);
      if (c.received === null) assert.equal(elements(m, 'via')[1], c.via, 'Via copied byte for byte');
      assert.equal(elements(m, 'via').join(',').match(/received=/g)?.length ?? 0, c.received === null ? 0 : 1, 'one received parameter');
    });
  }

  test('only the top Via of the sender is touched', () => {
    const h = harness();
    const below = 'SIP/2.0/UDP proxy.example.net:5070;branch=z9hG4bKbelow';
    const m = parsed(one(h.feed(request({ via: ['SIP/2.0/UDP client.example.com;branch=z9hG4bKtop', below] }), CLIENT)).data);
    assert.equal(elements(m, 'via')[2], below);
  });
});

describe('requests: Record-Route (RFC 3261 16.6 step 4)', () => {
  const dialogCreating = [
    { name: 'INVITE', method: 'INVITE' },
    { name: 'SUBSCRIBE', method: 'SUBSCRIBE', extra: ['Event: presence'] },
  ];
  for (const c of dialogCreating) {
    test(`${c.name} without To tag -> Record-Route with ;lr and lbnode=<node id>`, () => {
      const h = harness();
      const s = toNode(h.feed(request({ method: c.method, extra: c.extra }), CLIENT), NODE_A);
      const rr = recordRoutes(parsed(s.data));
      assert.equal(rr.length, 1);
      assert.equal(rr[0].host, LB_IP);
      assert.equal(rr[0].port ?? 5060, 5060);
      assert.ok(rr[0].params.has('lr'));
      assert.equal(rr[0].params.get('lbnode'), NODE_A.id);
    });
  }

  const inDialog = [
    { name: 'BYE', method: 'BYE', cseq: 2 },
    { name: 're-INVITE (To tag present)', method: 'INVITE', cseq: 3 },
    { name: 'SUBSCRIBE refresh (To tag present)', method: 'SUBSCRIBE', cseq: 4, extra: ['Event: presence'] },
  ];
  for (const c of inDialog) {
    test(`${c.name} -> no Record-Route added`, () => {
      const h = harness();
      const m = parsed(one(h.feed(request({ method: c.method, cseq: c.cseq, toTag: 'uas-1', extra: c.extra }), CLIENT)).data);
      assert.equal(m.count('record-route'), 0);
    });
  }

  test('over TCP the Record-Route says transport=tcp', () => {
    const h = harness();
    const s = one(h.feed(request({ via: [`SIP/2.0/TCP ${CLIENT.ip}:5060;branch=z9hG4bKtcp`] }), { ...CLIENT, transport: 'tcp', port: 40002 }));
    assert.equal(s.transport, 'tcp');
    const rr = recordRoutes(parsed(s.data, false));
    assert.equal(rr[0].params.get('transport'), 'tcp');
  });

  test('with internalPort set: two Record-Routes, the internal one on top towards a node', () => {
    const h = harness({ internalPort: 5065 });
    const s = toNode(h.feed(request(), CLIENT), NODE_A);
    assert.equal(s.side, 'internal');
    const m = parsed(s.data);
    const rr = recordRoutes(m);
    assert.equal(rr.length, 2);
    assert.deepEqual(rr.map((r) => [r.host, r.port ?? 5060]), [[LB_IP, 5065], [LB_IP, 5060]]);
    for (const r of rr) {
      assert.ok(r.params.has('lr'));
      assert.equal(r.params.get('lbnode'), NODE_A.id);
    }
    const top = vias(m)[0];
    assert.equal(top.host, LB_IP);
    assert.equal(top.port, 5065, 'our Via names the internal port the node answers to');
  });
});

describe('requests: Route (RFC 3261 16.4)', () => {
  const cases: { name: string; route: string[]; left: string[]; internalPort?: number }[] = [
    { name: 'one own entry', route: [`<sip:${LB_IP}:5060;lr>`], left: [] },
    { name: 'own entry without port', route: [`<sip:${LB_IP};lr>`], left: [] },
    { name: 'two own entries on one line', route: [`<sip:${LB_IP};lr>, <sip:${LB_IP}:5060;lr>`], left: [] },
    { name: 'two own entries on separate lines', route: [`<sip:${LB_IP};lr>`, `<sip:${LB_IP}:5060;lr>`], left: [] },
    { name: 'both ports of a two-port balancer', route: [`<sip:${LB_IP}:5065;lr>, <sip:${LB_IP}:5060;lr>`], left: [], internalPort: 5065 },
    { name: 'own entry then a foreign one on the same line', route: [`<sip:${LB_IP};lr>, <sip:proxy.example.net;lr>`], left: ['<sip:proxy.example.net;lr>'] },
    { name: 'own line then a foreign line', route: [`<sip:${LB_IP};lr>`, '<sip:proxy.example.net;lr>'], left: ['<sip:proxy.example.net;lr>'] },
    { name: 'foreign entry first: nothing popped', route: [`<sip:proxy.example.net;lr>, <sip:${LB_IP};lr>`], left: ['<sip:proxy.example.net;lr>', `<sip:${LB_IP};lr>`] },
  ];
  for (const c of cases) {
    test(`${c.name} -> own entries popped, the rest kept`, () => {
      const h = harness({ internalPort: c.internalPort ?? null });
      const s = one(h.feed(request({ method: 'BYE', cseq: 2, toTag: 'uas-1', route: c.route }), CLIENT));
      assert.ok(NODE_IPS.has(s.ip));
      assert.deepEqual(elements(parsed(s.data), 'route'), c.left);
    });
  }

  test('own Route as the last header line: popped, blank line and body intact', () => {
    const h = harness();
    const body = 'v=0\r\ns=-\r\n';
    const raw = [
      `INVITE sip:service@${LB_IP}:5060 SIP/2.0`,
      `Via: SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bKlastroute`,
      'Max-Forwards: 70',
      'From: <sip:alice@example.org>;tag=1',
      'To: <sip:service@example.com>;tag=2',
      'Call-ID: lastroute@192.0.2.10',
      'CSeq: 5 INVITE',
      'Content-Type: application/sdp',
      `Content-Length: ${body.length}`,
      `Route: <sip:${LB_IP};lr>`,
    ].join(CRLF) + CRLF + CRLF + body;
    const m = parsed(one(h.feed(Buffer.from(raw, 'latin1'), CLIENT)).data);
    assert.equal(m.count('route'), 0);
    assert.equal(m.body.toString('latin1'), body);
  });

  test('Route with lbnode of node B -> B, although Call-ID affinity says A', () => {
    const h = harness();
    toNode(h.feed(request({ callId: 'pinned' }), CLIENT), NODE_A);
    toNode(h.feed(request({ method: 'ACK', callId: 'pinned', toTag: 'uas-1' }), CLIENT), NODE_A);
    const bye = request({ method: 'BYE', callId: 'pinned', cseq: 2, toTag: 'uas-1', route: [`<sip:${LB_IP}:5060;lr;lbnode=${NODE_B.id}>`] });
    toNode(h.feed(bye, CLIENT), NODE_B);
  });

  test('lbnode of a node that is down -> the call falls back to a live node', () => {
    const h = harness({ states: { [NODE_B.id]: 'down' } });
    const bye = request({ method: 'BYE', callId: 'x', cseq: 2, toTag: 'uas-1', route: [`<sip:${LB_IP};lr;lbnode=${NODE_B.id}>`] });
    toNode(h.feed(bye, CLIENT), NODE_A);
  });

  test('Request-URI naming a node -> that node, whatever round robin would pick', () => {
    const h = harness();
    toNode(h.feed(request({ ruri: `sip:service@${NODE_B.ip}:5080` }), CLIENT), NODE_B);
    toNode(h.feed(request({ callId: 'c2', ruri: `sip:service@${NODE_B.ip}:5080` }), CLIENT), NODE_B);
  });
});

describe('requests: local replies', () => {
  test('over TCP the reply names the connection the request came on', () => {
    const h = harness();
    const tcpClient: Inbound = { transport: 'tcp', side: 'external', ip: '192.0.2.10', port: 40001, connectionId: 42 };
    const m = replyTo(h.feed(request({ maxForwards: '0', via: ['SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-tcp-483'] }), tcpClient), tcpClient, 483);
    assert.equal(m.callId, 'call-1@192.0.2.10');
  });

  test('no nodes -> 503 to the source', () => {
    const h = harness({ nodes: [] });
    replyTo(h.feed(request(), CLIENT), CLIENT, 503);
  });

  test('every node down -> 503 to the source', () => {
    const h = harness({ states: { [NODE_A.id]: 'down', [NODE_B.id]: 'down' } });
    replyTo(h.feed(request({ method: 'OPTIONS' }), CLIENT), CLIENT, 503);
  });

  // RFC 3261 §18.2.1 and RFC 3581 §4: the reply's top Via says where the request came from, as
  // the Via of a request siplb forwards does; the other Vias, and values after the first on the
  // same line, are echoed as they came.
  const viaCases: { name: string; via: string[]; src: Inbound; top: string }[] = [
    { name: 'rport asked over UDP: received and rport', via: ['SIP/2.0/UDP 10.9.9.9:5060;rport;branch=z9hG4bK-r1'], src: { ...CLIENT, port: 40002 },
      top: 'SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-r1;received=192.0.2.10;rport=40002' },
    { name: 'no rport, sent-by is the source: unchanged', via: [`SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bK-r2`], src: CLIENT,
      top: `SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bK-r2` },
    { name: 'no rport, sent-by another host: received only', via: ['SIP/2.0/UDP client.example.org;branch=z9hG4bK-r3'], src: CLIENT,
      top: 'SIP/2.0/UDP client.example.org;branch=z9hG4bK-r3;received=192.0.2.10' },
    { name: 'over TCP: rport always', via: ['SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-r4'], src: { transport: 'tcp', side: 'external', ip: '192.0.2.10', port: 40003, connectionId: 7 },
      top: 'SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-r4;received=192.0.2.10;rport=40003' },
    { name: 'two Vias on one line: only the first gets them', via: ['SIP/2.0/UDP 10.9.9.9;rport;branch=z9hG4bK-r5, SIP/2.0/UDP 10.8.8.8;branch=z9hG4bK-r0'], src: CLIENT,
      top: 'SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK-r5;received=192.0.2.10;rport=5060' },
  ];
  for (const c of viaCases) {
    test(`503 Via: ${c.name}`, () => {
      const h = harness({ nodes: [] });
      const m = replyTo(h.feed(request({ via: c.via }), c.src), c.src, 503);
      const lines = m.getAll('via');
      assert.equal(elements(m, 'via')[0], c.top);
      assert.equal(lines.length, c.via.length);
      if (c.via[0].includes(',')) assert.ok(lines[0].endsWith(', SIP/2.0/UDP 10.8.8.8;branch=z9hG4bK-r0'), lines[0]);
    });
  }

  test('100 Trying (isSendTrying): the top Via as the INVITE was forwarded, received and rport set', () => {
    const h = harness({ config: { isSendTrying: true } });
    const src = { ...CLIENT, port: 40009 };
    const out = h.feed(request({ via: ['SIP/2.0/UDP 10.9.9.9:5060;rport;branch=z9hG4bK-t1', 'SIP/2.0/UDP 10.7.7.7;branch=z9hG4bK-t0'] }), src);
    const trying = out.find((s) => s.data.toString('latin1').startsWith('SIP/2.0 100 '));
    assert.ok(trying !== undefined, 'no 100 Trying');
    const m = parsed(trying.data);
    assert.deepEqual(elements(m, 'via'), ['SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-t1;received=192.0.2.10;rport=40009', 'SIP/2.0/UDP 10.7.7.7;branch=z9hG4bK-t0']);
  });

  test('no nodes: an ACK is never answered', () => {
    const h = harness({ nodes: [] });
    assert.deepEqual(h.feed(request({ method: 'ACK', toTag: 'uas-1' }), CLIENT), []);
  });

  test('Proxy-Require -> 420 Bad Extension with Unsupported listing the tags', () => {
    const h = harness();
    const m = replyTo(h.feed(request({ extra: ['Proxy-Require: foo, bar'] }), CLIENT), CLIENT, 420);
    assert.deepEqual(elements(m, 'unsupported').sort(), ['bar', 'foo']);
  });

  test('Require alone is the UAS business: forwarded', () => {
    const h = harness();
    const m = parsed(one(h.feed(request({ extra: ['Require: 100rel'] }), CLIENT)).data);
    assert.equal(m.get('require'), '100rel');
  });

  test('malformed request (CSeq method mismatch) -> 400 to the source', () => {
    const h = harness();
    const raw = request().toString('latin1').replace('CSeq: 1 INVITE', 'CSeq: 1 BYE');
    replyTo(h.feed(Buffer.from(raw, 'latin1'), CLIENT), CLIENT, 400);
  });

  test('request without CSeq -> never forwarded (a 400 would have to echo CSeq)', () => {
    const h = harness();
    const raw = request().toString('latin1').replace('CSeq: 1 INVITE\r\n', '');
    const sent = h.feed(Buffer.from(raw, 'latin1'), CLIENT);
    assert.ok(sent.every((s) => !NODE_IPS.has(s.ip)), describeSent(sent));
    if (sent.length > 0) replyTo(sent, CLIENT, 400);
  });

  test('NUL in the Call-ID -> 400 to the source, nothing to the nodes', () => {
    const h = harness();
    const sent = h.feed(request({ callId: 'nul\x00inside@192.0.2.1' }), CLIENT);
    const reply = one(sent);
    assert.equal(`${reply.ip}:${reply.port}`, `${CLIENT.ip}:${CLIENT.port}`);
    // The answer echoes the Call-ID as sent, so that the client can match it to its transaction.
    assert.match(reply.data.toString('latin1'), /^SIP\/2\.0 400 [^\r]*\r\n(?:.*\r\n)*Call-ID: nul\x00inside@192\.0\.2\.1\r\n/);
  });

  test('SIP/3.0 request -> 505 to the source', () => {
    const h = harness();
    const raw = request().toString('latin1').replace(' SIP/2.0\r\n', ' SIP/3.0\r\n');
    replyTo(h.feed(Buffer.from(raw, 'latin1'), CLIENT), CLIENT, 505);
  });

  test('malformed top Via -> 400 to the source', () => {
    const h = harness();
    replyTo(h.feed(request({ via: ['this is not a via'] }), CLIENT), CLIENT, 400);
  });

  test('loop: the forwarded request fed back -> 482 Loop Detected', () => {
    const h = harness();
    const fwd = one(h.feed(request(), CLIENT));
    const elsewhere: Inbound = { transport: 'udp', side: 'external', ip: '198.51.100.20', port: 5060, connectionId: 0 };
    replyTo(h.feed(fwd.data, elsewhere), elsewhere, 482);
  });

  test('spiral: the forwarded request back with another Request-URI is forwarded again', () => {
    const h = harness();
    const fwd = one(h.feed(request(), CLIENT)).data.toString('latin1');
    const spiral = fwd.replace(`sip:service@${LB_IP}:5060 SIP/2.0`, `sip:other-service@${LB_IP}:5060 SIP/2.0`);
    const s = one(h.feed(Buffer.from(spiral, 'latin1'), { transport: 'udp', side: 'external', ip: '198.51.100.20', port: 5060, connectionId: 0 }));
    assert.ok(NODE_IPS.has(s.ip));
    const m = parsed(s.data);
    assert.equal(vias(m).filter((v) => v.host === LB_IP).length, 2);
  });
});

describe('requests: no open relay', () => {
  const cases: { name: string; data: Buffer; src: Inbound; internalPort?: number }[] = [
    { name: 'Request-URI sip:victim@192.0.2.1', data: request({ ruri: `sip:victim@${VICTIM}` }), src: CLIENT },
    { name: 'Request-URI with port and transport', data: request({ ruri: `sip:victim@${VICTIM}:5060;transport=udp` }), src: CLIENT },
    { name: 'Request-URI with maddr', data: request({ ruri: `sip:victim@example.com;maddr=${VICTIM}` }), src: CLIENT },
    { name: 'Route to the victim', data: request({ route: [`<sip:${VICTIM};lr>`] }), src: CLIENT },
    { name: 'own Route then the victim', data: request({ route: [`<sip:${LB_IP};lr>, <sip:${VICTIM};lr>`] }), src: CLIENT },
    { name: 'ACK to the victim', data: request({ method: 'ACK', toTag: 't', ruri: `sip:victim@${VICTIM}` }), src: CLIENT },
    { name: 'OPTIONS to the victim', data: request({ method: 'OPTIONS', ruri: `sip:victim@${VICTIM}` }), src: CLIENT },
    { name: 'source on a node IP but not a node port', data: request({ ruri: `sip:victim@${VICTIM}` }), src: { ...CLIENT, ip: NODE_A.ip, port: 6000 } },
    { name: 'two ports: a node address on the external side is a client', data: request({ ruri: `sip:victim@${VICTIM}` }), src: FROM_A, internalPort: 5065 },
    { name: 'two ports: a stranger on the internal side is a client', data: request({ ruri: `sip:victim@${VICTIM}` }), src: { ...CLIENT, side: 'internal' }, internalPort: 5065 },
  ];
  for (const c of cases) {
    test(`${c.name}: sent only to a cluster node`, () => {
      const h = harness({ internalPort: c.internalPort ?? null });
      const sent = withoutTrying(h.feed(c.data, c.src));
      assert.equal(sent.length, 1, describeSent(sent));
      for (const s of sent) {
        assert.notEqual(s.ip, VICTIM);
        assert.ok(NODE_IPS.has(s.ip), `sent to ${s.ip}`);
      }
      assert.deepEqual(h.lookups, []);
    });
  }

  test('from a node (source = node address): to the client in the Request-URI', () => {
    const h = harness();
    const data = request({
      method: 'BYE', ruri: 'sip:alice@192.0.2.10:5070', cseq: 7, toTag: 'uas-1',
      via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-1`],
      route: [`<sip:${LB_IP}:5060;lr;lbnode=${NODE_A.id}>`],
    });
    const s = one(h.feed(data, FROM_A));
    assert.equal(s.ip, '192.0.2.10');
    assert.equal(s.port, 5070);
    assert.equal(s.side, 'external');
    assert.equal(s.transport, 'udp');
    const m = parsed(s.data);
    const [top, node] = vias(m);
    assert.equal(top.host, LB_IP);
    assert.ok(top.branch?.startsWith('z9hG4bKLb'));
    assert.equal(node.host, NODE_A.ip);
    assert.deepEqual(m.getAll('max-forwards'), ['69']);
    assert.equal(m.count('route'), 0, 'own Route popped');
  });

  test('from a node: INVITE to a client gets a Record-Route naming that node', () => {
    const h = harness();
    const data = request({ ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-2`] });
    const s = one(h.feed(data, FROM_A));
    assert.equal(s.ip, '192.0.2.10');
    const rr = recordRoutes(parsed(s.data));
    assert.equal(rr.length, 1);
    assert.equal(rr[0].params.get('lbnode'), NODE_A.id);
  });
});

describe('requests: other rewrites', () => {
  test('body forwarded byte for byte', () => {
    const h = harness();
    const body = 'v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=\xe9t\xe9\r\n';
    const s = one(h.feed(request({ body, extra: ['Content-Type: application/sdp'] }), CLIENT));
    assert.equal(parsed(s.data).body.toString('latin1'), body);
    assert.ok(s.data.toString('latin1').endsWith(`\r\n\r\n${body}`));
  });

  test('to a TCP-only node without Content-Length -> Content-Length added', () => {
    const tcpOnly: SipNode = { id: '10.0.0.13:5080', ip: '10.0.0.13', ports: { tcp: 5080 }, weight: 1 };
    const h = harness({ nodes: [tcpOnly] });
    const s = one(h.feed(request({ body: 'hello', contentLength: false, extra: ['Content-Type: text/plain'] }), CLIENT));
    assert.equal(s.transport, 'tcp');
    assert.equal(s.ip, tcpOnly.ip);
    const m = parsed(s.data, false);
    assert.equal(m.get('content-length'), '5');
    assert.equal(m.body.toString('latin1'), 'hello');
    assert.equal(vias(m)[0].transport, 'TCP');
  });
});

// ===================================================================================== responses

describe('responses (RFC 3261 16.7, 18.2.2, RFC 3581 4)', () => {
  const routing: { name: string; src: Inbound; via: string; target: [string, number]; transport: Transport }[] = [
    { name: 'sent-by (host = source, no rport)', src: { ...CLIENT, port: 5070 }, via: `SIP/2.0/UDP ${CLIENT.ip}:5070;branch=z9hG4bKr1`, target: [CLIENT.ip, 5070], transport: 'udp' },
    { name: 'sent-by without port -> 5060', src: CLIENT, via: `SIP/2.0/UDP ${CLIENT.ip};branch=z9hG4bKr2`, target: [CLIENT.ip, 5060], transport: 'udp' },
    { name: 'received (Via host is a name)', src: { ...CLIENT, port: 5070 }, via: 'SIP/2.0/UDP client.example.com:5070;branch=z9hG4bKr3', target: [CLIENT.ip, 5070], transport: 'udp' },
    { name: 'received + rport', src: { ...CLIENT, port: 40000 }, via: `SIP/2.0/UDP 172.16.0.5:5060;rport;branch=z9hG4bKr4`, target: [CLIENT.ip, 40000], transport: 'udp' },
    { name: 'TCP: the connection the request came on', src: { ...CLIENT, transport: 'tcp', port: 40001 }, via: `SIP/2.0/TCP ${CLIENT.ip}:5070;branch=z9hG4bKr5`, target: [CLIENT.ip, 40001], transport: 'tcp' },
  ];
  for (const c of routing) {
    test(`ours on top -> popped, sent to the next Via: ${c.name}`, () => {
      const h = harness();
      const fwd = toNode(h.feed(request({ via: [c.via] }), c.src), NODE_A);
      const forwardedVias = elements(parsed(fwd.data, fwd.transport === 'udp'), 'via');
      const s = one(h.feed(answer(fwd.data, 180, { body: 'early' }), { ...FROM_A, transport: fwd.transport }));
      assert.deepEqual([s.ip, s.port], c.target);
      assert.equal(s.transport, c.transport);
      assert.equal(s.side, 'external');
      const m = parsed(s.data, s.transport === 'udp');
      assert.equal(m.status, 180);
      assert.deepEqual(elements(m, 'via'), forwardedVias.slice(1), 'only our Via removed');
      assert.equal(m.body.toString('latin1'), 'early');
    });
  }

  test('two Vias on one line: ours popped, the client one kept', () => {
    const h = harness();
    const fwd = one(h.feed(request(), CLIENT));
    const s = one(h.feed(answer(fwd.data, 200, { joined: true }), FROM_A));
    assert.deepEqual([s.ip, s.port], [CLIENT.ip, CLIENT.port]);
    const m = parsed(s.data);
    assert.deepEqual(elements(m, 'via'), [`SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-client-1`]);
    assert.equal(m.count('via'), 1);
  });

  test('three Vias on one line: ours popped, two kept', () => {
    const h = harness();
    const below = 'SIP/2.0/UDP proxy.example.net:5070;branch=z9hG4bKbelow';
    const fwd = one(h.feed(request({ via: [`SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bKtop, ${below}`] }), CLIENT));
    const s = one(h.feed(answer(fwd.data, 200, { joined: true }), FROM_A));
    assert.deepEqual(elements(parsed(s.data), 'via'), [`SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bKtop`, below]);
  });

  test('with two ports: a response from a node goes out of the external side', () => {
    const h = harness({ internalPort: 5065 });
    const fwd = one(h.feed(request(), CLIENT));
    assert.equal(fwd.side, 'internal');
    const s = one(h.feed(answer(fwd.data, 200), { ...FROM_A, side: 'internal' }));
    assert.equal(s.side, 'external');
    assert.deepEqual([s.ip, s.port], [CLIENT.ip, CLIENT.port]);
  });

  test('a client response to a node request goes back to the node', () => {
    const h = harness();
    const fwd = one(h.feed(request({ method: 'OPTIONS', ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-3`] }), FROM_A));
    const s = one(h.feed(answer(fwd.data, 200), { ...CLIENT, port: 5070 }));
    assert.deepEqual([s.ip, s.port], [NODE_A.ip, 5080]);
  });

  test('top Via not ours -> dropped', () => {
    const h = harness();
    const resp = [
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKnotours',
      `Via: SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bK-client-1`,
      'From: <sip:alice@example.org>;tag=1', 'To: <sip:bob@example.com>;tag=2', 'Call-ID: stray@x', 'CSeq: 1 INVITE', 'Content-Length: 0',
    ].join(CRLF) + CRLF + CRLF;
    assert.deepEqual(h.feed(Buffer.from(resp, 'latin1'), FROM_A), []);
  });

  test('our host and port but not our branch format -> dropped', () => {
    const h = harness();
    const resp = [
      'SIP/2.0 200 OK',
      `Via: SIP/2.0/UDP ${LB_IP}:5060;branch=z9hG4bKsomethingelse`,
      `Via: SIP/2.0/UDP ${CLIENT.ip}:5060;branch=z9hG4bK-client-1`,
      'From: <sip:alice@example.org>;tag=1', 'To: <sip:bob@example.com>;tag=2', 'Call-ID: stray@x', 'CSeq: 1 INVITE', 'Content-Length: 0',
    ].join(CRLF) + CRLF + CRLF;
    assert.deepEqual(h.feed(Buffer.from(resp, 'latin1'), FROM_A), []);
  });

  test('only our Via -> dropped', () => {
    const h = harness();
    const fwd = one(h.feed(request(), CLIENT));
    assert.deepEqual(h.feed(answer(fwd.data, 200, { mutateVias: (v) => v.slice(0, 1) }), FROM_A), []);
  });

  test('malformed Via below ours -> dropped', () => {
    const h = harness();
    const fwd = one(h.feed(request(), CLIENT));
    assert.deepEqual(h.feed(answer(fwd.data, 200, { mutateVias: (v) => [v[0], 'not a via at all'] }), FROM_A), []);
  });

  // A forged response: a copy of our Via (a valid branch) over a Via the attacker chose.
  const forgeries: { name: string; o: AnswerOptions }[] = [
    { name: 'Via below names another host', o: { mutateVias: (v) => [v[0], v[1].replace(CLIENT.ip, '203.0.113.66')] } },
    { name: 'Via below names another port', o: { mutateVias: (v) => [v[0], v[1].replace(`:${CLIENT.port}`, ':6666')] } },
    { name: 'Via below has another branch', o: { mutateVias: (v) => [v[0], v[1].replace('z9hG4bK-client-1', 'z9hG4bK-forged')] } },
    { name: 'Via below gained rport', o: { mutateVias: (v) => [v[0], `${v[1]};rport=7777`] } },
    { name: 'Via below gained received', o: { mutateVias: (v) => [v[0], `${v[1]};received=203.0.113.66`] } },
    { name: 'Via below replaced entirely', o: { mutateVias: (v) => [v[0], 'SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bKevil'] } },
    { name: 'an extra Via inserted below ours', o: { mutateVias: (v) => [v[0], 'SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bKevil', ...v.slice(1)] } },
    { name: 'another Call-ID', o: { callId: 'other-call@192.0.2.10' } },
    { name: 'another CSeq number', o: { cseq: '99 INVITE' } },
  ];
  for (const c of forgeries) {
    test(`forged response (${c.name}) -> dropped`, () => {
      const h = harness();
      const fwd = one(h.feed(request(), CLIENT));
      assert.equal(one(h.feed(answer(fwd.data, 200), FROM_A)).ip, CLIENT.ip, 'the genuine response passes');
      assert.deepEqual(h.feed(answer(fwd.data, 200, c.o), FROM_A), []);
    });
  }
});

// ============================================================================= robustness


function mutate(src: Buffer, rnd: () => number): Buffer {
  const int = (n: number): number => Math.floor(rnd() * n);
  const inserts = [0x0d, 0x0a, 0x3a, 0x3c, 0x3e, 0x22, 0x00, 0x2c, 0x3b, 0x20];
  let b = Buffer.from(src);
  for (let r = 1 + int(3); r > 0 && b.length > 0; r--) {
    const op = int(4);
    const i = int(b.length);
    if (op === 0) b[i] ^= 1 << int(8);
    else if (op === 1) b = b.subarray(0, i);
    else if (op === 2) b = Buffer.concat([b.subarray(0, i), Buffer.from([inserts[int(inserts.length)]]), b.subarray(i)]);
    else b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + int(8))]);
  }
  return b;
}

describe('bad input never throws', () => {
  const garbage: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('\r\n\r\n'),
    Buffer.from('\x00\x01\x02\xff\xfe'),
    Buffer.from('SIP/2.0 200 OK\r\n\r\n'),
    Buffer.from('SIP/2.0 200 OK\r\nVia: \r\nVia: ,,,\r\n\r\n'),
    Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLb\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nFrom: a\r\nTo: b\r\n\r\n'),
    Buffer.from('INVITE sip:x SIP/2.0\r\n\r\n'),
    Buffer.from('INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n'),
    Buffer.from('INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP [::1\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n'),
    Buffer.from('INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h:99999\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n'),
    Buffer.from('INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;rport=abc\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nRoute: <\r\nRoute: <sip:\r\nRoute: ,\r\n\r\n'),
    Buffer.from('BYE sip:@:0 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.11:5080\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 BYE\r\nRoute: <sip:10.0.0.1;lr>, <sips:[::1]:0;transport=sctp>\r\n\r\n'),
    Buffer.from('INVITE sip:x;lbnode= SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nRoute: <sip:10.0.0.1;lr;lbnode>\r\n\r\n'),
    Buffer.from('INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 999\r\nContent-Length: 99999999999\r\n\r\n'),
  ];

  test('a list of garbage inputs, from a client and from a node, over UDP and TCP', () => {
    const h = harness();
    for (const data of garbage) {
      for (const src of [CLIENT, { ...CLIENT, transport: 'tcp' as const }, FROM_A]) {
        assert.doesNotThrow(() => h.proxy.onMessage(data, src), `input ${JSON.stringify(data.toString('latin1'))}`);
      }
    }
  });

  test('3,000 seeded mutations of a request and of a response', () => {
    const h = harness();
    const invite = request({
      body: 'v=0\r\n', route: [`<sip:${LB_IP};lr;lbnode=${NODE_B.id}>, <sip:proxy.example.net;lr>`],
      via: [`SIP/2.0/UDP ${CLIENT.ip}:5060;rport;branch=z9hG4bK-fuzz, SIP/2.0/TCP 172.16.0.5:5070;branch=z9hG4bK-x`],
      extra: ['Content-Type: application/sdp'],
    });
    const fwd = one(h.feed(invite, CLIENT));
    const response = answer(fwd.data, 200, { body: 'v=0\r\n' });
    const rnd = prng(0xb4d1);
    for (let n = 0; n < 1500; n++) {
      const req = mutate(invite, rnd);
      const resp = mutate(response, rnd);
      const before = h.sent.length;
      assert.doesNotThrow(() => h.proxy.onMessage(req, CLIENT), `request mutation ${n}: ${JSON.stringify(req.toString('latin1'))}`);
      assert.doesNotThrow(() => h.proxy.onMessage(resp, FROM_A), `response mutation ${n}: ${JSON.stringify(resp.toString('latin1'))}`);
      // Whatever a client sends, the balancer talks only to the nodes and back to that client.
      for (const s of h.sent.slice(before)) {
        assert.ok(NODE_IPS.has(s.ip) || s.ip === CLIENT.ip, `mutation ${n} sent to ${s.ip}:${s.port}`);
      }
    }
  });
});

describe('behind an IP load balancer (externalIpLoadBalancerAddress / internalIpLoadBalancerAddress)', () => {
  const VIP = '203.0.113.5';
  const VIP_INT = '10.0.0.100';

  test('Record-Route carries the VIP address and port; Via keeps siplb\'s own by default', () => {
    const h = harness({ config: { externalIpLoadBalancerAddress: VIP, externalIpLoadBalancerPort: 5070 } });
    const m = parsed(one(h.feed(request(), CLIENT)).data);
    const rr = elements(m, 'record-route');
    assert.equal(rr.length, 1);
    assert.match(rr[0], new RegExp(`^<sip:${VIP.replaceAll('.', '\\.')}:5070;lr;lbnode=`));
    const top = vias(m)[0];
    assert.equal(top.host, LB_IP);
    assert.equal(top.port, 5060);
  });

  test('useIpLoadBalancerAddressInViaHeaders=true: Via carries the VIP too, and responses to it are accepted', () => {
    const h = harness({ config: { externalIpLoadBalancerAddress: VIP, externalIpLoadBalancerPort: 5070, useIpLoadBalancerAddressInViaHeaders: true } });
    const fwd = one(h.feed(request(), CLIENT));
    const m = parsed(fwd.data);
    const top = vias(m)[0];
    assert.equal(top.host, VIP);
    assert.equal(top.port, 5070);
    const lines = fwd.data.toString('latin1').split(CRLF).filter((l) => /^(Via|From|To|Call-ID|CSeq):/.test(l));
    const resp = Buffer.from(`SIP/2.0 180 Ringing${CRLF}${lines.join(CRLF)};tag=x${CRLF}Content-Length: 0${CRLF}${CRLF}`, 'latin1');
    const back = one(h.feed(resp, FROM_A));
    assert.equal(back.ip, CLIENT.ip);
    assert.equal(back.port, CLIENT.port);
  });

  test('a Route naming the VIP is ours: popped, and its lbnode hint is followed', () => {
    const h = harness({ config: { externalIpLoadBalancerAddress: VIP, externalIpLoadBalancerPort: 5070 } });
    const out = h.feed(request({ method: 'BYE', toTag: 't', callId: 'vip-route', route: [`<sip:${VIP}:5070;lr;lbnode=${NODE_B.id}>`] }), CLIENT);
    const m = parsed(toNode(out, NODE_B).data);
    assert.equal(m.indexOf('route'), -1);
  });

  // Restcomm's comma list: the first address is advertised, every one of them is the balancer.
  const VIP2 = '198.51.100.9';
  test('an address list: Record-Route carries the first', () => {
    const h = harness({ config: { externalIpLoadBalancerAddress: `${VIP},${VIP2}`, externalIpLoadBalancerPort: 5070 } });
    const rr = elements(parsed(one(h.feed(request(), CLIENT)).data), 'record-route');
    assert.equal(rr.length, 1);
    assert.match(rr[0], new RegExp(`^<sip:${VIP.replaceAll('.', '\\.')}:5070;lr;lbnode=`));
  });

  test('an address list: a Route naming a later address is ours too, popped and its hint followed', () => {
    const h = harness({ config: { externalIpLoadBalancerAddress: `${VIP},${VIP2}`, externalIpLoadBalancerPort: 5070 } });
    const out = h.feed(request({ method: 'BYE', toTag: 't', callId: 'vip2-route', route: [`<sip:${VIP2}:5070;lr;lbnode=${NODE_B.id}>`] }), CLIENT);
    const m = parsed(toNode(out, NODE_B).data);
    assert.equal(m.indexOf('route'), -1);
  });

  test('two ports with an internal VIP: the internal Record-Route names the internal VIP', () => {
    const h = harness({ internalPort: 5065, config: { externalIpLoadBalancerAddress: VIP, internalIpLoadBalancerAddress: VIP_INT, internalIpLoadBalancerPort: 5066 } });
    const m = parsed(one(h.feed(request(), CLIENT)).data);
    const rr = elements(m, 'record-route');
    assert.equal(rr.length, 2);
    assert.match(rr[0], new RegExp(`^<sip:${VIP_INT.replaceAll('.', '\\.')}:5066;lr;`), 'internal one on top towards the node');
    assert.match(rr[1], new RegExp(`^<sip:${VIP.replaceAll('.', '\\.')}:5060;lr;`), 'external VIP port defaults to externalPort');
  });
});

describe('extraServerNodes: addresses whose requests count as coming from the cluster', () => {
  const APP = '10.0.0.50';

  test('a request from an extraServerNodes host goes to its Request-URI, not to a node', () => {
    const h = harness({ extraServerNodes: [{ host: APP, port: null }] });
    const src: Inbound = { transport: 'udp', side: 'external', ip: APP, port: 5099, connectionId: 0 };
    const out = one(h.feed(request({ ruri: 'sip:bob@192.0.2.77:5062', via: [`SIP/2.0/UDP ${APP}:5099;branch=z9hG4bK-app-1`] }), src));
    assert.equal(out.ip, '192.0.2.77');
    assert.equal(out.port, 5062);
  });

  test('host:port entries match only that port; another port on the host is a client', () => {
    const h = harness({ extraServerNodes: [{ host: APP, port: 5099 }] });
    const src: Inbound = { transport: 'udp', side: 'external', ip: APP, port: 6000, connectionId: 0 };
    const out = one(h.feed(request({ ruri: 'sip:bob@192.0.2.77:5062', via: [`SIP/2.0/UDP ${APP}:6000;branch=z9hG4bK-app-2`] }), src));
    assert.ok(NODE_IPS.has(out.ip), `a client request goes to a node, went to ${out.ip}`);
  });
});

describe('requests: a node proxying a request back out, and mixed transports', () => {
  test('spiral out of the cluster: the node sends the forwarded INVITE back unchanged -> forwarded to its Request-URI, not 482', () => {
    const h = harness();
    const fwd = toNode(h.feed(request({ ruri: 'sip:bob@192.0.2.77:5062' }), CLIENT), NODE_A);
    // Node A acts as a proxy: adds its Via, routes through the balancer, Request-URI unchanged.
    const text = fwd.data.toString('latin1').replace('\r\n', `\r\nVia: SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bK-node-a-1\r\nRoute: <sip:${LB_IP}:5060;lr>\r\n`);
    const out = one(h.feed(Buffer.from(text, 'latin1'), FROM_A));
    assert.equal(out.ip, '192.0.2.77');
    assert.equal(out.port, 5062);
  });

  test('one port, TCP client, UDP-only node: two Record-Routes (udp towards the node on top, tcp below for the client, with its flow token)', () => {
    const udpOnly: SipNode = { id: '10.0.0.13:5080', ip: '10.0.0.13', ports: { udp: 5080 }, weight: 1 };
    const h = harness({ nodes: [udpOnly] });
    const tcpClient: Inbound = { transport: 'tcp', side: 'external', ip: '192.0.2.10', port: 40000, connectionId: 7 };
    const out = one(h.feed(request({ via: ['SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-tcp-rr'] }), tcpClient));
    assert.equal(out.transport, 'udp');
    const rr = elements(parsed(out.data), 'record-route');
    assert.equal(rr.length, 2);
    assert.equal(rr[0], `<sip:${LB_IP}:5060;lr;lbnode=${udpOnly.id}>`);
    assert.match(rr[1], new RegExp(`^<sip:lbf[A-Za-z0-9_-]{27}@${LB_IP.replaceAll('.', '\\.')}:5060;transport=tcp;lr;lbnode=${udpOnly.id}>$`));
  });

  test('one port, same transport on both sides: a single Record-Route', () => {
    const h = harness();
    assert.equal(elements(parsed(one(h.feed(request(), CLIENT)).data), 'record-route').length, 1);
  });
});

describe('cluster state on the data path: drain, failover, passive health', () => {
  test('a draining node takes no new calls but keeps the requests of its calls', () => {
    const h = harness({ states: { [NODE_A.id]: 'draining' } });
    for (let i = 0; i < 4; i++) toNode(h.feed(request({ callId: `new-${i}` }), CLIENT), NODE_B);
    const bye = request({ method: 'BYE', callId: 'old', cseq: 2, toTag: 't', route: [`<sip:${LB_IP};lr;lbnode=${NODE_A.id}>`] });
    toNode(h.feed(bye, CLIENT), NODE_A);
  });

  test('a call stuck to a node by Call-ID moves when that node goes down, and stays moved', () => {
    const h = harness();
    const first = one(h.feed(request({ callId: 'moving' }), CLIENT));
    const original = first.ip === NODE_A.ip ? NODE_A : NODE_B;
    const other = original === NODE_A ? NODE_B : NODE_A;
    h.setCluster([NODE_A, NODE_B], { [original.id]: 'down' });
    toNode(h.feed(request({ method: 'BYE', callId: 'moving', cseq: 2, toTag: 't' }), CLIENT), other);
    h.setCluster([NODE_A, NODE_B]);
    toNode(h.feed(request({ method: 'BYE', callId: 'moving', cseq: 3, toTag: 't' }), CLIENT), other);
  });

  test('a client response to a request of a node that died goes to the live node', () => {
    const h = harness();
    const fwd = one(h.feed(request({ method: 'OPTIONS', ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-dead`] }), FROM_A));
    h.setCluster([NODE_A, NODE_B], { [NODE_A.id]: 'down' });
    const s = one(h.feed(answer(fwd.data, 200), { ...CLIENT, port: 5070 }));
    assert.deepEqual([s.ip, s.port], [NODE_B.ip, 5080]);
  });

  test('the passiveHealth hears every response and request from a node, with its status', () => {
    const heard: [string, number][] = [];
    const h = harness({ passiveHealth: { fromNode: (id, status) => heard.push([id, status]) } });
    const fwd = toNode(h.feed(request({ callId: 'observed' }), CLIENT), NODE_A);
    h.feed(answer(fwd.data, 503), FROM_A);
    h.feed(request({ method: 'OPTIONS', ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKobs`] }), FROM_A);
    assert.deepEqual(heard, [[NODE_A.id, 503], [NODE_A.id, 0]]);
  });
});

/** An algorithm that answers from a script, to see what the proxy does with each kind of answer. */
class ScriptedAlgorithm implements Algorithm {
  readonly name = 'scripted';
  readonly picks: PickRequest[] = [];
  readonly repicks: [PickRequest, string][] = [];
  answer: (req: PickRequest) => SipNode | null | Promise<SipNode | null> = () => NODE_A;
  heir: SipNode | null | Promise<SipNode | null> = NODE_B;
  pick(req: PickRequest): SipNode | null | Promise<SipNode | null> {
    this.picks.push(req);
    return this.answer(req);
  }
  repick(req: PickRequest, failed: string): SipNode | null | Promise<SipNode | null> {
    this.repicks.push([req, failed]);
    return this.heir;
  }
  pickHttp(): SipNode | null { return null; }
  callEnded(): void {}
  close(): void {}
}

describe('algorithm answers on the data path', () => {
  test('newCall: true for initial requests, false for in-dialog requests, ACK and CANCEL', () => {
    const alg = new ScriptedAlgorithm();
    const h = harness({ algorithm: alg });
    h.feed(request({ callId: 'n1' }), CLIENT);
    h.feed(request({ method: 'MESSAGE', callId: 'n2' }), CLIENT);
    h.feed(request({ method: 'BYE', callId: 'n1', cseq: 2, toTag: 't' }), CLIENT);
    h.feed(request({ method: 'ACK', callId: 'n1', cseq: 1 }), CLIENT);
    h.feed(request({ method: 'CANCEL', callId: 'n1', cseq: 1 }), CLIENT);
    assert.deepEqual(alg.picks.map((p) => [p.msg.method, p.newCall]), [['INVITE', true], ['MESSAGE', true], ['BYE', false], ['ACK', false], ['CANCEL', false]]);
  });

  test('a pick that waits for the shared store is forwarded when it answers, fully rewritten', async () => {
    const alg = new ScriptedAlgorithm();
    let release: (n: SipNode | null) => void = () => {};
    alg.answer = () => new Promise((resolve) => { release = resolve; });
    const h = harness({ algorithm: alg });
    assert.equal(h.feed(request({ method: 'BYE', callId: 'elsewhere', cseq: 2, toTag: 't' }), CLIENT).length, 0, 'nothing sent while waiting');
    release(NODE_B);
    await new Promise((r) => setImmediate(r));
    const s = one(h.sent);
    assert.equal(s.ip, NODE_B.ip);
    const m = parsed(s.data);
    const v = vias(m);
    assert.equal(v.length, 2, 'our Via on top of the client\'s');
    assert.equal(v[0].host, LB_IP);
    assert.equal(m.get('max-forwards'), '69');
    assert.equal(h.stats.requestsForwarded, 1);
  });

  test('an algorithm that throws (a user module bug): the message is dropped and counted, nothing escapes, the next one is served', () => {
    const alg = new ScriptedAlgorithm();
    alg.answer = () => { throw new Error('user module bug'); };
    const h = harness({ algorithm: alg });
    assert.doesNotThrow(() => h.feed(request({ callId: 'boom' }), CLIENT));
    assert.equal(h.stats.dropped.get('internal-error'), 1);
    alg.answer = () => NODE_A;
    assert.equal(one(h.feed(request({ callId: 'after' }), CLIENT)).ip, NODE_A.ip);
  });

  test('a throw while finishing a request after the store answered: counted, nothing escapes', async () => {
    const alg = new ScriptedAlgorithm();
    alg.answer = () => Promise.resolve(NODE_B);
    alg.callEnded = () => { throw new Error('user module bug in callEnded'); };
    const h = harness({ algorithm: alg });
    h.feed(request({ method: 'BYE', callId: 'late', cseq: 2, toTag: 't' }), CLIENT);
    await new Promise((r) => setImmediate(r));
    assert.equal(h.stats.dropped.get('internal-error'), 1);
    assert.equal(h.sent.length, 0, 'the BYE was not half-sent');
  });

  test('a waiting pick that finds no node is answered 503', async () => {
    const alg = new ScriptedAlgorithm();
    alg.answer = () => Promise.resolve(null);
    const h = harness({ algorithm: alg });
    h.feed(request({ method: 'BYE', callId: 'nowhere', cseq: 2, toTag: 't' }), CLIENT);
    await new Promise((r) => setImmediate(r));
    replyTo(h.sent, CLIENT, 503);
  });

  test('requests waiting for the store are bounded; beyond the bound they are dropped and counted', () => {
    const alg = new ScriptedAlgorithm();
    alg.answer = () => new Promise(() => {});
    const h = harness({ algorithm: alg });
    for (let i = 0; i < 10_001; i++) h.feed(request({ method: 'BYE', callId: `stuck-${i}`, cseq: 2, toTag: 't' }), CLIENT);
    assert.equal(h.stats.dropped.get('pick-backlog'), 1);
  });

  test('a dialog hint naming a dead node asks the algorithm to repick, with the dead node', () => {
    const alg = new ScriptedAlgorithm();
    const h = harness({ algorithm: alg, states: { [NODE_A.id]: 'down' } });
    const bye = request({ method: 'BYE', callId: 'hinted', cseq: 2, toTag: 't', route: [`<sip:${LB_IP};lr;lbnode=${NODE_A.id}>`] });
    toNode(h.feed(bye, CLIENT), NODE_B);
    assert.equal(alg.repicks.length, 1);
    assert.equal(alg.repicks[0][1], NODE_A.id);
    assert.equal(alg.repicks[0][0].newCall, false);
    assert.equal(alg.picks.length, 0);
  });

  test('a response for a request of a dead node goes where repick says', () => {
    const alg = new ScriptedAlgorithm();
    const h = harness({ algorithm: alg });
    const fwd = one(h.feed(request({ method: 'OPTIONS', ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-gone`] }), FROM_A));
    h.setCluster([NODE_A, NODE_B], { [NODE_A.id]: 'down' });
    const s = one(h.feed(answer(fwd.data, 200), { ...CLIENT, port: 5070 }));
    assert.equal(s.ip, NODE_B.ip);
    assert.deepEqual(alg.repicks.map(([, f]) => f), [NODE_A.id]);
  });

  test('a repick agreed through the shared store: the request and the response go on when it answers', async () => {
    const alg = new ScriptedAlgorithm();
    let release: (n: SipNode | null) => void = () => {};
    alg.heir = new Promise((resolve) => { release = resolve; });
    const h = harness({ algorithm: alg });
    const fwd = one(h.feed(request({ method: 'OPTIONS', ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-gone-2`] }), FROM_A));
    h.setCluster([NODE_A, NODE_B], { [NODE_A.id]: 'down' });
    const bye = request({ method: 'BYE', callId: 'hinted-later', cseq: 2, toTag: 't', route: [`<sip:${LB_IP};lr;lbnode=${NODE_A.id}>`] });
    assert.equal(h.feed(bye, CLIENT).length, 0, 'the request waits');
    assert.equal(h.feed(answer(fwd.data, 200), { ...CLIENT, port: 5070 }).length, 0, 'the response waits');
    const before = h.sent.length;
    release(NODE_B);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(h.sent.slice(before).map((x) => x.ip), [NODE_B.ip, NODE_B.ip]);
    assert.deepEqual(alg.repicks.map(([, f]) => f), [NODE_A.id, NODE_A.id]);
  });

  test('a response waiting for its heir that finds none is dropped and counted', async () => {
    const alg = new ScriptedAlgorithm();
    alg.heir = Promise.resolve(null);
    const h = harness({ algorithm: alg });
    const fwd = one(h.feed(request({ method: 'OPTIONS', ruri: 'sip:alice@192.0.2.10:5070', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKnode-gone-3`] }), FROM_A));
    h.setCluster([NODE_A, NODE_B], { [NODE_A.id]: 'down' });
    h.feed(answer(fwd.data, 200), { ...CLIENT, port: 5070 });
    await new Promise((r) => setImmediate(r));
    assert.equal(h.sent.length, 1, 'only the OPTIONS went out');
    assert.equal(h.stats.dropped.get('no-live-node'), 1);
  });
});

describe('active calls: the proxy feeds the call tracker', () => {
  test('INVITE starts a call on its node, 2xx confirms, BYE ends it; retransmissions count once', (t) => {
    const calls = new CallTracker(500_000);
    t.after(() => calls.close());
    const h = harness({ calls });
    const fwd = toNode(h.feed(request({ callId: 'tracked' }), CLIENT), NODE_A);
    h.feed(request({ callId: 'tracked' }), CLIENT);
    assert.equal(calls.activeCalls(NODE_A.id), 1);
    h.feed(answer(fwd.data, 200), FROM_A);
    h.feed(request({ method: 'INVITE', callId: 'tracked', cseq: 2, toTag: 'uas-1' }), CLIENT);
    const reinvite = h.sent[h.sent.length - 1];
    h.feed(answer(reinvite.data, 486), FROM_A);
    assert.equal(calls.activeCalls(NODE_A.id), 1, 'a failed re-INVITE does not end an established call');
    h.feed(request({ method: 'BYE', callId: 'tracked', cseq: 3, toTag: 'uas-1' }), CLIENT);
    assert.equal(calls.activeCalls(NODE_A.id), 0);
    assert.equal(calls.size, 0);
  });

  test('a final error before any 2xx ends the call', (t) => {
    const calls = new CallTracker(500_000);
    t.after(() => calls.close());
    const h = harness({ calls });
    const fwd = toNode(h.feed(request({ callId: 'busy' }), CLIENT), NODE_A);
    h.feed(answer(fwd.data, 180), FROM_A);
    assert.equal(calls.activeCalls(NODE_A.id), 1);
    h.feed(answer(fwd.data, 486), FROM_A);
    assert.equal(calls.activeCalls(NODE_A.id), 0);
  });

  test('a call that fails over is counted on its new node', (t) => {
    const calls = new CallTracker(500_000);
    t.after(() => calls.close());
    const h = harness({ calls });
    toNode(h.feed(request({ callId: 'mover' }), CLIENT), NODE_A);
    h.setCluster([NODE_A, NODE_B], { [NODE_A.id]: 'down' });
    toNode(h.feed(request({ method: 'INVITE', callId: 'mover', cseq: 2, toTag: 'x' }), CLIENT), NODE_B);
    assert.equal(calls.activeCalls(NODE_A.id), 0);
    assert.equal(calls.activeCalls(NODE_B.id), 1);
  });

  test('a call a node places towards a client is counted on that node', (t) => {
    const calls = new CallTracker(500_000);
    t.after(() => calls.close());
    const h = harness({ calls });
    one(h.feed(request({ ruri: 'sip:bob@192.0.2.20:5060', callId: 'outbound', via: [`SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bKout`] }), FROM_A));
    assert.equal(calls.activeCalls(NODE_A.id), 1);
  });
});

describe('the transport towards a node is one the node side has a listener for', () => {
  // [client transport, internal side's transports, node's transports, expected transport to the node]
  const CASES: { name: string; client: 'udp' | 'tcp'; internal: ('udp' | 'tcp')[]; expected: 'udp' | 'tcp' }[] = [
    { name: 'UDP client, internal UDP and TCP: UDP', client: 'udp', internal: ['udp', 'tcp'], expected: 'udp' },
    { name: 'UDP client, internal TCP only (internalTransport=TCP): TCP', client: 'udp', internal: ['tcp'], expected: 'tcp' },
    { name: 'TCP client, internal UDP only: UDP', client: 'tcp', internal: ['udp'], expected: 'udp' },
    { name: 'TCP client, internal UDP and TCP: TCP', client: 'tcp', internal: ['udp', 'tcp'], expected: 'tcp' },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      const h = harness({ internalPort: 5065, config: { internalTransports: c.internal } });
      const src: Inbound = { ...CLIENT, transport: c.client, connectionId: c.client === 'tcp' ? 3 : 0 };
      const via = `SIP/2.0/${c.client.toUpperCase()} ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-client-1`;
      const sent = withoutTrying(h.feed(request({ via: [via] }), src));
      assert.equal(sent.length, 1, describeSent(sent));
      assert.equal(sent[0].side, 'internal');
      assert.equal(sent[0].transport, c.expected);
    });
  }
});

describe('RFC 3261 §18.1.1: a request too large for UDP goes to the node over TCP', () => {
  // [body bytes, node transports, expected transport to the node]
  const CASES: { name: string; body: number; nodeTcp: boolean; expected: 'udp' | 'tcp' }[] = [
    { name: 'a small INVITE stays on UDP', body: 200, nodeTcp: true, expected: 'udp' },
    { name: 'an INVITE over 1300 bytes with what siplb adds goes over TCP', body: 1200, nodeTcp: true, expected: 'tcp' },
    { name: 'a large INVITE to a node without TCP stays on UDP', body: 1200, nodeTcp: false, expected: 'udp' },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      const node: SipNode = c.nodeTcp ? NODE_A : { ...NODE_A, ports: { udp: 5080 } };
      const h = harness({ nodes: [node] });
      const sent = withoutTrying(h.feed(request({ body: 'v=0\r\n' + 'a'.repeat(c.body) }), CLIENT));
      assert.equal(sent.length, 1, describeSent(sent));
      assert.equal(sent[0].transport, c.expected);
      if (c.expected === 'tcp') {
        const m = parsed(sent[0].data, false);
        assert.match(vias(m)[0].transport, /^TCP$/i);
        // The client reached siplb over UDP: two Record-Route entries, the node's one over TCP.
        const rr = elements(m, 'record-route');
        assert.equal(rr.length, 2);
        assert.match(rr[0], /;transport=tcp/);
      }
    });
  }
});
