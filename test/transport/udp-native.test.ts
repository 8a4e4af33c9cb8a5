// native/udp.c through src/transport/udp-native.ts, over real loopback sockets: it takes over a
// bound dgram socket's reading (dgram hears nothing more), hands each datagram over as a buffer
// of its own with the sender's address, refuses oversized ones, sends with sendto and on a
// connected socket, reports ICMP port unreachable, and refuses bad arguments with an errno
// instead of throwing. The endpoints' use of it (UdpEndpoint, UdpPeers) is checked at the end.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { pino } from 'pino';
import { EAGAIN, ECONNREFUSED, EINVAL, NativeUdpSocket, udpAddon, type NativeReceiver } from '../../src/transport/udp-native.ts';
import { UdpEndpoint } from '../../src/transport/udp.ts';
import { ConnectionTable } from '../../src/transport/connections.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { eventually } from '../helpers/wait.ts';

const linuxOnly = { skip: process.platform !== 'linux' ? 'Linux only' : false };

async function bound(t: TestContext, type: 'udp4' | 'udp6' = 'udp4', host = '127.0.0.1'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  t.after(() => { try { socket.close(); } catch { /* closed by the test */ } });
  return socket;
}

interface Recorded {
  messages: { data: Buffer; ip: string; port: number }[];
  oversized: { bytes: number; port: number }[];
  errors: number[];
  receiver: NativeReceiver;
}

function recorder(): Recorded {
  const r: Recorded = {
    messages: [], oversized: [], errors: [],
    receiver: {
      message: (data, ip, port) => r.messages.push({ data, ip, port }),
      oversized: (bytes, _ip, port) => r.oversized.push({ bytes, port }),
      error: (errno) => r.errors.push(errno),
    },
  };
  return r;
}

function attach(t: TestContext, socket: dgram.Socket, maxMessageSize: number, r: Recorded): NativeUdpSocket {
  const attached = NativeUdpSocket.attach(socket, maxMessageSize, r.receiver);
  assert.equal(attached.why, null);
  const native = attached.socket!;
  t.after(() => native.close());
  return native;
}

