// StreamFramer: cutting a TCP byte stream into SIP messages (RFC 3261 §18.3) with RFC 5626
// CRLF keep-alives, through its public events only.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamFramer } from '../../src/sip/framing.ts';

interface Recorded {
  framer: StreamFramer;
  messages: string[];
  pings: number;
  errors: string[];
}

function record(maxSize = 65535): Recorded {
  const r: Recorded = { framer: undefined as unknown as StreamFramer, messages: [], pings: 0, errors: [] };
  r.framer = new StreamFramer(maxSize, {
    // Copy: the framer may hand out views of a buffer it reuses.
    message: (data) => { r.messages.push(Buffer.from(data).toString('latin1')); },
    ping: () => { r.pings++; },
    error: (reason) => { r.errors.push(reason); },
  });
  return r;
}

function push(r: Recorded, ...chunks: (string | Buffer)[]): void {
  for (const c of chunks) r.framer.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
}

function msg(start: string, headers: string[], body = ''): string {
  return [start, ...headers].join('\r\n') + '\r\n\r\n' + body;
}

const COMMON = [
  'Via: SIP/2.0/TCP 192.0.2.10:5070;branch=z9hG4bKframing',
  'From: <sip:alice@example.org>;tag=1',
  'To: <sip:bob@example.com>',
  'Call-ID: framing@192.0.2.10',
];

const SDP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';

const OPTIONS = msg('OPTIONS sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 1 OPTIONS', 'Content-Length: 0']);
const INVITE = msg('INVITE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 2 INVITE', 'Content-Type: application/sdp', `Content-Length: ${SDP.length}`], SDP);
// Compact form, and a body that itself contains a blank line.
const MESSAGE = msg('MESSAGE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 3 MESSAGE', 'c: text/plain', 'l: 12'], 'hi\r\n\r\nthere!');

