// parseSipMessage: valid and invalid messages (tables), the RFC 4475 torture messages, and a
// deterministic mutation fuzz. Behaviour is checked through the public surface only: the
// SipMessage accessors (get/getAll/value/count/cseq/body), the parse outcome (ParseFailure or
// msg.error/errorStatus) and, for the torture messages, what SipProxy does with them.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isParseFailure, parseSipMessage, type ParseFailure, type SipMessage } from '../../src/sip/message.ts';
import { parseVia } from '../../src/sip/via.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { prng } from '../helpers/prng.ts';
import { harness, NODE_A, NODE_B, type Sent } from '../helpers/proxy.ts';
import { elements } from '../helpers/sip.ts';

const CRLF = '\r\n';

/** Header lines + blank line + body, as bytes (latin1: one char = one byte). */
function wire(headers: readonly string[], body = '', eol = CRLF): Buffer {
  return Buffer.from(headers.join(eol) + eol + eol + body, 'latin1');
}

function parsed(data: Buffer, datagram = true): SipMessage {
  const m = parseSipMessage(data, datagram);
  if (isParseFailure(m)) assert.fail(`unexpected ParseFailure: ${m.failure}`);
  return m;
}

function valid(data: Buffer, datagram = true): SipMessage {
  const m = parsed(data, datagram);
  assert.equal(m.error, null, `unexpected error: ${m.error}`);
  return m;
}

/** CSeq number and method as read from the CSeq header value. */
function cseqOf(m: SipMessage): { num: number; method: string } {
  const v = m.get('cseq') ?? '';
  const r = /^(\d+)\s+(\S+)$/.exec(v);
  return r === null ? { num: -1, method: '' } : { num: Number(r[1]), method: r[2] };
}

// A plain INVITE the tables modify.
const BASE: readonly string[] = [
  'INVITE sip:bob@example.com SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@example.com>',
  'From: Alice <sip:alice@example.org>;tag=1928301774',
  'Call-ID: a84b4c76e66710@192.0.2.10',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@192.0.2.10>',
  'Content-Length: 0',
];

interface Variant {
  /** Replacement start line. */
  start?: string;
  /** Header name (as spelled in BASE) -> new value, or null to remove the line. */
  set?: Record<string, string | null>;
  /** Extra header lines, appended. */
  add?: string[];
}

function variant(v: Variant, body = ''): Buffer {
  const lines = [v.start ?? BASE[0]];
  const seen = new Set<string>();
  for (const line of BASE.slice(1)) {
    const name = line.slice(0, line.indexOf(':'));
    if (v.set !== undefined && name in v.set) {
      seen.add(name);
      const value = v.set[name];
      if (value !== null) lines.push(`${name}: ${value}`);
    } else lines.push(line);
  }
  for (const [name, value] of Object.entries(v.set ?? {})) if (!seen.has(name) && value !== null) lines.push(`${name}: ${value}`);
  lines.push(...(v.add ?? []));
  return wire(lines, body);
}

const RESPONSE: readonly string[] = [
  'SIP/2.0 180 Ringing',
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds',
  'To: Bob <sip:bob@example.com>;tag=a6c85cf',
  'From: Alice <sip:alice@example.org>;tag=1928301774',
  'Call-ID: a84b4c76e66710@192.0.2.10',
  'CSeq: 314159 INVITE',
  'Content-Length: 0',
];

// ------------------------------------------------------------------------------------ valid

interface ValidCase {
  name: string;
  data: Buffer;
  datagram?: boolean;
  check(m: SipMessage): void;
}

