import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { warmUp } from '../../src/proxy/warm-up.ts';

// Every configured shape of the path must run whole: a warm-up whose messages stop early (a 400,
// an unroutable response) would leave the response path and the editor as cold as before.
const SHAPES: { name: string; cfg: Partial<Config> }[] = [
  { name: 'one port', cfg: { externalHost: '127.0.0.1', externalPort: 5060 } },
  { name: 'two ports', cfg: { externalHost: '127.0.0.1', externalPort: 5060, internalHost: '127.0.0.1', internalPort: 5065 } },
  { name: 'IPv6 listener', cfg: { externalHost: '::1', externalPort: 5060 } },
  { name: 'isSendTrying, pike and overload control on', cfg: { externalHost: '127.0.0.1', externalPort: 5060, isSendTrying: true, pikeRequests: 10, overloadControl: true } },
  { name: 'blockedValues that would match the synthetic user agent', cfg: { externalHost: '127.0.0.1', externalPort: 5060, blockedValues: ['sipp'] } },
];

for (const shape of SHAPES) {
  test(`warm-up runs every message of every call through the path: ${shape.name}`, () => {
    const r = warmUp({ ...defaultConfig(), ...shape.cfg }, 200);
    assert.equal(r.calls, 200);
    // INVITE, 180, 200, ACK, BYE, 200: each forwarded once.
    assert.equal(r.forwarded, 6 * 200);
    assert.ok(r.ms >= 0);
  });
}

test('warmUpCalls=0 runs nothing', () => {
  assert.deepEqual(warmUp({ ...defaultConfig(), externalHost: '127.0.0.1', externalPort: 5060 }, 0), { calls: 0, forwarded: 0, ms: 0 });
});

test('the default configuration warms up with 1000 calls', () => {
  assert.equal(defaultConfig().warmUpCalls, 1000);
});