describe('StreamFramer', () => {
  test('one message in one chunk', () => {
    const r = record();
    push(r, INVITE);
    assert.deepEqual(r.messages, [INVITE]);
    assert.equal(r.pings, 0);
    assert.deepEqual(r.errors, []);
  });

  test('a message split at every byte position is delivered once, whole', () => {
    const stream = INVITE + MESSAGE;
    for (let i = 1; i < stream.length; i++) {
      const r = record();
      push(r, stream.slice(0, i));
      if (i < INVITE.length) assert.deepEqual(r.messages, [], `nothing before the first message is complete (split at ${i})`);
      push(r, stream.slice(i));
      assert.deepEqual(r.messages, [INVITE, MESSAGE], `split at ${i}`);
      assert.equal(r.pings, 0, `split at ${i}`);
      assert.deepEqual(r.errors, [], `split at ${i}`);
    }
  });

  test('a stream fed one byte at a time', () => {
    const r = record();
    for (const ch of OPTIONS + INVITE + MESSAGE) push(r, ch);
    assert.deepEqual(r.messages, [OPTIONS, INVITE, MESSAGE]);
    assert.equal(r.pings, 0);
  });

  test('several pipelined messages in one chunk, in order', () => {
    const r = record();
    push(r, OPTIONS + INVITE + MESSAGE + OPTIONS);
    assert.deepEqual(r.messages, [OPTIONS, INVITE, MESSAGE, OPTIONS]);
  });

  test('body split across chunks: delivered when the last body byte arrives', () => {
    const r = record();
    const headEnd = INVITE.indexOf('\r\n\r\n') + 4;
    push(r, INVITE.slice(0, headEnd + 10));
    assert.deepEqual(r.messages, []);
    push(r, INVITE.slice(headEnd + 10, INVITE.length - 1));
    assert.deepEqual(r.messages, []);
    push(r, INVITE.slice(INVITE.length - 1) + OPTIONS.slice(0, 20));
    assert.deepEqual(r.messages, [INVITE]);
    push(r, OPTIONS.slice(20));
    assert.deepEqual(r.messages, [INVITE, OPTIONS]);
  });

  test('compact l: header gives the body length', () => {
    const r = record();
    push(r, MESSAGE + OPTIONS);
    assert.deepEqual(r.messages, [MESSAGE, OPTIONS]);
    assert.ok(r.messages[0].endsWith('hi\r\n\r\nthere!'));
  });

  const spellings = ['Content-Length: 5', 'content-length:5', 'CONTENT-LENGTH   :   5', 'l:5', 'L : 5', 'Content-Length:\t5\t'];
  for (const header of spellings) {
    test(`Content-Length spelled "${header}"`, () => {
      const m = msg('MESSAGE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 4 MESSAGE', header], 'hello');
      const r = record();
      push(r, m + OPTIONS);
      assert.deepEqual(r.messages, [m, OPTIONS]);
    });
  }

  test('CRLFCRLF keep-alive -> ping()', () => {
    const r = record();
    push(r, '\r\n\r\n');
    assert.equal(r.pings, 1);
    assert.deepEqual(r.messages, []);
    push(r, '\r\n\r\n\r\n\r\n');
    assert.equal(r.pings, 3);
    assert.deepEqual(r.errors, []);
  });

  test('keep-alive split across chunks is one ping', () => {
    const r = record();
    push(r, '\r\n', '\r\n');
    assert.equal(r.pings, 1);
    push(r, '\r', '\n\r', '\n');
    assert.equal(r.pings, 2);
    assert.deepEqual(r.messages, []);
  });

  test('keep-alives between messages', () => {
    const r = record();
    push(r, OPTIONS + '\r\n\r\n' + INVITE + '\r\n\r\n');
    assert.deepEqual(r.messages, [OPTIONS, INVITE]);
    assert.equal(r.pings, 2);
  });

  test('a single CRLF (pong) is ignored', () => {
    const r = record();
    push(r, '\r\n' + OPTIONS);
    assert.deepEqual(r.messages, [OPTIONS]);
    assert.equal(r.pings, 0);
    push(r, '\r\n');
    push(r, INVITE);
    assert.deepEqual(r.messages, [OPTIONS, INVITE]);
    assert.equal(r.pings, 0);
    assert.deepEqual(r.errors, []);
  });

  test('a message of exactly maxSize bytes is accepted', () => {
    const r = record(INVITE.length);
    push(r, INVITE);
    assert.deepEqual(r.messages, [INVITE]);
    assert.deepEqual(r.errors, []);
  });

  test('a message one byte over maxSize -> error()', () => {
    const r = record(INVITE.length - 1);
    push(r, INVITE);
    assert.deepEqual(r.messages, []);
    assert.equal(r.errors.length, 1);
  });

  test('oversized header section -> error() once, nothing after', () => {
    const r = record(1024);
    const head = 'INVITE sip:bob@example.com SIP/2.0\r\nX-Padding: ';
    push(r, head);
    for (let i = 0; i < 30; i++) push(r, 'a'.repeat(100));
    assert.equal(r.errors.length, 1);
    assert.deepEqual(r.messages, []);
    push(r, '\r\n\r\n' + OPTIONS + '\r\n\r\n');
    push(r, INVITE);
    assert.equal(r.errors.length, 1, 'error reported once');
    assert.deepEqual(r.messages, [], 'nothing framed after the error');
    assert.equal(r.pings, 0, 'no ping after the error');
  });

  test('oversized Content-Length -> error() once, nothing after', () => {
    const r = record(65535);
    push(r, msg('MESSAGE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 5 MESSAGE', 'Content-Length: 100000'], 'x'.repeat(1000)));
    assert.equal(r.errors.length, 1);
    assert.deepEqual(r.messages, []);
    push(r, 'x'.repeat(99_000));
    push(r, OPTIONS);
    assert.equal(r.errors.length, 1, 'error reported once');
    assert.deepEqual(r.messages, [], 'nothing framed after the error');
  });

  test('absurd Content-Length (more digits than a number holds) -> error()', () => {
    const r = record(65535);
    push(r, msg('MESSAGE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 6 MESSAGE', `Content-Length: ${'9'.repeat(400)}`], 'x'));
    assert.equal(r.errors.length, 1);
    assert.deepEqual(r.messages, []);
  });

  // RFC 4475 3.1.2.3 (ncl) and 3.3.9 (mcl01): "If a request like this arrives over TCP, the
  // framing error is not recoverable, and the connection should be closed." The framer reports
  // it through error() (its owner closes the connection), and frames nothing of what follows.
  const body150 = 'v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.53\r\ns=-\r\nc=IN IP4 192.0.2.53\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n';
  const framingErrors = [
    {
      id: 'ncl (RFC 4475 3.1.2.3): negative Content-Length',
      data: msg('INVITE sip:user@example.com SIP/2.0', [
        'Max-Forwards: 254', 'To: sip:j.user@example.com', 'From: sip:caller@example.net;tag=32394234',
        'Call-ID: ncl.0ha0isndaksdj2193423r542w35', 'CSeq: 0 INVITE', 'Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw',
        'Contact: <sip:caller@example53.example.net>', 'Content-Type: application/sdp', 'Content-Length: -999',
      ], body150),
    },
    {
      id: 'mcl01 (RFC 4475 3.3.9): two different Content-Length values',
      data: msg('OPTIONS sip:user@example.com SIP/2.0', [
        'Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423', 'To: sip:user@example.com',
        'From: sip:other@example.net;tag=3923942', 'Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf',
        'CSeq: 15932 OPTIONS', 'Content-Length: 13', 'Max-Forwards: 60', 'Content-Length: 5', 'Content-Type: text/plain',
      ], "There's no way to know how many octets are supposed to be here.\r\n"),
    },
  ];
  for (const c of framingErrors) {
    test(`${c.id} over TCP -> error(), connection not resynchronised`, () => {
      const r = record();
      push(r, c.data);
      push(r, OPTIONS);
      assert.equal(r.errors.length, 1, `expected one error(), got ${JSON.stringify(r.errors)} and messages ${JSON.stringify(r.messages.map((m) => m.slice(0, 40)))}`);
      assert.ok(!r.messages.includes(OPTIONS), 'nothing after the framing error is delivered');
    });
  }

  test('garbage and random chunking never throw', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const stream = Buffer.from(OPTIONS + '\r\n\r\n' + INVITE + MESSAGE + 'garbage\r\n\r\n' + '\x00\xff\r\n' + OPTIONS, 'latin1');
    for (let round = 0; round < 200; round++) {
      const r = record(4096);
      let pos = 0;
      assert.doesNotThrow(() => {
        while (pos < stream.length) {
          const n = 1 + Math.floor(rnd() * 64);
          r.framer.push(stream.subarray(pos, pos + n));
          pos += n;
        }
      });
      // Whatever the chunking, the framing is the same.
      assert.deepEqual(r.messages.slice(0, 3), [OPTIONS, INVITE, MESSAGE], `round ${round}`);
      assert.equal(r.pings, 1, `round ${round}`);
    }
  });
});