const VALID: ValidCase[] = [
  {
    name: 'plain INVITE request',
    data: wire(BASE),
    check(m) {
      assert.equal(m.isRequest, true);
      assert.equal(m.method, 'INVITE');
      assert.equal(m.requestUri, 'sip:bob@example.com');
      assert.equal(m.status, 0);
      assert.equal(m.callId, 'a84b4c76e66710@192.0.2.10');
      assert.deepEqual(cseqOf(m), { num: 314159, method: 'INVITE' });
      assert.equal(m.get('max-forwards'), '70');
      assert.equal(m.get('to'), 'Bob <sip:bob@example.com>');
      assert.equal(m.body.length, 0);
    },
  },
  {
    name: 'response with a reason phrase of several words',
    data: wire(RESPONSE),
    check(m) {
      assert.equal(m.isRequest, false);
      assert.equal(m.status, 180);
      assert.equal(m.method, '');
      assert.deepEqual(cseqOf(m), { num: 314159, method: 'INVITE' });
      assert.equal(m.get('to'), 'Bob <sip:bob@example.com>;tag=a6c85cf');
    },
  },
  {
    name: 'response 699 with a multi-word reason',
    data: wire(['SIP/2.0 699 Some Odd Status', ...RESPONSE.slice(1)]),
    check(m) {
      assert.equal(m.status, 699);
    },
  },
  {
    name: 'response 100 with an empty reason phrase',
    data: wire(['SIP/2.0 100 ', ...RESPONSE.slice(1)]),
    check(m) {
      assert.equal(m.status, 100);
    },
  },
  {
    name: 'compact header forms map to the full names',
    data: wire([
      'MESSAGE sip:bob@example.com SIP/2.0',
      'v: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKcompact',
      'i: compact@192.0.2.10',
      'f: <sip:alice@example.org>;tag=1',
      't: <sip:bob@example.com>',
      'm: <sip:alice@192.0.2.10>',
      'c: text/plain',
      'k: timer',
      's: compact subject',
      'CSeq: 1 MESSAGE',
      'l: 5',
    ], 'hello'),
    check(m) {
      assert.equal(m.get('via'), 'SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKcompact');
      assert.equal(m.get('call-id'), 'compact@192.0.2.10');
      assert.equal(m.callId, 'compact@192.0.2.10');
      assert.equal(m.get('from'), '<sip:alice@example.org>;tag=1');
      assert.equal(m.get('to'), '<sip:bob@example.com>');
      assert.equal(m.get('contact'), '<sip:alice@192.0.2.10>');
      assert.equal(m.get('content-type'), 'text/plain');
      assert.equal(m.get('supported'), 'timer');
      assert.equal(m.get('subject'), 'compact subject');
      assert.equal(m.get('content-length'), '5');
      assert.equal(m.body.toString('latin1'), 'hello');
      for (const short of ['v', 'i', 'f', 't', 'm', 'c', 'k', 's', 'l']) assert.equal(m.get(short), undefined, `no header is indexed under "${short}"`);
    },
  },
  {
    name: 'compact forms in upper case',
    data: wire([
      'OPTIONS sip:bob@example.com SIP/2.0',
      'V: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKupper',
      'I: upper@192.0.2.10',
      'F: <sip:alice@example.org>;tag=1',
      'T: <sip:bob@example.com>',
      'CSeq: 1 OPTIONS',
      'L: 0',
    ]),
    check(m) {
      assert.equal(m.count('via'), 1);
      assert.equal(m.callId, 'upper@192.0.2.10');
      assert.equal(m.get('from'), '<sip:alice@example.org>;tag=1');
      assert.equal(m.get('to'), '<sip:bob@example.com>');
      assert.equal(m.get('content-length'), '0');
    },
  },
  {
    name: 'header names are case-insensitive',
    data: wire([
      'INVITE sip:bob@example.com SIP/2.0',
      'VIA: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKcase',
      'mAx-FoRwArDs: 69',
      'TO: <sip:bob@example.com>',
      'from: <sip:alice@example.org>;tag=1',
      'cAlL-iD: case@192.0.2.10',
      'cseq: 7 INVITE',
      'X-Custom-HEADER: custom value',
      'CONTENT-LENGTH: 0',
    ]),
    check(m) {
      assert.equal(m.get('via'), 'SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKcase');
      assert.equal(m.get('max-forwards'), '69');
      assert.equal(m.callId, 'case@192.0.2.10');
      assert.deepEqual(cseqOf(m), { num: 7, method: 'INVITE' });
      assert.equal(m.get('x-custom-header'), 'custom value');
      assert.equal(m.get('content-length'), '0');
    },
  },
  {
    name: 'whitespace between header name and colon, and around the value',
    data: wire([
      'INVITE sip:bob@example.com SIP/2.0',
      'Via  :   SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKws   ',
      'To\t: <sip:bob@example.com>',
      'From:<sip:alice@example.org>;tag=1',
      'Call-ID   : ws@192.0.2.10',
      'CSeq: 1 INVITE',
      'Content-Length   : 0',
    ]),
    check(m) {
      assert.equal(m.get('via'), 'SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKws');
      assert.equal(m.get('to'), '<sip:bob@example.com>');
      assert.equal(m.get('from'), '<sip:alice@example.org>;tag=1');
      assert.equal(m.callId, 'ws@192.0.2.10');
    },
  },
  {
    name: 'folded (continuation) lines are unfolded by value()',
    data: wire([
      'INVITE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKfold',
      'Subject: first part',
      '   second part',
      '\tthird part',
      'To:',
      ' <sip:bob@example.com>',
      'From: <sip:alice@example.org>',
      '  ;tag=1',
      'Call-ID: fold@192.0.2.10',
      'CSeq: 0009',
      '  INVITE',
      'Content-Length: 0',
    ]),
    check(m) {
      assert.equal(m.get('subject'), 'first part second part third part');
      assert.equal(m.get('to'), '<sip:bob@example.com>');
      assert.equal(m.get('from'), '<sip:alice@example.org> ;tag=1');
      assert.deepEqual(cseqOf(m), { num: 9, method: 'INVITE' });
      assert.equal(m.count('subject'), 1);
      assert.equal(m.get('call-id'), 'fold@192.0.2.10');
    },
  },
  {
    name: 'several Via values on one line',
    data: wire([
      'INVITE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKa, SIP/2.0/TCP proxy.example.net:5070;branch=z9hG4bKb ,SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKc',
      ...BASE.slice(2),
    ]),
    check(m) {
      assert.equal(m.count('via'), 1);
      const vias = elements(m, 'via').map((v) => parseVia(v));
      assert.deepEqual(vias.map((v) => v?.host), ['192.0.2.10', 'proxy.example.net', '2001:db8::1']);
      assert.deepEqual(vias.map((v) => v?.branch), ['z9hG4bKa', 'z9hG4bKb', 'z9hG4bKc']);
      assert.deepEqual(vias.map((v) => v?.transport), ['UDP', 'TCP', 'UDP']);
    },
  },
  {
    name: 'Via on several lines keeps their order',
    data: wire([
      'INVITE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1',
      'Max-Forwards: 70',
      'v: SIP/2.0/UDP 192.0.2.11;branch=z9hG4bK2',
      'VIA: SIP/2.0/UDP 192.0.2.12;branch=z9hG4bK3, SIP/2.0/UDP 192.0.2.13;branch=z9hG4bK4',
      ...BASE.slice(3),
    ]),
    check(m) {
      assert.equal(m.count('via'), 3);
      assert.deepEqual(elements(m, 'via').map((v) => parseVia(v)?.host), ['192.0.2.10', '192.0.2.11', '192.0.2.12', '192.0.2.13']);
    },
  },
  {
    name: 'leading CRLFs before the start line are ignored',
    data: Buffer.concat([Buffer.from('\r\n\r\n\r\n', 'latin1'), wire(BASE)]),
    check(m) {
      assert.equal(m.method, 'INVITE');
      assert.equal(m.requestUri, 'sip:bob@example.com');
      assert.equal(m.callId, 'a84b4c76e66710@192.0.2.10');
    },
  },
  {
    name: 'leading bare LFs before the start line are ignored',
    data: Buffer.concat([Buffer.from('\n\n', 'latin1'), wire(BASE)]),
    check(m) {
      assert.equal(m.method, 'INVITE');
    },
  },
  {
    name: 'bare-LF line endings',
    data: wire([...BASE.slice(0, -1), 'Content-Length: 4', 'Subject: folded', ' over LF'], 'ab\nc', '\n'),
    check(m) {
      assert.equal(m.method, 'INVITE');
      assert.equal(m.requestUri, 'sip:bob@example.com');
      assert.equal(m.callId, 'a84b4c76e66710@192.0.2.10');
      assert.equal(m.get('subject'), 'folded over LF');
      assert.deepEqual(cseqOf(m), { num: 314159, method: 'INVITE' });
      assert.equal(m.body.toString('latin1'), 'ab\nc');
      for (const v of m.getAll('via')) assert.ok(!v.includes('\r') && !v.includes('\n'));
    },
  },
  {
    name: 'datagram: body exactly Content-Length',
    data: variant({ set: { 'Content-Length': '11', 'Content-Type': 'text/plain' } }, 'hello world'),
    check(m) {
      assert.equal(m.body.toString('latin1'), 'hello world');
    },
  },
  {
    name: 'datagram: body longer than Content-Length is truncated to it',
    data: variant({ set: { 'Content-Length': '5' } }, 'hello world, and trailing junk'),
    check(m) {
      assert.equal(m.body.toString('latin1'), 'hello');
    },
  },
  {
    name: 'datagram: missing Content-Length means the rest of the datagram',
    data: variant({ set: { 'Content-Length': null, 'Content-Type': 'text/plain' } }, 'the whole rest\r\nof it'),
    check(m) {
      assert.equal(m.body.toString('latin1'), 'the whole rest\r\nof it');
    },
  },
  {
    name: 'datagram: Content-Length 0 with trailing octets has an empty body',
    data: variant({}, 'INVITE sip:x@example.com SIP/2.0\r\n'),
    check(m) {
      assert.equal(m.body.length, 0);
      assert.equal(m.method, 'INVITE');
    },
  },
  {
    name: 'datagram without the blank line after the headers',
    data: Buffer.from(BASE.join(CRLF) + CRLF, 'latin1'),
    check(m) {
      assert.equal(m.method, 'INVITE');
      assert.equal(m.callId, 'a84b4c76e66710@192.0.2.10');
      assert.equal(m.get('content-length'), '0');
      assert.equal(m.body.length, 0);
    },
  },
  {
    name: 'datagram without any line terminator after the last header',
    data: Buffer.from(BASE.join(CRLF), 'latin1'),
    check(m) {
      assert.equal(m.get('content-length'), '0');
      assert.equal(m.body.length, 0);
    },
  },
  {
    name: 'stream: message cut by the framer (head + Content-Length bytes)',
    data: variant({ set: { 'Content-Length': '3' } }, 'abc'),
    datagram: false,
    check(m) {
      assert.equal(m.body.toString('latin1'), 'abc');
    },
  },
  {
    name: 'Max-Forwards with leading zeros (RFC 4475 3.1.1.1)',
    data: variant({ set: { 'Max-Forwards': '0068' } }),
    check(m) {
      assert.equal(Number(m.get('max-forwards')), 68);
    },
  },
  {
    name: 'Max-Forwards 255 and 0 are in range',
    data: variant({ set: { 'Max-Forwards': '255' } }),
    check(m) {
      assert.equal(m.get('max-forwards'), '255');
      valid(variant({ set: { 'Max-Forwards': '0' } }));
    },
  },
  {
    name: 'CSeq 2^31-1 is the largest valid number',
    data: variant({ set: { CSeq: '2147483647 INVITE' } }),
    check(m) {
      assert.deepEqual(cseqOf(m), { num: 2147483647, method: 'INVITE' });
    },
  },
  {
    name: 'escaped quote and comma inside a quoted display name',
    data: variant({ set: { From: '"Al \\"the, ice\\" <x>" <sip:alice@example.org>;tag=1' } }),
    check(m) {
      assert.equal(m.get('from'), '"Al \\"the, ice\\" <x>" <sip:alice@example.org>;tag=1');
    },
  },
  {
    name: 'unknown method and extension headers pass',
    data: wire([
      'NEWMETHOD sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKnew',
      'To: <sip:bob@example.com>',
      'From: <sip:alice@example.org>;tag=1',
      'Call-ID: new@192.0.2.10',
      'CSeq: 1 NEWMETHOD',
      'P-Whatever: ;;,,;;,;',
      'Content-Length: 0',
    ]),
    check(m) {
      assert.equal(m.method, 'NEWMETHOD');
      assert.equal(m.get('p-whatever'), ';;,,;;,;');
    },
  },
];

describe('parseSipMessage: valid messages', () => {
  for (const c of VALID) {
    test(c.name, () => {
      c.check(valid(c.data, c.datagram ?? true));
    });
  }
});

// ---------------------------------------------------------------------------------- invalid

/** failure: ParseFailure; 400/505: a message with error set and that errorStatus; drop: a response that must not be forwarded (failure or error). */
type Outcome = 'failure' | 400 | 505 | 'drop';

interface InvalidCase {
  name: string;
  data: Buffer;
  datagram?: boolean;
  expect: Outcome;
}

function outcomeOf(m: SipMessage | ParseFailure): string {
  return isParseFailure(m) ? `ParseFailure(${m.failure})` : m.error === null ? 'valid' : `error ${m.errorStatus} (${m.error})`;
}

