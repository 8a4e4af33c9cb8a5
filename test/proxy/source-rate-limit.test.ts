// The per-source limit of new requests (src/proxy/source-rate-limit.ts, pikeRequests): the
// limiter alone (sliding window, block and unblock, allow-list, the bounded table under a flood of
// forged addresses, reload), then inside SipProxy (what counts as new, what a blocked address may
// still send, the cluster's addresses, the drop counter and the gauge).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino, type Logger } from 'pino';
import { MAX_SOURCES, SourceRateLimit, sourceKey, type SourceLimitSettings } from '../../src/proxy/source-rate-limit.ts';
import { ProxyStats } from '../../src/proxy/stats.ts';
import { proxyPolicy } from '../../src/proxy/policy.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, NODE_A, type Harness } from '../helpers/proxy.ts';

/** A logger whose lines are kept, parsed. */
function capturingLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

function limiter(settings: Partial<SourceLimitSettings> = {}, capacity?: number): { l: SourceRateLimit; stats: ProxyStats; lines: Record<string, unknown>[] } {
  const stats = new ProxyStats();
  const { log, lines } = capturingLog();
  const l = new SourceRateLimit({ requests: 10, windowMs: 1000, blockMs: 5000, allow: [], ...settings }, { stats, log, capacity, sweepTimer: false });
  return { l, stats, lines };
}

/** Drops among `n` requests from `ip` at `now`. */
function burst(l: SourceRateLimit, ip: string, n: number, now: number): number {
  let dropped = 0;
  for (let i = 0; i < n; i++) if (l.drops(ip, now)) dropped++;
  return dropped;
}

// Windows are aligned on multiples of windowMs (1000 here); T is well inside window 1000.
const T = 1_000_000;

describe('SourceRateLimit: sliding window of two buckets', () => {
  // limit 10 per 1000 ms. Each case: bursts [time, count], then the drops expected of the last one.
  const cases: { name: string; bursts: [number, number][]; lastDrops: number }[] = [
    { name: 'the limit itself passes', bursts: [[T, 10]], lastDrops: 0 },
    { name: 'one more in the same window is dropped', bursts: [[T, 11]], lastDrops: 1 },
    { name: 'a full previous window weighs (almost) fully at the start of the next', bursts: [[T + 999, 10], [T + 1000, 2]], lastDrops: 1 },
    // (1000 - 1 - 500) / 1000 of 10, rounded down: 4 of the previous window still count.
    { name: 'half way through the next window it weighs (just under) half', bursts: [[T + 999, 10], [T + 1500, 6]], lastDrops: 0 },
    { name: '... and one more than that is over', bursts: [[T + 999, 10], [T + 1500, 7]], lastDrops: 1 },
    { name: 'a window skipped forgets the count', bursts: [[T + 999, 10], [T + 2000, 10]], lastDrops: 0 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { l } = limiter();
      let last = 0;
      for (const [at, n] of c.bursts) last = burst(l, '192.0.2.1', n, at);
      assert.equal(last, c.lastDrops);
    });
  }

  // Evenly spaced requests, whatever their phase against the window boundaries.
  const steady: { perSecond: number; phaseMs: number; blocked: boolean }[] = [
    { perSecond: 10, phaseMs: 0, blocked: false },
    { perSecond: 10, phaseMs: 50, blocked: false },
    { perSecond: 10, phaseMs: 99, blocked: false },
    { perSecond: 9, phaseMs: 37, blocked: false },
    { perSecond: 12, phaseMs: 0, blocked: true },
    { perSecond: 12, phaseMs: 50, blocked: true },
  ];
  for (const c of steady) {
    test(`a steady ${c.perSecond}/s (phase ${c.phaseMs} ms) against 10/s: ${c.blocked ? 'blocked' : 'never blocked'}`, () => {
      const { l } = limiter();
      let dropped = 0;
      for (let k = 0; k < c.perSecond * 10; k++) if (l.drops('192.0.2.1', T + c.phaseMs + Math.floor((k * 1000) / c.perSecond))) dropped++;
      assert.equal(dropped > 0, c.blocked, `${dropped} dropped`);
    });
  }

  test('each address has its own count', () => {
    const { l } = limiter();
    assert.equal(burst(l, '192.0.2.1', 20, T), 10);
    assert.equal(burst(l, '192.0.2.2', 10, T), 0);
    assert.equal(burst(l, '2001:db8::1', 10, T), 0);
  });
});

