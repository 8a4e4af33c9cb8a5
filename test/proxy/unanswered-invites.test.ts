// INVITEs answered with siplb's own 100 Trying and not yet by their node (src/proxy/unanswered-
// invites.ts): kept until the node answers, handed back when it dies, bounded in age and count.
// Through the proxy: a node that goes down with INVITEs it never answered sees them placed on
// another node, as the clients' retransmissions (which the 100 stopped) would have been.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isParseFailure, parseSipMessage } from '../../src/sip/message.ts';
import { TRANSACTION_TIMEOUT_MS } from '../../src/sip/timers.ts';
import { UnansweredInvites } from '../../src/proxy/unanswered-invites.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, LB_IP, NODE_A, NODE_B, type Sent } from '../helpers/proxy.ts';

const UDP: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5062, connectionId: 0 };
const TCP: Inbound = { transport: 'tcp', side: 'external', ip: '192.0.2.10', port: 40100, connectionId: 7 };
const CRLF = '\r\n';

describe('UnansweredInvites', () => {
  const data = Buffer.from('INVITE sip:x SIP/2.0\r\n\r\n');

  // [what happens, entries left for node A after it, for node B]
  const CASES: { name: string; run: (u: UnansweredInvites) => void; a: number; b: number }[] = [
    { name: 'forwarded and not answered: kept', run: (u) => u.forwarded('b1', 'A', data, UDP, 0), a: 1, b: 0 },
    { name: 'answered: gone', run: (u) => { u.forwarded('b1', 'A', data, UDP, 0); u.answered('b1'); }, a: 0, b: 0 },
    { name: 'answer to another branch: kept', run: (u) => { u.forwarded('b1', 'A', data, UDP, 0); u.answered('b2'); }, a: 1, b: 0 },
    { name: 'a retransmission replaces its entry', run: (u) => { u.forwarded('b1', 'A', data, UDP, 0); u.forwarded('b1', 'A', data, UDP, 1); }, a: 1, b: 0 },
    { name: 'placed again on B: moves to B', run: (u) => { u.forwarded('b1', 'A', data, UDP, 0); u.forwarded('b1', 'B', data, UDP, 1); }, a: 0, b: 1 },
    { name: 'per node', run: (u) => { u.forwarded('b1', 'A', data, UDP, 0); u.forwarded('b2', 'B', data, UDP, 0); u.forwarded('b3', 'A', data, UDP, 0); }, a: 2, b: 1 },
    { name: 'older than Timer B: dropped', run: (u) => { u.forwarded('b1', 'A', data, UDP, 0); u.forwarded('b2', 'B', data, UDP, TRANSACTION_TIMEOUT_MS + 1); }, a: 0, b: 1 },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      const u = new UnansweredInvites();
      c.run(u);
      const now = c.name.startsWith('older') ? TRANSACTION_TIMEOUT_MS + 1 : 1;
      assert.equal(u.takeFor('A', now).length, c.a);
      assert.equal(u.takeFor('B', now).length, c.b);
      assert.equal(u.size, 0, 'takeFor removes what it returns');
    });
  }

  test('the count is capped, oldest dropped first', () => {
    const u = new UnansweredInvites(TRANSACTION_TIMEOUT_MS, 3);
    for (let i = 0; i < 5; i++) u.forwarded(`b${i}`, 'A', data, UDP, i);
    assert.equal(u.size, 3);
    assert.deepEqual(u.takeFor('A', 5).map((x) => x.at), [2, 3, 4]);
  });

  test('a message from a stream is copied out of its chunk; a datagram is kept as it is', () => {
    const chunk = Buffer.from('INVITE sip:x SIP/2.0\r\n\r\nOPTIONS sip:y SIP/2.0\r\n\r\n');
    const one = chunk.subarray(0, 24);
    const u = new UnansweredInvites();
    u.forwarded('t', 'A', one, TCP, 0);
    u.forwarded('u', 'A', one, UDP, 0);
    const [tcp, udp] = u.takeFor('A', 0);
    chunk.fill(0x20);
    assert.equal(tcp.data.toString(), 'INVITE sip:x SIP/2.0\r\n\r\n', 'the copy does not share the chunk');
    assert.equal(udp.data, one);
  });
});

