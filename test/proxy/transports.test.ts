// The proxy across transports and address families: what it writes (Via, Record-Route, Path) and
// where it sends when the client side speaks TLS, WS or IPv6 and the node side UDP; the flow
// tokens that bring a node's request back to the client's own connection (RFC 5626 §5.3), with
// 430 for a connection gone and 403 for a token that is not ours; sips: only over TLS or WSS
// (RFC 3261 §26.2.2) unless terminateTLSTraffic.
//
// Topology: balancer 10.0.0.1 with UDP/TCP 5060, TLS 5061, WS 5062 (and fd00::1 with ipv6Host),
// nodes A = 10.0.0.11:5080, B = 10.0.0.12:5080 (UDP and TCP), clients in 192.0.2.0/24.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipNode } from '../../src/cluster/node.ts';
import type { Config } from '../../src/config/types.ts';
import { FlowTokens } from '../../src/proxy/flow-token.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { nameAddrUri, parseSipUri } from '../../src/sip/uri.ts';
import type { StreamConnection } from '../../src/transport/connections.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, LB_IP, NODE_A, type HarnessOptions, type Sent } from '../helpers/proxy.ts';
import { elements } from '../helpers/sip.ts';

const PORTS: Partial<Config> = { externalTlsPort: 5061, externalWsPort: 5062 };
const WS_CLIENT: Inbound = { transport: 'ws', side: 'external', ip: '192.0.2.30', port: 51000, connectionId: 41 };
const TLS_CLIENT: Inbound = { transport: 'tls', side: 'external', ip: '192.0.2.31', port: 52000, connectionId: 42 };
const FROM_A: Inbound = { transport: 'udp', side: 'external', ip: NODE_A.ip, port: 5080, connectionId: 0 };

/** A connection table holding the clients' connections (those given). */
function connections(...open: Inbound[]): { get(id: number): StreamConnection | undefined } {
  const byId = new Map<number, StreamConnection>();
  for (const c of open) {
    byId.set(c.connectionId, { id: c.connectionId, transport: c.transport, side: c.side, ip: c.ip, port: c.port, write() {}, destroy() {} });
  }
  return byId;
}

function setup(opts: HarnessOptions & { open?: Inbound[] } = {}) {
  return harness({ ...opts, nodes: opts.nodes ?? [NODE_A], config: { ...PORTS, ...opts.config }, connections: connections(...(opts.open ?? [WS_CLIENT, TLS_CLIENT])) });
}

function parsed(data: Buffer): SipMessage {
  const m = parseSipMessage(data, true);
  if (isParseFailure(m)) assert.fail(`ParseFailure: ${m.failure}`);
  return m;
}

/** What was sent, 100 Trying left out. */
function sent(list: Sent[]): Sent[] {
  return list.filter((s) => !s.data.toString('latin1', 0, 18).startsWith('SIP/2.0 100 Trying'));
}

function only(list: Sent[]): Sent {
  const rest = sent(list);
  assert.equal(rest.length, 1, rest.map((s) => s.data.toString('latin1').split('\r\n')[0]).join(' | '));
  return rest[0];
}

function statusOf(s: Sent): string {
  return s.data.toString('latin1').split('\r\n')[0];
}

