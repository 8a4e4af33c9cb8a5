// IP literals as bytes (table).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipBytes } from '../../src/core/ip.ts';

const CASES: [string, number[] | null][] = [
  ['10.0.0.1', [10, 0, 0, 1]],
  ['::1', [...Array(15).fill(0), 1]],
  ['2001:db8::ff00:42', [0x20, 0x01, 0x0d, 0xb8, ...Array(8).fill(0), 0xff, 0x00, 0x00, 0x42]],
  ['::ffff:192.0.2.7', [...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 7]],
  ['fe80::1%eth0', null],
  ['10.0.0.256', null],
  ['example.org', null],
];

for (const [address, bytes] of CASES) {
  test(`ipBytes(${address})`, () => assert.deepEqual(ipBytes(address), bytes));
}