const INVALID: InvalidCase[] = [
  { name: 'empty datagram', data: Buffer.alloc(0), expect: 'failure' },
  { name: 'only CRLFs', data: Buffer.from('\r\n\r\n\r\n', 'latin1'), expect: 'failure' },
  { name: 'no start line (starts with a header)', data: wire(BASE.slice(1)), expect: 'failure' },
  { name: 'garbage bytes', data: Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0xfe, 0x01, 0x0d, 0x0a, 0x0d, 0x0a]), expect: 'failure' },
  { name: 'text garbage', data: Buffer.from('hello there, this is not SIP at all\r\n\r\n', 'latin1'), expect: 'failure' },
  { name: 'bad method token', data: variant({ start: 'INV@ITE sip:bob@example.com SIP/2.0' }), expect: 'failure' },
  { name: 'method with a control character', data: variant({ start: 'INV\x01ITE sip:bob@example.com SIP/2.0' }), expect: 'failure' },
  { name: 'request line without a version', data: variant({ start: 'INVITE sip:bob@example.com' }), expect: 'failure' },
  { name: 'request line with two spaces after the method', data: variant({ start: 'INVITE  sip:bob@example.com SIP/2.0' }), expect: 400 },
  { name: 'request line with two spaces before the version', data: variant({ start: 'INVITE sip:bob@example.com  SIP/2.0' }), expect: 400 },
  { name: 'LWS inside the Request-URI', data: variant({ start: 'INVITE sip:bob@example.com; lr SIP/2.0' }), expect: 400 },
  { name: 'tab inside the Request-URI', data: variant({ start: 'INVITE sip:bob@exam\tple.com SIP/2.0' }), expect: 400 },
  { name: '< > around the Request-URI', data: variant({ start: 'INVITE <sip:bob@example.com> SIP/2.0' }), expect: 400 },
  { name: '> inside the Request-URI', data: variant({ start: 'INVITE sip:bob>@example.com SIP/2.0' }), expect: 400 },
  { name: 'Request-URI without a scheme', data: variant({ start: 'INVITE bob@example.com SIP/2.0' }), expect: 400 },
  { name: 'request with SIP/7.0', data: variant({ start: 'INVITE sip:bob@example.com SIP/7.0' }), expect: 505 },
  { name: 'response with SIP/3.0', data: wire(['SIP/3.0 200 OK', ...RESPONSE.slice(1)]), expect: 'drop' },
  { name: 'status code 99', data: wire(['SIP/2.0 99 Too Low', ...RESPONSE.slice(1)]), expect: 'drop' },
  { name: 'status code 700', data: wire(['SIP/2.0 700 Too High', ...RESPONSE.slice(1)]), expect: 'drop' },
  { name: 'status code 1000', data: wire(['SIP/2.0 1000 Way Too High', ...RESPONSE.slice(1)]), expect: 'drop' },
  { name: 'status line without a code', data: wire(['SIP/2.0 OK', ...RESPONSE.slice(1)]), expect: 'drop' },
  { name: 'header line without a colon', data: variant({ add: ['This line has no colon'] }), expect: 'failure' },
  { name: 'header name with a space', data: variant({ set: { 'Call-ID': null }, add: ['Call ID: x@192.0.2.10'] }), expect: 'failure' },
  { name: 'header name with a non-token character', data: variant({ add: ['X-Fo(o: bar'] }), expect: 'failure' },
  { name: 'continuation line before any header', data: wire([BASE[0], ' folded onto the start line', ...BASE.slice(1)]), expect: 'failure' },
  { name: 'missing Via', data: variant({ set: { Via: null } }), expect: 400 },
  { name: 'missing From', data: variant({ set: { From: null } }), expect: 400 },
  { name: 'missing To', data: variant({ set: { To: null } }), expect: 400 },
  { name: 'missing Call-ID', data: variant({ set: { 'Call-ID': null } }), expect: 400 },
  { name: 'missing CSeq', data: variant({ set: { CSeq: null } }), expect: 400 },
  { name: 'response without Via', data: wire(RESPONSE.filter((l) => !l.startsWith('Via'))), expect: 'drop' },
  { name: 'empty Call-ID', data: variant({ set: { 'Call-ID': '' } }), expect: 400 },
  { name: 'NUL in the Call-ID', data: variant({ set: { 'Call-ID': 'a84b\x00c76@192.0.2.10' } }), expect: 400 },
  { name: 'ESC in the Call-ID', data: variant({ set: { 'Call-ID': 'a84b\x1bc76@192.0.2.10' } }), expect: 400 },
  { name: 'DEL in the Call-ID', data: variant({ set: { 'Call-ID': 'a84b\x7fc76@192.0.2.10' } }), expect: 400 },
  { name: 'tab inside the Call-ID', data: variant({ set: { 'Call-ID': 'a84b\tc76@192.0.2.10' } }), expect: 400 },
  { name: 'duplicate To', data: variant({ add: ['To: Carol <sip:carol@example.com>'] }), expect: 400 },
  { name: 'duplicate From', data: variant({ add: ['From: <sip:mallory@example.org>;tag=2'] }), expect: 400 },
  { name: 'duplicate Call-ID', data: variant({ add: ['Call-ID: other@192.0.2.10'] }), expect: 400 },
  { name: 'duplicate Call-ID in compact form', data: variant({ add: ['i: other@192.0.2.10'] }), expect: 400 },
  { name: 'duplicate CSeq', data: variant({ add: ['CSeq: 314160 INVITE'] }), expect: 400 },
  { name: 'duplicate Max-Forwards', data: variant({ add: ['Max-Forwards: 5'] }), expect: 400 },
  { name: 'CSeq method does not match the request method', data: variant({ set: { CSeq: '314159 BYE' } }), expect: 400 },
  { name: 'CSeq method differs in case (methods are case-sensitive)', data: variant({ set: { CSeq: '314159 invite' } }), expect: 400 },
  { name: 'CSeq number non-numeric', data: variant({ set: { CSeq: 'abc INVITE' } }), expect: 400 },
  { name: 'CSeq without a method', data: variant({ set: { CSeq: '314159' } }), expect: 400 },
  { name: 'CSeq negative', data: variant({ set: { CSeq: '-1 INVITE' } }), expect: 400 },
  { name: 'CSeq 2^31', data: variant({ set: { CSeq: '2147483648 INVITE' } }), expect: 400 },
  { name: 'CSeq far above 2^31', data: variant({ set: { CSeq: '99999999999999 INVITE' } }), expect: 400 },
  { name: 'two Content-Length headers', data: variant({ set: { 'Content-Length': '5' }, add: ['Content-Length: 5'] }, 'hello'), expect: 400 },
  { name: 'Content-Length and l: both present', data: variant({ set: { 'Content-Length': '5' }, add: ['l: 5'] }, 'hello'), expect: 400 },
  { name: 'negative Content-Length', data: variant({ set: { 'Content-Length': '-5' } }, 'hello'), expect: 400 },
  { name: 'non-numeric Content-Length', data: variant({ set: { 'Content-Length': 'five' } }, 'hello'), expect: 400 },
  { name: 'Content-Length larger than the body (datagram)', data: variant({ set: { 'Content-Length': '10' } }, 'abc'), expect: 400 },
  { name: 'Max-Forwards 256', data: variant({ set: { 'Max-Forwards': '256' } }), expect: 400 },
  { name: 'Max-Forwards non-numeric', data: variant({ set: { 'Max-Forwards': 'seventy' } }), expect: 400 },
  { name: 'Max-Forwards negative', data: variant({ set: { 'Max-Forwards': '-1' } }), expect: 400 },
  { name: 'Max-Forwards empty', data: variant({ set: { 'Max-Forwards': '' } }), expect: 400 },
  { name: 'unbalanced quote in From', data: variant({ set: { From: '"Alice <sip:alice@example.org>;tag=1' } }), expect: 400 },
  { name: 'escaped quote leaves the From display name open', data: variant({ set: { From: '"Alice \\" <sip:alice@example.org>;tag=1' } }), expect: 400 },
  { name: 'unclosed < in To', data: variant({ set: { To: 'Bob <sip:bob@example.com' } }), expect: 400 },
  { name: 'stray > in From', data: variant({ set: { From: 'Alice sip:alice@example.org>;tag=1' } }), expect: 400 },
  { name: 'unbalanced quote in To', data: variant({ set: { To: 'Bob" <sip:bob@example.com>' } }), expect: 400 },
];

function assertOutcome(m: SipMessage | ParseFailure, expect: Outcome): void {
  const got = outcomeOf(m);
  if (expect === 'failure') assert.ok(isParseFailure(m), `expected ParseFailure, got ${got}`);
  else if (expect === 'drop') assert.ok(isParseFailure(m) || m.error !== null, `expected a response that is not forwarded, got ${got}`);
  else {
    assert.ok(!isParseFailure(m), `expected error ${expect}, got ${got}`);
    assert.notEqual(m.error, null, `expected error ${expect}, got ${got}`);
    assert.equal(m.errorStatus, expect, `expected error ${expect}, got ${got}`);
  }
}

// Start lines: the canonical spellings take a path without regular expressions, the rest the
// general one; each row is what either must give (status, method, Request-URI, or the outcome).
const START_LINES: { line: string; status?: number; method?: string; uri?: string; expect?: Outcome }[] = [
  { line: 'SIP/2.0 200 OK', status: 200 },
  { line: 'SIP/2.0 200', status: 200 },
  { line: 'SIP/2.0 183 Session Progress', status: 183 },
  { line: 'SIP/2.0 699 ', status: 699 },
  { line: 'SIP/2.0 200 O\rK', expect: 'failure' },
  { line: 'SIP/2.0 200OK', expect: 'failure' },
  { line: 'SIP/2.0 099 Zero', expect: 'failure' },
  { line: 'SIP/2.0 20x OK', expect: 'failure' },
  { line: 'SIP/2.00 200 OK', expect: 'drop' },
  { line: 'INVITE sip:bob@example.com SIP/2.0', method: 'INVITE', uri: 'sip:bob@example.com' },
  { line: 'INVITE sip:bob@example.com sip/2.0', method: 'INVITE', uri: 'sip:bob@example.com' },
  { line: 'INVITE sip:bob@example.com SIP/2.0 ', expect: 400 },
  { line: 'INVITE SIP/2.0', expect: 400 },
  { line: ' SIP/2.0', expect: 'failure' },
  { line: 'INVITE sip:bob@example.com  SIP/2.0', expect: 400 },
  { line: 'INV@ITE sip:bob@example.com SIP/2.0', expect: 'failure' },
];

describe('parseSipMessage: start lines', () => {
  for (const c of START_LINES) {
    test(JSON.stringify(c.line), () => {
      const m = c.status !== undefined
        ? parseSipMessage(wire([c.line, ...RESPONSE.slice(1)]), true)
        : parseSipMessage(variant({ start: c.line }), true);
      if (c.expect !== undefined) return assertOutcome(m, c.expect);
      assert.ok(!isParseFailure(m), outcomeOf(m));
      if (c.status !== undefined) {
        assert.equal(m.isRequest, false);
        assert.equal(m.status, c.status);
      } else {
        assert.equal(m.isRequest, true);
        assert.equal(m.method, c.method);
        assert.equal(m.requestUri, c.uri);
      }
    });
  }
});

