// An OPTIONS for the balancer itself (RFC 3261 §11: no user part, naming the balancer or its VIP,
// nothing left to route) is answered by siplb at once: 200 while it has a node to send calls to,
// 503 without one or while stopping; an IP sprayer's advisor takes it out on the 503. Any other
// OPTIONS is a request like the rest and goes to a node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../src/config/types.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, LB_IP, NODE_A, NODE_B } from '../helpers/proxy.ts';

const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.50', port: 5060, connectionId: 0 };
const VIP = '203.0.113.9';

function options(ruri: string, extra: string[] = []): Buffer {
  return Buffer.from([
    `OPTIONS ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP ${CLIENT.ip}:${CLIENT.port};branch=z9hG4bK-opt-${ruri.length}-${extra.length}`,
    'Max-Forwards: 70', ...extra, 'From: <sip:advisor@example.org>;tag=a1', `To: <${ruri}>`, 'Call-ID: options-self',
    'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
  ].join('\r\n'), 'latin1');
}

const VIP_CONFIG: Partial<Config> = { externalIpLoadBalancerAddress: VIP, externalIpLoadBalancerPort: 5060 };

const CASES: { name: string; ruri: string; extra?: string[]; config?: Partial<Config>; nodes?: 'none'; expect: 'ok' | 'unavailable' | 'forwarded' }[] = [
  { name: 'the balancer\'s address', ruri: `sip:${LB_IP}:5060`, expect: 'ok' },
  { name: 'the balancer\'s address, default port', ruri: `sip:${LB_IP}`, expect: 'ok' },
  { name: 'the VIP in front of it', ruri: `sip:${VIP}:5060`, config: VIP_CONFIG, expect: 'ok' },
  { name: 'no node available', ruri: `sip:${LB_IP}:5060`, nodes: 'none', expect: 'unavailable' },
  { name: 'a user at the balancer: a request for the service', ruri: `sip:alice@${LB_IP}:5060`, expect: 'forwarded' },
  { name: 'our Route, then the Request-URI of a node', ruri: `sip:${NODE_A.ip}:5080`, extra: [`Route: <sip:${LB_IP}:5060;lr>`], expect: 'forwarded' },
];

for (const c of CASES) {
  test(`OPTIONS to ${c.name}: ${c.expect}`, () => {
    const h = harness({ config: c.config, nodes: c.nodes === 'none' ? [] : [NODE_A, NODE_B] });
    const sent = h.feed(options(c.ruri, c.extra), CLIENT);
    assert.equal(sent.length, 1);
    const first = sent[0].data.toString('latin1').split('\r\n')[0];
    if (c.expect === 'forwarded') {
      assert.match(first, /^OPTIONS /);
      assert.ok([NODE_A.ip, NODE_B.ip].includes(sent[0].ip));
      return;
    }
    assert.deepEqual([sent[0].ip, sent[0].port], [CLIENT.ip, CLIENT.port], 'answered to the prober');
    if (c.expect === 'ok') {
      assert.equal(first, 'SIP/2.0 200 OK');
      assert.match(sent[0].data.toString('latin1'), /^Allow: INVITE, ACK, BYE, CANCEL, OPTIONS/m);
    } else assert.equal(first, 'SIP/2.0 503 Service Unavailable (no node available)');
  });
}

test('OPTIONS to the balancer while it stops: 503', () => {
  const h = harness();
  h.proxy.setStopping(true);
  const [reply] = h.feed(options(`sip:${LB_IP}:5060`), CLIENT);
  assert.equal(reply.data.toString('latin1').split('\r\n')[0], 'SIP/2.0 503 Service Unavailable (balancer stopping)');
});

test('a stop announced to the sprayer (shutdownAnnounceTime): OPTIONS to the balancer get 503, new calls still go to a node', () => {
  const h = harness();
  h.proxy.announceStop();
  const [reply] = h.feed(options(`sip:${LB_IP}:5060`), CLIENT);
  assert.equal(reply.data.toString('latin1').split('\r\n')[0], 'SIP/2.0 503 Service Unavailable (balancer stopping)');
  const invite = Buffer.from(options(`sip:alice@${LB_IP}:5060`).toString('latin1')
    .replace(/OPTIONS/g, 'INVITE').replace('Call-ID: options-self', 'Call-ID: announced-call'), 'latin1');
  const sent = h.feed(invite, CLIENT);
  const forwarded = sent.find((m) => m.data.toString('latin1').startsWith('INVITE '));
  assert.ok(forwarded !== undefined, `no INVITE forwarded: ${sent.map((m) => m.data.toString('latin1').split('\r\n')[0]).join(', ')}`);
  assert.match(forwarded.data.toString('latin1'), /^INVITE sip:alice@/);
  assert.ok([NODE_A.ip, NODE_B.ip].includes(forwarded.ip), `went to ${forwarded.ip}`);
});