function send(from: dgram.Socket, data: Buffer | string, to: dgram.Socket): Promise<void> {
  return new Promise((resolve, reject) => from.send(data, to.address().port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

describe('native/build/udp.node', linuxOnly, () => {
  test('is built (npm ci runs native/build.cjs) and loads', () => {
    const { addon, problem } = udpAddon();
    assert.equal(problem, null, `${problem}: run \`node native/build.cjs\` (needs cc: apt-get install gcc)`);
    assert.ok(addon !== null);
  });

  test('takes over reading: every datagram, its own buffer, its sender; dgram hears none', async (t) => {
    const server = await bound(t);
    const client = await bound(t);
    let heardByDgram = 0;
    server.on('message', () => heardByDgram++);
    const r = recorder();
    attach(t, server, 4096, r);
    // More than one batch (64), sent back to back, then checked after all arrived: a buffer
    // handed over earlier must not have been overwritten by a later batch.
    const sent: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const data = Buffer.from(`MESSAGE ${i} \u0000\u00ff\r\n${'x'.repeat(i * 7)}`, 'latin1');
      sent.push(data);
      await send(client, data, server);
    }
    await eventually('100 datagrams', 5_000, () => r.messages.length === 100);
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(r.messages[i]!.data, sent[i], `datagram ${i} intact`);
      assert.equal(r.messages[i]!.ip, '127.0.0.1');
      assert.equal(r.messages[i]!.port, client.address().port);
    }
    assert.equal(heardByDgram, 0);
    assert.deepEqual(r.errors, []);
  });

  test('a datagram longer than maxMessageSize is refused with its length; maxMessageSize itself passes', async (t) => {
    const server = await bound(t);
    const client = await bound(t);
    const r = recorder();
    attach(t, server, 1024, r);
    await send(client, Buffer.alloc(1024, 65), server);
    await send(client, Buffer.alloc(1025, 66), server);
    await send(client, Buffer.alloc(60_000, 67), server);
    await send(client, Buffer.alloc(0), server);
    await eventually('all four seen', 5_000, () => r.messages.length + r.oversized.length === 4);
    assert.deepEqual(r.messages.map((m) => m.data.length), [1024, 0]);
    // Longer than the slot: the kernel says it was cut (MSG_TRUNC), the length is what fitted.
    assert.deepEqual(r.oversized.map((o) => o.bytes > 1024), [true, true]);
  });

  test('the largest UDP datagram passes with the default maxMessageSize', async (t) => {
    const server = await bound(t);
    const client = await bound(t);
    const r = recorder();
    attach(t, server, 65535, r);
    await send(client, Buffer.alloc(65507, 68), server);
    await eventually('one datagram', 5_000, () => r.messages.length === 1);
    assert.equal(r.messages[0]!.data.length, 65507);
    assert.ok(r.messages[0]!.data.every((b) => b === 68));
  });

  test('sendTo reaches the address; a bad address or port is EINVAL, not a throw; closed: EINVAL', async (t) => {
    const server = await bound(t);
    const client = await bound(t);
    const got: string[] = [];
    client.on('message', (m) => got.push(m.toString('latin1')));
    const native = attach(t, server, 4096, recorder());
    assert.equal(native.sendTo('127.0.0.1', client.address().port, Buffer.from('hello')), 0);
    await eventually('the datagram', 5_000, () => got.length === 1);
    assert.equal(got[0], 'hello');
    for (const ip of ['::1', 'example.com', '', '127.0.0.1.1', '1'.repeat(40), '127.0.0.1\u0000x']) {
      assert.equal(native.sendTo(ip, client.address().port, Buffer.from('x')), EINVAL, JSON.stringify(ip));
    }
    for (const port of [0, -1, 65536, 1.5e9, Number.NaN]) assert.equal(native.sendTo('127.0.0.1', port, Buffer.from('x')), EINVAL, String(port));
    native.close();
    assert.equal(native.sendTo('127.0.0.1', client.address().port, Buffer.from('x')), EINVAL);
    native.close();
  });

  test('the addon refuses what it cannot use with an errno and never throws', async (t) => {
    const { addon } = udpAddon();
    const server = await bound(t);
    const rx = Buffer.alloc(4096);
    const meta = new Int32Array(8);
    const noop = (): void => {};
    assert.equal(addon!.open(-1, rx, meta, 1024, noop), -EINVAL);
    assert.equal(addon!.open(3, 'rx' as unknown as Buffer, meta, 1024, noop), -EINVAL);
    assert.equal(addon!.open(3, rx, new Uint32Array(8) as unknown as Int32Array, 1024, noop), -EINVAL);
    assert.equal(addon!.open(3, rx, meta, 4096, noop), -EINVAL, 'two slots of 4096 do not fit 4096 bytes');
    assert.equal(addon!.open(3, rx, new Int32Array(0), 1024, noop), -EINVAL);
    assert.equal(addon!.sendTo({}, Buffer.from('x'), '127.0.0.1', server.address().port), EINVAL);
    assert.equal(addon!.send(42 as unknown as object, Buffer.from('x')), EINVAL);
    assert.equal(addon!.close({}), EINVAL);
  });

  test('close stops reading and releases the duplicate descriptor', async (t) => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const server = await bound(t);
    const client = await bound(t);
    const before = fds();
    const r = recorder();
    const native = NativeUdpSocket.attach(server, 4096, r.receiver).socket!;
    assert.equal(fds(), before + 1);
    await send(client, 'one', server);
    await eventually('one datagram', 5_000, () => r.messages.length === 1);
    native.close();
    assert.equal(fds(), before);
    await send(client, 'two', server);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(r.messages.length, 1);
  });

  test('closed from inside its own callback: no further callback, later sends refused, collected without harm', async (t) => {
    const server = await bound(t);
    const client = await bound(t);
    let calls = 0;
    let native: NativeUdpSocket | null = null;
    native = NativeUdpSocket.attach(server, 4096, {
      message: () => { calls++; native!.close(); },
      oversized: () => {},
      error: () => {},
    }).socket!;
    for (let i = 0; i < 5; i++) await send(client, `m${i}`, server);
    await eventually('the first callback', 5_000, () => calls > 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The batch in hand is delivered whole (copied before the first callback); nothing after it.
    const seen = calls;
    await send(client, 'after', server);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(calls, seen);
    assert.equal(native.sendTo('127.0.0.1', client.address().port, Buffer.from('x')), EINVAL);
    // The same in a child with the collector forced between rounds: the process must live on.
    const script = `
      const dgram = require('node:dgram');
      const addon = require(${JSON.stringify(new URL('../../native/build/udp.node', import.meta.url).pathname)});
      const sym = (s) => Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
      (async () => {
        for (let round = 0; round < 50; round++) {
          const s = dgram.createSocket('udp4');
          await new Promise((r) => s.bind(0, '127.0.0.1', r));
          const h = s[sym(s)].handle;
          let handle;
          const done = new Promise((resolve) => {
            handle = addon.open(h.fd, Buffer.alloc(4096), new Int32Array(8), 1024, () => { addon.close(handle); handle = null; resolve(); });
          });
          h.recvStop();
          const c = dgram.createSocket('udp4');
          c.send('x', s.address().port, '127.0.0.1');
          await done;
          global.gc();
          c.close();
          s.close();
        }
        global.gc();
        process.stdout.write('ok');
      })();`;
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ok');
  });

  test('a connected socket: send reaches the peer; a closed port comes back as ECONNREFUSED', async (t) => {
    const peer = await bound(t);
    const got: string[] = [];
    peer.on('message', (m) => got.push(m.toString('latin1')));
    const socket = await bound(t);
    await new Promise<void>((resolve, reject) => socket.connect(peer.address().port, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve())));
    const r = recorder();
    const native = attach(t, socket, 4096, r);
    assert.equal(native.send(Buffer.from('to the peer')), 0);
    await eventually('the datagram', 5_000, () => got.length === 1);
    const replyFrom = peer.address().port;
    peer.send('back', socket.address().port, '127.0.0.1');
    await eventually('the reply', 5_000, () => r.messages.length === 1);
    assert.equal(r.messages[0]!.port, replyFrom);
    peer.close();
    // The first send after the port closed draws the ICMP error: reported on reading (error
    // callback) or on the next send, whichever comes first.
    const results: number[] = [];
    await eventually('ECONNREFUSED', 5_000, () => {
      results.push(native.send(Buffer.from('again')));
      return r.errors.includes(ECONNREFUSED) || results.includes(ECONNREFUSED);
    });
    assert.ok(results.every((e) => e === 0 || e === ECONNREFUSED || e === EAGAIN), results.join(','));
  });
});