/** An initial INVITE (or another method) from a client on `src`, Via written as such a client writes it. */
function clientRequest(src: Inbound, o: { method?: string; ruri?: string; callId?: string; extra?: string[]; contentLength?: boolean } = {}): Buffer {
  const method = o.method ?? 'INVITE';
  const viaTransport = src.transport.toUpperCase();
  const host = src.transport === 'ws' || src.transport === 'wss' ? 'df7jal23ls0d.invalid' : `${src.ip.includes(':') ? `[${src.ip}]` : src.ip}:${src.port}`;
  const lines = [
    `${method} ${o.ruri ?? `sip:service@${LB_IP}`} SIP/2.0`,
    `Via: SIP/2.0/${viaTransport} ${host};branch=z9hG4bK-${o.callId ?? 'c'}-${method}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.org>;tag=a1',
    `To: <sip:${method === 'REGISTER' ? 'alice' : 'service'}@example.org>`,
    `Call-ID: ${o.callId ?? 'transport-call'}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:alice@${host};transport=${src.transport === 'wss' ? 'ws' : src.transport}>`,
    ...(o.extra ?? []),
  ];
  if (o.contentLength !== false) lines.push('Content-Length: 0');
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}

/** The node's in-dialog request back to the caller, routed by the Record-Route of the INVITE it got. */
function nodeRequest(recordRoute: string[], o: { method?: string; ruri?: string } = {}): Buffer {
  const method = o.method ?? 'BYE';
  return Buffer.from([
    `${method} ${o.ruri ?? 'sip:alice@df7jal23ls0d.invalid;transport=ws'} SIP/2.0`,
    `Via: SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bK-node-${method}`,
    'Max-Forwards: 70',
    ...recordRoute.map((r) => `Route: ${r}`),
    'From: <sip:service@example.org>;tag=n1',
    'To: <sip:alice@example.org>;tag=a1',
    'Call-ID: transport-call',
    `CSeq: 2 ${method}`,
    'Content-Length: 0',
    '', '',
  ].join('\r\n'), 'latin1');
}

/** The INVITE as the node got it from `src`. */
function inviteThrough(h: ReturnType<typeof setup>, src: Inbound, extra: string[] = []): SipMessage {
  return parsed(only(h.feed(clientRequest(src, { extra }), src)).data);
}

describe('a WebSocket client calling a UDP node', () => {
  test('the INVITE goes over UDP, Via UDP, double Record-Route: UDP for the node on top, then transport=ws with the flow token', () => {
    const h = setup();
    const out = only(h.feed(clientRequest(WS_CLIENT), WS_CLIENT));
    assert.deepEqual([out.transport, out.ip, out.port], ['udp', NODE_A.ip, 5080]);
    const m = parsed(out.data);
    assert.match(elements(m, 'via')[0], /^SIP\/2\.0\/UDP 10\.0\.0\.1:5060;branch=/);
    const rr = elements(m, 'record-route');
    assert.equal(rr.length, 2);
    assert.equal(rr[0], `<sip:${LB_IP}:5060;lr;lbnode=${NODE_A.id}>`);
    assert.match(rr[1], new RegExp(`^<sip:lbf[\\w-]{27}@10\\.0\\.0\\.1:5062;transport=ws;lr;lbnode=${NODE_A.id}>$`));
  });

  test('a WebSocket message without Content-Length is one whole message (RFC 7118), forwarded with one when the hop is a stream', () => {
    const tcpOnly: SipNode = { id: '10.0.0.13:5080', ip: '10.0.0.13', ports: { tcp: 5080 }, weight: 1 };
    const h = setup({ nodes: [tcpOnly] });
    const out = only(h.feed(clientRequest(WS_CLIENT, { contentLength: false }), WS_CLIENT));
    assert.equal(out.transport, 'tcp');
    assert.equal(parsed(out.data).get('content-length'), '0');
  });

  test('the response goes back to the connection the INVITE came on', () => {
    const h = setup();
    const invite = inviteThrough(h, WS_CLIENT);
    const response = Buffer.from([
      'SIP/2.0 200 OK', ...elements(invite, 'via').map((v) => `Via: ${v}`),
      'From: <sip:alice@example.org>;tag=a1', 'To: <sip:service@example.org>;tag=n1', 'Call-ID: transport-call', 'CSeq: 1 INVITE', 'Content-Length: 0', '', '',
    ].join('\r\n'), 'latin1');
    const back = only(h.feed(response, FROM_A));
    assert.deepEqual([back.side, back.transport, back.ip, back.port], ['external', 'ws', WS_CLIENT.ip, WS_CLIENT.port]);
  });

  test("the node's BYE, routed by the Record-Route, goes out on the client's connection whatever its Request-URI says", () => {
    const h = setup();
    const rr = elements(inviteThrough(h, WS_CLIENT), 'record-route');
    const out = only(h.feed(nodeRequest(rr), FROM_A));
    assert.deepEqual([out.side, out.transport, out.ip, out.port, out.connectionId], ['external', 'ws', WS_CLIENT.ip, WS_CLIENT.port, WS_CLIENT.connectionId]);
    const m = parsed(out.data);
    assert.match(elements(m, 'via')[0], /^SIP\/2\.0\/WS 10\.0\.0\.1:5062;branch=/);
    assert.deepEqual(m.getAll('route'), [], 'both of our Route entries are popped');
  });

  test('the client connection gone: the node gets 430 Flow Failed, nothing goes to the client', () => {
    const table = connections(WS_CLIENT) as Map<number, StreamConnection>;
    const h = harness({ nodes: [NODE_A], config: PORTS, connections: table });
    const rr = elements(inviteThrough(h as ReturnType<typeof setup>, WS_CLIENT), 'record-route');
    table.delete(WS_CLIENT.connectionId); // the browser closed it
    const out = sent(h.feed(nodeRequest(rr), FROM_A));
    assert.equal(out.length, 1);
    assert.equal(statusOf(out[0]), 'SIP/2.0 430 Flow Failed');
    assert.deepEqual([out[0].ip, out[0].port], [NODE_A.ip, 5080]);
  });

  test('the flow failure and the forgery, by table', () => {
    const tokens = new FlowTokens('proxy-test-secret');
    const genuine = tokens.make(WS_CLIENT.connectionId);
    const other = new FlowTokens('proxy-test-secret').make(WS_CLIENT.connectionId);
    const swap = (t: string, i: number): string => t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
    const cases: { name: string; token: string; open: Inbound[]; status: string }[] = [
      { name: 'another process minted it (another balancer, or before a restart)', token: other, open: [WS_CLIENT], status: 'SIP/2.0 430 Flow Failed' },
      { name: 'a character of the MAC changed', token: swap(genuine, genuine.length - 3), open: [WS_CLIENT], status: 'SIP/2.0 403 Forbidden (flow token does not verify)' },
      { name: 'a character of the connection id changed', token: swap(genuine, 12), open: [WS_CLIENT], status: 'SIP/2.0 403 Forbidden (flow token does not verify)' },
      { name: 'cut short', token: genuine.slice(0, -2), open: [WS_CLIENT], status: 'SIP/2.0 403 Forbidden (flow token does not verify)' },
      { name: 'just the prefix', token: 'lbf', open: [WS_CLIENT], status: 'SIP/2.0 403 Forbidden (flow token does not verify)' },
    ];
    for (const c of cases) {
      const h = setup({ open: c.open });
      const route = `<sip:${c.token}@${LB_IP}:5062;transport=ws;lr;lbnode=${NODE_A.id}>`;
      const out = sent(h.feed(nodeRequest([`<sip:${LB_IP}:5060;lr;lbnode=${NODE_A.id}>`, route]), FROM_A));
      assert.equal(out.length, 1, c.name);
      assert.equal(statusOf(out[0]), c.status, c.name);
      assert.deepEqual([out[0].ip, out[0].port], [NODE_A.ip, 5080], `${c.name}: answered to the node`);
    }
  });

  test('an ACK with a bad flow token is dropped, never answered', () => {
    const h = setup({ open: [] });
    const rr = [`<sip:lbfAAAA@${LB_IP}:5062;transport=ws;lr>`];
    assert.deepEqual(h.feed(nodeRequest(rr, { method: 'ACK' }), FROM_A), []);
  });

  test("a client's own in-dialog request carrying the token is routed by the node hint, the token ignored", () => {
    const h = setup();
    const rr = elements(inviteThrough(h, WS_CLIENT), 'record-route');
    const bye = Buffer.from([
      'BYE sip:demo@10.0.0.11:5080 SIP/2.0',
      'Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-client-bye',
      'Max-Forwards: 70', ...[...rr].reverse().map((r) => `Route: ${r}`),
      'From: <sip:alice@example.org>;tag=a1', 'To: <sip:service@example.org>;tag=n1', 'Call-ID: transport-call', 'CSeq: 2 BYE', '', '',
    ].join('\r\n'), 'latin1');
    const out = only(h.feed(bye, WS_CLIENT));
    assert.deepEqual([out.transport, out.ip, out.port], ['udp', NODE_A.ip, 5080]);
  });

  test('a node request to a *.invalid Contact without our Route entry: 480, nothing sent anywhere else', () => {
    const h = setup();
    const [reply] = sent(h.feed(nodeRequest([], { method: 'MESSAGE' }), FROM_A));
    assert.match(statusOf(reply), /^SIP\/2\.0 480 /);
    assert.deepEqual(h.lookups, []);
  });
});

describe('Path for REGISTER (RFC 3327)', () => {
  test('a stream client that supports path: a Path with its flow token on our internal address', () => {
    const h = setup();
    const m = parsed(only(h.feed(clientRequest(WS_CLIENT, { method: 'REGISTER', extra: ['Supported: path, outbound'] }), WS_CLIENT)).data);
    const path = m.getAll('path');
    assert.equal(path.length, 1);
    assert.match(path[0], new RegExp(`^<sip:lbf[\\w-]{27}@10\\.0\\.0\\.1:5060;lr>$`));
    // The node routes an INVITE for the binding through it: it reaches the client's connection.
    const invite = Buffer.from([
      'INVITE sip:alice@df7jal23ls0d.invalid;transport=ws SIP/2.0',
      `Via: SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bK-node-inv`, 'Max-Forwards: 70', `Route: ${path[0]}`,
      'From: <sip:service@example.org>;tag=n9', 'To: <sip:alice@example.org>', 'Call-ID: registrar-call', 'CSeq: 1 INVITE', 'Content-Length: 0', '', '',
    ].join('\r\n'), 'latin1');
    const out = only(h.feed(invite, FROM_A));
    assert.deepEqual([out.transport, out.connectionId], ['ws', WS_CLIENT.connectionId]);
    // It creates a dialog: the entry facing the client carries the token of that same connection.
    const rr = elements(parsed(out.data), 'record-route');
    assert.match(rr[0], /^<sip:lbf[\w-]{27}@10\.0\.0\.1:5062;transport=ws;lr;lbnode=/);
  });

  const without: { name: string; src: Inbound; extra: string[] }[] = [
    { name: 'no Supported: path', src: WS_CLIENT, extra: ['Supported: outbound'] },
    { name: 'a UDP client', src: { transport: 'udp', side: 'external', ip: '192.0.2.32', port: 5060, connectionId: 0 }, extra: ['Supported: path'] },
  ];
  for (const c of without) {
    test(`no Path: ${c.name}`, () => {
      const h = setup();
      assert.deepEqual(parsed(only(h.feed(clientRequest(c.src, { method: 'REGISTER', extra: c.extra }), c.src)).data).getAll('path'), []);
    });
  }
});

describe('sips: (RFC 3261 §26.2.2)', () => {
  const tlsNode: SipNode = { id: '10.0.0.14:5080', ip: '10.0.0.14', ports: { udp: 5080, tls: 5081 }, weight: 1 };
  const cases: { name: string; nodes: SipNode[]; config: Partial<Config>; expect: string }[] = [
    { name: 'UDP-only node, TLS kept end to end: 503', nodes: [NODE_A], config: {}, expect: 'SIP/2.0 503 Service Unavailable (sips: needs TLS or WSS to the node)' },
    { name: 'a node with TLS: over TLS', nodes: [tlsNode], config: {}, expect: 'tls' },
    { name: 'terminateTLSTraffic: the node leg may be UDP', nodes: [NODE_A], config: { terminateTLSTraffic: true }, expect: 'udp' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const h = setup({ nodes: c.nodes, config: c.config });
      const out = only(h.feed(clientRequest(TLS_CLIENT, { ruri: `sips:service@${LB_IP}` }), TLS_CLIENT));
      if (c.expect.startsWith('SIP/2.0')) assert.equal(statusOf(out), c.expect);
      else assert.equal(out.transport, c.expect);
    });
  }

  test('a plain sip: request from a TLS client may go to a UDP node', () => {
    const h = setup();
    assert.equal(only(h.feed(clientRequest(TLS_CLIENT), TLS_CLIENT)).transport, 'udp');
  });

  test('a node request to a sips: URI goes out over TLS', () => {
    const h = setup();
    const req = Buffer.from([
      'MESSAGE sips:bob@192.0.2.40 SIP/2.0', `Via: SIP/2.0/UDP ${NODE_A.ip}:5080;branch=z9hG4bK-node-m`, 'Max-Forwards: 70',
      'From: <sip:service@example.org>;tag=n2', 'To: <sips:bob@192.0.2.40>', 'Call-ID: sips-out', 'CSeq: 1 MESSAGE', 'Content-Length: 0', '', '',
    ].join('\r\n'), 'latin1');
    const out = only(h.feed(req, FROM_A));
    assert.deepEqual([out.transport, out.ip, out.port], ['tls', '192.0.2.40', 5061]);
  });
});

describe('IPv6 (ipv6Host)', () => {
  const V6_CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '2001:db8::10', port: 5060, connectionId: 0 };
  const V6_NODE: SipNode = { id: '[fd00::11]:5080', ip: 'fd00::11', ports: { udp: 5080 }, weight: 1 };

  test('an IPv6 client and an IPv4 node: two Record-Route entries, each in its peer\'s family; Via towards the node in IPv4', () => {
    const h = setup({ config: { ipv6Host: 'fd00::1', externalIpv6Host: 'fd00::1', internalIpv6Host: 'fd00::1' } });
    const m = parsed(only(h.feed(clientRequest(V6_CLIENT), V6_CLIENT)).data);
    assert.match(elements(m, 'via')[0], /^SIP\/2\.0\/UDP 10\.0\.0\.1:5060;/);
    assert.deepEqual(elements(m, 'record-route'), [
      `<sip:${LB_IP}:5060;lr;lbnode=${NODE_A.id}>`,
      `<sip:[fd00::1]:5060;lr;lbnode=${NODE_A.id}>`,
    ]);
  });

  test('an IPv4 client and an IPv6 node: Via [fd00::1], the node-facing entry in IPv6', () => {
    const h = setup({ nodes: [V6_NODE], config: { ipv6Host: 'fd00::1', externalIpv6Host: 'fd00::1', internalIpv6Host: 'fd00::1' } });
    const client: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5060, connectionId: 0 };
    const out = only(h.feed(clientRequest(client), client));
    assert.deepEqual([out.ip, out.port], ['fd00::11', 5080]);
    const m = parsed(out.data);
    assert.match(elements(m, 'via')[0], /^SIP\/2\.0\/UDP \[fd00::1\]:5060;/);
    assert.deepEqual(elements(m, 'record-route'), [
      `<sip:[fd00::1]:5060;lr;lbnode=${V6_NODE.id}>`,
      `<sip:${LB_IP}:5060;lr;lbnode=${V6_NODE.id}>`,
    ]);
  });

  test('our IPv6 address in a Route is ours: popped, and its node hint followed', () => {
    const h = setup({ config: { ipv6Host: 'fd00::1', externalIpv6Host: 'fd00::1', internalIpv6Host: 'fd00::1' } });
    const route = nameAddrUri(`<sip:[fd00::1]:5060;lr;lbnode=${NODE_A.id}>`);
    assert.ok(route !== null && parseSipUri(route) !== null);
    const bye = Buffer.from([
      'BYE sip:demo@10.0.0.11:5080 SIP/2.0', `Via: SIP/2.0/UDP [${V6_CLIENT.ip}]:5060;branch=z9hG4bK-v6-bye`, 'Max-Forwards: 70',
      `Route: <sip:[fd00::1]:5060;lr;lbnode=${NODE_A.id}>`, `Route: <sip:${LB_IP}:5060;lr;lbnode=${NODE_A.id}>`,
      'From: <sip:alice@example.org>;tag=a1', 'To: <sip:service@example.org>;tag=n1', 'Call-ID: v6-call', 'CSeq: 2 BYE', 'Content-Length: 0', '', '',
    ].join('\r\n'), 'latin1');
    const out = only(h.feed(bye, V6_CLIENT));
    assert.deepEqual([out.ip, out.port], [NODE_A.ip, 5080]);
    assert.deepEqual(parsed(out.data).getAll('route'), []);
  });

  test('without ipv6Host, an IPv6 client gets one Record-Route entry (there is no IPv6 address of ours to add)', () => {
    const h = setup();
    const m = parsed(only(h.feed(clientRequest(V6_CLIENT), V6_CLIENT)).data);
    assert.equal(elements(m, 'record-route').length, 1);
  });
});
