// MessageEdit: a forwarded message is the original bytes with a few header edits spliced in.
// Every case compares the whole output with the exact expected bytes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageEdit } from '../../src/sip/edit.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';

const CRLF = '\r\n';

function parse(data: Buffer, datagram = true): SipMessage {
  const m = parseSipMessage(data, datagram);
  if (isParseFailure(m)) assert.fail(`ParseFailure: ${m.failure}`);
  assert.equal(m.error, null, `error: ${m.error}`);
  return m;
}

const START = 'INVITE sip:bob@example.com SIP/2.0';
const HEADERS = [
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'Route: <sip:10.0.0.1;lr>',
  'To: Bob <sip:bob@example.com>',
  'From: Alice <sip:alice@example.org>;tag=1928301774',
  'Call-ID: a84b4c76e66710@192.0.2.10',
  'CSeq: 314159 INVITE',
  'Subject: a folded',
  '  subject line',
  '\tover three lines',
  'Contact: <sip:alice@192.0.2.10>',
  'Content-Type: text/plain',
];
const BODY = 'hello, world\r\n';

function message(headers: readonly string[] = HEADERS, body = BODY): string {
  return [START, ...headers, `Content-Length: ${body.length}`].join(CRLF) + CRLF + CRLF + body;
}

function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** Offset of `text` inside the header section (head is latin1, one char per byte). */
function at(m: SipMessage, text: string): number {
  const i = m.head.indexOf(text);
  assert.notEqual(i, -1, `"${text}" not in head`);
  return i;
}