describe('parseSipMessage: invalid messages', () => {
  for (const c of INVALID) {
    test(`${c.name} -> ${c.expect === 'failure' ? 'ParseFailure' : c.expect === 'drop' ? 'not forwardable' : `error ${c.expect}`}`, () => {
      assertOutcome(parseSipMessage(c.data, c.datagram ?? true), c.expect);
    });
  }
});

// --------------------------------------------------------------------------------- RFC 4475
//
// Messages transcribed from RFC 4475 (Section 3), CRLF line endings, bodies included so that the
// RFC's Content-Length values are exact. Each case names its section and what the RFC expects.
// Valid messages must parse with error === null; invalid ones are judged by what SipProxy does
// with them (answered locally with the RFC's status, or dropped), since that is how the RFC
// describes a proxy's treatment. Not transcribed: mpart01 (3.1.1.11, binary S/MIME body given as
// hex), invut (3.3.6, binary body) and the IPv6 cases of RFC 5118.

function rfc(headers: readonly string[], body: readonly string[] | null = null, enc: BufferEncoding = 'latin1'): Buffer {
  return Buffer.from(headers.join(CRLF) + CRLF + CRLF + (body === null ? '' : body.map((l) => l + CRLF).join('')), enc);
}

function sdp(ip: string, opts: { cIp?: string; t?: string; noSessionOrTime?: boolean } = {}): string[] {
  const out = ['v=0', `o=mhandley 29739 7272939 IN IP4 ${ip}`];
  if (opts.noSessionOrTime !== true) out.push('s=-');
  out.push(`c=IN IP4 ${opts.cIp ?? ip}`);
  if (opts.noSessionOrTime !== true) out.push(`t=${opts.t ?? '0 0'}`);
  out.push('m=audio 49217 RTP/AVP 0 12', 'm=video 3227 RTP/AVP 31', 'a=rtpmap:31 LPC');
  return out;
}

const rep = (s: string, n: number): string => s.repeat(n);

type ProxyOutcome =
  | { kind: 'forward' }
  | { kind: 'reply'; status: number[] }
  | { kind: 'drop' }
  | { kind: 'reply-or-drop'; status: number[] }
  | { kind: 'forward-or-reply'; status: number[] }
  | { kind: 'check'; fn(sent: Sent[]): void };

interface TortureCase {
  id: string;
  section: string;
  /** valid: parses with error === null. invalid: ParseFailure or error set (responses). any: only must not throw. */
  parse: 'valid' | 'invalid' | 'any';
  proxy: ProxyOutcome | null;
  data: Buffer;
  /** The RFC's Content-Length matches the body it shows (checked, to catch transcription slips). */
  exactLength?: boolean;
}