describe('a stream that arrives a byte at a time', () => {
  const body = 'v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\n';
  const first = msg('INVITE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 1 INVITE', `Content-Length: ${body.length}`], body);
  const second = msg('BYE sip:bob@example.com SIP/2.0', [...COMMON, 'CSeq: 2 BYE', 'Content-Length: 0']);
  const stream = `\r\n\r\n${first}\r\n${second}`;

  test('the same messages and pings as when it arrives whole', () => {
    const whole = record();
    push(whole, stream);
    const bytewise = record();
    for (let i = 0; i < stream.length; i++) push(bytewise, stream[i]);
    assert.deepEqual(bytewise.messages, [first, second]);
    assert.deepEqual(bytewise.messages, whole.messages);
    assert.equal(bytewise.pings, whole.pings);
    assert.deepEqual(bytewise.errors, []);
  });

  test('in uneven pieces, with a message ending exactly at a piece boundary', () => {
    for (const size of [2, 3, 7, 64, first.length, first.length + 1]) {
      const r = record();
      for (let i = 0; i < stream.length; i += size) push(r, stream.slice(i, i + size));
      assert.deepEqual(r.messages, [first, second], `pieces of ${size}`);
    }
  });

  test('a message handed out is not changed by what arrives after it', () => {
    const kept: Buffer[] = [];
    const framer = new StreamFramer(65535, { message: (data) => { kept.push(data); }, ping: () => undefined, error: () => undefined });
    const text = first + second + first;
    // Byte by byte, so every message comes out of the framer's own buffer.
    for (let i = 0; i < text.length; i++) framer.push(Buffer.from(text[i], 'latin1'));
    assert.deepEqual(kept.map((b) => b.toString('latin1')), [first, second, first]);
  });

  test('an oversized head sent a byte at a time fails once, past the limit', () => {
    const r = record(1024);
    const big = `INVITE sip:bob@example.com SIP/2.0\r\nX-Pad: ${'a'.repeat(2000)}`;
    for (let i = 0; i < big.length; i++) push(r, big[i]);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0], /header section exceeds 1024 bytes/);
  });
});