describe('native UDP reads put off while datagrams are dense (setReadDelay, udpReadDelay)', linuxOnly, () => {
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  /** Records when each datagram reached JavaScript; `then` runs after each record. */
  function timed(t: TestContext, socket: dgram.Socket, then: () => void = () => {}): { at: number[]; socket: NativeUdpSocket } {
    const at: number[] = [];
    const attached = NativeUdpSocket.attach(socket, 4096, {
      message: () => {
        at.push(performance.now());
        then();
      },
      oversized: () => {},
      error: () => {},
    });
    assert.equal(attached.why, null);
    t.after(() => attached.socket!.close());
    return { at, socket: attached.socket! };
  }

  /**
   * About 1500 datagrams a second to `a` (8 every 4 ms or so) and one every 25 ms to `b`, for `ms`;
   * `during` runs halfway through.
   */
  async function stream(client: dgram.Socket, a: dgram.Socket, b: dgram.Socket, ms: number, during: () => void = () => {}): Promise<void> {
    const start = performance.now();
    let tick = 0;
    let halfway = false;
    while (performance.now() - start < ms) {
      const sends: Promise<void>[] = [];
      for (let k = 0; k < 8; k++) sends.push(send(client, `a ${tick} ${k}`, a));
      if (tick % 5 === 0) sends.push(send(client, `b ${tick}`, b));
      await Promise.all(sends);
      if (!halfway && performance.now() - start >= ms / 2) {
        halfway = true;
        during();
      }
      tick++;
      await sleep(4);
    }
  }

  /** Groups of receive times less than `gap` ms apart: one group per wakeup that read them. */
  function groups(times: readonly number[], gap = 3): number[] {
    return times.filter((x, i) => i === 0 || x - times[i - 1]! >= gap);
  }

  /**
   * Two native sockets, `a` and `b`, timed, a client to send to them, and the addon's delay set
   * to `ms` (back to 0 after the test: it is process-wide). `onB` runs after each of b's datagrams.
   */
  async function pair(t: TestContext, ms: number, onB?: () => void) {
    const { addon } = udpAddon();
    t.after(() => addon!.setReadDelay(0));
    assert.equal(addon!.setReadDelay(ms), 0);
    const a = await bound(t);
    const b = await bound(t);
    const client = await bound(t);
    return { addon: addon!, a, b, client, ra: timed(t, a), rb: timed(t, b, onB) };
  }

  test('refuses a delay that is not a whole number of milliseconds from 0 to 100', (t) => {
    const { addon } = udpAddon();
    t.after(() => addon!.setReadDelay(0));
    for (const ms of [-1, 101, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      assert.equal(addon!.setReadDelay(ms), EINVAL, String(ms));
    }
    for (const ms of [0, 1, 100]) assert.equal(addon!.setReadDelay(ms), 0, String(ms));
  });

  test('dense: datagrams are read in one wakeup per delay, and both sockets in the same wakeups', async (t) => {
    // Without a delay: about a wakeup per burst (60 or so in 300 ms), far more than with it.
    const { addon, a, b, client, ra, rb } = await pair(t, 0);
    await stream(client, a, b, 300);
    await sleep(50);
    const undelayed = groups(ra.at).length;
    ra.at.length = 0;
    rb.at.length = 0;
    // 20 ms: the first 100 ms or more are judged before anything waits; count the last 300 ms.
    assert.equal(addon.setReadDelay(20), 0);
    let from = 0;
    await stream(client, a, b, 600, () => { from = performance.now(); });
    await sleep(100);
    const late = ra.at.filter((x) => x >= from);
    const delayed = groups(late).length;
    assert.ok(late.length >= 300, `only ${late.length} datagrams in 300 ms: not dense`);
    assert.ok(delayed <= 300 / 20 + 4, `${delayed} wakeups read ${late.length} datagrams in 300 ms with a 20 ms delay`);
    // Under half on a quiet machine; a loaded one gathers the undelayed reads too (stalls).
    assert.ok(delayed < undelayed, `${delayed} wakeups with the delay against ${undelayed} without`);
    // b's datagrams were read by the wakeups that read a's. Not every one: when a batch of a's
    // comes back full (the test's own process stalled under load), a is read again at once while
    // b waits for the timer. With a timer of its own, b would meet a's reads about one time in
    // seven (3 ms in 20); sharing one, nearly always.
    const bLate = rb.at.filter((y) => y >= from + 25);
    const shared = bLate.filter((x) => ra.at.some((y) => Math.abs(y - x) < 3)).length;
    assert.ok(bLate.length >= 5, `only ${bLate.length} datagrams of b`);
    assert.ok(shared * 2 >= bLate.length, `${shared} of ${bLate.length} datagrams of b read by a wakeup that read a's`);
  });

  test('sparse: a lone datagram after a quiet spell is read at once, even with a delay set', async (t) => {
    const { a, b, client, ra } = await pair(t, 100);
    await stream(client, a, b, 300);
    await sleep(400);
    const before = ra.at.length;
    const sent = performance.now();
    await send(client, 'lone', a);
    await eventually('the lone datagram', 5_000, () => ra.at.length > before);
    const waited = ra.at.at(-1)! - sent;
    assert.ok(waited < 60, `a lone datagram after a quiet spell waited ${waited.toFixed(1)} ms`);
  });

  test('a socket closed while it waits is not read again, and the other still is', async (t) => {
    const { a, b, client, ra, rb } = await pair(t, 20);
    let atClose = -1;
    let bAtClose = -1;
    await stream(client, a, b, 400, () => {
      ra.socket.close();
      atClose = ra.at.length;
      bAtClose = rb.at.length;
    });
    await sleep(100);
    assert.ok(atClose > 0);
    assert.equal(ra.at.length, atClose, 'nothing read from the closed socket');
    assert.ok(rb.at.length > bAtClose, 'the other socket is still read');
  });

  test('a socket closed by another socket\'s callback within one timer round is not read again', async (t) => {
    // While dense, both sockets are read at every tick without going back to epoll; closing one
    // from the other's callback must take it off the round being built as well.
    let closeA = false;
    let atClose = -1;
    let bAtClose = -1;
    const { a, b, client, ra, rb } = await pair(t, 20, () => {
      if (closeA && atClose === -1) {
        ra.socket.close();
        atClose = ra.at.length;
        bAtClose = rb.at.length;
      }
    });
    await stream(client, a, b, 500, () => { closeA = true; });
    await sleep(100);
    assert.ok(atClose > 0, 'b\'s callback closed a');
    assert.equal(ra.at.length, atClose, 'nothing read from a after it was closed');
    assert.ok(rb.at.length > bAtClose, 'b is still read');
  });
});

describe('the endpoints on native/udp.c', linuxOnly, () => {
  function endpoint(t: TestContext, host: string, udpNativeIo: boolean | undefined, got: { data: string; src: Inbound }[]): UdpEndpoint {
    const ep = new UdpEndpoint({
      side: 'external', host, port: 0, maxMessageSize: 4096, udpNativeIo, log: pino({ level: 'silent' }),
      onMessage: (data, src) => got.push({ data: data.toString('latin1'), src }), connections: new ConnectionTable(),
    });
    t.after(() => ep.close());
    return ep;
  }

  test('an IPv4 listener reads and sends natively by default, and with udpNativeIo false through dgram, alike', async (t) => {
    for (const udpNativeIo of [undefined, false]) {
      const got: { data: string; src: Inbound }[] = [];
      const ep = endpoint(t, '127.0.0.1', udpNativeIo, got);
      await ep.listen();
      assert.equal(ep.nativeReading, udpNativeIo !== false);
      const client = await bound(t);
      const echoed: string[] = [];
      client.on('message', (m) => echoed.push(m.toString('latin1')));
      client.send('OPTIONS sip:a SIP/2.0\r\n\r\n', ep.address().port, '127.0.0.1');
      await eventually('the message', 5_000, () => got.length === 1);
      assert.deepEqual(got[0]!.src, { transport: 'udp', side: 'external', ip: '127.0.0.1', port: client.address().port, connectionId: 0 });
      ep.send('127.0.0.1', client.address().port, Buffer.from('SIP/2.0 200 OK\r\n\r\n'));
      await eventually('the answer', 5_000, () => echoed.length === 1);
      assert.equal(ep.sendErrors, 0);
    }
  });

  test('an IPv6 listener stays on dgram', async (t) => {
    const got: { data: string; src: Inbound }[] = [];
    const ep = endpoint(t, '::1', undefined, got);
    await ep.listen();
    assert.equal(ep.nativeReading, false);
    const client = await bound(t, 'udp6', '::1');
    client.send('OPTIONS sip:a SIP/2.0\r\n\r\n', ep.address().port, '::1');
    await eventually('the message', 5_000, () => got.length === 1);
    assert.equal(got[0]!.src.ip, '::1');
  });
});
