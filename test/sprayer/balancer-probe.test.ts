// One OPTIONS probe, over UDP and TCP: against real siplb balancers on loopback (no node: 503,
// a failure with the reason; a node: 200), against a dead port (refused) and a silent one
// (timeout), and against scripted peers that send what a balancer should not (provisional
// answers, someone else's transaction, garbage, a stream cut in pieces).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { isParseFailure, parseSipMessage } from '../../src/sip/message.ts';
import { probeBalancer, type ProbeTransport } from '../../src/sprayer/balancer-probe.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { startSiplb, type SiplbHandle } from '../e2e/harness/siplb.ts';

const HOST = '127.0.0.1';

describe('probe against real siplb balancers', () => {
  let ports: number[] = [];
  let withoutNode: SiplbHandle | undefined;
  let withNode: SiplbHandle | undefined;
  before(async () => {
    ports = await allocatePorts(3);
    // A static node is active from start-up (health checks off): the balancer has somewhere
    // to send calls, which is all its answer to an OPTIONS for itself depends on.
    [withoutNode, withNode] = await Promise.all([
      startSiplb({ host: HOST, externalPort: String(ports[0]) }),
      startSiplb({ host: HOST, externalPort: String(ports[1]), nodes: `${HOST}:${ports[2]}`, healthCheckInterval: '0' }),
    ]);
  });
  after(async () => {
    await Promise.all([withoutNode?.stop(), withNode?.stop()]);
    releasePorts(ports);
  });

  for (const transport of ['udp', 'tcp'] as ProbeTransport[]) {
    test(`${transport}: a balancer with an active node answers 200: pass`, async () => {
      const o = await probeBalancer({ host: HOST, port: ports[1] }, transport, 2000);
      assert.deepEqual([o.ok, o.code, o.reason], [true, 200, '200 OK']);
      assert.ok(o.rttMs >= 0 && o.rttMs < 2000);
    });
    test(`${transport}: a balancer without a node answers 503: failure with the reason`, async () => {
      const o = await probeBalancer({ host: HOST, port: ports[0] }, transport, 2000);
      assert.deepEqual([o.ok, o.code, o.reason], [false, 503, '503 Service Unavailable (no node available)']);
    });
  }
});

describe('probe against dead and silent ports', () => {
  test('udp, nothing listening: port unreachable, at once', async () => {
    const [port] = await allocatePorts(1);
    try {
      const o = await probeBalancer({ host: HOST, port }, 'udp', 2000);
      assert.deepEqual([o.ok, o.code, o.reason], [false, null, 'UDP port unreachable (nothing listening)']);
      assert.ok(o.rttMs < 1000, `took ${o.rttMs} ms`);
    } finally {
      releasePorts([port]);
    }
  });

  test('tcp, nothing listening: connection refused', async () => {
    const [port] = await allocatePorts(1);
    try {
      const o = await probeBalancer({ host: HOST, port }, 'tcp', 2000);
      assert.deepEqual([o.ok, o.reason], [false, 'TCP connection refused']);
    } finally {
      releasePorts([port]);
    }
  });

  test('udp, a socket that never answers: timeout after 700 ms, with retransmissions (timer E) in between', async (t) => {
    const { port, received, close } = await udpPeer(() => []);
    t.after(close);
    const o = await probeBalancer({ host: HOST, port }, 'udp', 700);
    assert.deepEqual([o.ok, o.code, o.reason], [false, null, 'no answer within 700 ms']);
    assert.ok(o.rttMs >= 650, `gave up after ${o.rttMs} ms`);
    assert.equal(received.length, 2, 'sent at 0 and 500 ms');
  });
});

