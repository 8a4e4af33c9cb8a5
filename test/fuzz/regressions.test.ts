// What the fuzzer found, each as the smallest message that showed it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamFramer } from '../../src/sip/framing.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { harness, NODE_A } from '../helpers/proxy.ts';
import type { Inbound } from '../../src/transport/types.ts';

function parsed(data: Buffer, datagram: boolean): SipMessage {
  const m = parseSipMessage(data, datagram);
  if (isParseFailure(m)) assert.fail(`unparseable: ${m.failure}`);
  return m;
}

/** Frames `data` as a stream peer would: exactly one whole message, or the test fails. */
function frameOne(data: Buffer): Buffer {
  const out: Buffer[] = [];
  const f = new StreamFramer(1 << 20, { message(d) { out.push(Buffer.from(d)); }, ping() {}, error(r) { assert.fail(r); } });
  f.push(data);
  assert.equal(out.length, 1, 'one message framed');
  assert.equal(f.pendingBytes, 0, 'nothing left over');
  assert.equal(out[0].length, data.length);
  return out[0];
}

const CLIENT_TCP: Inbound = { transport: 'tcp', side: 'external', ip: '192.0.2.10', port: 40000, connectionId: 7 };
const CLIENT_UDP: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5061, connectionId: 0 };
const NODE_UDP: Inbound = { transport: 'udp', side: 'external', ip: NODE_A.ip, port: 5080, connectionId: 0 };

test('a response relayed from a UDP node to a TCP client gains the Content-Length it lacked', () => {
  const h = harness({ nodes: [{ ...NODE_A, ports: { udp: 5080 } }] });
  const invite = [
    'INVITE sip:service@10.0.0.1 SIP/2.0', 'Via: SIP/2.0/TCP 192.0.2.10:5061;branch=z9hG4bK-cl-1', 'From: <sip:a@example.org>;tag=1',
    'To: <sip:service@example.com>', 'Call-ID: fuzz-cl-1', 'CSeq: 1 INVITE', 'Max-Forwards: 70', 'Content-Length: 0', '', '',
  ].join('\r\n');
  const toNode = h.feed(Buffer.from(invite, 'latin1'), CLIENT_TCP).find((s) => s.ip === NODE_A.ip);
  assert.ok(toNode !== undefined && toNode.transport === 'udp');
  const fwd = parsed(toNode.data, true);
  const vias = fwd.names.flatMap((n, i) => (n === 'via' ? [fwd.head.slice(fwd.lineStarts[i], fwd.lineEnds[i])] : []));
  // A datagram may leave Content-Length out: the body is the rest of it (RFC 3261 §18.3).
  const body = 'v=0\r\ns=-\r\n';
  const ok = ['SIP/2.0 200 OK', ...vias, `From: ${fwd.from}`, `To: ${fwd.to};tag=n`, 'Call-ID: fuzz-cl-1', 'CSeq: 1 INVITE', '', body].join('\r\n');
  const out = h.feed(Buffer.from(ok, 'latin1'), NODE_UDP);
  assert.equal(out.length, 1);
  assert.equal(out[0].transport, 'tcp');
  const m = parsed(frameOne(out[0].data), false);
  assert.equal(m.status, 200);
  assert.equal(m.body.toString('latin1'), body);
});

test('a bare-LF request relayed onto TCP ends its header section with CRLF CRLF', () => {
  const h = harness({ nodes: [{ ...NODE_A, ports: { tcp: 5080 } }] });
  const body = 'v=0\ns=-\n';
  const invite = [
    'INVITE sip:service@10.0.0.1 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bK-lf-1', 'From: <sip:a@example.org>;tag=1',
    'To: <sip:service@example.com>', 'Call-ID: fuzz-lf-1', 'CSeq: 1 INVITE', 'Max-Forwards: 70', `Content-Length: ${body.length}`, '', body,
  ].join('\n');
  const toNode = h.feed(Buffer.from(invite, 'latin1'), CLIENT_UDP).find((s) => s.ip === NODE_A.ip);
  assert.ok(toNode !== undefined);
  assert.equal(toNode.transport, 'tcp');
  const m = parsed(frameOne(toNode.data), false);
  assert.equal(m.error, null);
  assert.equal(m.callId, 'fuzz-lf-1');
  assert.equal(m.body.toString('latin1'), body);
});

test('a Call-ID folded onto blank continuation lines carries no line break', () => {
  const msg = (callId: string) => Buffer.from([
    'OPTIONS sip:a@example.com SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-f', 'From: <sip:b@example.org>;tag=1',
    'To: <sip:a@example.com>', `Call-ID: ${callId}`, 'CSeq: 1 OPTIONS', '', '',
  ].join('\r\n'), 'latin1');
  // The fuzzer's case: the Call-ID line followed by two continuation lines of one space each.
  const blank = parsed(msg('1-4711@192.0.2.10\r\n \r\n '), true);
  assert.equal(blank.error, null);
  assert.equal(blank.callId, '1-4711@192.0.2.10');
  assert.equal(blank.callId, blank.get('call-id'));
  assert.equal(parsed(msg('part1\r\n\tpart2  '), true).callId, 'part1 part2');
});