const TORTURE: TortureCase[] = [
  // 3.1.1.1 A Short Tortuous INVITE (wsinv): line folding, escaped quotes, empty Subject, LWS
  // everywhere, compact and long forms mixed, unknown parameters and headers, leading zeros in
  // Max-Forwards and CSeq. "All elements should treat this as a well-formed request."
  {
    id: 'wsinv', section: '3.1.1.1', parse: 'valid', proxy: { kind: 'forward' }, exactLength: true,
    data: rfc([
      'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
      'TO :',
      ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
      'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
      '  ;',
      '  tag = 98asjd8',
      'MaX-fOrWaRdS: 0068',
      'Call-ID: wsinv.ndaksdj@192.0.2.1',
      'Content-Length   : 150',
      'cseq: 0009',
      '  INVITE',
      'Via  : SIP  /   2.0',
      ' /UDP',
      '    192.0.2.2;branch=390skdjuw',
      's :',
      'NewFangledHeader:   newfangled value',
      ' continued newfangled value',
      'UnknownHeaderWithUnusualValue: ;;,,;;,;',
      'Content-Type: application/sdp',
      'Route:',
      ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
      'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
      '  branch  =   z9hG4bK9ikj8  ,',
      ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
      ' z9hG4bK30239',
      'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
      '      newvalue ;',
      '  secondparam ; q = 0.33',
    ], sdp('192.0.2.3', { cIp: '192.0.2.4' })),
  },
  // 3.1.1.2 Wide Range of Valid Characters (intmeth): unusual token characters in the method,
  // Request-URI, branch, tag and header names; quoted-pairs of BEL, NUL and DEL; UTF-8 values.
  // Well-formed; "a proxy will forward this request normally" when the URI is known (else 404).
  {
    id: 'intmeth', section: '3.1.1.2', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0",
      "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
      'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>',
      "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\";tag=_token~1'+`*%!-.",
      "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
      "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~",
      'Max-Forwards: 255',
      "extensionHeader-!.%*+_`'~:\uFEFF\u5927\u505C\u96FB",
      'Content-Length: 0',
    ], null, 'utf8'),
  },
  // 3.1.1.3 Valid Use of the % Escaping Mechanism (esc01): escapes in Request-URI, To, From and
  // Contact URIs; compact i: and C:; folded Contact. Well-formed.
  {
    id: 'esc01', section: '3.1.1.3', parse: 'valid', proxy: { kind: 'forward' }, exactLength: true,
    data: rfc([
      'INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0',
      'To: sip:%75se%72@example.com',
      'From: <sip:I%20have%20spaces@example.net>;tag=938',
      'Max-Forwards: 87',
      'i: esc01.239409asdfakjkn23onasd0-3234',
      'CSeq: 234234 INVITE',
      'Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw',
      'C: application/sdp',
      'Contact:',
      '  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>',
      'Content-Length: 150',
    ], sdp('192.0.2.1')),
  },
  // 3.1.1.4 Escaped Nulls in URIs (escnull). Well-formed.
  {
    id: 'escnull', section: '3.1.1.4', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'To: sip:null-%00-null@example.com',
      'From: sip:null-%00-null@example.com;tag=839923423',
      'Max-Forwards: 70',
      'Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd',
      'CSeq: 14398234 REGISTER',
      'Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw',
      'Contact: <sip:%00@host5.example.com>',
      'Contact: <sip:%00%00@host5.example.com>',
      'L:0',
    ]),
  },
  // 3.1.1.5 Use of % When It Is Not an Escape (esc02): method RE%47IST%45R is an unknown method
  // (not REGISTER), C%6Fntact an unknown header. Well-formed.
  {
    id: 'esc02', section: '3.1.1.5', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'RE%47IST%45R sip:registrar.example.com SIP/2.0',
      'To: "%Z%45" <sip:resource@example.com>',
      'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23',
      'Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf',
      'Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234',
      'CSeq: 29344 RE%47IST%45R',
      'Max-Forwards: 70',
      'Contact: <sip:alias1@host1.example.com>',
      'C%6Fntact: <sip:alias2@host2.example.com>',
      'Contact: <sip:alias3@host3.example.com>',
      'l: 0',
    ]),
  },
  // 3.1.1.6 Message with No LWS between Display Name and < (lwsdisp). To be accepted.
  {
    id: 'lwsdisp', section: '3.1.1.6', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'To: sip:user@example.com',
      'From: caller<sip:caller@example.com>;tag=323',
      'Max-Forwards: 70',
      'Call-ID: lwsdisp.1234abcd@funky.example.com',
      'CSeq: 60 OPTIONS',
      'Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw',
      'l: 0',
    ]),
  },
  // 3.1.1.7 Long Values in Header Fields (longreq): long display name, parameters, tag, Call-ID,
  // unknown header, branch, and 34 Via values with every case of "Via"/"v". Well-formed.
  {
    id: 'longreq', section: '3.1.1.7', parse: 'valid', proxy: { kind: 'forward' }, exactLength: true,
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      `To: "I have a user name of ${rep('extreme', 10)} proportion"<sip:user@example.com:6000;unknownparam1=very${rep('long', 20)}value;longparam${rep('name', 25)}=shortvalue;very${rep('long', 25)}ParameterNameWithNoValue>`,
      `F: sip:${rep('amazinglylongcallername', 5)}@example.net;tag=12${rep('982', 50)}424;unknownheaderparam${rep('name', 20)}=unknowheaderparam${rep('value', 15)};unknownValueless${rep('paramname', 10)}`,
      `Call-ID: longreq.one${rep('really', 20)}longcallid`,
      'CSeq: 3882340 INVITE',
      `Unknown-${rep('Long', 20)}-Name:unknown-${rep('long', 20)}-value;unknown-${rep('long', 20)}-parameter-name =unknown-${rep('long', 20)}-parameter-value`,
      'Via: SIP/2.0/TCP sip33.example.com',
      'v: SIP/2.0/TCP sip32.example.com',
      'V: SIP/2.0/TCP sip31.example.com',
      'Via: SIP/2.0/TCP sip30.example.com',
      'ViA: SIP/2.0/TCP sip29.example.com',
      'VIa: SIP/2.0/TCP sip28.example.com',
      'VIA: SIP/2.0/TCP sip27.example.com',
      'via: SIP/2.0/TCP sip26.example.com',
      'viA: SIP/2.0/TCP sip25.example.com',
      'vIa: SIP/2.0/TCP sip24.example.com',
      'vIA: SIP/2.0/TCP sip23.example.com',
      'V :  SIP/2.0/TCP sip22.example.com',
      'v :  SIP/2.0/TCP sip21.example.com',
      'V  : SIP/2.0/TCP sip20.example.com',
      'v  : SIP/2.0/TCP sip19.example.com',
      'Via : SIP/2.0/TCP sip18.example.com',
      'Via  : SIP/2.0/TCP sip17.example.com',
      ...Array.from({ length: 16 }, (_, k) => `Via: SIP/2.0/TCP sip${16 - k}.example.com`),
      `Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very${rep('long', 50)}branchvalue`,
      'Max-Forwards: 70',
      `Contact: <sip:${rep('amazinglylongcallername', 5)}@host5.example.net>`,
      'Content-Type: application/sdp',
      'l: 150',
    ], sdp('192.0.2.1')),
  },
  // 3.1.1.8 Extra Trailing Octets in a UDP Datagram (dblreq): a REGISTER with Content-Length 0
  // followed by an INVITE in the same datagram. The REGISTER is processed; the trailing octets
  // (the INVITE) are discarded.
  {
    id: 'dblreq', section: '3.1.1.8', parse: 'valid',
    proxy: {
      kind: 'check',
      fn(sent) {
        assert.equal(sent.length, 1, 'exactly one message forwarded');
        assert.ok(NODE_IPS.has(sent[0].ip));
        const text = sent[0].data.toString('latin1');
        assert.ok(text.startsWith('REGISTER sip:example.com SIP/2.0\r\n'));
        assert.ok(!text.includes('INVITE'), 'the trailing INVITE is not forwarded');
      },
    },
    data: Buffer.concat([
      rfc([
        'REGISTER sip:example.com SIP/2.0',
        'To: sip:j.user@example.com',
        'From: sip:j.user@example.com;tag=43251j3j324',
        'Max-Forwards: 8',
        'I: dblreq.0ha0isndaksdj99sdfafnl3lk233412',
        'Contact: sip:j.user@host.example.com',
        'CSeq: 8 REGISTER',
        'Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492',
        'Content-Length: 0',
      ]),
      rfc([
        'INVITE sip:joe@example.com SIP/2.0',
        't: sip:joe@example.com',
        'From: sip:caller@example.net;tag=141334',
        'Max-Forwards: 8',
        'Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15',
        'CSeq: 8 INVITE',
        'Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234',
        'Content-Type: application/sdp',
        'Content-Length: 150',
      ], ['v=0', 'o=mhandley 29739 7272939 IN IP4 192.0.2.15', 's=-', 'c=IN IP4 192.0.2.15', 't=0 0', 'm=audio 49217 RTP/AVP 0 12', 'm =video 3227 RTP/AVP 31', 'a=rtpmap:31 LPC']),
    ]),
  },
  // 3.1.1.9 Semicolon-Separated Parameters in URI User Part (semiuri). Well-formed.
  {
    id: 'semiuri', section: '3.1.1.9', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0',
      'To: sip:j_user@example.com',
      'From: sip:caller@example.org;tag=33242',
      'Max-Forwards: 3',
      'Call-ID: semiuri.0ha0isndaksdj',
      'CSeq: 8 OPTIONS',
      'Accept: application/sdp, application/pkcs7-mime,',
      '        multipart/mixed, multipart/signed,',
      '        message/sip, message/sipfrag',
      'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw',
      'l: 0',
    ]),
  },
  // 3.1.1.10 Varied and Unknown Transport Types (transports). Well-formed.
  {
    id: 'transports', section: '3.1.1.10', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'To: sip:user@example.com',
      'From: <sip:caller@example.com>;tag=323',
      'Max-Forwards: 70',
      'Call-ID:  transports.kijh4akdnaqjkwendsasfdj',
      'Accept: application/sdp',
      'CSeq: 60 OPTIONS',
      'Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw',
      'Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf',
      'Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj',
      'Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en',
      'Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee',
      'l: 0',
    ]),
  },
  // 3.1.1.12 Unusual Reason Phrase (unreason): UTF-8 reason phrase. Well-formed response.
  {
    id: 'unreason', section: '3.1.1.12', parse: 'valid', proxy: null, exactLength: true,
    data: rfc([
      'SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435',
      'Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923',
      'Call-ID: unreason.1234ksdfak3j2erwedfsASdf',
      'CSeq: 35 INVITE',
      'From: sip:user@example.com;tag=11141343',
      'To: sip:user@example.edu;tag=2229',
      'Content-Length: 154',
      'Content-Type: application/sdp',
      'Contact: <sip:user@host198.example.com>',
    ], sdp('192.0.2.198'), 'utf8'),
  },
  // 3.1.1.13 Empty Reason Phrase (noreason): "SIP/2.0 100 " then CRLF. Well-formed.
  {
    id: 'noreason', section: '3.1.1.13', parse: 'valid', proxy: null,
    data: rfc([
      'SIP/2.0 100 ',
      'Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe',
      'Call-ID: noreason.asndj203insdf99223ndf',
      'CSeq: 35 INVITE',
      'From: <sip:user@example.com>;tag=39ansfi3',
      'To: <sip:user@example.edu>;tag=902jndnke3',
      'Content-Length: 0',
      'Contact: <sip:user@host105.example.com>',
    ]),
  },
  // 3.1.2.1 Extraneous Header Field Separators (badinv01): "Via: ...;;,;,," and "Contact: ...;;;;".
  // Syntactically invalid; "should respond with a 400 Bad Request".
  {
    id: 'badinv01', section: '3.1.2.1', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      'To: sip:j.user@example.com',
      'From: sip:caller@example.net;tag=134161461246',
      'Max-Forwards: 7',
      'Call-ID: badinv01.0ha0isndaksdjasdf3234nas',
      'CSeq: 8 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.15;;,;,,',
      'Contact: "Joe" <sip:joe@example.org>;;;;',
      'Content-Length: 152',
      'Content-Type: application/sdp',
    ], sdp('192.0.2.15')),
  },
  // 3.1.2.2 Content Length Larger Than Message (clerr): over UDP "the receiving element should
  // respond with a 400 Bad Request error".
  {
    id: 'clerr', section: '3.1.2.2', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      'Max-Forwards: 80',
      'To: sip:j.user@example.com',
      'From: sip:caller@example.net;tag=93942939o2',
      'Contact: <sip:caller@hungry.example.net>',
      'Call-ID: clerr.0ha0isndaksdjweiafasdk3',
      'CSeq: 8 INVITE',
      'Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523',
      'Content-Type: application/sdp',
      'Content-Length: 9999',
    ], sdp('192.0.2.155')),
  },
  // 3.1.2.3 Negative Content-Length (ncl): "should respond with an error"; over UDP the rest of
  // the datagram is discarded (over TCP the connection is closed: see framing.test.ts).
  {
    id: 'ncl', section: '3.1.2.3', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      'Max-Forwards: 254',
      'To: sip:j.user@example.com',
      'From: sip:caller@example.net;tag=32394234',
      'Call-ID: ncl.0ha0isndaksdj2193423r542w35',
      'CSeq: 0 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw',
      'Contact: <sip:caller@example53.example.net>',
      'Content-Type: application/sdp',
      'Content-Length: -999',
    ], sdp('192.0.2.53')),
  },
  // 3.1.2.4 Request Scalar Fields with Overlarge Values (scalar02): CSeq 2^65, Max-Forwards 300,
  // huge Expires. "should respond with a 400 Bad Request due to the CSeq error".
  {
    id: 'scalar02', section: '3.1.2.4', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3',
      'To: <sip:user@example.com>',
      'From: <sip:user@example.com>;tag=239232jh3',
      'CSeq: 36893488147419103232 REGISTER',
      'Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32',
      'Max-Forwards: 300',
      `Expires: 1${'0'.repeat(100)}`,
      'Contact: <sip:user@host129.example.com>',
      '  ;expires=280297596632815',
      'Content-Length: 0',
    ]),
  },
  // 3.1.2.5 Response Scalar Fields with Overlarge Values (scalarlg): CSeq > 2^32-1 and more.
  // "An element receiving this response will simply discard it."
  {
    id: 'scalarlg', section: '3.1.2.5', parse: 'invalid', proxy: { kind: 'drop' },
    data: rfc([
      'SIP/2.0 503 Service Unavailable',
      'Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129',
      'To: <sip:user@example.com>',
      'From: <sip:other@example.net>;tag=2easdjfejw',
      'CSeq: 9292394834772304023312 OPTIONS',
      'Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r',
      'Retry-After: 949302838503028349304023988',
      'Warning: 1812 overture "In Progress"',
      'Content-Length: 0',
    ]),
  },
  // 3.1.2.6 Unterminated Quoted String in Display Name (quotbal): "should return a 400".
  {
    id: 'quotbal', section: '3.1.2.6', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      'To: "Mr. J. User <sip:j.user@example.com>',
      'From: sip:caller@example.net;tag=93334',
      'Max-Forwards: 10',
      'Call-ID: quotbal.aksdj',
      'Contact: <sip:caller@host59.example.net>',
      'CSeq: 8 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234',
      'Content-Type: application/sdp',
      'Content-Length: 152',
    ], sdp('192.0.2.15')),
  },
  // 3.1.2.7 <> Enclosing Request-URI (ltgtruri): "should respond with a 400 Bad Request".
  {
    id: 'ltgtruri', section: '3.1.2.7', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE <sip:user@example.com> SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:caller@example.net;tag=39291',
      'Max-Forwards: 23',
      'Call-ID: ltgtruri.1@192.0.2.5',
      'CSeq: 1 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.5',
      'Contact: <sip:caller@host5.example.net>',
      'Content-Type: application/sdp',
      'Content-Length: 159',
    ], sdp('192.0.2.5', { t: '3149328700 0' })),
  },
  // 3.1.2.8 Malformed SIP Request-URI (embedded LWS) (lwsruri): "should respond with a 400".
  {
    id: 'lwsruri', section: '3.1.2.8', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE sip:user@example.com; lr SIP/2.0',
      'To: sip:user@example.com;tag=3xfe-9921883-z9f',
      'From: sip:caller@example.net;tag=231413434',
      'Max-Forwards: 5',
      'Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423',
      'CSeq: 2130706432 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395',
      'Contact: <sip:caller@host1.example.net>',
      'Content-Type: application/sdp',
      'Content-Length: 159',
    ], sdp('192.0.2.1', { t: '3149328700 0' })),
  },
  // 3.1.2.9 Multiple SP Separating Request-Line Elements (lwsstart): "should respond with a 400".
  {
    id: 'lwsstart', section: '3.1.2.9', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE  sip:user@example.com  SIP/2.0',
      'Max-Forwards: 8',
      'To: sip:user@example.com',
      'From: sip:caller@example.net;tag=8814',
      'Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com',
      'CSeq: 1893884 INVITE',
      'Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923',
      'Contact: <sip:caller@host1.example.net>',
      'Content-Type: application/sdp',
      'Content-Length: 150',
    ], sdp('192.0.2.1')),
  },
  // 3.1.2.10 SP Characters at End of Request-Line (trws): two SP after SIP/2.0. "It is
  // acceptable to reject this request as malformed. An element that is liberal in what it
  // accepts may ignore these extra SP characters ... If the element forwards the request, it
  // must not include these extra SP characters in the messages it sends." Rejecting means a 400
  // (RFC 3261 16.3: a request failing validation is answered with an error); silence is neither.
  {
    id: 'trws', section: '3.1.2.10', parse: 'any',
    proxy: {
      kind: 'check',
      fn(sent) {
        assert.equal(sent.length, 1, `expected a 400 or the request forwarded, sent ${describeSent(sent)}`);
        const m = parsed(sent[0].data);
        if (m.isRequest) {
          assert.ok(NODE_IPS.has(sent[0].ip));
          assert.ok(sent[0].data.toString('latin1').startsWith('OPTIONS sip:remote-target@example.com SIP/2.0\r\n'), 'forwarded without the trailing SP');
        } else {
          assert.equal(m.status, 400);
          assert.equal(sent[0].ip, CLIENT.ip);
        }
      },
    },
    data: rfc([
      'OPTIONS sip:remote-target@example.com SIP/2.0  ',
      'Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093',
      'To: <sip:remote-target@example.com>',
      'From: <sip:local-resource@example.com>;tag=329429089',
      'Call-ID: trws.oicu34958239neffasdhr2345r',
      'Accept: application/sdp',
      'CSeq: 238923 OPTIONS',
      'Max-Forwards: 70',
      'Content-Length: 0',
    ]),
  },
  // 3.1.2.11 Escaped Headers in SIP Request-URI (escruri): "It is acceptable for an element to
  // reject this request with a 400 Bad Request. ... If the element is a proxy, the escaped
  // headers MUST NOT appear in the Request-URI of the forwarded request (and most certainly must
  // not be translated into the actual header of the forwarded request)."
  {
    id: 'escruri', section: '3.1.2.11', parse: 'any',
    proxy: {
      kind: 'check',
      fn(sent) {
        assert.equal(sent.length, 1, 'one message sent');
        const m = parsed(sent[0].data);
        if (m.isRequest) {
          assert.ok(NODE_IPS.has(sent[0].ip));
          assert.ok(!m.requestUri.includes('?'), `escaped headers kept in the forwarded Request-URI: ${m.requestUri}`);
          assert.equal(m.count('route'), 0, 'escaped Route must not become a Route header');
        } else {
          assert.equal(m.status, 400);
          assert.equal(sent[0].ip, CLIENT.ip);
        }
      },
    },
    data: rfc([
      'INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:caller@example.net;tag=341518',
      'Max-Forwards: 7',
      'Contact: <sip:caller@host39923.example.net>',
      'Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5',
      'CSeq: 149209342 INVITE',
      'Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw',
      'Content-Type: application/sdp',
      'Content-Length: 150',
    ], sdp('192.0.2.1')),
  },
  // 3.1.2.16 Unknown Protocol Version (badvers): "should respond with a 505 Version Not
  // Supported error".
  {
    id: 'badvers', section: '3.1.2.16', parse: 'any', proxy: { kind: 'reply', status: [505] },
    data: rfc([
      'OPTIONS sip:t.watson@example.org SIP/7.0',
      'Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw',
      'Max-Forwards:     70',
      'From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe',
      'To:      T. Watson <sip:t.watson@example.org>',
      'Call-ID: badvers.31417@c.example.com',
      'CSeq:    1 OPTIONS',
      'l: 0',
    ]),
  },
  // 3.1.2.17 Start Line and CSeq Method Mismatch (mismatch01): "Any element receiving this
  // request will respond with a 400 Bad Request."
  {
    id: 'mismatch01', section: '3.1.2.17', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'To: sip:j.user@example.com',
      'From: sip:caller@example.net;tag=34525',
      'Max-Forwards: 6',
      'Call-ID: mismatch01.dj0234sxdfl3',
      'CSeq: 8 INVITE',
      'Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw',
      'l: 0',
    ]),
  },
  // 3.1.2.18 Unknown Method with CSeq Method Mismatch (mismatch02): "should respond with a 501
  // Not Implemented. A 400 Bad Request is also acceptable".
  {
    id: 'mismatch02', section: '3.1.2.18', parse: 'any', proxy: { kind: 'reply', status: [400, 501] }, exactLength: true,
    data: rfc([
      'NEWMETHOD sip:user@example.com SIP/2.0',
      'To: sip:j.user@example.com',
      'From: sip:caller@example.net;tag=34525',
      'Max-Forwards: 6',
      'Call-ID: mismatch02.dj0234sxdfl3',
      'CSeq: 8 INVITE',
      'Contact: <sip:caller@host.example.net>',
      'Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw',
      'Content-Type: application/sdp',
      'l: 138',
    ], sdp('192.0.2.1', { noSessionOrTime: true })),
  },
  // 3.1.2.19 Overlarge Response Code (bigcode): "An element receiving this response should
  // simply drop it."
  {
    id: 'bigcode', section: '3.1.2.19', parse: 'invalid', proxy: { kind: 'drop' },
    data: rfc([
      'SIP/2.0 4294967301 better not break the receiver',
      'Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe',
      'Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i',
      'CSeq: 353494 INVITE',
      'From: <sip:user@example.com>;tag=39ansfi3',
      'To: <sip:user@example.edu>;tag=902jndnke3',
      'Content-Length: 0',
      'Contact: <sip:user@host105.example.com>',
    ]),
  },
  // 3.2.1 Missing Transaction Identifier (badbranch): branch=z9hG4bK with nothing after it. "A
  // parser must not break"; the element may reject with 400 or fall back to RFC 2543 matching.
  {
    id: 'badbranch', section: '3.2.1', parse: 'any', proxy: { kind: 'forward-or-reply', status: [400] },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:caller@example.org;tag=33242',
      'Max-Forwards: 3',
      'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK',
      'Accept: application/sdp',
      'Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n',
      'CSeq: 8 OPTIONS',
      'l: 0',
    ]),
  },
  // 3.3.1 Missing Required Header Fields (insuf): no Call-ID, From or To. "must not break ...
  // Ideally, it will respond with a 400 Bad Request error." (A response needs From/To/Call-ID,
  // so dropping is the other acceptable outcome; forwarding is not.)
  {
    id: 'insuf', section: '3.3.1', parse: 'any', proxy: { kind: 'reply-or-drop', status: [400] },
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      'CSeq: 193942 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf',
      'Content-Type: application/sdp',
      'l: 152',
    ], sdp('192.0.2.95')),
  },
  // 3.3.2 Request-URI with Unknown Scheme (unkscm): "A parser must accept this as a well-formed
  // SIP request." (The element that serves the URI answers 416; a balancer may hand it to one.)
  {
    id: 'unkscm', section: '3.3.2', parse: 'valid', proxy: { kind: 'forward-or-reply', status: [416] },
    data: rfc([
      'OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:caller@example.net;tag=384',
      'Max-Forwards: 3',
      'Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34',
      'CSeq: 3923423 OPTIONS',
      'Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234',
      'Content-Length: 0',
    ]),
  },
  // 3.3.3 Request-URI with Known but Atypical Scheme (novelsc): well-formed, as unkscm.
  {
    id: 'novelsc', section: '3.3.3', parse: 'valid', proxy: { kind: 'forward-or-reply', status: [416] },
    data: rfc([
      'OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:caller@example.net;tag=384',
      'Max-Forwards: 3',
      'Call-ID: novelsc.asdfasser0q239nwsdfasdkl34',
      'CSeq: 3923423 OPTIONS',
      'Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234',
      'Content-Length: 0',
    ]),
  },
  // 3.3.4 Unknown URI Schemes in Header Fields (unksm2): syntactically valid; "Proxies should
  // treat this message as they would any other request for this URI."
  {
    id: 'unksm2', section: '3.3.4', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'To: isbn:2983792873',
      'From: <http://www.example.com>;tag=3234233',
      'Call-ID: unksm2.daksdj@hyphenated-host.example.com',
      'CSeq: 234902 REGISTER',
      'Max-Forwards: 70',
      'Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw',
      'Contact: <name:John_Smith>',
      'l: 0',
    ]),
  },
  // 3.3.5 Proxy-Require and Require (bext01): "A proxy receiving this request would respond with
  // a 420 Bad Extension response" listing the Proxy-Require option tags in Unsupported.
  {
    id: 'bext01', section: '3.3.5', parse: 'valid',
    proxy: {
      kind: 'check',
      fn(sent) {
        assert.equal(sent.length, 1);
        assert.equal(sent[0].ip, CLIENT.ip);
        const m = parsed(sent[0].data);
        assert.equal(m.status, 420);
        const unsupported = elements(m, 'unsupported');
        assert.deepEqual(unsupported.sort(), ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
      },
    },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'To: sip:j_user@example.com',
      'From: sip:caller@example.net;tag=242etr',
      'Max-Forwards: 6',
      'Call-ID: bext01.0ha0isndaksdj',
      'Require: nothingSupportsThis, nothingSupportsThisEither',
      'Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis',
      'CSeq: 8 OPTIONS',
      'Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw',
      'Content-Length: 0',
    ]),
  },
  // 3.3.7 Unknown Authorization Scheme (regaut01): well-formed; a proxy forwards it.
  {
    id: 'regaut01', section: '3.3.7', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'To: sip:j.user@example.com',
      'From: sip:j.user@example.com;tag=87321hj23128',
      'Max-Forwards: 8',
      'Call-ID: regaut01.0ha0isndaksdj',
      'CSeq: 9338 REGISTER',
      'Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw',
      'Authorization: NoOneKnowsThisScheme opaque-data=here',
      'Content-Length:0',
    ]),
  },
  // 3.3.8 Multiple Values in Single Value Required Fields (multi01): several Call-ID, To, From,
  // Max-Forwards and CSeq. "would respond with a 400 Bad Request error".
  {
    id: 'multi01', section: '3.3.8', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'INVITE sip:user@company.com SIP/2.0',
      'Contact: <sip:caller@host25.example.net>',
      'Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw',
      'Max-Forwards: 70',
      'CSeq: 5 INVITE',
      'Call-ID: multi01.98asdh@192.0.2.1',
      'CSeq: 59 INVITE',
      'Call-ID: multi01.98asdh@192.0.2.2',
      'From: sip:caller@example.com;tag=3413415',
      'To: sip:user@example.com',
      'To: sip:other@example.net',
      'From: sip:caller@example.net;tag=2923420123',
      'Content-Type: application/sdp',
      'l: 154',
      'Contact: <sip:caller@host36.example.net>',
      'Max-Forwards: 5',
    ], sdp('192.0.2.25')),
  },
  // 3.3.9 Multiple Content-Length Values (mcl01): "should respond with an error"; over UDP the
  // rest of the datagram is discarded (over TCP: connection closed, see framing.test.ts).
  {
    id: 'mcl01', section: '3.3.9', parse: 'any', proxy: { kind: 'reply', status: [400] },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423',
      'To: sip:user@example.com',
      'From: sip:other@example.net;tag=3923942',
      'Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf',
      'CSeq: 15932 OPTIONS',
      'Content-Length: 13',
      'Max-Forwards: 60',
      'Content-Length: 5',
      'Content-Type: text/plain',
    ], ["There's no way to know how many octets are supposed to be here."]),
  },
  // 3.3.10 200 OK Response with Broadcast Via Header Field Value (bcast): well formed; proxies
  // should drop it rather than send it to 255.255.255.255.
  {
    id: 'bcast', section: '3.3.10', parse: 'valid', proxy: { kind: 'drop' }, exactLength: true,
    data: rfc([
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923',
      'Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23',
      'Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf',
      'CSeq: 35 INVITE',
      'From: sip:user@example.com;tag=11141343',
      'To: sip:user@example.edu;tag=2229',
      'Content-Length: 154',
      'Content-Type: application/sdp',
      'Contact: <sip:user@host28.example.com>',
    ], sdp('192.0.2.198')),
  },
  // 3.3.11 Max-Forwards of Zero (zeromf): legal; "A proxy should not forward the request and
  // should respond 483 (Too Many Hops)".
  {
    id: 'zeromf', section: '3.3.11', parse: 'valid', proxy: { kind: 'reply', status: [483] },
    data: rfc([
      'OPTIONS sip:user@example.com SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:caller@example.net;tag=3ghsd41',
      'Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas',
      'CSeq: 39234321 OPTIONS',
      'Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i',
      'Max-Forwards: 0',
      'Content-Length: 0',
    ]),
  },
  // 3.3.12 REGISTER with a Contact Header Parameter (cparam01) and a URI parameter (cparam02):
  // well-formed; registrar semantics only.
  {
    id: 'cparam01', section: '3.3.12', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw',
      'Max-Forwards: 70',
      'From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe',
      'To: sip:watson@example.com',
      'Call-ID: cparam01.70710@saturn.example.com',
      'CSeq: 2 REGISTER',
      'Contact: sip:+19725552222@gw1.example.net;unknownparam',
      'l: 0',
    ]),
  },
  {
    id: 'cparam02', section: '3.3.13', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw',
      'Max-Forwards: 70',
      'From: sip:watson@example.com;tag=838293',
      'To: sip:watson@example.com',
      'Call-ID: cparam02.70710@saturn.example.com',
      'CSeq: 3 REGISTER',
      'Contact: <sip:+19725552222@gw1.example.net;unknownparam>',
      'l: 0',
    ]),
  },
  // 3.3.14 REGISTER with a URL Escaped Header (regescrt): well-formed.
  {
    id: 'regescrt', section: '3.3.14', parse: 'valid', proxy: { kind: 'forward' },
    data: rfc([
      'REGISTER sip:example.com SIP/2.0',
      'To: sip:user@example.com',
      'From: sip:user@example.com;tag=8',
      'Max-Forwards: 70',
      'Call-ID: regescrt.k345asrl3fdbv@192.0.2.1',
      'CSeq: 14398234 REGISTER',
      'Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw',
      'M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>',
      'L:0',
    ]),
  },
  // 3.3.15 Unacceptable Accept Offering (sdp01): well-formed; only the UAS rejects it (406).
  {
    id: 'sdp01', section: '3.3.15', parse: 'valid', proxy: { kind: 'forward' }, exactLength: true,
    data: rfc([
      'INVITE sip:user@example.com SIP/2.0',
      'To: sip:j_user@example.com',
      'Contact: <sip:caller@host15.example.net>',
      'From: sip:caller@example.net;tag=234',
      'Max-Forwards: 5',
      'Call-ID: sdp01.ndaksdj9342dasdd',
      'Accept: text/nobodyKnowsThis',
      'CSeq: 8 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw',
      'Content-Length: 150',
      'Content-Type: application/sdp',
    ], sdp('192.0.2.5')),
  },
  // 3.4.1 INVITE with RFC 2543 Syntax (inv2543): no branch, no From tag, no Content-Length (the
  // body is the rest of the datagram), no Max-Forwards. "should be accepted by RFC 3261 elements
  // that want to maintain backwards compatibility".
  {
    id: 'inv2543', section: '3.4.1', parse: 'valid',
    proxy: {
      kind: 'check',
      fn(sent) {
        assert.equal(sent.length, 1);
        assert.ok(NODE_IPS.has(sent[0].ip));
        const m = parsed(sent[0].data);
        assert.equal(m.get('max-forwards'), '70', 'Max-Forwards added');
        assert.ok(m.body.toString('latin1').endsWith('m=audio 49217 RTP/AVP 0\r\n'), 'body forwarded whole');
      },
    },
    data: rfc([
      'INVITE sip:UserB@example.com SIP/2.0',
      'Via: SIP/2.0/UDP iftgw.example.com',
      'From: <sip:+13035551111@ift.client.example.net;user=phone>',
      'Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>',
      'To: sip:+16505552222@ss1.example.net;user=phone',
      'Call-ID: inv2543.1717@ift.client.example.com',
      'CSeq: 56 INVITE',
      'Content-Type: application/sdp',
    ], ['v=0', 'o=mhandley 29739 7272939 IN IP4 192.0.2.5', 's=-', 'c=IN IP4 192.0.2.5', 't=0 0', 'm=audio 49217 RTP/AVP 0']),
  },
];

