// The Restcomm switches the proxy honours (src/proxy/policy.ts): isSendTrying, blockedValues,
// isSend5xxResponse*, matchingHostnameForRoute / isFilterSubdomain, publicIp(v6) with
// routingRulesIpv4/6. The tables are tested on their own; each behaviour through onMessage with
// the capturing harness.
//
// Topology (test/helpers/proxy.ts): balancer 10.0.0.1:5060 (internal port 5065 when two ports),
// nodes A = 10.0.0.11:5080 and B = 10.0.0.12:5080, clients in 192.0.2.0/24, a public address
// 203.0.113.5 in front of the balancer.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config, RoutingRule } from '../../src/config/types.ts';
import { blockedPattern, ClientRules, proxyPolicy, reasonHeader } from '../../src/proxy/policy.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { nameAddrUri, parseSipUri } from '../../src/sip/uri.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, LB_IP, NODE_A, NODE_B, type Sent } from '../helpers/proxy.ts';
import { elements } from '../helpers/sip.ts';

const CRLF = '\r\n';
const PUBLIC_IP = '203.0.113.5';
const PUBLIC_IPV6 = '2001:db8::5';
const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5062, connectionId: 0 };
const CLIENT_TCP: Inbound = { transport: 'tcp', side: 'external', ip: '192.0.2.10', port: 40100, connectionId: 7 };
const CLIENT_V6: Inbound = { transport: 'udp', side: 'external', ip: '2001:db8:1::10', port: 5062, connectionId: 0 };
const FROM_A: Inbound = { transport: 'udp', side: 'external', ip: NODE_A.ip, port: 5080, connectionId: 0 };

interface Req {
  method?: string;
  ruri?: string;
  src?: Inbound;
  callId?: string;
  cseq?: number;
  toTag?: string;
  route?: string[];
  userAgent?: string;
  from?: string;
  to?: string;
  extra?: string[];
  /** Leave CSeq out (a request the proxy would answer with 400). */
  noCseq?: boolean;
  maxForwards?: number;
}

function request(o: Req = {}): Buffer {
  const method = o.method ?? 'INVITE';
  const src = o.src ?? CLIENT;
  const host = src.ip.includes(':') ? `[${src.ip}]` : src.ip;
  const lines = [
    `${method} ${o.ruri ?? `sip:service@${LB_IP}:5060`} SIP/2.0`,
    `Via: SIP/2.0/${src.transport.toUpperCase()} ${host}:${src.port};branch=z9hG4bK-${o.callId ?? 'c1'}-${o.cseq ?? 1}`,
    `Max-Forwards: ${o.maxForwards ?? 70}`,
    ...(o.route ?? []).map((r) => `Route: ${r}`),
    `From: ${o.from ?? 'Alice <sip:alice@example.org>;tag=f1'}`,
    `To: ${o.to ?? 'Service <sip:service@example.com>'}${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
    `Call-ID: ${o.callId ?? 'c1'}@192.0.2.10`,
    ...(o.noCseq === true ? [] : [`CSeq: ${o.cseq ?? 1} ${method}`]),
    `Contact: <sip:alice@${host}:${src.port}>`,
    ...(o.userAgent === undefined ? [] : [`User-Agent: ${o.userAgent}`]),
    ...(o.extra ?? []),
    'Content-Length: 0',
  ];
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF, 'latin1');
}

function parsed(s: Sent | Buffer): SipMessage {
  const data = Buffer.isBuffer(s) ? s : s.data;
  const m = parseSipMessage(data, true);
  if (isParseFailure(m)) assert.fail(`ParseFailure: ${m.failure}`);
  assert.equal(m.error, null, `error: ${m.error}\n${data.toString('latin1')}`);
  return m;
}

function firstLine(s: Sent): string {
  return s.data.toString('latin1').split(CRLF)[0];
}

function describeSent(sent: Sent[]): string {
  return JSON.stringify(sent.map((s) => `${s.side} ${s.transport} ${s.ip}:${s.port}#${s.connectionId ?? '-'} ${firstLine(s)}`));
}

/** What the UAS answers: the forwarded request's Vias, Record-Routes, From, To(+tag), Call-ID, CSeq. */
function answer(forwarded: Sent, status: number, reason: string): Buffer {
  const m = parsed(forwarded);
  const to = m.get('to') ?? '';
  const lines = [
    `SIP/2.0 ${status} ${reason}`,
    ...m.getAll('via').map((v) => `Via: ${v}`),
    ...m.getAll('record-route').map((r) => `Record-Route: ${r}`),
    `From: ${m.get('from')}`,
    `To: ${/;\s*tag=/i.test(to) ? to : `${to};tag=uas-1`}`,
    `Call-ID: ${m.get('call-id')}`,
    `CSeq: ${m.get('cseq')}`,
    'Content-Length: 0',
  ];
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF, 'latin1');
}

