// affinityKeyReader / httpKeyReader: which part of a request each key spec reads, over real parsed
// messages (compact header names, name-addr and addr-spec forms, quoted display names, tel: URIs,
// folded headers, missing headers) and over URLs (present, absent, repeated, badly encoded).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { affinityKeyReader, headerUri, httpKeyReader, isCallIdSpec } from '../../src/algorithms/affinity-key.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';

/** A request with these header lines (Via, CSeq and Content-Length are added). */
function req(...headers: string[]): SipMessage {
  const m = parseSipMessage(Buffer.from([
    'INVITE sip:service@10.0.0.1 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKkey',
    ...headers,
    'CSeq: 1 INVITE',
    'Content-Length: 0',
  ].join('\r\n') + '\r\n\r\n', 'latin1'), true);
  if (isParseFailure(m)) throw new Error(m.failure);
  return m;
}

const BASIC = req(
  'From: "Alice Smith" <sip:alice@Example.ORG:5070;transport=tcp>;tag=a1',
  'To: <sips:Bob@EXAMPLE.com>',
  'Call-ID: abc@198.51.100.1',
  'X-Tenant: acme',
);
const COMPACT = req(
  'f: sip:carol@example.org;tag=c1',
  't: "Dave" <sip:dave@example.com;user=phone>',
  'i: compact-id',
);
const TEL = req(
  'From: <tel:+1-201-555-0123;phone-context=example.com>;tag=t1',
  'To: tel:+44 20 7946 0000;tag=x',
  'Call-ID: tel-call',
);
const QUOTED = req(
  'From: "Eve <admin>; \\"boss\\"" <sip:eve:secret@example.org>;tag=q1',
  'To: "anonymous" <sip:anonymous@anonymous.invalid>',
  'Call-ID: quoted',
);
const FOLDED = req(
  'From: <sip:frank@example.org>;tag=f1',
  'To: "Grace"',
  '  <sip:grace@example.com>',
  'Call-ID: folded',
  'X-Route-Key: part-one,',
  '\tpart-two',
);
const NO_USER = req(
  'From: <sip:example.org>;tag=n1',
  'To: <urn:service:sos>',
  'Call-ID: no-user',
);

describe('affinityKeyReader', () => {
  const cases: { spec: string; msg: SipMessage; name: string; expected: string | null }[] = [
    { spec: 'Call-ID', msg: BASIC, name: 'basic', expected: 'abc@198.51.100.1' },
    { spec: 'call-id', msg: BASIC, name: 'basic', expected: 'abc@198.51.100.1' },
    { spec: 'i', msg: COMPACT, name: 'compact', expected: 'compact-id' },
    { spec: 'From', msg: BASIC, name: 'basic', expected: 'alice' },
    { spec: 'from.user', msg: BASIC, name: 'basic', expected: 'alice' },
    { spec: 'f', msg: BASIC, name: 'basic', expected: 'alice' },
    { spec: 'To', msg: BASIC, name: 'basic', expected: 'Bob' },
    { spec: 'TO', msg: BASIC, name: 'basic', expected: 'Bob' },
    { spec: 'from.uri', msg: BASIC, name: 'basic', expected: 'sip:alice@example.org:5070' },
    { spec: 'to.uri', msg: BASIC, name: 'basic', expected: 'sips:Bob@example.com' },
    { spec: 'X-Tenant', msg: BASIC, name: 'basic', expected: 'acme' },
    { spec: 'x-tenant', msg: BASIC, name: 'basic', expected: 'acme' },
    { spec: 'X-Missing', msg: BASIC, name: 'basic', expected: null },
    { spec: 'Subject', msg: BASIC, name: 'basic', expected: null },
    // Compact header names: the parser canonicalises f/t/i.
    { spec: 'From', msg: COMPACT, name: 'compact, addr-spec', expected: 'carol' },
    { spec: 'from.uri', msg: COMPACT, name: 'compact, addr-spec', expected: 'sip:carol@example.org' },
    { spec: 'To', msg: COMPACT, name: 'compact, user=phone', expected: 'dave' },
    { spec: 'Call-ID', msg: COMPACT, name: 'compact', expected: 'compact-id' },
    // tel: URIs: the number up to its parameters.
    { spec: 'From', msg: TEL, name: 'tel', expected: '+1-201-555-0123' },
    { spec: 'To', msg: TEL, name: 'tel addr-spec', expected: '+44 20 7946 0000' },
    { spec: 'from.uri', msg: TEL, name: 'tel', expected: 'tel:+1-201-555-0123' },
    // Quoted display names with '<', ';' and escaped quotes; a password is not part of the user.
    { spec: 'From', msg: QUOTED, name: 'quoted', expected: 'eve' },
    { spec: 'from.uri', msg: QUOTED, name: 'quoted', expected: 'sip:eve@example.org' },
    { spec: 'To', msg: QUOTED, name: 'quoted', expected: 'anonymous' },
    // Folded header lines are joined with one space.
    { spec: 'To', msg: FOLDED, name: 'folded To', expected: 'grace' },
    { spec: 'X-Route-Key', msg: FOLDED, name: 'folded', expected: 'part-one, part-two' },
    // No user, or a scheme without one.
    { spec: 'From', msg: NO_USER, name: 'host only', expected: null },
    { spec: 'from.uri', msg: NO_USER, name: 'host only', expected: 'sip:example.org' },
    { spec: 'To', msg: NO_USER, name: 'urn', expected: null },
    { spec: 'to.uri', msg: NO_USER, name: 'urn', expected: 'urn:service:sos' },
  ];
  for (const c of cases) {
    test(`${c.spec} of ${c.name} -> ${c.expected}`, () => {
      assert.equal(affinityKeyReader(c.spec)(c.msg), c.expected);
    });
  }

  test('a reader never throws, whatever the header looks like', () => {
    const odd = [
      'To: <sip:', 'To: "unterminated <sip:x@y>', 'To: <>', 'To: sip:@host', 'To: tel:;x', 'To: :',
      'To: <sip:a@b', 'To: ;tag=1', 'To: <sip:u:@h>', 'To: \u00ff\u00fe',
    ];
    for (const line of odd) {
      const m = req('From: <sip:a@b>;tag=1', line, 'Call-ID: odd');
      for (const spec of ['To', 'to.uri', 'From', 'Call-ID', 'X-Anything']) {
        const v = affinityKeyReader(spec)(m);
        assert.ok(v === null || (typeof v === 'string' && v.length > 0), `${spec} of ${line}: ${v}`);
      }
    }
  });

  test('isCallIdSpec', () => {
    assert.deepEqual(['Call-ID', 'call-id', ' i ', 'To', 'From', 'callid'].map(isCallIdSpec), [true, true, true, false, false, false]);
  });
});

