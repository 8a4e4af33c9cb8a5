// ipFamily must say exactly what net.isIP says (it is its fast path): a table of literals and
// near-misses, each checked against net.isIP itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { ipFamily, normaliseIp } from '../../src/transport/ip.ts';

const INPUTS = [
  '127.0.0.1', '10.0.0.254', '255.255.255.255', '0.0.0.0', '1.2.3.4', '192.168.100.10',
  '256.1.1.1', '1.2.3.256', '1.2.3', '1.2.3.4.5', '1.2.3.4.', '.1.2.3.4', '1..2.3', '01.2.3.4', '1.2.3.04',
  '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4:5060', '1234.1.1.1', 'a.b.c.d', 'example.com', 'node1', '',
  '::1', '::', 'fe80::1', '2001:db8::10', '::ffff:10.0.0.1', '1234::1', '01::1', '2001:db8::1%eth0', ':::1', '1:2:3',
];

for (const s of INPUTS) {
  test(`ipFamily(${JSON.stringify(s)}) = net.isIP = ${isIP(s)}`, () => {
    assert.equal(ipFamily(s), isIP(s));
  });
}

test('normaliseIp strips the v4-mapped prefix only from IPv4 peers', () => {
  assert.equal(normaliseIp('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(normaliseIp('::ffff:a'), '::ffff:a');
  assert.equal(normaliseIp('10.0.0.1'), '10.0.0.1');
});
