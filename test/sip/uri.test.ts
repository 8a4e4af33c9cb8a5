// parseHostPort: the sent-by of every Via and the host of every URI the proxy reads. A table of
// forms and near-misses; the dotted-quad fast path must agree with the general reading.
// headerParam: a table, and agreement with the regular expression it replaced on random values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headerParam, parseHostPort } from '../../src/sip/uri.ts';

const CASES: [string, { host: string; port: number | null } | null][] = [
  ["10.0.0.1", {"host":"10.0.0.1","port":null}],
  ["10.0.0.1:5060", {"host":"10.0.0.1","port":5060}],
  ["10.0.0.1:0", null],
  ["10.0.0.1:65535", {"host":"10.0.0.1","port":65535}],
  ["10.0.0.1:65536", null],
  ["10.0.0.1:", null],
  ["10.0.0.1:099999", null],
  ["999.1.1.1", {"host":"999.1.1.1","port":null}],
  ["999.1.1.1:5", {"host":"999.1.1.1","port":5}],
  ["1.2.3.4.5", {"host":"1.2.3.4.5","port":null}],
  ["1.2.3.4x", {"host":"1.2.3.4x","port":null}],
  ["1.2.3.4 ", {"host":"1.2.3.4","port":null}],
  [" 1.2.3.4:5060", {"host":"1.2.3.4","port":5060}],
  ["1.2.3.4: 5060", null],
  ["example.COM:5070", {"host":"example.com","port":5070}],
  ["[::1]:5060", {"host":"::1","port":5060}],
  ["[::1]", {"host":"::1","port":null}],
  ["[fe80::1]:0", null],
  ["host_name", null],
  ["1.2.3", {"host":"1.2.3","port":null}],
  ["1.2.3.1234", {"host":"1.2.3.1234","port":null}],
  ["1234.1.2.3:5", {"host":"1234.1.2.3","port":5}],
  ["1.2.3.4:5x", null],
  ["", null],
  [":5060", null],
  ["1.2.3.4:00000", null],
  ["1.2.3.4:005060", null],
];

for (const [input, want] of CASES) {
  test(`parseHostPort(${JSON.stringify(input)})`, () => {
    assert.deepEqual(parseHostPort(input), want);
  });
}

const PARAM_CASES: [string, string, string | null][] = [
  ['<sip:bob@example.com>;tag=abc', 'tag', 'abc'],
  ['"Bob" <sip:bob@example.com;tag=uri-param>;tag=hdr', 'tag', 'hdr'],
  ['<sip:bob@example.com;tag=uri-param>', 'tag', null],
  ['sip:bob@example.com;tag=abc', 'tag', 'abc'],
  ['sip:bob@example.com ; TAG = abc ;x=1', 'tag', 'abc'],
  ['<sip:b@x>;tagx=1;tag=2', 'tag', '2'],
  ['<sip:b@x>;xtag=1', 'tag', null],
  ['<sip:b@x>;tag=;tag=2', 'tag', '2'],
  ['<sip:b@x>;tag', 'tag', null],
  ['<sip:b@x>;tag=a b', 'tag', 'a'],
  ['<sip:b@x>;expires=3600', 'expires', '3600'],
  ['<sip:b@x>', 'tag', null],
  ['', 'tag', null],
];

for (const [value, name, want] of PARAM_CASES) {
  test(`headerParam(${JSON.stringify(value)}, ${name})`, () => {
    assert.equal(headerParam(value, name), want);
  });
}

/** The regular expression headerParam was before it became a scan: the reference. */
function byRegex(v: string, name: string): string | null {
  const gt = v.lastIndexOf('>');
  const paramsPart = gt === -1 ? v.slice(Math.max(0, v.indexOf(';'))) : v.slice(gt + 1);
  const m = new RegExp(`;\\s*${name}\\s*=\\s*([^;\\s]+)`, 'i').exec(paramsPart);
  return m === null ? null : m[1];
}

test('headerParam agrees with the regular expression on 20 000 random values', () => {
  const pieces = [';', '=', ' ', '\t', '\r\n ', '\u00a0', 't', 'a', 'g', 'T', 'A', 'G', 'tag', 'TaG', 'x', '1', '>', '<', '"', 'expires'];
  let seed = 4475;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (let i = 0; i < 20_000; i++) {
    let v = '';
    const len = rand(14);
    for (let k = 0; k < len; k++) v += pieces[rand(pieces.length)];
    for (const name of ['tag', 'expires']) assert.equal(headerParam(v, name), byRegex(v, name), JSON.stringify(v));
  }
});
