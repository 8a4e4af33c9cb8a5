// The per-source limit's keys (src/config/keys.ts: pikeRequests, pikeWindow, pikeBlockTime,
// pikeAllow) as loadConfigText reads them: accepted values and their canonical form, and refused
// ones, each naming the key, the value and why.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';

describe('pike keys: accepted', () => {
  test('defaults: off, 2000 ms window, 30 s block, nothing allow-listed', () => {
    const { config } = loadConfigText('');
    assert.equal(config.pikeRequests, 0);
    assert.equal(config.pikeWindow, 2000);
    assert.equal(config.pikeBlockTime, 30_000);
    assert.deepEqual(config.pikeAllow, []);
  });

  const allow: { raw: string; parsed: string[] }[] = [
    { raw: '10.0.0.0/8', parsed: ['10.0.0.0/8'] },
    { raw: '192.0.2.7', parsed: ['192.0.2.7/32'] },
    { raw: '0.0.0.0/0', parsed: ['0.0.0.0/0'] },
    { raw: 'fd00::/8', parsed: ['fd00::/8'] },
    { raw: '2001:DB8:0:0::1', parsed: ['2001:db8::1/128'] },
    { raw: '2001:db8::/32, 10.1.0.0/16 ,192.0.2.128/25', parsed: ['2001:db8::/32', '10.1.0.0/16', '192.0.2.128/25'] },
    { raw: '::ffff:203.0.113.0/120', parsed: ['::ffff:203.0.113.0/120'] },
    { raw: '', parsed: [] },
  ];
  for (const c of allow) {
    test(`pikeAllow=${c.raw}`, () => {
      assert.deepEqual(loadConfigText(`pikeAllow=${c.raw}\n`).config.pikeAllow, c.parsed);
    });
  }

  test('numbers at their bounds', () => {
    const { config } = loadConfigText('pikeRequests=1000000\npikeWindow=100\npikeBlockTime=1000\n');
    assert.equal(config.pikeRequests, 1_000_000);
    assert.equal(config.pikeWindow, 100);
    assert.equal(config.pikeBlockTime, 1000);
  });
});

describe('pike keys: refused, naming key, value and reason', () => {
  const cases: { key: string; value: string; reason: RegExp }[] = [
    { key: 'pikeRequests', value: '-1', reason: /from 0 \(off\) to 1000000/ },
    { key: 'pikeRequests', value: '1e3', reason: /integer/ },
    { key: 'pikeRequests', value: '1000001', reason: /to 1000000/ },
    { key: 'pikeWindow', value: '99', reason: /from 100 to 600000/ },
    { key: 'pikeWindow', value: '2s', reason: /milliseconds/ },
    { key: 'pikeBlockTime', value: '999', reason: /from 1000/ },
    { key: 'pikeAllow', value: '10.0.0.0/33', reason: /entry '10\.0\.0\.0\/33'.*prefix length .* 0 to 32/ },
    { key: 'pikeAllow', value: 'fd00::/129', reason: /0 to 128/ },
    { key: 'pikeAllow', value: '10.0.0.1/8', reason: /bits set beyond the \/8 prefix/ },
    { key: 'pikeAllow', value: 'fd00::1/8', reason: /bits set beyond the \/8 prefix/ },
    { key: 'pikeAllow', value: '10.0.0/8', reason: /IPv4 or IPv6 address/ },
    { key: 'pikeAllow', value: 'sbc.example.com', reason: /IPv4 or IPv6 address/ },
    { key: 'pikeAllow', value: '[fd00::]/8', reason: /no brackets/ },
    { key: 'pikeAllow', value: 'fe80::1%eth0', reason: /no zone/ },
    { key: 'pikeAllow', value: '10.0.0.0/', reason: /prefix length/ },
    { key: 'pikeAllow', value: '10.0.0.0/08x', reason: /prefix length/ },
    { key: 'pikeAllow', value: '10.0.0.0/8,,192.0.2.1', reason: /empty entry/ },
    { key: 'pikeAllow', value: '10.0.0.0/8,10.0.0.0/8', reason: /duplicates/ },
    { key: 'pikeAllow', value: '2001:db8::1,2001:DB8::1/128', reason: /duplicates/ },
  ];
  for (const c of cases) {
    test(`${c.key}=${c.value}`, () => {
      assert.throws(() => loadConfigText(`${c.key}=${c.value}\n`), (err: unknown) => {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
        assert.equal(err.key, c.key);
        assert.equal(err.value, c.value);
        assert.match(err.reason, c.reason);
        return true;
      });
    });
  }
});