function invite(callId: string): Buffer {
  return Buffer.from([
    `INVITE sip:service@${LB_IP}:5060 SIP/2.0`,
    `Via: SIP/2.0/UDP ${UDP.ip}:${UDP.port};branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    `From: <sip:alice@example.org>;tag=f-${callId}`,
    'To: <sip:service@example.com>',
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    'Content-Length: 0',
  ].join(CRLF) + CRLF + CRLF, 'latin1');
}

/** The node's answer to the INVITE it was sent: its Vias, From, To with a tag, Call-ID, CSeq. */
function answer(forwarded: Sent, status: number, reason: string): Buffer {
  const m = parseSipMessage(forwarded.data, true);
  if (isParseFailure(m)) assert.fail(m.failure);
  return Buffer.from([
    `SIP/2.0 ${status} ${reason}`,
    ...m.getAll('via').map((v) => `Via: ${v}`),
    `From: ${m.get('from')}`, `To: ${m.get('to')};tag=t1`, `Call-ID: ${m.get('call-id')}`, `CSeq: ${m.get('cseq')}`,
    'Content-Length: 0',
  ].join(CRLF) + CRLF + CRLF, 'latin1');
}

const FROM_NODE = (ip: string): Inbound => ({ transport: 'udp', side: 'external', ip, port: 5080, connectionId: 0 });

describe('the proxy places again the INVITEs a dead node never answered', () => {
  test('isSendTrying on: unanswered INVITEs go to the survivor once their node is down; answered ones stay', async () => {
    const h = harness();
    const toNode = new Map<string, string>();
    for (let i = 0; i < 12; i++) {
      const sent = h.feed(invite(`call-${i}`), UDP);
      assert.equal(sent[0].data.toString('latin1').split(CRLF)[0], 'SIP/2.0 100 Trying');
      toNode.set(`call-${i}`, `${sent[1].ip}:${sent[1].port}`);
    }
    const onA = [...toNode].filter(([, n]) => n === NODE_A.id).map(([c]) => c);
    assert.ok(onA.length >= 2, 'the algorithm put at least two calls on A');
    // A answers its first call (a 180), then dies with the others unanswered.
    const firstOnA = onA[0];
    const forwardedFirst = h.sent.find((s) => s.ip === NODE_A.ip && s.data.includes(`Call-ID: ${firstOnA}`));
    assert.ok(forwardedFirst !== undefined);
    h.feed(answer(forwardedFirst, 180, 'Ringing'), FROM_NODE(NODE_A.ip));
    h.setCluster([NODE_A, NODE_B], { [NODE_A.id]: 'down' });
    const before = h.sent.length;
    assert.equal(h.proxy.replaceUnansweredInvites(NODE_A.id), onA.length - 1);
    await nextTurn();
    const again = h.sent.slice(before).filter((s) => s.data.toString('latin1').startsWith('INVITE '));
    assert.equal(again.length, onA.length - 1);
    for (const s of again) assert.equal(`${s.ip}:${s.port}`, NODE_B.id);
    assert.deepEqual(again.map((s) => /Call-ID: (\S+)/.exec(s.data.toString('latin1'))?.[1]).sort(), onA.slice(1).sort());
    assert.equal(h.stats.invitesReplaced, onA.length - 1);
    assert.equal(h.proxy.replaceUnansweredInvites(NODE_A.id), 0, 'handed back once');
  });

  test('isSendTrying off: nothing is kept (the clients retransmit)', () => {
    const h = harness({ config: { isSendTrying: false } });
    for (let i = 0; i < 6; i++) h.feed(invite(`call-${i}`), UDP);
    assert.equal(h.proxy.replaceUnansweredInvites(NODE_A.id), 0);
    assert.equal(h.proxy.replaceUnansweredInvites(NODE_B.id), 0);
  });
});
