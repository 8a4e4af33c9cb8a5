// TransportRouter and ConnectionTable over real loopback sockets: a message goes on the
// connection it names while that is open, else through the endpoint of its side and transport
// (the external one when the side has none), names are resolved first, and what cannot be sent
// is dropped with a reason, never thrown.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { pino } from 'pino';
import { ConnectionTable, type StreamConnection } from '../../src/transport/connections.ts';
import { Resolver } from '../../src/transport/resolver.ts';
import { TransportRouter } from '../../src/transport/router.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { eventually } from '../helpers/wait.ts';

const MSG = (tag: string): Buffer => Buffer.from(
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-${tag}\r\nCall-ID: ${tag}\r\nContent-Length: 0\r\n\r\n`, 'latin1');

/** Resolves `known.test` to 127.0.0.1 and nothing else, without DNS. */
class StubResolver extends Resolver {
  override resolve(host: string): string | Promise<string | null> {
    if (net.isIP(host) !== 0) return host;
    return Promise.resolve(host === 'known.test' ? '127.0.0.1' : null);
  }
}

interface Bed {
  router: TransportRouter;
  received: { data: string; src: Inbound }[];
  drops: string[];
}

function bed(t: TestContext): Bed {
  const received: Bed['received'] = [];
  const drops: string[] = [];
  const router = new TransportRouter({
    log: pino({ level: 'silent' }), maxMessageSize: 4096, resolver: new StubResolver(),
    onMessage: (data, src) => received.push({ data: data.toString('latin1'), src }),
    onDrop: (reason) => drops.push(reason),
  });
  t.after(() => router.close());
  return { router, received, drops };
}

/** A UDP socket on loopback that records what it receives. */
async function udpPeer(t: TestContext): Promise<{ port: number; got: string[] }> {
  const got: string[] = [];
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => got.push(m.toString('latin1')));
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  t.after(() => s.close());
  return { port: s.address().port, got };
}

/** A TCP client connected to `port` that records what it receives. */
async function tcpClient(t: TestContext, port: number): Promise<{ socket: net.Socket; got: () => string }> {
  let got = '';
  const socket = net.connect(port, '127.0.0.1');
  socket.on('data', (d) => { got += d.toString('latin1'); });
  await new Promise((r) => socket.once('connect', r));
  t.after(() => socket.destroy());
  return { socket, got: () => got };
}

describe('TransportRouter', () => {
  test('messages carry their source: UDP with connection 0, TCP with the id the table holds', async (t) => {
    const b = bed(t);
    const udp = await b.router.listen({ side: 'external', transport: 'udp', host: '127.0.0.1', port: 0 });
    const tcp = await b.router.listen({ side: 'external', transport: 'tcp', host: '127.0.0.1', port: 0 });
    const sender = dgram.createSocket('udp4');
    t.after(() => sender.close());
    sender.send(MSG('udp-src'), udp.address().port, '127.0.0.1');
    const client = await tcpClient(t, tcp.address().port);
    client.socket.write(MSG('tcp-src'));
    await eventually('both messages received', 2000, () => b.received.length === 2);
    const byTag = (tag: string): Inbound => b.received.find((r) => r.data.includes(tag))!.src;
    assert.deepEqual({ ...byTag('udp-src'), port: 0 }, { transport: 'udp', side: 'external', ip: '127.0.0.1', port: 0, connectionId: 0 });
    const src = byTag('tcp-src');
    assert.equal(src.transport, 'tcp');
    assert.equal(src.port, client.socket.localPort);
    assert.ok(src.connectionId > 0);
    const conn = b.router.connections.get(src.connectionId);
    assert.equal(conn?.ip, '127.0.0.1');
    assert.equal(conn?.port, client.socket.localPort);
  });

  test('a message naming an open connection goes on it, whatever address it names', async (t) => {
    const b = bed(t);
    const tcp = await b.router.listen({ side: 'external', transport: 'tcp', host: '127.0.0.1', port: 0 });
    const client = await tcpClient(t, tcp.address().port);
    client.socket.write(MSG('hello'));
    await eventually('request received', 2000, () => b.received.length === 1);
    const { connectionId } = b.received[0].src;
    // Port 1: nothing listens there; only the connection id can get this answer to the client.
    b.router.send({ side: 'external', transport: 'tcp', host: '127.0.0.1', port: 1, connectionId }, MSG('answer'));
    await eventually('answer on the same connection', 2000, () => client.got().includes('answer'));
    assert.deepEqual(b.drops, []);
  });

  test('a connection that has closed: the message goes by address (reusing the peer connection or opening one)', async (t) => {
    const b = bed(t);
    await b.router.listen({ side: 'external', transport: 'tcp', host: '127.0.0.1', port: 0 });
    let got = '';
    const peer = net.createServer((s) => s.on('data', (d) => { got += d.toString('latin1'); }));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    t.after(() => peer.close());
    const port = (peer.address() as net.AddressInfo).port;
    b.router.send({ side: 'external', transport: 'tcp', host: '127.0.0.1', port, connectionId: 987_654 }, MSG('by-address'));
    await eventually('delivered by address', 2000, () => got.includes('by-address'));
  });

  test('a side without its own endpoint sends through the external one (one port for both sides)', async (t) => {
    const b = bed(t);
    await b.router.listen({ side: 'external', transport: 'udp', host: '127.0.0.1', port: 0 });
    const peer = await udpPeer(t);
    b.router.send({ side: 'internal', transport: 'udp', host: '127.0.0.1', port: peer.port }, MSG('via-external'));
    await eventually('delivered', 2000, () => peer.got.some((m) => m.includes('via-external')));
    assert.deepEqual(b.drops, []);
  });

  test('a transport with no endpoint at all: dropped as no-<transport>-socket', async (t) => {
    const b = bed(t);
    await b.router.listen({ side: 'external', transport: 'udp', host: '127.0.0.1', port: 0 });
    assert.doesNotThrow(() => b.router.send({ side: 'internal', transport: 'tcp', host: '127.0.0.1', port: 5060 }, MSG('x')));
    assert.deepEqual(b.drops, ['no-tcp-socket']);
  });

  test('host names are resolved before sending; one that does not resolve is dropped as unresolvable-next-hop', async (t) => {
    const b = bed(t);
    await b.router.listen({ side: 'external', transport: 'udp', host: '127.0.0.1', port: 0 });
    const peer = await udpPeer(t);
    b.router.send({ side: 'external', transport: 'udp', host: 'known.test', port: peer.port }, MSG('by-name'));
    b.router.send({ side: 'external', transport: 'udp', host: 'unknown.test', port: peer.port }, MSG('lost'));
    await eventually('the resolvable one delivered', 2000, () => peer.got.some((m) => m.includes('by-name')));
    await eventually('the other dropped', 2000, () => b.drops.includes('unresolvable-next-hop'));
    assert.equal(peer.got.some((m) => m.includes('lost')), false);
  });

  test('a port already taken: listen rejects with a BindError naming the address', async (t) => {
    const b = bed(t);
    const first = await b.router.listen({ side: 'external', transport: 'tcp', host: '127.0.0.1', port: 0 });
    const other = bed(t);
    await assert.rejects(other.router.listen({ side: 'external', transport: 'tcp', host: '127.0.0.1', port: first.address().port }),
      (err: Error & { code?: string }) => err.name === 'BindError' && err.code === 'SIPLB_BIND' && err.message.includes(`127.0.0.1:${first.address().port}`));
  });
});

describe('ConnectionTable', () => {
  const conn = (table: ConnectionTable, ip: string, port: number): StreamConnection & { destroyed: boolean } => {
    const c = { id: table.nextId(), transport: 'tcp' as const, side: 'external' as const, ip, port, destroyed: false, write: () => undefined, destroy() { c.destroyed = true; } };
    return c;
  };

  test('ids are unique and never 0; a connection is found by id and by peer until removed', () => {
    const table = new ConnectionTable();
    const a = conn(table, '192.0.2.1', 5060);
    const b = conn(table, '192.0.2.2', 5060);
    assert.ok(a.id > 0 && b.id > 0 && a.id !== b.id);
    assert.equal(table.add(a), undefined);
    assert.equal(table.add(b), undefined);
    assert.equal(table.get(a.id), a);
    assert.equal(table.toPeer('tcp', 'external', '192.0.2.2', 5060), b);
    assert.equal(table.toPeer('tcp', 'internal', '192.0.2.2', 5060), undefined, 'the side is part of the peer');
    table.remove(a);
    assert.equal(table.get(a.id), undefined);
    assert.equal(table.size, 1);
  });

  test('a newer connection to the same peer takes the peer entry and hands back the one it replaced', () => {
    const table = new ConnectionTable();
    const old = conn(table, '192.0.2.1', 5060);
    const fresh = conn(table, '192.0.2.1', 5060);
    table.add(old);
    assert.equal(table.add(fresh), old);
    assert.equal(table.toPeer('tcp', 'external', '192.0.2.1', 5060), fresh);
    // The old one closing later must not take the new one's peer entry with it.
    table.remove(old);
    assert.equal(table.toPeer('tcp', 'external', '192.0.2.1', 5060), fresh);
    assert.deepEqual(table.of('tcp', 'external'), [fresh]);
  });
});