/** Record-Route entries as host:port (IPv6 bracketed) with their transport and lbnode parameters. */
function recordRoutes(s: Sent): string[] {
  return elements(parsed(s), 'record-route').map((rr) => {
    const uri = parseSipUri(nameAddrUri(rr) ?? '');
    assert.ok(uri !== null, `unparseable Record-Route ${rr}`);
    const host = uri.host.includes(':') ? `[${uri.host}]` : uri.host;
    const t = uri.params.get('transport');
    return `${host}:${uri.port ?? 5060}${t === undefined ? '' : `;transport=${t}`};lbnode=${uri.params.get('lbnode') ?? ''}`;
  });
}

function config(c: Partial<Config>): { config: Partial<Config> } {
  return { config: c };
}

// ====================================================================================== policy

describe('proxyPolicy: what the configuration turns into', () => {
  test('defaults: 100 Trying on, the three scanner names blocked, a plain 503, no names, no public address', () => {
    const p = proxyPolicy(defaultConfig());
    assert.equal(p.sendTrying, true);
    assert.ok(p.blocked !== null);
    assert.equal(p.unavailableStatus, 503);
    assert.deepEqual(p.unavailableHeaders, []);
    assert.equal(p.routeHost, null);
    assert.equal(p.publicIpv4, null);
    assert.equal(p.publicIpv6, null);
  });

  test('isSend5xxResponse: the configured status and an RFC 3326 Reason header', () => {
    const p = proxyPolicy({ ...defaultConfig(), isSend5xxResponse: true, isSend5xxResponseSatusCode: 500, isSend5xxResponseReasonHeader: 'Destination not available' });
    assert.equal(p.unavailableStatus, 500);
    assert.deepEqual(p.unavailableHeaders, ['Reason: SIP ;cause=500 ;text="Destination not available"']);
  });

  test('reasonHeader without text carries the cause alone', () => {
    assert.equal(reasonHeader(503, null), 'Reason: SIP ;cause=503');
  });
});

describe('blockedPattern', () => {
  const cases: { values: string[]; text: string; blocked: boolean }[] = [
    { values: ['sipvicious', 'sipcli', 'friendly-scanner'], text: 'friendly-scanner', blocked: true },
    { values: ['sipvicious', 'sipcli', 'friendly-scanner'], text: 'Friendly-Scanner/1.0', blocked: true },
    { values: ['sipvicious', 'sipcli', 'friendly-scanner'], text: '"SIPVicious" <sip:100@1.1.1.1>;tag=x', blocked: true },
    { values: ['sipvicious', 'sipcli', 'friendly-scanner'], text: 'sipcli/v1.8', blocked: true },
    { values: ['sipvicious', 'sipcli', 'friendly-scanner'], text: 'Linphone/5.2 (belle-sip/5.2)', blocked: false },
    { values: ['sipvicious', 'sipcli', 'friendly-scanner'], text: 'sip-cli', blocked: false },
    // Entries are literal text: regular-expression characters in them mean themselves.
    { values: ['a.b', 'x+'], text: 'axb', blocked: false },
    { values: ['a.b', 'x+'], text: 'A.B', blocked: true },
    { values: ['a.b', 'x+'], text: 'yx+', blocked: true },
    { values: ['(scanner)'], text: 'a (Scanner) b', blocked: true },
  ];
  for (const c of cases) {
    test(`[${c.values.join(',')}] ${JSON.stringify(c.text)} -> ${c.blocked ? 'blocked' : 'passes'}`, () => {
      const re = blockedPattern(c.values);
      assert.ok(re !== null);
      assert.equal(re.test(c.text), c.blocked);
    });
  }

  test('an empty list blocks nothing and costs nothing: no pattern', () => {
    assert.equal(blockedPattern([]), null);
  });
});

