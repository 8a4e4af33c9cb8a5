// UdpPeers over real loopback sockets: a node's address gets a connected socket of its own
// beside the listener, what the node sends back to it reaches the same handler, and an ICMP port
// unreachable (the node's port closed) is reported, at most once a second per node.

import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { pino } from 'pino';
import { UdpPeers, type ListenerInfo } from '../../src/transport/udp-peers.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { eventually } from '../helpers/wait.ts';

const LISTENER: ListenerInfo = { host: '127.0.0.1', side: 'internal' };
const MSG = Buffer.from('OPTIONS sip:n@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n', 'latin1');

interface Node {
  socket: dgram.Socket;
  port: number;
  got: { data: string; port: number }[];
}

async function node(t: TestContext): Promise<Node> {
  const socket = dgram.createSocket('udp4');
  const got: Node['got'] = [];
  socket.on('message', (data, rinfo) => got.push({ data: data.toString('latin1'), port: rinfo.port }));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => { try { socket.close(); } catch { /* closed by the test */ } });
  return { socket, port: socket.address().port, got };
}

// Every test runs twice: with the sockets on native/udp.c (the default) and on dgram alone.
let nativeIo = true;

function peers(t: TestContext, isPeer: (ip: string, port: number) => boolean, opts: { maxPeers?: number; idleMs?: number } = {}) {
  const received: { data: string; src: Inbound }[] = [];
  const unreachable: string[] = [];
  const p = new UdpPeers({
    log: pino({ level: 'silent' }), maxMessageSize: 4096, isPeer, nativeIo, ...opts,
    onMessage: (data, src) => received.push({ data: data.toString('latin1'), src }),
    onUnreachable: (ip, port) => unreachable.push(`${ip}:${port}`),
  });
  t.after(() => p.close());
  return { p, received, unreachable };
}

/** Sends until the connected socket takes it (the first sends find it still connecting). */
async function sendConnected(p: UdpPeers, port: number): Promise<void> {
  await eventually('the peer socket connects', 2000, () => p.send(LISTENER, '127.0.0.1', port, MSG));
}

for (const mode of [true, false]) {
  describe(mode ? 'on native/udp.c' : 'on dgram (nativeIo false)', () => {
    before(() => { nativeIo = mode; });
    test('a node gets a socket of its own: sends leave from another port than the listener, and its answers come back to the handler', async (t) => {
      const n = await node(t);
      const { p, received } = peers(t, () => true);
      // The first send opens the socket; until it is connected the caller sends through the listener.
      assert.equal(p.send(LISTENER, '127.0.0.1', n.port, MSG), false);
      assert.equal(p.size, 1);
      await sendConnected(p, n.port);
      await eventually('the node receives', 2000, () => n.got.length >= 1);
      const from = n.got[0].port;
      assert.ok(from > 0);
      // The node answers to the source port, as sipp and rport-style stacks do.
      n.socket.send(Buffer.from('SIP/2.0 200 OK\r\n\r\n', 'latin1'), from, '127.0.0.1');
      await eventually('the answer reaches the handler', 2000, () => received.length === 1);
      assert.deepEqual(received[0].src, { transport: 'udp', side: 'internal', ip: '127.0.0.1', port: n.port, connectionId: 0 });
      assert.equal(p.sent >= 1, true);
    });

    test('an address that is not a node\'s gets no socket: the listener sends', async (t) => {
      const n = await node(t);
      const { p } = peers(t, () => false);
      assert.equal(p.send(LISTENER, '127.0.0.1', n.port, MSG), false);
      assert.equal(p.size, 0);
    });

    test('a listener of another address family gets no socket beside it', async (t) => {
      const n = await node(t);
      const { p } = peers(t, () => true);
      assert.equal(p.send({ host: '::', side: 'internal' }, '127.0.0.1', n.port, MSG), false);
      assert.equal(p.size, 0);
    });

    test('ICMP port unreachable from a closed node port is reported, once a second at most', async (t) => {
      const n = await node(t);
      const { p, unreachable } = peers(t, () => true);
      await sendConnected(p, n.port);
      n.socket.close();
      // Each send to the closed port brings an ICMP error back; the kernel reports it on the socket.
      await eventually('the ICMP error is reported', 2000, () => {
        p.send(LISTENER, '127.0.0.1', n.port, MSG);
        return unreachable.length >= 1;
      });
      assert.deepEqual(unreachable, [`127.0.0.1:${n.port}`]);
      for (let i = 0; i < 5; i++) p.send(LISTENER, '127.0.0.1', n.port, MSG);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(unreachable.length, 1, 'rate-limited to one report a second per node');
      // The kernel itself sends port unreachables to one destination about once a second
      // (net.ipv4.icmp_ratelimit), so the count may stay at 1.
      assert.ok(p.unreachable >= 1, 'errors are counted');
    });

    test('the number of sockets is bounded; beyond it the listener sends', async (t) => {
      const a = await node(t);
      const b = await node(t);
      const { p } = peers(t, () => true, { maxPeers: 1 });
      p.send(LISTENER, '127.0.0.1', a.port, MSG);
      assert.equal(p.send(LISTENER, '127.0.0.1', b.port, MSG), false);
      assert.equal(p.size, 1);
    });

    test('a sweep closes sockets left idle and those of addresses no longer nodes\'', async (t) => {
      const a = await node(t);
      const b = await node(t);
      let nodes = new Set([a.port, b.port]);
      const { p } = peers(t, (_ip, port) => nodes.has(port), { idleMs: 60_000 });
      await sendConnected(p, a.port);
      await sendConnected(p, b.port);
      assert.equal(p.size, 2);
      nodes = new Set([a.port]);
      p.sweep(Date.now());
      assert.equal(p.size, 1, 'b is no longer a node');
      p.sweep(Date.now() + 120_000);
      assert.equal(p.size, 0, 'a has been idle past idleMs');
      // A later send opens a new one.
      assert.equal(p.send(LISTENER, '127.0.0.1', a.port, MSG), false);
      assert.equal(p.size, 1);
    });
  });
}