// The proxy fixture of test/helpers/proxy.ts: two nodes, a client, a capturing Outbound, no DNS.

const NODE_IPS = new Set([NODE_A.ip, NODE_B.ip]);
const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.99', port: 5060, connectionId: 0 };

function throughProxy(data: Buffer, src: Inbound = CLIENT): Sent[] {
  return harness().feed(data, src);
}

function describeSent(sent: Sent[]): string {
  return JSON.stringify(sent.map((s) => `${s.ip}:${s.port} ${s.data.toString('latin1').split('\r\n')[0]}`));
}

/**
 * The 100 Trying a forwarded INVITE is answered with first (isSendTrying, on by default): 0 or 1.
 * Built from the request's header lines as they came, so the torture spellings (folding, compact
 * names, odd whitespace) must come out in it as a well-formed response to that request.
 */
function checkTrying(sent: Sent[], toNodes: Sent[]): number {
  const forwarded = toNodes.length === 1 ? parsed(toNodes[0].data) : null;
  if (forwarded === null || forwarded.method !== 'INVITE') return 0;
  const seen = describeSent(sent);
  assert.ok(sent.length === 2 && sent[0].ip === CLIENT.ip && sent[0].port === CLIENT.port, `expected a 100 Trying back to the source first, sent ${seen}`);
  const trying = parseSipMessage(sent[0].data, true);
  assert.ok(!isParseFailure(trying) && trying.error === null && trying.status === 100, `expected a well-formed 100 Trying, sent ${seen}`);
  assert.deepEqual([trying.callId, trying.cseqNum, trying.cseqMethod], [forwarded.callId, forwarded.cseqNum, 'INVITE']);
  return 1;
}

