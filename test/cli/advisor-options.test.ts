// siplb-advisor's command line: defaults, and each refusal naming the option, the value and the
// reason (a UsageError: exit 2).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAdvisorCommand, parseEndpoint, type AdvisorCommand } from '../../src/cli/advisor-options.ts';
import { UsageError } from '../../src/core/errors.ts';

const BASE = ['--vip', '10.231.0.10', '--balancer', '10.231.2.2'];

function parse(argv: string[]): AdvisorCommand {
  const r = parseAdvisorCommand(argv);
  assert.equal(r.help, false);
  return r as AdvisorCommand;
}

describe('siplb-advisor options', () => {
  test('defaults: port 5060, interval 7000, timeout 2000, rise 2, fall 3, 256 buckets, seed 0, udp+tcp, table siplb_advisor, http 127.0.0.1:2016', () => {
    const c = parse(BASE);
    const s = c.settings;
    assert.deepEqual(s.dataPlane, {
      table: 'siplb_advisor', family: 'ip', vip: '10.231.0.10', port: 5060, buckets: 256, seed: 0,
      balancers: [{ host: '10.231.2.2', port: 5060 }],
    });
    assert.deepEqual([s.intervalMs, s.timeoutMs, s.rise, s.fall, s.transports], [7000, 2000, 2, 3, ['udp', 'tcp']]);
    assert.deepEqual(c.http, { host: '127.0.0.1', port: 2016 });
    assert.equal(c.dryRun, false);
  });

  test('everything given', () => {
    const c = parse(['--vip', '10.231.0.10', '--port', '5080', '--balancer', '10.231.2.2:5070,10.231.3.2', '--balancer', '10.231.4.2:5090',
      '--interval', '500', '--timeout', '300', '--rise', '1', '--fall', '2', '--buckets', '64', '--seed', '4294967295',
      '--probe-transports', 'udp', '--table', 'adv_test', '--http', 'off', '--dry-run', '--log-level', 'warn']);
    assert.deepEqual(c.settings.dataPlane.balancers, [{ host: '10.231.2.2', port: 5070 }, { host: '10.231.3.2', port: 5080 }, { host: '10.231.4.2', port: 5090 }]);
    assert.deepEqual([c.settings.intervalMs, c.settings.timeoutMs, c.settings.rise, c.settings.fall], [500, 300, 1, 2]);
    assert.deepEqual([c.settings.dataPlane.buckets, c.settings.dataPlane.seed, c.settings.dataPlane.table], [64, 4294967295, 'adv_test']);
    assert.deepEqual(c.settings.transports, ['udp']);
    assert.equal(c.http, null);
    assert.equal(c.dryRun, true);
    assert.equal(c.level, 'warn');
  });

  test('a short interval without --timeout gets half of it', () => {
    assert.equal(parse([...BASE, '--interval', '400']).settings.timeoutMs, 200);
  });

  test('IPv6 VIP: an ip6 table, bracketed balancers with ports, bare ones without', () => {
    const c = parse(['--vip', 'fd00:231::10', '--balancer', '[fd00:231:2::2]:5070', '--balancer', 'FD00:231:3::2', '--http', '[::1]:0']);
    assert.equal(c.settings.dataPlane.family, 'ip6');
    assert.deepEqual(c.settings.dataPlane.balancers, [{ host: 'fd00:231:2::2', port: 5070 }, { host: 'fd00:231:3::2', port: 5060 }]);
    assert.deepEqual(c.http, { host: '::1', port: 0 });
  });

  test('--help', () => {
    assert.deepEqual(parseAdvisorCommand(['--help']), { help: true });
  });

  const ERRORS: Array<{ argv: string[]; message: RegExp }> = [
    { argv: ['--balancer', '10.231.2.2'], message: /^--vip is required$/ },
    { argv: ['--vip', '10.231.0.10'], message: /^--balancer is required/ },
    { argv: ['--vip', 'vip.example.com', '--balancer', '10.231.2.2'], message: /^--vip "vip\.example\.com": expected an IPv4 or IPv6 address$/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', 'lb1.example.com'], message: /^--balancer "lb1\.example\.com": expected IP\[:PORT\].*not a host name$/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', '10.231.2.2:0'], message: /^--balancer "10\.231\.2\.2:0": expected IP\[:PORT\]/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', '10.231.2.2:70000'], message: /^--balancer "10\.231\.2\.2:70000": expected IP\[:PORT\]/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', 'fd00::2'], message: /^--balancer "fd00::2": not of the VIP's address family \(IPv4\)$/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', '10.231.0.10'], message: /^--balancer "10\.231\.0\.10": is the VIP itself$/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', '10.231.2.2', '--balancer', '10.231.2.2:5060'], message: /^--balancer "10\.231\.2\.2:5060": given twice$/ },
    { argv: [...BASE, '--port', '0'], message: /^--port "0": expected an integer from 1 to 65535$/ },
    { argv: [...BASE, '--interval', 'soon'], message: /^--interval "soon": expected an integer from 100 to 3600000$/ },
    { argv: [...BASE, '--timeout', '7000'], message: /^--timeout "7000": must be below --interval \(7000 ms\)/ },
    { argv: [...BASE, '--interval', '500', '--timeout', '600'], message: /^--timeout "600": must be below --interval \(500 ms\)/ },
    { argv: [...BASE, '--rise', '0'], message: /^--rise "0": expected an integer from 1 to 100$/ },
    { argv: [...BASE, '--fall', '1.5'], message: /^--fall "1\.5": expected an integer from 1 to 100$/ },
    { argv: [...BASE, '--buckets', '0'], message: /^--buckets "0": expected an integer from 1 to 65536$/ },
    { argv: ['--vip', '10.231.0.10', '--balancer', '10.231.2.2,10.231.3.2', '--buckets', '1'], message: /^--buckets "1": fewer buckets than the 2 balancers$/ },
    { argv: [...BASE, '--seed', '4294967296'], message: /^--seed "4294967296": expected an integer from 0 to 4294967295$/ },
    { argv: [...BASE, '--probe-transports', 'udp,tls'], message: /^--probe-transports "udp,tls": "tls" is not udp or tcp$/ },
    { argv: [...BASE, '--table', 'my-table'], message: /^--table "my-table": expected a name of letters/ },
    { argv: [...BASE, '--http', 'localhost:2016'], message: /^--http "localhost:2016": expected IP:PORT/ },
    { argv: [...BASE, '--log-level', 'loud'], message: /^--log-level "loud": expected one of/ },
    { argv: [...BASE, '--frobnicate'], message: /frobnicate/ },
  ];
  for (const e of ERRORS) {
    test(`refused: ${e.argv.slice(e.argv.length > 4 ? 4 : 0).join(' ')}`, () => {
      assert.throws(() => parseAdvisorCommand(e.argv), (err: unknown) => {
        assert.ok(err instanceof UsageError, String(err));
        assert.equal(err.exitCode, 2);
        assert.match(err.message, e.message);
        return true;
      });
    });
  }

  test('endpoints: IPv4, IPv4:port, bare IPv6, [IPv6]:port; names refused', () => {
    assert.deepEqual(parseEndpoint('10.0.0.1', 5060), { host: '10.0.0.1', port: 5060 });
    assert.deepEqual(parseEndpoint('10.0.0.1:5070', 5060), { host: '10.0.0.1', port: 5070 });
    assert.deepEqual(parseEndpoint('fd00::1', 5060), { host: 'fd00::1', port: 5060 });
    assert.deepEqual(parseEndpoint('[fd00::1]:5070', 5060), { host: 'fd00::1', port: 5070 });
    assert.equal(parseEndpoint('lb:5060', 5060), null);
    assert.equal(parseEndpoint('[lb]:5060', 5060), null);
  });
});