describe('MessageEdit', () => {
  test('no edits: the bytes are unchanged', () => {
    const src = bytes(message());
    assert.deepEqual(new MessageEdit(parse(src)).toBuffer(), src);
  });

  test('insert a header first (right after the start line)', () => {
    const m = parse(bytes(message()));
    const out = new MessageEdit(m).insertHeaderFirst('Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLbx').toBuffer();
    assert.equal(out.toString('latin1'), message(['Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLbx', ...HEADERS]));
  });

  test('several headers inserted first keep the order they were inserted in', () => {
    const m = parse(bytes(message()));
    const out = new MessageEdit(m).insertHeaderFirst('X-A: 1').insertHeaderFirst('X-B: 2').insertHeaderFirst('X-C: 3').toBuffer();
    assert.equal(out.toString('latin1'), message(['X-A: 1', 'X-B: 2', 'X-C: 3', ...HEADERS]));
  });

  test('replace a header value', () => {
    const m = parse(bytes(message()));
    const v = at(m, 'Max-Forwards: 70') + 'Max-Forwards:'.length;
    const out = new MessageEdit(m).replace(v, v + 3, ' 69').toBuffer();
    assert.equal(out.toString('latin1'), message(HEADERS.map((h) => (h === 'Max-Forwards: 70' ? 'Max-Forwards: 69' : h))));
  });

  test('replace with longer and shorter text', () => {
    const m = parse(bytes(message()));
    const via = at(m, '192.0.2.10:5060;branch');
    const out = new MessageEdit(m)
      .replace(via, via + '192.0.2.10:5060'.length, '192.0.2.10:5060;received=203.0.113.9;rport=4000')
      .replace(at(m, 'Bob <sip:'), at(m, 'Bob <sip:') + 4, '')
      .toBuffer();
    const expected = HEADERS.map((h) => h
      .replace('192.0.2.10:5060;branch', '192.0.2.10:5060;received=203.0.113.9;rport=4000;branch')
      .replace('To: Bob <sip:', 'To: <sip:'));
    assert.equal(out.toString('latin1'), message(expected));
  });

  test('replace the start line', () => {
    const m = parse(bytes(message()));
    const out = new MessageEdit(m).replaceStartLine('INVITE sip:bob@192.0.2.20:5080 SIP/2.0').toBuffer();
    assert.equal(out.toString('latin1'), message().replace(START, 'INVITE sip:bob@192.0.2.20:5080 SIP/2.0'));
  });

  const removals = [
    { name: 'a header in the middle', header: 'route', drop: ['Route: <sip:10.0.0.1;lr>'] },
    { name: 'the first header', header: 'via', drop: ['Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds'] },
    { name: 'a folded header with its continuation lines', header: 'subject', drop: ['Subject: a folded', '  subject line', '\tover three lines'] },
  ];
  for (const c of removals) {
    test(`remove ${c.name}`, () => {
      const m = parse(bytes(message()));
      const out = new MessageEdit(m).removeHeader(m.indexOf(c.header)).toBuffer();
      assert.equal(out.toString('latin1'), message(HEADERS.filter((h) => !c.drop.includes(h))));
    });
  }

  test('remove the last header: the blank line and the body stay intact', () => {
    const kept = HEADERS.slice(0, 7).filter((h) => !h.startsWith('Route'));
    const src = [START, ...kept, 'Content-Length: 5', 'Route: <sip:10.0.0.1;lr>'].join(CRLF) + CRLF + CRLF + 'hello';
    const m = parse(bytes(src));
    const out = new MessageEdit(m).removeHeader(m.indexOf('route')).toBuffer();
    assert.equal(out.toString('latin1'), [START, ...kept, 'Content-Length: 5'].join(CRLF) + CRLF + CRLF + 'hello');
    assert.equal(parse(out).body.toString('latin1'), 'hello');
  });

  test('append a header after the last one', () => {
    const m = parse(bytes(message()));
    const out = new MessageEdit(m).appendHeader('X-Appended: yes').appendHeader('X-Second: too').toBuffer();
    const expected = [START, ...HEADERS, `Content-Length: ${BODY.length}`, 'X-Appended: yes', 'X-Second: too'].join(CRLF) + CRLF + CRLF + BODY;
    assert.equal(out.toString('latin1'), expected);
  });

  test('several edits in one message', () => {
    const m = parse(bytes(message()));
    const mf = at(m, 'Max-Forwards: 70') + 'Max-Forwards: '.length;
    const out = new MessageEdit(m)
      .insertHeaderFirst('Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLbnew')
      .replace(mf, mf + 2, '69')
      .removeHeader(m.indexOf('route'))
      .removeHeader(m.indexOf('subject'))
      .insertHeaderFirst('Record-Route: <sip:10.0.0.1;lr>')
      .appendHeader('X-End: 1')
      .replaceStartLine('INVITE sip:bob@10.0.0.11:5080 SIP/2.0')
      .toBuffer();
    const expected = [
      'INVITE sip:bob@10.0.0.11:5080 SIP/2.0',
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLbnew',
      'Record-Route: <sip:10.0.0.1;lr>',
      'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds',
      'Max-Forwards: 69',
      'To: Bob <sip:bob@example.com>',
      'From: Alice <sip:alice@example.org>;tag=1928301774',
      'Call-ID: a84b4c76e66710@192.0.2.10',
      'CSeq: 314159 INVITE',
      'Contact: <sip:alice@192.0.2.10>',
      'Content-Type: text/plain',
      `Content-Length: ${BODY.length}`,
      'X-End: 1',
    ].join(CRLF) + CRLF + CRLF + BODY;
    assert.equal(out.toString('latin1'), expected);
    // And it is a valid message again.
    const again = parse(out);
    assert.equal(again.get('max-forwards'), '69');
    assert.equal(again.body.toString('latin1'), BODY);
  });

  test('edits given out of order are applied by position', () => {
    const m = parse(bytes(message()));
    const cseq = at(m, '314159');
    const mf = at(m, '70');
    const out = new MessageEdit(m).replace(cseq, cseq + 6, '314160').replace(mf, mf + 2, '10').toBuffer();
    assert.equal(out.toString('latin1'), message(HEADERS.map((h) => h.replace('CSeq: 314159', 'CSeq: 314160').replace('Max-Forwards: 70', 'Max-Forwards: 10'))));
  });

  test('a datagram without the blank line gets one', () => {
    const src = [START, ...HEADERS, 'Content-Length: 0'].join(CRLF) + CRLF;
    const m = parse(bytes(src));
    assert.equal(new MessageEdit(m).toBuffer().toString('latin1'), src + CRLF);
    const out = new MessageEdit(parse(bytes(src))).insertHeaderFirst('X-First: 1').toBuffer().toString('latin1');
    assert.equal(out, [START, 'X-First: 1', ...HEADERS, 'Content-Length: 0'].join(CRLF) + CRLF + CRLF);
  });

  test('a datagram that ends right after the last header character gets the blank line', () => {
    const src = [START, ...HEADERS, 'Content-Length: 0'].join(CRLF);
    const out = new MessageEdit(parse(bytes(src))).appendHeader('X-Last: 1').toBuffer().toString('latin1');
    assert.equal(out, src + CRLF + 'X-Last: 1' + CRLF + CRLF);
  });

  test('body with every byte value 0x00-0xff is preserved byte for byte', () => {
    const body = Buffer.alloc(512);
    for (let i = 0; i < 256; i++) body[i] = i;
    for (let i = 0; i < 256; i++) body[256 + i] = 255 - i;
    body.write('\r\n\r\n', 100, 'latin1'); // a blank line inside the body changes nothing
    const head = [START, ...HEADERS.slice(0, 7), 'Content-Type: application/octet-stream', `Content-Length: ${body.length}`].join(CRLF) + CRLF + CRLF;
    const src = Buffer.concat([bytes(head), body]);
    const m = parse(src);
    const mf = at(m, 'Max-Forwards: 70') + 'Max-Forwards: '.length;
    const out = new MessageEdit(m)
      .insertHeaderFirst('Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLbbin')
      .replace(mf, mf + 2, '69')
      .removeHeader(m.indexOf('route'))
      .toBuffer();
    assert.deepEqual(out.subarray(out.length - body.length), body);
    const again = parse(out);
    assert.deepEqual(again.body, body);
    assert.equal(out.length, src.length + 'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKLbbin\r\n'.length - 'Route: <sip:10.0.0.1;lr>\r\n'.length);
  });

  test('non-ASCII bytes in untouched header values are preserved', () => {
    const subject = Buffer.from('Subject: Gr\u00fc\u00dfe \u2603', 'utf8'); // UTF-8 bytes 0xC3 0xBC ...
    const src = Buffer.concat([bytes(START + CRLF), subject, bytes(CRLF + HEADERS.slice(0, 7).join(CRLF) + CRLF + 'Content-Length: 0' + CRLF + CRLF)]);
    const m = parse(src);
    const out = new MessageEdit(m).insertHeaderFirst('X-First: 1').toBuffer();
    assert.ok(out.includes(subject), 'the UTF-8 Subject bytes are copied unchanged');
    assert.equal(out.length, src.length + 'X-First: 1\r\n'.length);
  });

  test('datagram body longer than Content-Length: only Content-Length bytes go out', () => {
    const src = [START, ...HEADERS.slice(0, 7), 'Content-Length: 5'].join(CRLF) + CRLF + CRLF + 'hello, and trailing junk';
    const out = new MessageEdit(parse(bytes(src))).toBuffer().toString('latin1');
    assert.equal(out, [START, ...HEADERS.slice(0, 7), 'Content-Length: 5'].join(CRLF) + CRLF + CRLF + 'hello');
  });

  test('CRLFs before the start line are not forwarded', () => {
    const src = CRLF + CRLF + message();
    const out = new MessageEdit(parse(bytes(src))).insertHeaderFirst('X-First: 1').toBuffer().toString('latin1');
    assert.equal(out, message(['X-First: 1', ...HEADERS]));
  });

  test('bare-LF message: inserted header, body intact, still parses', () => {
    const src = [START, ...HEADERS.slice(0, 7), 'Content-Length: 4'].join('\n') + '\n\n' + 'a\nb\n';
    const m = parse(bytes(src));
    const out = new MessageEdit(m).insertHeaderFirst('X-First: 1').toBuffer();
    const again = parse(out);
    assert.equal(again.get('x-first'), '1');
    assert.equal(again.get('call-id'), 'a84b4c76e66710@192.0.2.10');
    assert.equal(again.body.toString('latin1'), 'a\nb\n');
  });
  // Edits are applied in position order whatever order they were made in, equal positions in the
  // order made; past 31 edits toBuffer orders them another way, so both sides of that are checked
  // against a plain reference.
  for (const count of [5, 31, 32, 45]) {
    test(`${count} edits made out of order: applied by position, ties in the order made`, () => {
      const m = parse(bytes(message()));
      const edit = new MessageEdit(m);
      const made: { at: number; text: string; seq: number }[] = [];
      for (let i = 0; i < count; i++) {
        // Positions from the back to the front, with repeats: line starts of the headers.
        const line = (count - i) % m.headerCount;
        const at = m.lineStarts[line];
        const text = `X-Edit-${i}: ${line}\r\n`;
        edit.insert(at, text);
        made.push({ at, text, seq: i });
      }
      made.sort((a, b) => a.at - b.at || a.seq - b.seq);
      let expected = '';
      let r = 0;
      for (const e of made) {
        expected += m.head.slice(r, e.at) + e.text;
        r = e.at;
      }
      expected += m.head.slice(r) + CRLF + CRLF + BODY;
      assert.equal(edit.toBuffer().toString('latin1'), expected);
    });
  }
});