function assertProxyOutcome(expect: ProxyOutcome, sent: Sent[]): void {
  const toNodes = sent.filter((s) => NODE_IPS.has(s.ip));
  const trying = checkTrying(sent, toNodes);
  const replies = sent.slice(trying).filter((s) => s.ip === CLIENT.ip && s.port === CLIENT.port);
  const statuses = replies.map((s) => {
    const m = parseSipMessage(s.data, true);
    return isParseFailure(m) || m.isRequest ? -1 : m.status;
  });
  const seen = describeSent(sent);
  switch (expect.kind) {
    case 'forward':
      assert.equal(sent.length - trying, 1, `expected one forwarded request, sent ${seen}`);
      assert.equal(toNodes.length, 1, `expected the request to go to a node, sent ${seen}`);
      assert.equal(parsed(toNodes[0].data).isRequest, true);
      return;
    case 'reply':
      assert.equal(sent.length, 1, `expected one local reply ${expect.status.join('/')}, sent ${seen}`);
      assert.equal(replies.length, 1, `expected the reply to go back to the source, sent ${seen}`);
      assert.ok(expect.status.includes(statuses[0]), `expected status ${expect.status.join('/')}, sent ${seen}`);
      return;
    case 'drop':
      assert.equal(sent.length, 0, `expected nothing sent, sent ${seen}`);
      return;
    case 'reply-or-drop':
      assert.ok(sent.length <= 1 && toNodes.length === 0, `expected a reply or nothing, sent ${seen}`);
      if (sent.length === 1) assert.ok(replies.length === 1 && expect.status.includes(statuses[0]), `expected status ${expect.status.join('/')}, sent ${seen}`);
      return;
    case 'forward-or-reply':
      assert.equal(sent.length - trying, 1, `expected one message, sent ${seen}`);
      if (toNodes.length === 1) assert.equal(parsed(toNodes[0].data).isRequest, true);
      else assert.ok(replies.length === 1 && expect.status.includes(statuses[0]), `expected a forward or status ${expect.status.join('/')}, sent ${seen}`);
      return;
    case 'check':
      // The 100 Trying, if any, was checked above; the case checks what was forwarded.
      expect.fn(sent.slice(trying));
      return;
  }
}

