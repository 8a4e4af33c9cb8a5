// The error classes: stable codes in siplb's own namespace, and the exit code each class gives a
// command that stops on it (2 usage or configuration, 1 bind). Where siplb's parts throw them.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';
import {
  BindError, ConfigError, ERROR_CODES, EXIT_BIND, EXIT_USAGE, NftablesError, RegistrationError, SiplbError, UsageError,
} from '../../src/core/errors.ts';
import { DemoNode } from '../../src/demo-node/demo-node.ts';

describe('error classes', () => {
  const cases: { error: SiplbError; name: string; code: string; exitCode: number }[] = [
    { error: new ConfigError('externalPort', '99999', 'must be a port'), name: 'ConfigError', code: 'SIPLB_CONFIG', exitCode: EXIT_USAGE },
    { error: new UsageError('--frobnicate is not an option'), name: 'UsageError', code: 'SIPLB_USAGE', exitCode: EXIT_USAGE },
    { error: new BindError('cannot bind UDP 127.0.0.1:5060: EADDRINUSE'), name: 'BindError', code: 'SIPLB_BIND', exitCode: EXIT_BIND },
    { error: new RegistrationError('node 10.0.0.1 registered without a UDP or TCP SIP port'), name: 'RegistrationError', code: 'SIPLB_REGISTRATION', exitCode: EXIT_USAGE },
    { error: new NftablesError('foreign-table', 'table ip siplb_advisor exists and is not siplb-advisor\'s'), name: 'NftablesError', code: 'SIPLB_NFTABLES', exitCode: EXIT_USAGE },
    { error: new NftablesError('permission', 'siplb-advisor needs root (CAP_NET_ADMIN) to program nftables'), name: 'NftablesError', code: 'SIPLB_NFTABLES', exitCode: EXIT_USAGE },
    { error: new NftablesError('failed', 'nft refused the table: Error: Could not process rule'), name: 'NftablesError', code: 'SIPLB_NFTABLES', exitCode: EXIT_BIND },
  ];
  for (const c of cases) {
    test(`${c.name}: code ${c.code}, exit ${c.exitCode}`, () => {
      assert.ok(c.error instanceof SiplbError);
      assert.ok(c.error instanceof Error);
      assert.equal(c.error.name, c.name);
      assert.equal(c.error.code, c.code);
      assert.equal(c.error.exitCode, c.exitCode);
      assert.ok(Object.values(ERROR_CODES).includes(c.error.code));
    });
  }

  test('codes are unique and in siplb\'s namespace, not Node\'s ERR_', () => {
    const codes = Object.values(ERROR_CODES);
    assert.equal(new Set(codes).size, codes.length);
    for (const code of codes) assert.match(code, /^SIPLB_[A-Z_]+$/);
  });

  test('a ConfigError names the key, the value and the reason', () => {
    const e = new ConfigError('nodes', '10.0.0.1:x', 'port must be a number');
    assert.equal(e.message, 'invalid configuration: nodes="10.0.0.1:x": port must be a number');
    assert.deepEqual([e.key, e.value, e.reason], ['nodes', '10.0.0.1:x', 'port must be a number']);
  });
});

describe('what siplb\'s parts throw', () => {
  test('a registration without a SIP port reaching the registry is a RegistrationError, not a RangeError', () => {
    const registry = new NodeRegistry({ nodeTimeoutMs: 1000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log: pino({ level: 'silent' }) });
    assert.throws(() => registry.start({ ip: '10.0.0.1', ports: {}, sessionId: 's', version: '1' }), RegistrationError);
  });

  test('a demo node with options it cannot run with is a ConfigError (exit 2), not a BindError (exit 1)', () => {
    const logger = pino({ level: 'silent' });
    assert.throws(() => new DemoNode({ ip: 'localhost', port: 5080, transports: ['udp'], logger }), (e: unknown) => e instanceof ConfigError && e.key === 'ip');
    assert.throws(() => new DemoNode({ ip: '127.0.0.1', port: 5080, transports: [], logger }), (e: unknown) => e instanceof ConfigError && e.exitCode === 2);
  });
});
