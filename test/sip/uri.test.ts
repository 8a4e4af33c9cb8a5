// parseHostPort: the sent-by of every Via and the host of every URI the proxy reads. A table of
// forms and near-misses; the dotted-quad fast path must agree with the general reading.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostPort } from '../../src/sip/uri.ts';

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