describe('RFC 4475 torture messages', () => {
  for (const c of TORTURE) {
    test(`${c.id} (RFC 4475 ${c.section}) ${c.parse === 'valid' ? 'is well-formed' : 'is handled as the RFC says'}`, () => {
      let m: SipMessage | ParseFailure | undefined;
      assert.doesNotThrow(() => { m = parseSipMessage(c.data, true); });
      assert.ok(m !== undefined);
      if (c.parse === 'valid') {
        assert.ok(!isParseFailure(m), `ParseFailure: ${isParseFailure(m) ? m.failure : ''}`);
        assert.equal(m.error, null, `error: ${m.error}`);
        if (c.exactLength === true) assert.equal(m.body.length, Number(m.get('content-length')), 'transcription: body length matches the RFC Content-Length');
      } else if (c.parse === 'invalid') {
        assert.ok(isParseFailure(m) || m.error !== null, `expected ParseFailure or error, got ${outcomeOf(m)}`);
      }
      if (c.proxy !== null) {
        let sent: Sent[] = [];
        assert.doesNotThrow(() => { sent = throughProxy(c.data); });
        assertProxyOutcome(c.proxy, sent);
      }
    });
  }

  test('wsinv: folded and compact values read correctly', () => {
    const m = valid(TORTURE.find((c) => c.id === 'wsinv')!.data);
    assert.equal(m.get('to'), 'sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n');
    assert.deepEqual(cseqOf(m), { num: 9, method: 'INVITE' });
    assert.equal(m.get('subject'), '');
    assert.equal(m.get('newfangledheader'), 'newfangled value continued newfangled value');
    assert.equal(m.get('unknownheaderwithunusualvalue'), ';;,,;;,;');
    const vias = elements(m, 'via').map((v) => parseVia(v));
    assert.deepEqual(vias.map((v) => [v?.transport, v?.host, v?.branch]), [
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    assert.equal(m.get('contact'), '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33');
  });

  test('longreq: 34 Via values in every spelling', () => {
    const m = valid(TORTURE.find((c) => c.id === 'longreq')!.data);
    assert.equal(elements(m, 'via').length, 34);
    assert.equal(m.callId, `longreq.one${rep('really', 20)}longcallid`);
  });

  test('dblreq: the datagram body stops at Content-Length 0', () => {
    const m = valid(TORTURE.find((c) => c.id === 'dblreq')!.data);
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.body.length, 0);
  });

  test('intmeth: method, CSeq method and UTF-8 extension header survive', () => {
    const m = valid(TORTURE.find((c) => c.id === 'intmeth')!.data);
    assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
    assert.equal(cseqOf(m).method, m.method);
    assert.equal(m.get("extensionheader-!.%*+_`'~"), Buffer.from('\uFEFF\u5927\u505C\u96FB', 'utf8').toString('latin1'));
  });

  test('noreason and unreason: status codes read', () => {
    assert.equal(valid(TORTURE.find((c) => c.id === 'noreason')!.data).status, 100);
    assert.equal(valid(TORTURE.find((c) => c.id === 'unreason')!.data).status, 200);
  });
});

// ------------------------------------------------------------------------------------ fuzz


const INSERTS = [0x0d, 0x0a, 0x3a, 0x3c, 0x22, 0x00, 0x20, 0x2c, 0x3b];

function mutate(src: Buffer, rnd: () => number): Buffer {
  const int = (n: number): number => Math.floor(rnd() * n);
  let b = Buffer.from(src);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const op = int(4);
    if (b.length === 0) break;
    if (op === 0) {
      const i = int(b.length);
      b[i] = b[i] ^ (1 << int(8)); // bit flip
    } else if (op === 1) {
      b = b.subarray(0, int(b.length)); // truncation
    } else if (op === 2) {
      const i = int(b.length + 1);
      const ins = Buffer.from([INSERTS[int(INSERTS.length)]]);
      b = Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
    } else {
      const i = int(b.length);
      b[i] = int(256); // random byte
    }
  }
  return b;
}

const FUZZ_SEED_MESSAGE = wire([
  'INVITE sip:bob@example.com;transport=udp SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport, SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKx',
  'Max-Forwards: 70',
  'Route: <sip:10.0.0.1;lr;lbnode=10.0.0.11:5080>, <sip:proxy.example.net;lr>',
  'To: "Bob, the \\"builder\\"" <sip:bob@example.com>',
  'From: Alice <sip:alice@example.org>;tag=1928301774',
  'Call-ID: a84b4c76e66710@192.0.2.10',
  'CSeq: 314159 INVITE',
  'Subject: folded',
  ' subject',
  'Contact: <sip:alice@192.0.2.10>',
  'Content-Type: application/sdp',
  'Content-Length: 150',
], sdp('192.0.2.1').map((l) => l + CRLF).join(''));

describe('parseSipMessage: mutation fuzz', () => {
  test('2,000 seeded mutations of a valid INVITE never throw', () => {
    valid(FUZZ_SEED_MESSAGE); // the seed itself is valid
    const rnd = prng(0x5eed4475);
    let failures = 0;
    let errors = 0;
    let ok = 0;
    for (let n = 0; n < 2000; n++) {
      const data = mutate(FUZZ_SEED_MESSAGE, rnd);
      for (const datagram of [true, false]) {
        let m: SipMessage | ParseFailure | undefined;
        try {
          m = parseSipMessage(data, datagram);
          if (!isParseFailure(m)) {
            // The accessors the proxy uses must not throw either.
            for (let i = 0; i < m.headerCount; i++) m.value(i);
            cseqOf(m);
            void m.callId;
            void m.body.length;
            m.getAll('via');
          }
        } catch (err) {
          assert.fail(`mutation ${n} (datagram=${datagram}) threw ${String(err)}: ${JSON.stringify(data.toString('latin1'))}`);
        }
        if (isParseFailure(m!)) failures++;
        else if (m!.error !== null) errors++;
        else ok++;
      }
    }
    // The mutations exercise every outcome, not just one.
    assert.ok(failures > 0 && errors > 0 && ok > 0, `outcomes: ${failures} failures, ${errors} errors, ${ok} valid`);
  });
});

describe('header values read as their bytes', () => {
  test('a UTF-8 value ending in a character whose last byte is 0xA0 ("à": C3 A0) keeps that byte', () => {
    const voila = Buffer.from('voilà', 'utf8').toString('latin1');
    const m = valid(variant({ add: [`Subject: ${voila}  `] }));
    assert.equal(m.get('subject'), voila);
    assert.equal(Buffer.from(m.get('subject') ?? '', 'latin1').toString('utf8'), 'voilà');
  });
});