describe('probe against peers that send odd answers', () => {
  test('udp: provisional, someone else\'s Call-ID, another branch, garbage are ignored; the 486 of ours fails', async (t) => {
    const { port, close } = await udpPeer((req) => [
      answer(req, 100, 'Trying'),
      answer(req, 200, 'OK', { callId: 'someone-else' }),
      answer(req, 200, 'OK', { branch: 'z9hG4bK-not-ours' }),
      Buffer.from('\x00\xff garbage \r\n\r\n'),
      answer(req, 486, 'Busy Here'),
    ]);
    t.after(close);
    const o = await probeBalancer({ host: HOST, port }, 'udp', 1000);
    assert.deepEqual([o.ok, o.code, o.reason], [false, 486, '486 Busy Here']);
  });

  test('udp: a 200 with another CSeq is not ours: timeout', async (t) => {
    const { port, close } = await udpPeer((req) => [answer(req, 200, 'OK', { cseq: '999999 OPTIONS' })]);
    t.after(close);
    const o = await probeBalancer({ host: HOST, port }, 'udp', 300);
    assert.equal(o.reason, 'no answer within 300 ms');
  });

  test('tcp: an answer cut in pieces, a body framed by Content-Length, then ours: pass', async (t) => {
    const { port, close } = await tcpPeer(async (req, socket) => {
      const provisional = answer(req, 100, 'Trying');
      const ok = answer(req, 200, 'OK', { body: 'v=0\r\n' });
      const all = Buffer.concat([provisional, ok]);
      for (let i = 0; i < all.length; i += 7) {
        socket.write(all.subarray(i, i + 7));
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    t.after(close);
    const o = await probeBalancer({ host: HOST, port }, 'tcp', 2000);
    assert.deepEqual([o.ok, o.code, o.reason], [true, 200, '200 OK']);
  });

  test('tcp: garbage that cannot be framed fails the probe, without throwing', async (t) => {
    const { port, close } = await tcpPeer((_req, socket) => {
      socket.write('SIP/2.0 200 OK\r\nContent-Length: lots\r\n\r\n');
    });
    t.after(close);
    const o = await probeBalancer({ host: HOST, port }, 'tcp', 2000);
    assert.deepEqual([o.ok, o.reason], [false, 'unreadable answer on TCP: missing a valid single Content-Length']);
  });

  test('tcp: the peer closes without answering', async (t) => {
    const { port, close } = await tcpPeer((_req, socket) => {
      socket.end();
    });
    t.after(close);
    const o = await probeBalancer({ host: HOST, port }, 'tcp', 2000);
    assert.deepEqual([o.ok, o.reason], [false, 'TCP connection closed without an answer']);
  });

  test('the OPTIONS itself: Request-URI of the balancer, Max-Forwards 70, Via with a z9hG4bK branch, From tag, User-Agent, Content-Length 0', async (t) => {
    let seen: string | null = null;
    const { port, close } = await udpPeer((req) => {
      seen = req.toString('latin1');
      return [answer(req, 200, 'OK')];
    });
    t.after(close);
    await probeBalancer({ host: HOST, port }, 'udp', 1000);
    const text = seen as string | null;
    assert.ok(text !== null);
    const m = parseSipMessage(Buffer.from(text, 'latin1'), true);
    assert.ok(!isParseFailure(m) && m.error === null, 'a valid request');
    assert.equal(m.requestUri, `sip:${HOST}:${port}`);
    assert.match(m.get('via') ?? '', /^SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK[-\w]+;rport$/);
    assert.equal(m.get('max-forwards'), '70');
    assert.match(m.from, /;tag=[0-9a-f]+$/);
    assert.equal(m.get('user-agent'), 'siplb-advisor');
    assert.equal(m.get('content-length'), '0');
    assert.equal(m.cseqMethod, 'OPTIONS');
  });
});

/** The answer a peer sends to `req`, copied Via/From/To/Call-ID/CSeq unless overridden. */
function answer(req: Buffer, status: number, phrase: string, o: { callId?: string; branch?: string; cseq?: string; body?: string } = {}): Buffer {
  const m = parseSipMessage(req, true);
  if (isParseFailure(m)) throw new Error('unparseable probe');
  let via = m.get('via') as string;
  if (o.branch !== undefined) via = via.replace(/branch=[^;]+/, `branch=${o.branch}`);
  const body = o.body ?? '';
  return Buffer.from([
    `SIP/2.0 ${status} ${phrase}`, `Via: ${via}`, `From: ${m.get('from')}`, `To: ${m.get('to')};tag=peer`,
    `Call-ID: ${o.callId ?? m.callId}`, `CSeq: ${o.cseq ?? m.get('cseq')}`, `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ].join('\r\n'), 'latin1');
}

async function udpPeer(reply: (req: Buffer) => Buffer[]): Promise<{ port: number; received: Buffer[]; close: () => void }> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (req, rinfo) => {
    received.push(req);
    for (const b of reply(req)) socket.send(b, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, HOST, () => r()));
  return { port: socket.address().port, received, close: () => socket.close() };
}

async function tcpPeer(onRequest: (req: Buffer, socket: net.Socket) => unknown): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.includes('\r\n\r\n')) void onRequest(buf, socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