describe('ClientRules (routingRulesIpv4/6): the most specific rule decides', () => {
  const r = (pattern: string, patch: boolean): RoutingRule => ({ pattern, patch });
  const cases: { name: string; rules: RoutingRule[]; address: string; patch: boolean }[] = [
    { name: 'no rules: every client', rules: [], address: '192.0.2.10', patch: true },
    { name: 'no rules: a host name too', rules: [], address: 'ua.example.com', patch: true },
    { name: 'prefix false: a LAN client keeps the real address', rules: [r('10.0.0.*', false)], address: '10.0.0.5', patch: false },
    { name: 'prefix false: a client outside it is patched', rules: [r('10.0.0.*', false)], address: '10.0.1.5', patch: true },
    { name: 'default false, prefix true: inside the prefix', rules: [r('default', false), r('203.0.113.*', true)], address: '203.0.113.9', patch: true },
    { name: 'default false, prefix true: elsewhere', rules: [r('default', false), r('203.0.113.*', true)], address: '198.51.100.1', patch: false },
    { name: 'exact beats prefix', rules: [r('10.0.0.*', false), r('10.0.0.7', true)], address: '10.0.0.7', patch: true },
    { name: 'exact beats prefix, its neighbour follows the prefix', rules: [r('10.0.0.*', false), r('10.0.0.7', true)], address: '10.0.0.8', patch: false },
    { name: 'longer prefix beats shorter', rules: [r('10.*', false), r('10.0.0.*', true)], address: '10.0.0.1', patch: true },
    { name: 'shorter prefix where the longer does not match', rules: [r('10.*', false), r('10.0.0.*', true)], address: '10.1.0.1', patch: false },
    { name: 'order of the rules does not matter', rules: [r('10.0.0.*', true), r('10.*', false)], address: '10.0.0.1', patch: true },
    { name: 'prefix is textual: 10.0.0.1* matches 10.0.0.15', rules: [r('10.0.0.1*', false)], address: '10.0.0.15', patch: false },
    { name: 'prefix is textual: 10.0.0.1* does not match 10.0.0.2', rules: [r('10.0.0.1*', false)], address: '10.0.0.2', patch: true },
    { name: 'exact address false', rules: [r('192.0.2.10', false)], address: '192.0.2.10', patch: false },
    { name: 'the same pattern twice, true and false: false', rules: [r('10.0.0.*', true), r('10.0.0.*', false)], address: '10.0.0.3', patch: false },
    { name: 'IPv6 prefix', rules: [r('fd30:*', false)], address: 'fd30::1', patch: false },
    { name: 'IPv6 prefix, any case', rules: [r('fd30:*', false)], address: 'FD30::1', patch: false },
    { name: 'IPv6 outside the prefix', rules: [r('fd30:*', false)], address: '2001:db8::1', patch: true },
    { name: 'a host name matches only default', rules: [r('default', false), r('10.*', true)], address: 'ua.example.com', patch: false },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.address} -> ${c.patch ? 'public' : 'real'} address`, () => {
      assert.equal(new ClientRules(c.rules).patches(c.address), c.patch);
    });
  }
});

// ================================================================================ isSendTrying

describe('isSendTrying: 100 Trying for every INVITE about to be forwarded', () => {
  test('a client INVITE: 100 Trying straight back first, then the INVITE to the node', () => {
    const h = harness();
    const sent = h.feed(request(), CLIENT);
    assert.equal(sent.length, 2, describeSent(sent));
    const [trying, fwd] = sent;
    assert.deepEqual([trying.side, trying.transport, trying.ip, trying.port, trying.connectionId], ['external', 'udp', CLIENT.ip, CLIENT.port, 0]);
    assert.equal(firstLine(trying), 'SIP/2.0 100 Trying');
    assert.equal(firstLine(fwd), `INVITE sip:service@${LB_IP}:5060 SIP/2.0`);
    assert.equal(fwd.ip, NODE_A.ip);
    const t = parsed(trying);
    const req = parsed(request());
    for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) assert.deepEqual(t.getAll(name), req.getAll(name), name);
    assert.doesNotMatch(t.get('to') ?? '', /tag=/, 'a 100 creates no dialog: no To tag');
    assert.equal(t.get('content-length'), '0');
    assert.equal(h.stats.localReplies.get(100), 1);
    assert.equal(h.stats.requestsForwarded, 1);
  });

  test('over TCP the 100 goes back on the connection the INVITE came on', () => {
    const h = harness();
    const [trying] = h.feed(request({ src: CLIENT_TCP }), CLIENT_TCP);
    assert.deepEqual([trying.side, trying.transport, trying.ip, trying.port, trying.connectionId], ['external', 'tcp', CLIENT_TCP.ip, CLIENT_TCP.port, 7]);
    assert.equal(firstLine(trying), 'SIP/2.0 100 Trying');
  });

  test('header lines are echoed as they came: compact forms, Timestamp (RFC 3261 8.2.6.1), a re-INVITE To tag', () => {
    const h = harness();
    const raw = [
      `INVITE sip:service@${LB_IP}:5060 SIP/2.0`,
      `v: SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-compact`,
      'f: <sip:alice@example.org>;tag=f1', 't: <sip:service@example.com>;tag=uas-9', 'i: compact@192.0.2.10',
      'CSeq: 5 INVITE', 'Timestamp: 54.3', 'l: 0',
    ].join(CRLF) + CRLF + CRLF;
    const [trying] = h.feed(Buffer.from(raw, 'latin1'), CLIENT);
    const text = trying.data.toString('latin1');
    assert.equal(text, [
      'SIP/2.0 100 Trying',
      `v: SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-compact`,
      'f: <sip:alice@example.org>;tag=f1', 't: <sip:service@example.com>;tag=uas-9', 'i: compact@192.0.2.10',
      'CSeq: 5 INVITE', 'Timestamp: 54.3', 'Content-Length: 0',
    ].join(CRLF) + CRLF + CRLF);
  });

  test('a node INVITE to a client: the 100 goes back to the node', () => {
    const h = harness();
    const sent = h.feed(request({ src: FROM_A, ruri: 'sip:bob@192.0.2.20:5060' }), FROM_A);
    assert.deepEqual(sent.map((s) => [s.ip, s.port, firstLine(s).split(' ').slice(0, 2).join(' ')]),
      [[NODE_A.ip, 5080, 'SIP/2.0 100'], ['192.0.2.20', 5060, 'INVITE sip:bob@192.0.2.20:5060']]);
  });

  const noTrying: { name: string; req: Req }[] = [
    { name: 'OPTIONS', req: { method: 'OPTIONS' } },
    { name: 'MESSAGE (Restcomm sends a 100; RFC 4320 says no)', req: { method: 'MESSAGE' } },
    { name: 'SUBSCRIBE', req: { method: 'SUBSCRIBE', extra: ['Event: presence'] } },
    { name: 'BYE', req: { method: 'BYE', cseq: 2, toTag: 'uas-1' } },
    { name: 'CANCEL', req: { method: 'CANCEL' } },
    { name: 'ACK', req: { method: 'ACK', toTag: 'uas-1' } },
  ];
  for (const c of noTrying) {
    test(`${c.name}: forwarded without a 100`, () => {
      const h = harness();
      const sent = h.feed(request(c.req), CLIENT);
      assert.deepEqual(sent.map((s) => s.ip), [NODE_A.ip], describeSent(sent));
    });
  }

  test('an INVITE that cannot be forwarded gets its 503 and no 100', () => {
    const h = harness({ states: { [NODE_A.id]: 'down', [NODE_B.id]: 'down' } });
    const sent = h.feed(request(), CLIENT);
    assert.deepEqual(sent.map(firstLine), ['SIP/2.0 503 Service Unavailable (no node available)']);
  });

  test('an INVITE refused for Max-Forwards 0 gets its 483 and no 100', () => {
    const h = harness();
    const sent = h.feed(request({ maxForwards: 0 }), CLIENT);
    assert.deepEqual(sent.map(firstLine), ['SIP/2.0 483 Too Many Hops']);
  });

  test('isSendTrying=false: the INVITE alone', () => {
    const h = harness(config({ isSendTrying: false }));
    const sent = h.feed(request(), CLIENT);
    assert.deepEqual(sent.map((s) => s.ip), [NODE_A.ip], describeSent(sent));
  });
});

describe('isSendTrying: the next hop\'s 100 to an INVITE is absorbed', () => {
  test('the node\'s 100 is dropped and counted, its 180 and 200 are relayed', () => {
    const h = harness();
    const fwd = h.feed(request(), CLIENT)[1];
    assert.deepEqual(h.feed(answer(fwd, 100, 'Trying'), FROM_A), []);
    assert.equal(h.stats.dropped.get('trying-absorbed'), 1);
    for (const [status, reason] of [[180, 'Ringing'], [200, 'OK']] as const) {
      const sent = h.feed(answer(fwd, status, reason), FROM_A);
      assert.deepEqual(sent.map((s) => [s.ip, s.port, firstLine(s)]), [[CLIENT.ip, CLIENT.port, `SIP/2.0 ${status} ${reason}`]]);
    }
  });

  test('a forged 100 is still counted as forged, not absorbed', () => {
    const h = harness();
    const fwd = h.feed(request(), CLIENT)[1];
    const forged = answer(fwd, 100, 'Trying').toString('latin1').replace(`Call-ID: c1@192.0.2.10`, 'Call-ID: other@192.0.2.10');
    assert.deepEqual(h.feed(Buffer.from(forged, 'latin1'), FROM_A), []);
    assert.equal(h.stats.dropped.get('forged-response'), 1);
    assert.equal(h.stats.dropped.get('trying-absorbed'), undefined);
  });

  test('a 100 to a non-INVITE is relayed (siplb sent none)', () => {
    const h = harness();
    const [fwd] = h.feed(request({ method: 'MESSAGE' }), CLIENT);
    const sent = h.feed(answer(fwd, 100, 'Trying'), FROM_A);
    assert.deepEqual(sent.map((s) => [s.ip, firstLine(s)]), [[CLIENT.ip, 'SIP/2.0 100 Trying']]);
  });

  test('isSendTrying=false: the node\'s 100 is relayed', () => {
    const h = harness(config({ isSendTrying: false }));
    const [fwd] = h.feed(request(), CLIENT);
    const sent = h.feed(answer(fwd, 100, 'Trying'), FROM_A);
    assert.deepEqual(sent.map((s) => [s.ip, firstLine(s)]), [[CLIENT.ip, 'SIP/2.0 100 Trying']]);
  });
});

// =============================================================================== blockedValues

describe('blockedValues: requests from scanners are dropped unanswered', () => {
  const blocked: { name: string; req: Req }[] = [
    { name: 'User-Agent friendly-scanner', req: { method: 'OPTIONS', userAgent: 'friendly-scanner' } },
    { name: 'User-Agent in other case, inside a longer value', req: { userAgent: 'Mozilla Friendly-SCANNER 1.0' } },
    { name: 'From display name sipvicious', req: { method: 'REGISTER', from: '"sipvicious" <sip:100@192.0.2.10>;tag=x' } },
    { name: 'To user sipcli', req: { to: '<sip:sipcli@example.com>' } },
    { name: 'an ACK', req: { method: 'ACK', toTag: 't', userAgent: 'sipcli/1.0' } },
    { name: 'a request siplb would answer with 400 (no CSeq)', req: { userAgent: 'friendly-scanner', noCseq: true } },
    { name: 'a request siplb would answer with 483', req: { userAgent: 'friendly-scanner', maxForwards: 0 } },
  ];
  for (const c of blocked) {
    test(`${c.name}: nothing sent, counted as blocked`, () => {
      const h = harness();
      assert.deepEqual(h.feed(request(c.req), CLIENT), []);
      assert.equal(h.stats.dropped.get('blocked'), 1);
      assert.equal(h.stats.requestsForwarded, 0);
    });
  }

  test('a normal request from the same client is forwarded', () => {
    const h = harness();
    const sent = h.feed(request({ method: 'OPTIONS', userAgent: 'Linphone/5.2' }), CLIENT);
    assert.deepEqual(sent.map((s) => s.ip), [NODE_A.ip]);
    assert.equal(h.stats.dropped.get('blocked'), undefined);
  });

  test('a node is never blocked: its request goes out', () => {
    const h = harness();
    const sent = h.feed(request({ method: 'OPTIONS', src: FROM_A, ruri: 'sip:bob@192.0.2.20:5060', userAgent: 'friendly-scanner' }), FROM_A);
    assert.deepEqual(sent.map((s) => s.ip), ['192.0.2.20']);
  });

  test('two ports: a stranger on the internal side is a client, and is blocked', () => {
    const h = harness({ internalPort: 5065 });
    assert.deepEqual(h.feed(request({ userAgent: 'friendly-scanner' }), { ...CLIENT, side: 'internal' }), []);
    assert.equal(h.stats.dropped.get('blocked'), 1);
  });

  test('blockedValues empty: nothing is blocked', () => {
    const h = harness(config({ blockedValues: [] }));
    const sent = h.feed(request({ method: 'OPTIONS', userAgent: 'friendly-scanner' }), CLIENT);
    assert.deepEqual(sent.map((s) => s.ip), [NODE_A.ip]);
  });

  test('a configured list replaces the default', () => {
    const h = harness(config({ blockedValues: ['evil-ua'] }));
    assert.deepEqual(h.feed(request({ method: 'OPTIONS', userAgent: 'EVIL-UA/2' }), CLIENT), []);
    assert.deepEqual(h.feed(request({ method: 'OPTIONS', callId: 'c2', userAgent: 'friendly-scanner' }), CLIENT).map((s) => s.ip), [NODE_A.ip]);
  });
});

// =========================================================================== isSend5xxResponse

describe('isSend5xxResponse: the reply to a request siplb cannot forward', () => {
  const allDown = { states: { [NODE_A.id]: 'down' as const, [NODE_B.id]: 'down' as const } };
  const cases: { name: string; cfg: Partial<Config>; status: number; reason: string | undefined }[] = [
    { name: 'off (default): plain 503, no Reason', cfg: {}, status: 503, reason: undefined },
    { name: 'on, 503, with text', cfg: { isSend5xxResponse: true, isSend5xxResponseReasonHeader: 'Destination not available' }, status: 503, reason: 'SIP ;cause=503 ;text="Destination not available"' },
    { name: 'on, 500, without text', cfg: { isSend5xxResponse: true, isSend5xxResponseSatusCode: 500 }, status: 500, reason: 'SIP ;cause=500' },
    { name: 'on, 580, with text', cfg: { isSend5xxResponse: true, isSend5xxResponseSatusCode: 580, isSend5xxResponseReasonHeader: 'x' }, status: 580, reason: 'SIP ;cause=580 ;text="x"' },
    { name: 'off, whatever the other keys say', cfg: { isSend5xxResponseSatusCode: 500, isSend5xxResponseReasonHeader: 'x' }, status: 503, reason: undefined },
  ];
  for (const c of cases) {
    test(`no node available, ${c.name}`, () => {
      const h = harness({ ...allDown, config: c.cfg });
      const sent = h.feed(request(), CLIENT);
      assert.equal(sent.length, 1, describeSent(sent));
      assert.deepEqual([sent[0].ip, sent[0].port], [CLIENT.ip, CLIENT.port]);
      const m = parsed(sent[0]);
      assert.equal(m.status, c.status);
      assert.match(firstLine(sent[0]), /\(no node available\)$/);
      assert.equal(m.get('reason'), c.reason);
      assert.equal(h.stats.localReplies.get(c.status), 1);
    });
  }

  test('a node request for a transport siplb does not speak gets the configured status too', () => {
    const h = harness(config({ isSend5xxResponse: true, isSend5xxResponseSatusCode: 502 }));
    const sent = h.feed(request({ src: FROM_A, method: 'OPTIONS', ruri: 'sip:bob@192.0.2.20:5061;transport=tls' }), FROM_A);
    assert.deepEqual(sent.map((s) => [s.ip, firstLine(s)]), [[NODE_A.ip, 'SIP/2.0 502 Bad Gateway (no tls listener towards clients)']]);
    assert.equal(parsed(sent[0]).get('reason'), 'SIP ;cause=502');
  });

  test('sips from a node: the configured status', () => {
    const h = harness(config({ isSend5xxResponse: true, isSend5xxResponseSatusCode: 500 }));
    const sent = h.feed(request({ src: FROM_A, method: 'OPTIONS', ruri: 'sips:bob@192.0.2.20' }), FROM_A);
    assert.deepEqual(sent.map(firstLine), ['SIP/2.0 500 Server Internal Error (no tls listener towards clients)']);
  });

  test('other refusals keep their status: 483 stays 483, without Reason', () => {
    const h = harness(config({ isSend5xxResponse: true, isSend5xxResponseSatusCode: 500, isSend5xxResponseReasonHeader: 'x' }));
    const sent = h.feed(request({ maxForwards: 0 }), CLIENT);
    const m = parsed(sent[0]);
    assert.equal(m.status, 483);
    assert.equal(m.get('reason'), undefined);
  });
});

// ================================================================ matchingHostnameForRoute

describe('matchingHostnameForRoute / isFilterSubdomain: Route entries naming the balancer by name', () => {
  const cases: { route: string; subdomains: boolean; popped: boolean }[] = [
    { route: '<sip:lb.example.com;lr>', subdomains: false, popped: true },
    { route: '<sip:LB.Example.COM:5999;lr>', subdomains: false, popped: true },
    { route: '<sip:edge.lb.example.com;lr>', subdomains: false, popped: false },
    { route: '<sip:edge.lb.example.com;lr>', subdomains: true, popped: true },
    { route: '<sip:a.b.lb.example.com:5070;transport=tcp;lr>', subdomains: true, popped: true },
    { route: '<sip:lb.example.com;lr>', subdomains: true, popped: true },
    { route: '<sip:notlb.example.com;lr>', subdomains: true, popped: false },
    { route: '<sip:example.com;lr>', subdomains: true, popped: false },
    { route: '<sip:lb.example.com.evil.net;lr>', subdomains: true, popped: false },
  ];
  for (const c of cases) {
    test(`${c.route}${c.subdomains ? ' (subdomains too)' : ''} -> ${c.popped ? 'popped' : 'kept'}`, () => {
      const h = harness(config({ matchingHostnameForRoute: 'lb.example.com', isFilterSubdomain: c.subdomains }));
      const sent = h.feed(request({ method: 'OPTIONS', route: [c.route] }), CLIENT);
      assert.equal(sent.length, 1, describeSent(sent));
      assert.deepEqual(parsed(sent[0]).getAll('route'), c.popped ? [] : [c.route]);
    });
  }

  test('the node hint a Route by name carries is followed', () => {
    const h = harness(config({ matchingHostnameForRoute: 'lb.example.com' }));
    const sent = h.feed(request({ method: 'BYE', toTag: 't', route: [`<sip:lb.example.com;lr;lbnode=${NODE_B.id}>`] }), CLIENT);
    assert.deepEqual(sent.map((s) => s.ip), [NODE_B.ip]);
  });

  test('only leading entries are popped: the name after a foreign entry is kept', () => {
    const h = harness(config({ matchingHostnameForRoute: 'lb.example.com' }));
    const sent = h.feed(request({ method: 'OPTIONS', route: ['<sip:proxy.example.net;lr>, <sip:lb.example.com;lr>'] }), CLIENT);
    assert.deepEqual(elements(parsed(sent[0]), 'route'), ['<sip:proxy.example.net;lr>', '<sip:lb.example.com;lr>']);
  });

  test('a node request whose Request-URI names the balancer by name is balanced, not sent out', () => {
    const h = harness(config({ matchingHostnameForRoute: 'lb.example.com' }));
    const sent = h.feed(request({ src: FROM_A, method: 'OPTIONS', ruri: 'sip:service@lb.example.com:5070' }), FROM_A);
    assert.deepEqual(h.lookups, []);
    assert.equal(sent.length, 1);
    assert.ok([NODE_A.ip, NODE_B.ip].includes(sent[0].ip), describeSent(sent));
  });

  test('without matchingHostnameForRoute the same name is an ordinary next hop', () => {
    const h = harness();
    h.feed(request({ src: FROM_A, method: 'OPTIONS', ruri: 'sip:service@lb.example.com:5070' }), FROM_A);
    assert.deepEqual(h.lookups, ['lb.example.com']);
  });
});

// ================================================================ publicIp / routingRules

describe('publicIp: the Record-Route entry that faces a client behind NAT', () => {
  const PUB = `${PUBLIC_IP}:5060`;
  const OWN = `${LB_IP}:5060`;

  test('one port, client INVITE: the node-facing entry stays ours, a second entry below gives the client the public address', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const fwd = h.feed(request(), CLIENT)[1];
    assert.equal(fwd.ip, NODE_A.ip);
    assert.deepEqual(recordRoutes(fwd), [`${OWN};lbnode=${NODE_A.id}`, `${PUB};lbnode=${NODE_A.id}`]);
    // The node copies them into its 200; the client takes its route set from there, reversed.
    const back = h.feed(answer(fwd, 200, 'OK'), FROM_A);
    assert.deepEqual(back.map((s) => s.ip), [CLIENT.ip]);
    assert.deepEqual(recordRoutes(back[0]), [`${OWN};lbnode=${NODE_A.id}`, `${PUB};lbnode=${NODE_A.id}`]);
  });

  test('the client\'s in-dialog request through the public address: both entries popped, the dialog\'s node reached', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const route = [`<sip:${PUB};lr;lbnode=${NODE_B.id}>`, `<sip:${OWN};lr;lbnode=${NODE_B.id}>`];
    const sent = h.feed(request({ method: 'BYE', cseq: 2, toTag: 'uas-1', route }), CLIENT);
    assert.deepEqual(sent.map((s) => s.ip), [NODE_B.ip]);
    assert.equal(parsed(sent[0]).count('route'), 0);
  });

  test('the node\'s in-dialog request: both entries popped, out to the client', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const route = [`<sip:${OWN};lr;lbnode=${NODE_A.id}>`, `<sip:${PUB};lr;lbnode=${NODE_A.id}>`];
    const sent = h.feed(request({ src: FROM_A, method: 'BYE', cseq: 2, toTag: 't', ruri: 'sip:alice@192.0.2.10:5062', route }), FROM_A);
    assert.deepEqual(sent.map((s) => [s.ip, s.port]), [[CLIENT.ip, 5062]]);
    assert.equal(parsed(sent[0]).count('route'), 0);
  });

  test('a Route naming the public address on another port is not ours', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const sent = h.feed(request({ method: 'OPTIONS', route: [`<sip:${PUBLIC_IP}:5999;lr>`] }), CLIENT);
    assert.deepEqual(parsed(sent[0]).getAll('route'), [`<sip:${PUBLIC_IP}:5999;lr>`]);
  });

  test('two ports: the external entry carries the public address, the internal one stays on top', () => {
    const h = harness({ internalPort: 5065, config: { publicIp: PUBLIC_IP } });
    const fwd = h.feed(request(), CLIENT)[1];
    assert.deepEqual(recordRoutes(fwd), [`${LB_IP}:5065;lbnode=${NODE_A.id}`, `${PUB};lbnode=${NODE_A.id}`]);
  });

  test('TCP client, TCP node: the public entry keeps the client transport', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const fwd = h.feed(request({ src: CLIENT_TCP }), CLIENT_TCP)[1];
    assert.deepEqual(recordRoutes(fwd), [`${OWN};transport=tcp;lbnode=${NODE_A.id}`, `${PUB};transport=tcp;lbnode=${NODE_A.id}`]);
  });

  test('a node INVITE out to a client: the top entry (facing the client) is public, the node\'s is ours', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const out = h.feed(request({ src: FROM_A, ruri: 'sip:bob@192.0.2.20:5060' }), FROM_A)[1];
    assert.deepEqual([out.ip, out.port], ['192.0.2.20', 5060]);
    assert.deepEqual(recordRoutes(out), [`${PUB};lbnode=${NODE_A.id}`, `${OWN};lbnode=${NODE_A.id}`]);
  });

  test('a node INVITE to a client the rules keep private: a single entry of ours, as without publicIp', () => {
    const h = harness(config({ publicIp: PUBLIC_IP, routingRulesIpv4: [{ pattern: '192.0.2.*', patch: false }] }));
    const out = h.feed(request({ src: FROM_A, ruri: 'sip:bob@192.0.2.20:5060' }), FROM_A)[1];
    assert.deepEqual(recordRoutes(out), [`${OWN};lbnode=${NODE_A.id}`]);
  });

  test('node to node: no client, no public address', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const out = h.feed(request({ src: FROM_A, ruri: `sip:svc@${NODE_B.ip}:5080` }), FROM_A)[1];
    assert.equal(out.ip, NODE_B.ip);
    assert.deepEqual(recordRoutes(out), [`${OWN};lbnode=${NODE_B.id}`]);
  });

  const rules: { name: string; rules: RoutingRule[]; client: Inbound; cfg?: Partial<Config>; entries: string[] }[] = [
    { name: 'no rules: patched', rules: [], client: CLIENT, entries: [OWN, PUB] },
    { name: 'LAN rule matches the client: our address only', rules: [{ pattern: '192.0.2.*', patch: false }], client: CLIENT, entries: [OWN] },
    { name: 'LAN rule for another network: patched', rules: [{ pattern: '10.*', patch: false }], client: CLIENT, entries: [OWN, PUB] },
    { name: 'default false, this client true', rules: [{ pattern: 'default', patch: false }, { pattern: '192.0.2.10', patch: true }], client: CLIENT, entries: [OWN, PUB] },
    { name: 'IPv6 client with publicIpv6', rules: [], client: CLIENT_V6, cfg: { publicIpv6: PUBLIC_IPV6 }, entries: [OWN, `[${PUBLIC_IPV6}]:5060`] },
    { name: 'IPv6 client kept private by routingRulesIpv6', rules: [], client: CLIENT_V6, cfg: { publicIpv6: PUBLIC_IPV6, routingRulesIpv6: [{ pattern: '2001:db8:1:*', patch: false }] }, entries: [OWN] },
    { name: 'IPv6 client, publicIp only: not patched', rules: [], client: CLIENT_V6, entries: [OWN] },
    { name: 'IPv4 client, publicIpv6 only: not patched', rules: [], client: CLIENT, cfg: { publicIp: null, publicIpv6: PUBLIC_IPV6 }, entries: [OWN] },
  ];
  for (const c of rules) {
    test(`routing rules, client INVITE: ${c.name}`, () => {
      const h = harness(config({ publicIp: PUBLIC_IP, routingRulesIpv4: c.rules, ...c.cfg }));
      const sent = h.feed(request({ src: c.client }), c.client);
      const fwd = sent.find((s) => s.ip === NODE_A.ip);
      assert.ok(fwd !== undefined, describeSent(sent));
      assert.deepEqual(recordRoutes(fwd), c.entries.map((e) => `${e};lbnode=${NODE_A.id}`));
    });
  }

  test('a Route naming publicIpv6 is ours', () => {
    const h = harness(config({ publicIpv6: PUBLIC_IPV6 }));
    const sent = h.feed(request({ method: 'BYE', toTag: 't', route: [`<sip:[${PUBLIC_IPV6}]:5060;lr;lbnode=${NODE_B.id}>`] }), CLIENT);
    assert.deepEqual(sent.map((s) => s.ip), [NODE_B.ip]);
    assert.equal(parsed(sent[0]).count('route'), 0);
  });

  test('requests that create no dialog get no Record-Route, public or not', () => {
    const h = harness(config({ publicIp: PUBLIC_IP }));
    const sent = h.feed(request({ method: 'OPTIONS' }), CLIENT);
    assert.equal(parsed(sent[0]).count('record-route'), 0);
  });
});