describe('SourceRateLimit: IPv6 sources are counted per /64', () => {
  const KEYS: [string, string][] = [
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:ffff:ffff:ffff:ffff', '2001:db8:0:0::/64'],
    ['2001:0DB8:0001:0002:0003::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    // IPv4 clients of a dual-stack socket, and IPv4 itself: per address.
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['192.0.2.1', '192.0.2.1'],
  ];
  for (const [ip, key] of KEYS) test(`${ip} is counted as ${key}`, () => assert.equal(sourceKey(ip), key));

  test('addresses of one /64 share a count: rotating through them buys nothing', () => {
    const { l, lines } = limiter();
    let dropped = 0;
    for (let i = 1; i <= 30; i++) if (l.drops(`2001:db8:1:2::${i.toString(16)}`, T)) dropped++;
    assert.equal(dropped, 20);
    assert.equal(l.isBlocked('2001:db8:1:2::ffff'), true, 'the whole /64 is blocked');
    assert.equal(lines.find((x) => String(x.msg).startsWith('source blocked'))?.source, '2001:db8:1:2::/64');
  });

  test('another /64 has its own count', () => {
    const { l } = limiter();
    assert.equal(burst(l, '2001:db8:1:2::1', 20, T), 10);
    assert.equal(burst(l, '2001:db8:1:3::1', 10, T), 0);
  });

  test('one host of a /64 on the allow-list passes by its own address; its neighbours are counted', () => {
    const { l } = limiter({ allow: ['2001:db8:1:2::7/128'] });
    assert.equal(burst(l, '2001:db8:1:2::7', 100, T), 0);
    assert.equal(burst(l, '2001:db8:1:2::8', 20, T), 10);
  });

  test('an allow-list prefix that covers the /64 lets all of it through', () => {
    const { l } = limiter({ allow: ['2001:db8:1::/48'] });
    assert.equal(burst(l, '2001:db8:1:2::1', 100, T), 0);
    assert.equal(burst(l, '2001:db8:1:ff::1', 100, T), 0);
  });
});

describe('SourceRateLimit: block and unblock', () => {
  test('over the limit: blocked, one warn line, the gauge counts it', () => {
    const { l, stats, lines } = limiter();
    assert.equal(burst(l, '192.0.2.1', 50, T), 40);
    assert.equal(l.isBlocked('192.0.2.1'), true);
    assert.equal(stats.sourcesBlocked, 1);
    const warns = lines.filter((x) => x.level === 40);
    assert.equal(warns.length, 1);
    assert.equal(warns[0].source, '192.0.2.1');
    assert.equal(warns[0].requests, 11);
    assert.equal(warns[0].pikeRequests, 10);
  });

  test('blocked: even a request under the limit is dropped until blockMs has passed', () => {
    const { l } = limiter();
    burst(l, '192.0.2.1', 11, T);
    // Windows later the rate is back to nothing, but the block (5000 ms from T) holds.
    assert.equal(l.drops('192.0.2.1', T + 3000), true);
    assert.equal(l.drops('192.0.2.1', T + 4999), true);
    assert.equal(l.drops('192.0.2.1', T + 5000), false);
    assert.equal(l.isBlocked('192.0.2.1'), false);
  });

  test('a source that keeps flooding stays blocked: every request over the limit extends the block', () => {
    const { l, lines } = limiter();
    // 5 every 100 ms: the first 10 pass, every later one is dropped.
    for (let t = T; t < T + 20_000; t += 100) assert.equal(burst(l, '192.0.2.1', 5, t), t < T + 200 ? 0 : 5, `at +${t - T} ms`);
    // 50 a second is over 10 a second throughout: blocked from the first window on, and the block
    // runs 5000 ms from the last request that found it over the limit (at +19900).
    assert.equal(l.drops('192.0.2.1', T + 19_900 + 4999), true);
    assert.equal(l.drops('192.0.2.1', T + 19_900 + 5000), false);
    assert.equal(lines.filter((x) => x.level === 40).length, 1, 'one warn for one block');
  });

  test('sweep unblocks the addresses that went quiet: gauge back to 0, an info line with what was dropped', () => {
    const { l, stats, lines } = limiter();
    burst(l, '192.0.2.1', 30, T);
    l.sweep(T + 4999);
    assert.equal(stats.sourcesBlocked, 1);
    l.sweep(T + 5000);
    assert.equal(stats.sourcesBlocked, 0);
    assert.equal(l.isBlocked('192.0.2.1'), false);
    const infos = lines.filter((x) => x.level === 30);
    assert.equal(infos.length, 1);
    assert.equal(infos[0].source, '192.0.2.1');
    assert.equal(infos[0].dropped, 20);
    assert.equal(infos[0].blockedMs, 5000);
  });

  test('many addresses blocked at once: one warn line a second, the others counted in the next line', () => {
    const { l, stats, lines } = limiter();
    for (let i = 0; i < 100; i++) burst(l, `198.51.100.${i}`, 11, T);
    assert.equal(stats.sourcesBlocked, 100);
    assert.ok(lines.filter((x) => x.level === 40).length <= 2, 'the log is not flooded');
    l.sweep(T + 10_000);
    assert.equal(stats.sourcesBlocked, 0);
    assert.ok(lines.filter((x) => x.level === 30).length <= 2);
  });
});

describe('SourceRateLimit: pikeAllow (CIDR, IPv4 and IPv6)', () => {
  const allow = ['10.0.0.0/8', '192.0.2.7/32', 'fd00::/8', '2001:db8::1/128', '::ffff:203.0.113.0/120'];
  const cases: { ip: string; allowed: boolean }[] = [
    { ip: '10.0.0.1', allowed: true },
    { ip: '10.255.255.255', allowed: true },
    { ip: '11.0.0.1', allowed: false },
    { ip: '9.255.255.255', allowed: false },
    { ip: '192.0.2.7', allowed: true },
    { ip: '192.0.2.8', allowed: false },
    // A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6 addresses.
    { ip: '::ffff:10.1.2.3', allowed: true },
    { ip: '::ffff:11.1.2.3', allowed: false },
    { ip: 'fd12:3456::1', allowed: true },
    { ip: 'fe80::1', allowed: false },
    { ip: '2001:db8::1', allowed: true },
    { ip: '2001:db8::2', allowed: false },
    { ip: '203.0.113.9', allowed: true },
    { ip: '203.0.114.9', allowed: false },
  ];
  for (const c of cases) {
    test(`${c.ip}: ${c.allowed ? 'never limited' : 'limited'}`, () => {
      const { l } = limiter({ allow });
      assert.equal(burst(l, c.ip, 100, T), c.allowed ? 0 : 90);
    });
  }

  test('reload: an address put on the allow-list while blocked is unblocked at once', () => {
    const { l, stats } = limiter();
    burst(l, '192.0.2.1', 20, T);
    assert.equal(stats.sourcesBlocked, 1);
    l.reconfigure({ requests: 10, windowMs: 1000, blockMs: 5000, allow: ['192.0.2.0/24'] }, T + 1);
    assert.equal(stats.sourcesBlocked, 0);
    assert.equal(burst(l, '192.0.2.1', 100, T + 2), 0);
    // ... and taken off again: limited from now on.
    l.reconfigure({ requests: 10, windowMs: 1000, blockMs: 5000, allow: [] }, T + 3);
    assert.equal(burst(l, '192.0.2.1', 100, T + 10_000), 90);
  });

  test('reload: a higher limit applies to the next request; a blocked address stays blocked', () => {
    const { l } = limiter();
    burst(l, '192.0.2.1', 11, T);
    l.reconfigure({ requests: 1000, windowMs: 1000, blockMs: 5000, allow: [] }, T);
    assert.equal(l.isBlocked('192.0.2.1'), true);
    assert.equal(burst(l, '192.0.2.2', 500, T), 0);
  });
});

describe('SourceRateLimit: the table is bounded', () => {
  test(`1,000,000 distinct (forged) sources: at most ${MAX_SOURCES} tracked, memory flat, the real flooder stays blocked`, () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { l, stats } = limiter({ requests: 100, windowMs: 1000, blockMs: 5000 });
    const flooder = '203.0.113.66';
    // A one-off address, distinct for each i below 2^24.
    const forged = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    let i = 0;
    let t = T;
    const run = (until: number): void => {
      for (; i < until; i++) {
        // The flooder sends one in ten packets; time moves 1 ms per 100 packets (100k packets a second).
        if (i % 10 === 0) l.drops(flooder, t);
        l.drops(forged(i), t);
        if (i % 100 === 0) t++;
      }
    };
    run(MAX_SOURCES);
    assert.equal(l.size, MAX_SOURCES);
    gc();
    const filled = process.memoryUsage().heapUsed;
    run(1_000_000);
    gc();
    const grown = process.memoryUsage().heapUsed - filled;
    assert.ok(l.size <= MAX_SOURCES, `table holds ${l.size}`);
    assert.ok(grown < 8 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MB after 900,000 more sources`);
    // Marked on every packet, the flooder's entry survived every pass of the eviction hand.
    assert.equal(l.isBlocked(flooder), true);
    assert.equal(stats.sourcesBlocked, 1);
  });

  test('a blocked entry that is evicted leaves the blocked count', () => {
    const { l, stats } = limiter({}, 16);
    burst(l, '192.0.2.1', 11, T);
    assert.equal(stats.sourcesBlocked, 1);
    for (let i = 0; i < 64; i++) l.drops(`198.51.100.${i}`, T + 1);
    assert.equal(l.size, 16);
    assert.equal(l.isBlocked('192.0.2.1'), false);
    assert.equal(stats.sourcesBlocked, 0);
  });
});

// ================================================================================ in the proxy

const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.10', port: 5060, connectionId: 0 };
const OTHER: Inbound = { ...CLIENT, ip: '198.51.100.20' };

let seq = 0;
function request(method: string, opts: { toTag?: boolean; userAgent?: string; callId?: string } = {}): Buffer {
  const n = ++seq;
  const callId = opts.callId ?? `call-${n}`;
  return Buffer.from([
    `${method} sip:service@10.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-${n}`,
    'From: <sip:caller@example.org>;tag=f1',
    `To: <sip:service@example.com>${opts.toTag === true ? ';tag=t1' : ''}`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    'Max-Forwards: 70',
    ...(opts.userAgent === undefined ? [] : [`User-Agent: ${opts.userAgent}`]),
    'Content-Length: 0',
  ].join('\r\n') + '\r\n\r\n', 'latin1');
}

function pike(config: Partial<Config> = {}): Harness {
  return harness({ config: { pikeRequests: 5, pikeWindow: 60_000, pikeBlockTime: 60_000, ...config } });
}

/** Messages sent to a node since `from` (siplb's 100 Trying goes back to the client). */
function forwarded(h: Harness, from: number): number {
  return h.sent.slice(from).filter((s) => s.side === 'internal').length;
}

describe('SipProxy with pikeRequests', () => {
  test('policy: pikeRequests 0 is off; otherwise the four keys together', () => {
    assert.equal(proxyPolicy(defaultConfig()).sourceLimit, null);
    assert.deepEqual(proxyPolicy({ ...defaultConfig(), pikeRequests: 7, pikeAllow: ['10.0.0.0/8'] }).sourceLimit,
      { requests: 7, windowMs: 2000, blockMs: 30_000, allow: ['10.0.0.0/8'] });
  });

  test('a flood of INVITEs from one address is dropped after the limit; another address is still forwarded', () => {
    const h = pike();
    const start = h.sent.length;
    for (let i = 0; i < 100; i++) h.feed(request('INVITE'), CLIENT);
    // Each forwarded INVITE also gets siplb's 100 Trying back: 2 messages sent per INVITE.
    assert.equal(h.sent.length - start, 5 * 2);
    assert.equal(h.stats.dropped.get('rate-limited'), 95);
    assert.equal(h.stats.sourcesBlocked, 1);
    const other = h.sent.length;
    for (let i = 0; i < 5; i++) h.feed(request('INVITE'), OTHER);
    assert.equal(forwarded(h, other), 5);
    assert.equal(h.stats.dropped.get('rate-limited'), 95);
    assert.deepEqual(h.stats.toJSON().sourcesBlocked, 1);
  });

  test('a blocked address still gets its ACK, CANCEL and in-dialog requests through; only new requests count', () => {
    const h = pike();
    for (let i = 0; i < 10; i++) h.feed(request('INVITE'), CLIENT);
    assert.equal(h.stats.dropped.get('rate-limited'), 5);
    const cases: { name: string; data: Buffer }[] = [
      { name: 'BYE (To tag)', data: request('BYE', { toTag: true }) },
      { name: 're-INVITE (To tag)', data: request('INVITE', { toTag: true }) },
      { name: 'ACK', data: request('ACK', { toTag: true }) },
      { name: 'CANCEL', data: request('CANCEL') },
    ];
    for (const c of cases) {
      const out = h.feed(c.data, CLIENT);
      assert.ok(out.some((s) => s.side === 'internal'), `${c.name} forwarded to a node`);
    }
    assert.equal(h.stats.dropped.get('rate-limited'), 5);
    // Out-of-dialog requests other than INVITE are new requests too.
    for (const method of ['REGISTER', 'OPTIONS', 'MESSAGE', 'SUBSCRIBE']) assert.deepEqual(h.feed(request(method), CLIENT), [], method);
    assert.equal(h.stats.dropped.get('rate-limited'), 9);
  });

  test('dropped before any answer: a malformed request from a blocked address gets no 400', () => {
    const h = pike();
    for (let i = 0; i < 10; i++) h.feed(request('INVITE'), CLIENT);
    const cases: { name: string; data: Buffer; status: number }[] = [
      { name: 'CSeq method not the request\'s', data: Buffer.from(request('INVITE').toString('latin1').replace('CSeq: 1 INVITE', 'CSeq: 1 BYE'), 'latin1'), status: 400 },
      { name: 'Max-Forwards 0', data: Buffer.from(request('INVITE').toString('latin1').replace('Max-Forwards: 70', 'Max-Forwards: 0'), 'latin1'), status: 483 },
    ];
    for (const c of cases) {
      assert.deepEqual(h.feed(c.data, CLIENT), [], c.name);
      // The same message from an address that is not blocked is answered.
      const out = h.feed(c.data, OTHER);
      assert.equal(out.length, 1, c.name);
      assert.match(out[0].data.toString('latin1'), new RegExp(`^SIP/2\\.0 ${c.status} `), c.name);
    }
  });

  test('a node\'s address is never limited, whatever port it sends from', () => {
    const h = pike();
    const fromNodeIp: Inbound = { ...CLIENT, ip: NODE_A.ip, port: 40_000, transport: 'tcp', connectionId: 7 };
    for (let i = 0; i < 50; i++) h.feed(request('MESSAGE'), fromNodeIp);
    for (let i = 0; i < 50; i++) h.feed(request('INVITE'), { ...CLIENT, ip: NODE_A.ip, port: NODE_A.ports.udp as number });
    assert.equal(h.stats.dropped.get('rate-limited'), undefined);
    assert.equal(h.stats.sourcesBlocked, 0);
  });

  test('pikeAllow: an allow-listed network is never limited', () => {
    const h = pike({ pikeAllow: ['192.0.2.0/24'] });
    for (let i = 0; i < 50; i++) h.feed(request('INVITE'), CLIENT);
    assert.equal(h.stats.dropped.get('rate-limited'), undefined);
    for (let i = 0; i < 50; i++) h.feed(request('INVITE'), OTHER);
    assert.equal(h.stats.dropped.get('rate-limited'), 45);
  });

  test('reload (setPolicy): turned off, nothing is limited and the gauge is 0; turned on again, limits anew', () => {
    const h = pike();
    for (let i = 0; i < 10; i++) h.feed(request('INVITE'), CLIENT);
    assert.equal(h.stats.sourcesBlocked, 1);
    h.proxy.setPolicy(proxyPolicy({ ...defaultConfig(), host: '10.0.0.1', externalHost: '10.0.0.1', internalHost: '10.0.0.1', externalPort: 5060, pikeRequests: 0 }));
    assert.equal(h.stats.sourcesBlocked, 0);
    for (let i = 0; i < 10; i++) h.feed(request('INVITE'), CLIENT);
    assert.equal(h.stats.dropped.get('rate-limited'), 5);
    h.proxy.setPolicy(proxyPolicy({ ...defaultConfig(), host: '10.0.0.1', externalHost: '10.0.0.1', internalHost: '10.0.0.1', externalPort: 5060, pikeRequests: 3, pikeWindow: 60_000 }));
    for (let i = 0; i < 10; i++) h.feed(request('INVITE'), CLIENT);
    assert.equal(h.stats.dropped.get('rate-limited'), 5 + 7);
    h.proxy.close();
  });

  test('a scanner\'s User-Agent is dropped as blocked before the rate limit counts it', () => {
    const h = pike();
    for (let i = 0; i < 20; i++) assert.deepEqual(h.feed(request('INVITE', { userAgent: 'friendly-scanner' }), CLIENT), []);
    assert.equal(h.stats.dropped.get('blocked'), 20);
    assert.equal(h.stats.dropped.get('rate-limited'), undefined);
    h.proxy.close();
  });
});
