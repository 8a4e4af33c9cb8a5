// Comma lists in header values (splitCommaRanges): the ranges of each element, quotes and angle
// brackets respected, and the limit the proxy uses for Vias. Table-driven: line, limit, elements.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { splitCommaRanges, unfold } from '../../src/sip/lists.ts';

function elements(line: string, limit?: number): string[] {
  // Padded on both sides so that `from` and `to` are not the string's own ends.
  const s = `X: ${line}\r\nY: a, b`;
  const r = splitCommaRanges(s, 3, 3 + line.length, limit);
  const out: string[] = [];
  for (let i = 0; i < r.length; i += 2) out.push(s.slice(r[i], r[i + 1]));
  return out;
}

const CASES: { line: string; limit?: number; want: string[] }[] = [
  { line: 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1', want: ['SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1'] },
  { line: '  SIP/2.0/UDP a;branch=1  ', want: ['SIP/2.0/UDP a;branch=1'] },
  { line: 'SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2', want: ['SIP/2.0/UDP a;branch=1', 'SIP/2.0/UDP b;branch=2'] },
  { line: 'SIP/2.0/UDP a;branch=1,SIP/2.0/UDP b,SIP/2.0/TCP c', want: ['SIP/2.0/UDP a;branch=1', 'SIP/2.0/UDP b', 'SIP/2.0/TCP c'] },
  { line: 'SIP/2.0/UDP a, SIP/2.0/UDP b, SIP/2.0/UDP c', limit: 1, want: ['SIP/2.0/UDP a'] },
  { line: 'SIP/2.0/UDP a, SIP/2.0/UDP b, SIP/2.0/UDP c', limit: 2, want: ['SIP/2.0/UDP a', 'SIP/2.0/UDP b'] },
  { line: 'SIP/2.0/UDP a', limit: 2, want: ['SIP/2.0/UDP a'] },
  { line: ' , SIP/2.0/UDP b, SIP/2.0/UDP c', limit: 1, want: ['SIP/2.0/UDP b'] },
  { line: 'SIP/2.0/UDP a,', limit: 1, want: ['SIP/2.0/UDP a'] },
  { line: 'a,,b, ,c', want: ['a', 'b', 'c'] },
  { line: ',', want: [] },
  { line: '   ', want: [] },
  { line: 'a,\r\n b', want: ['a', 'b'] },
  { line: '"Smith, John" <sip:j@x>, <sip:k@y>', want: ['"Smith, John" <sip:j@x>', '<sip:k@y>'] },
  { line: '<sip:a@x;p=1,2>, <sip:b@y>', want: ['<sip:a@x;p=1,2>', '<sip:b@y>'] },
  { line: '"a\\"b, c" <sip:x>, <sip:y>', want: ['"a\\"b, c" <sip:x>', '<sip:y>'] },
  { line: '"a, b" <sip:x>, <sip:y>, <sip:z>', limit: 2, want: ['"a, b" <sip:x>', '<sip:y>'] },
  { line: 'SIP/2.0/UDP a;x="1,2", SIP/2.0/UDP b', want: ['SIP/2.0/UDP a;x="1,2"', 'SIP/2.0/UDP b'] },
];

describe('splitCommaRanges', () => {
  for (const c of CASES) {
    test(`${JSON.stringify(c.line)}${c.limit === undefined ? '' : ` (at most ${c.limit})`}`, () => {
      assert.deepEqual(elements(c.line, c.limit), c.want);
    });
  }

  test('a comma after the range does not end an element inside it', () => {
    const s = 'Via: SIP/2.0/UDP a;branch=1\r\nTo: <sip:b@c>, x';
    assert.deepEqual(splitCommaRanges(s, 5, 27), [5, 27]);
  });
});

describe('unfold', () => {
  test('joins continuation lines with one space and trims', () => {
    assert.equal(unfold('  a\r\n  b\n\tc '), 'a b c');
    assert.equal(unfold('plain'), 'plain');
    assert.equal(unfold('\x0b\x0c x \r'), 'x');
  });

  test('keeps a trailing 0xA0 byte: the end of a UTF-8 character such as "à" (C3 A0)', () => {
    const latin1 = Buffer.from('voilà', 'utf8').toString('latin1');
    assert.equal(unfold(` ${latin1} `), latin1);
    assert.equal(unfold('\u00a0x\u00a0'), '\u00a0x\u00a0');
  });
});
