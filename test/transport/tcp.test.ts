// TcpEndpoint over real loopback sockets: connection reuse by peer address, the RFC 3261
// §18.2.2 fallback to the sent-by port, framing, and containment of a bad stream.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pino } from 'pino';
import { ConnectionTable } from '../../src/transport/connections.ts';
import { TcpEndpoint } from '../../src/transport/tcp.ts';
import type { Inbound } from '../../src/transport/types.ts';

const MSG = (callId: string): Buffer => Buffer.from(
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-${callId}\r\nCall-ID: ${callId}\r\nContent-Length: 0\r\n\r\n`, 'latin1');

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('TcpEndpoint', () => {
  const received: { data: string; src: Inbound }[] = [];
  const connections = new ConnectionTable();
  const ep = new TcpEndpoint({
    side: 'external', host: '127.0.0.1', port: 0, maxMessageSize: 4096, log: pino({ level: 'silent' }), connections,
    onMessage: (data, src) => received.push({ data: data.toString('latin1'), src }),
  });
  let port = 0;

  before(async () => {
    await ep.listen();
    port = ep.address().port;
  });
  after(() => ep.close());

  test('a message sent on an accepted connection goes back on that same connection', async () => {
    const client = net.connect(port, '127.0.0.1');
    let got = '';
    client.on('data', (d) => { got += d.toString('latin1'); });
    await new Promise((r) => client.on('connect', r));
    client.write(MSG('reuse-1'));
    await until(() => received.some((r) => r.data.includes('reuse-1')));
    const src = received.find((r) => r.data.includes('reuse-1'))!.src;
    assert.equal(src.ip, '127.0.0.1');
    assert.equal(src.port, client.localPort);
    ep.send(src.ip, src.port, MSG('reply-1'));
    await until(() => got.includes('reply-1'));
    client.destroy();
  });

  test('no connection to ip:port -> a new one to the fallback (sent-by) port', async () => {
    let got = '';
    const sentBy = net.createServer((s) => s.on('data', (d) => { got += d.toString('latin1'); }));
    const sentByPort = await listen(sentBy);
    // 1 is the "ephemeral port of a connection that is gone": nothing listens there.
    ep.send('127.0.0.1', 1, MSG('fallback-1'), sentByPort);
    await until(() => got.includes('fallback-1'));
    sentBy.close();
  });

  test('pipelined and split messages are framed; a CRLFCRLF ping gets a CRLF pong', async () => {
    const client = net.connect(port, '127.0.0.1');
    let got = '';
    client.on('data', (d) => { got += d.toString('latin1'); });
    await new Promise((r) => client.on('connect', r));
    const two = Buffer.concat([MSG('pipe-1'), Buffer.from('\r\n\r\n'), MSG('pipe-2')]);
    client.write(two.subarray(0, 37));
    await new Promise((r) => setTimeout(r, 20));
    client.write(two.subarray(37));
    await until(() => received.some((r) => r.data.includes('pipe-2')));
    assert.ok(received.some((r) => r.data.includes('pipe-1')));
    await until(() => got === '\r\n');
    client.destroy();
  });

  test('an oversized message closes only that connection', async () => {
    const bad = net.connect(port, '127.0.0.1');
    bad.on('error', () => undefined);
    const closed = new Promise((r) => bad.on('close', r));
    bad.write(`OPTIONS sip:x SIP/2.0\r\nX: ${'a'.repeat(5000)}`);
    await closed;
    const good = net.connect(port, '127.0.0.1');
    await new Promise((r) => good.on('connect', r));
    good.write(MSG('after-oversize'));
    await until(() => received.some((r) => r.data.includes('after-oversize')));
    good.destroy();
    assert.ok(ep.framingErrors >= 1);
  });

  test('an impossible port is refused without throwing', () => {
    assert.doesNotThrow(() => ep.send('127.0.0.1', 0, MSG('bad-port')));
    assert.doesNotThrow(() => ep.send('127.0.0.1', 70000, MSG('bad-port')));
  });
});

describe('TcpEndpoint limits on what one peer can hold', () => {
  test('a message begun and not finished within the slow-sender deadline closes the connection; complete messages keep it open', async (t) => {
    const received: string[] = [];
    const ep = new TcpEndpoint({
      side: 'external', host: '127.0.0.1', port: 0, maxMessageSize: 4096, log: pino({ level: 'silent' }),
      connections: new ConnectionTable(), onMessage: (data) => received.push(data.toString('latin1')), slowSenderTimeoutMs: 300,
    });
    await ep.listen();
    t.after(() => ep.close());
    const port = ep.address().port;

    // Whole messages, spaced out beyond the deadline: nothing pending, nothing closed.
    const steady = net.connect(port, '127.0.0.1');
    t.after(() => steady.destroy());
    await new Promise((r) => steady.on('connect', r));
    steady.write(MSG('steady-1'));
    await new Promise((r) => setTimeout(r, 450));
    steady.write(MSG('steady-2'));
    await until(() => received.some((m) => m.includes('steady-2')));
    assert.equal(steady.destroyed, false);

    // A stream whose every chunk ends mid-message, for longer than the deadline: messages keep
    // completing, so it is progress, not a slow sender.
    const busy = net.connect(port, '127.0.0.1');
    t.after(() => busy.destroy());
    await new Promise((r) => busy.on('connect', r));
    const busyMessages = Array.from({ length: 9 }, (_, i) => MSG(`busy-${i}`));
    busy.write(busyMessages[0].subarray(0, 30));
    for (let i = 0; i < 8; i++) {
      // ~480 ms in all, past the 300 ms deadline, with part of a message always pending.
      await new Promise((r) => setTimeout(r, 60));
      busy.write(Buffer.concat([busyMessages[i].subarray(30), busyMessages[i + 1].subarray(0, 30)]));
    }
    busy.write(busyMessages[8].subarray(30));
    await until(() => received.some((m) => m.includes('busy-8')));
    assert.equal(busy.destroyed, false);
    assert.equal(ep.framingErrors, 0);

    // Half a message, then silence: closed after the deadline.
    const slow = net.connect(port, '127.0.0.1');
    const closed = new Promise<number>((resolve) => slow.on('close', () => resolve(Date.now())));
    await new Promise((r) => slow.on('connect', r));
    const started = Date.now();
    slow.write(MSG('slow-1').subarray(0, 40));
    const at = await closed;
    // Looked at every 150 ms: closed after two looks without progress, 150 to 300 ms after it began.
    assert.ok(at - started >= 140 && at - started < 2000, `closed after ${at - started} ms`);
    assert.equal(received.some((m) => m.includes('slow-1')), false);
    assert.equal(ep.framingErrors, 1);
  });

  test('connections from one address beyond maxConnectionsPerSource are refused; closing one frees its place', async (t) => {
    const ep = new TcpEndpoint({
      side: 'external', host: '127.0.0.1', port: 0, maxMessageSize: 4096, log: pino({ level: 'silent' }),
      connections: new ConnectionTable(), onMessage: () => undefined, maxConnectionsPerSource: 3,
    });
    await ep.listen();
    t.after(() => ep.close());
    const port = ep.address().port;
    const open = async (): Promise<{ socket: net.Socket; closedEarly: Promise<boolean> }> => {
      const socket = net.connect(port, '127.0.0.1');
      t.after(() => socket.destroy());
      await new Promise((r) => socket.on('connect', r));
      const closedEarly = new Promise<boolean>((resolve) => {
        socket.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 300);
      });
      return { socket, closedEarly };
    };
    const first = [await open(), await open(), await open()];
    const fourth = await open();
    assert.equal(await fourth.closedEarly, true, 'the fourth connection from 127.0.0.1 is refused');
    for (const c of first) assert.equal(await c.closedEarly, false);
    assert.equal(ep.refused, 1);
    first[0].socket.destroy();
    await until(() => ep.refused === 1 && first[0].socket.destroyed);
    await new Promise((r) => setTimeout(r, 50));
    const again = await open();
    assert.equal(await again.closedEarly, false, 'a place freed by a close is given again');
  });
});
