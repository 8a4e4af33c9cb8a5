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