describe('headerUri', () => {
  const table: [string, string | null][] = [
    ['<sip:a@b>', 'sip:a@b'],
    ['"A" <sip:a@b;lr>;tag=1', 'sip:a@b;lr'],
    ['sip:a@b;tag=1', 'sip:a@b'],
    ['"x;y<z" <sip:q@r>', 'sip:q@r'],
    ['"unterminated <sip:a@b>', null],
    ['<sip:a@b', null],
    ['', null],
  ];
  for (const [v, expected] of table) test(`${JSON.stringify(v)} -> ${expected}`, () => assert.equal(headerUri(v), expected));
});

describe('httpKeyReader', () => {
  const read = httpKeyReader('appsession');
  const table: [string, string | null][] = [
    ['/app/call?appsession=abc123', 'abc123'],
    ['/app/call?x=1&appsession=abc123&y=2', 'abc123'],
    ['/app/call', null],
    ['/app/call?', null],
    ['/app/call?other=1', null],
    ['/app/call?appsessionx=1', null],
    ['/app/call?appsession', null],
    ['/app/call?appsession=', null],
    ['/app/call?appsession=first&appsession=second', 'first'],
    ['/app/call?appsession=&appsession=second', 'second'],
    ['/app/call?appsession=a%20b%2Bc', 'a b+c'],
    ['/app/call?appsession=a+b', 'a b'],
    ['/app/call?appsession=%E2%82%AC', '\u20ac'],
    ['/app/call?app%73ession=encoded-name', 'encoded-name'],
    ['/app/call?appsession=bad%zz', 'bad%zz'],
    ['/app/call?appsession=%E2%82', '%E2%82'],
    ['/app/call?appsession=100%', '100%'],
    ['/app/call?appsession=v#frag', 'v'],
    ['/app/call#appsession=inside-fragment', null],
    ['/app/call?x=1#appsession=inside-fragment', null],
    ['http://lb.example.com:8080/app?appsession=abs', 'abs'],
  ];
  for (const [url, expected] of table) test(`${url} -> ${expected}`, () => assert.equal(read(url), expected));

  test('parameter names are case-sensitive, as in URLs', () => {
    assert.equal(read('/x?AppSession=1'), null);
    assert.equal(httpKeyReader('AppSession')('/x?AppSession=1'), '1');
  });
});