test('a last header line ended by a bare LF before the blank line is relayed as a readable message', () => {
  const h = harness();
  // The fuzzer's case, cut down: "…Max-Forwards: 70\n\r\n\r\n" over TCP, without Content-Length,
  // so the editor appends one after the head.
  const ack = [
    'ACK sip:service@10.0.0.11:5080 SIP/2.0', 'Via: SIP/2.0/TCP 192.0.2.10:5061;branch=z9hG4bK-lf-2', 'From: <sip:a@example.org>;tag=1',
    'To: <sip:service@example.com>;tag=2', 'Call-ID: fuzz-lf-2', 'CSeq: 1 ACK', 'Max-Forwards: 70',
  ].join('\r\n') + '\n\r\n\r\n';
  const out = h.feed(Buffer.from(ack, 'latin1'), CLIENT_TCP);
  assert.equal(out.length, 1);
  const m = parsed(frameOne(out[0].data), false);
  assert.equal(m.error, null);
  assert.equal(m.get('max-forwards'), '69');
  assert.equal(m.get('content-length'), '0');
});

test('a Via with a long run of blanks inside costs linear time to stamp with received', () => {
  const h = harness();
  // The fuzzer's case: 15 kB of tabs inside the top Via took 58 ms (quadratic: /\s+$/ retried
  // at every blank); 60 kB took about a second. Linear, it is well under a millisecond a kB.
  const invite = [
    'INVITE sip:service@10.0.0.1 SIP/2.0', `Via: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bK-ws${'\t'.repeat(60_000)}x;p`,
    'From: <sip:a@example.org>;tag=1', 'To: <sip:service@example.com>', 'Call-ID: fuzz-ws-1', 'CSeq: 1 INVITE', 'Content-Length: 0', '', '',
  ].join('\r\n');
  const started = performance.now();
  const out = h.feed(Buffer.from(invite, 'latin1'), CLIENT_TCP);
  const ms = performance.now() - started;
  assert.ok(out.some((s) => s.ip === NODE_A.ip || s.ip === '10.0.0.12'), 'forwarded');
  assert.ok(ms < 250, `took ${ms.toFixed(0)} ms`);
});

test('a folded Content-Length frames as the parser reads it', () => {
  const h = harness({ nodes: [{ ...NODE_A, ports: { tcp: 5080 } }] });
  // The fuzzer's case: "L:\r\n \r\n 0" in a datagram, relayed to a TCP node, which the framer
  // then refused ("missing a valid single Content-Length").
  const body = 'hello';
  const msg = [
    'MESSAGE sip:service@10.0.0.1 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bK-fold-1', 'From: <sip:a@example.org>;tag=1',
    'To: <sip:service@example.com>', 'Call-ID: fuzz-fold-1', 'CSeq: 1 MESSAGE', 'L:', ' ', ` ${body.length}`, '', body,
  ].join('\r\n');
  const toNode = h.feed(Buffer.from(msg, 'latin1'), CLIENT_UDP).find((s) => s.ip === NODE_A.ip);
  assert.ok(toNode !== undefined);
  assert.equal(toNode.transport, 'tcp');
  assert.equal(parsed(frameOne(toNode.data), false).body.toString('latin1'), body);
});

test('a Content-Length folded by a bare CR is malformed: 400, never relayed onto a stream where it would not frame', () => {
  const h = harness();
  const invite = [
    'INVITE sip:service@10.0.0.1 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bK-cr-1', 'From: <sip:a@example.org>;tag=1',
    'To: <sip:service@example.com>', 'Call-ID: fuzz-cr-1', 'CSeq: 1 INVITE', 'Max-Forwards: 70', 'Content-Length:\r 0', '', '',
  ].join('\r\n');
  const m = parsed(Buffer.from(invite, 'latin1'), true);
  assert.equal(m.error, 'malformed Content-Length');
  const out = h.feed(Buffer.from(invite, 'latin1'), CLIENT_UDP);
  assert.equal(out.length, 1);
  assert.match(out[0].data.toString('latin1'), /^SIP\/2\.0 400 Bad Request \(malformed Content-Length\)/);
  // Folded by CRLF, as RFC 3261 allows, it still reads 0 and frames.
  const folded = invite.replace('Content-Length:\r 0', 'Content-Length:\r\n 0');
  assert.equal(parsed(Buffer.from(folded, 'latin1'), true).error, null);
  frameOne(Buffer.from(folded, 'latin1'));
});
