// Connection hygiene of the TCP endpoint against floods of connections that say nothing: an
// accepted connection must deliver a whole first message within firstMessageTimeoutMs, and when
// the endpoint is full the oldest silent connection makes room for a new peer, while connections
// that have spoken are never evicted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pino } from 'pino';
import { ConnectionTable } from '../../src/transport/connections.ts';
import { TcpEndpoint } from '../../src/transport/tcp.ts';
import { eventually } from '../helpers/wait.ts';

const MSG = (callId: string): Buffer => Buffer.from(
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-${callId}\r\nCall-ID: ${callId}\r\nContent-Length: 0\r\n\r\n`, 'latin1');

interface Client {
  socket: net.Socket;
  closed: () => boolean;
}

async function connect(port: number, from: string): Promise<Client> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
  let closed = false;
  socket.on('close', () => { closed = true; });
  socket.on('error', () => undefined);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed: () => closed };
}

async function endpoint(opts: { maxConnections?: number; firstMessageTimeoutMs?: number }, received: string[]): Promise<TcpEndpoint> {
  const ep = new TcpEndpoint({
    side: 'external', host: '127.0.0.1', port: 0, maxMessageSize: 4096, log: pino({ level: 'silent' }),
    connections: new ConnectionTable(), onMessage: (data) => received.push(data.toString('latin1')), ...opts,
  });
  await ep.listen();
  return ep;
}

test('a full endpoint closes its oldest silent connection for a new peer, never one that has spoken', { timeout: 30_000 }, async (t) => {
  const received: string[] = [];
  const ep = await endpoint({ maxConnections: 20 }, received);
  t.after(() => ep.close());
  const port = ep.address().port;
  const clients: Client[] = [];
  t.after(() => { for (const c of clients) c.socket.destroy(); });
  // 10 clients that speak, then 10 flood connections from another address that never do.
  for (let i = 0; i < 10; i++) {
    const c = await connect(port, '127.0.0.1');
    c.socket.write(MSG(`spoke-${i}`));
    clients.push(c);
  }
  await eventually('the 10 first messages', 5000, () => received.length === 10);
  const flood: Client[] = [];
  for (let i = 0; i < 10; i++) flood.push(await connect(port, '127.0.0.2'));
  clients.push(...flood);
  // Full. A new client still gets in, and its message through: the oldest flood connection made room.
  const late = await connect(port, '127.0.0.3');
  clients.push(late);
  late.socket.write(MSG('late'));
  await eventually('the late client\'s message', 5000, () => received.includes(MSG('late').toString('latin1')));
  await eventually('the oldest flood connection closed', 5000, () => flood[0].closed());
  assert.equal(ep.evictedSilent, 1);
  assert.deepEqual(flood.slice(1).map((c) => c.closed()), Array(9).fill(false));
  // 9 more newcomers evict the other 9 silent ones; past that, only speakers are left: refused.
  for (let i = 0; i < 9; i++) {
    const c = await connect(port, '127.0.0.3');
    c.socket.write(MSG(`newcomer-${i}`));
    clients.push(c);
  }
  await eventually('every flood connection closed', 5000, () => flood.every((c) => c.closed()));
  assert.equal(ep.evictedSilent, 10);
  await eventually('the newcomers\' messages', 5000, () => received.length === 20);
  const refusedBefore = ep.refused;
  const overflow = await connect(port, '127.0.0.4');
  clients.push(overflow);
  await eventually('the overflow connection refused', 5000, () => overflow.closed());
  assert.equal(ep.refused, refusedBefore + 1);
  assert.ok(clients.filter((c) => !flood.includes(c) && c !== overflow).every((c) => !c.closed()), 'no connection that spoke was closed');
});

test('a connection with no whole message within firstMessageTimeoutMs is closed; one that has spoken stays', { timeout: 30_000 }, async (t) => {
  const received: string[] = [];
  const ep = await endpoint({ firstMessageTimeoutMs: 400 }, received);
  t.after(() => ep.close());
  const port = ep.address().port;
  const quiet = await connect(port, '127.0.0.1');
  const partial = await connect(port, '127.0.0.1');
  const speaker = await connect(port, '127.0.0.1');
  t.after(() => { for (const c of [quiet, partial, speaker]) c.socket.destroy(); });
  partial.socket.write(MSG('partial').subarray(0, 30));
  speaker.socket.write(MSG('speaker'));
  await eventually('the silent connections closed', 5000, () => quiet.closed() && partial.closed());
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(speaker.closed(), false, 'a connection that delivered a message waits for the idle timeout');
  assert.deepEqual(received, [MSG('speaker').toString('latin1')]);
});
