// End to end: what a real siplb process does with bad configuration and with malformed or
// hostile SIP on its real sockets. Bad configuration stops start-up (exit 2, one line naming key,
// value and reason, nothing bound); bad SIP gets 400/483 or is dropped; open-relay attempts and
// stray responses never leave the balancer towards anyone but a cluster node; the process keeps
// serving afterwards.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { runSiplbExpectingFailure, startSiplb } from './harness/siplb.ts';
import type { SiplbHandle } from './harness/siplb.ts';
import { eventually } from '../helpers/wait.ts';

describe('bad configuration stops start-up before anything binds', () => {
  const CASES: { name: string; text: string; key: string; value: string }[] = [
    { name: 'port out of range', text: 'externalPort=70000\n', key: 'externalPort', value: '70000' },
    { name: 'unknown algorithm', text: 'algorithmClass=org.example.NoSuchAlgorithm\n', key: 'algorithmClass', value: 'org.example.NoSuchAlgorithm' },
    { name: 'malformed node', text: 'nodes=127.0.0.1:notaport\n', key: 'nodes', value: '127.0.0.1:notaport' },
    { name: 'bad boolean', text: 'callIdAffinityGroupFailover=yes\n', key: 'callIdAffinityGroupFailover', value: 'yes' },
    { name: 'unsupported transport', text: 'externalTransport=sctp\n', key: 'externalTransport', value: 'sctp' },
  ];
  for (const c of CASES) {
    test(c.name, async () => {
      const [port] = await allocatePorts(1);
      try {
        // The bad key comes after a valid port so that "nothing bound" is checkable on that port.
        const r = await runSiplbExpectingFailure(`host=127.0.0.1\nexternalPort=${port}\n${c.text}`);
        assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `exactly one line on stderr: ${r.stderr}`);
        assert.ok(lines[0].includes(c.key), `names the key: ${lines[0]}`);
        assert.ok(lines[0].includes(c.value), `names the value: ${lines[0]}`);
        assert.match(lines[0], /: [a-z].{10,}/, `gives a reason: ${lines[0]}`);
        assert.equal(r.stdout.includes('siplb ready'), false);
        await assertPortFree(port);
      } finally {
        releasePorts([port]);
      }
    });
  }

  test('an unknown key is a warning naming it, and siplb still starts', async () => {
    const [port] = await allocatePorts(1);
    const lb = await startSiplb({ host: '127.0.0.1', externalPort: String(port), noSuchKey: 'x' });
    try {
      const warning = lb.jsonLogs().find((l) => l.level === 40 && String(l.msg).includes('noSuchKey'));
      assert.ok(warning !== undefined, `warning naming the key in: ${lb.logs().join('\n')}`);
    } finally {
      await lb.stop();
      releasePorts([port]);
    }
  });

  test('a bad command-line option exits 2 with one line', async () => {
    const r = await runSiplbExpectingFailure('', { extraArgs: ['--log-level', 'loud'] });
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^siplb: --log-level "loud": expected one of error, warn, info, debug; usage: siplb /);
  });
});

async function assertPortFree(port: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve());
  });
  s.close();
}

/** A UDP socket that records every datagram it receives. */
class UdpPeer {
  readonly socket = dgram.createSocket('udp4');
  readonly received: string[] = [];
  port = 0;
  async bind(port = 0, host = '127.0.0.1'): Promise<this> {
    this.socket.on('message', (m) => this.received.push(m.toString('latin1')));
    await new Promise<void>((resolve) => this.socket.bind(port, host, () => resolve()));
    this.port = this.socket.address().port;
    return this;
  }
  send(text: string, port: number): void {
    this.socket.send(Buffer.from(text, 'latin1'), port, '127.0.0.1');
  }
  /** Wait until `count` datagrams arrived or `ms` passed; returns what arrived. */
  async waitFor(count: number, ms = 2000): Promise<string[]> {
    const until = Date.now() + ms;
    while (this.received.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    return this.received;
  }
  close(): void {
    this.socket.close();
  }
}

function request(opts: { method?: string; ruri?: string; callId: string; via?: string; extra?: string; omit?: string; maxForwards?: string }): string {
  const method = opts.method ?? 'OPTIONS';
  const lines = [
    `${method} ${opts.ruri ?? 'sip:service@127.0.0.1'} SIP/2.0`,
    `Via: ${opts.via ?? 'SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-' + opts.callId}`,
    'From: <sip:a@127.0.0.1>;tag=1',
    'To: <sip:b@127.0.0.1>',
    `Call-ID: ${opts.callId}`,
    `CSeq: 1 ${method}`,
    `Max-Forwards: ${opts.maxForwards ?? '70'}`,
  ].filter((l) => opts.omit === undefined || !l.startsWith(opts.omit));
  if (opts.extra !== undefined) lines.push(opts.extra);
  return lines.join('\r\n') + '\r\nContent-Length: 0\r\n\r\n';
}

describe('malformed and hostile SIP on a running siplb', () => {
  let lb: SiplbHandle;
  let ports: number[];
  let node: UdpPeer;
  let client: UdpPeer;
  let victim: UdpPeer;

  before(async () => {
    ports = await allocatePorts(2);
    node = await new UdpPeer().bind(ports[1]);
    client = await new UdpPeer().bind();
    victim = await new UdpPeer().bind(0, '127.0.0.99');
    lb = await startSiplb({ host: '127.0.0.1', externalPort: String(ports[0]), nodes: `127.0.0.1:${ports[1]}`, maxMessageSize: '2048' }, { logLevel: 'warn' });
  });

  after(async () => {
    await lb.stop();
    node.close();
    client.close();
    victim.close();
    releasePorts(ports);
  });

  const reset = (): void => {
    node.received.length = 0;
    client.received.length = 0;
    victim.received.length = 0;
  };

  test('a request missing Call-ID is dropped, one with two To headers gets 400 naming the problem; the node sees neither', async () => {
    reset();
    // Without a Call-ID no valid response can be built: dropped. With a duplicate To: 400.
    client.send(request({ callId: 'x', omit: 'Call-ID' }), ports[0]);
    client.send(request({ callId: 'dup-to', extra: 'To: <sip:c@127.0.0.1>' }), ports[0]);
    const got = await client.waitFor(1);
    assert.equal(got.length, 1, `one answer (the duplicate-To request): ${got.join('\n---\n')}`);
    assert.match(got[0], /^SIP\/2\.0 400 Bad Request \(more than one To\)\r\n/);
    assert.match(got[0], /Call-ID: dup-to\r\n/);
    assert.equal(node.received.length, 0);
  });

  test('Max-Forwards: 0 gets 483', async () => {
    reset();
    client.send(request({ callId: 'mf0', maxForwards: '0' }), ports[0]);
    const got = await client.waitFor(1);
    assert.match(got[0] ?? '', /^SIP\/2\.0 483 Too Many Hops\r\n/);
    assert.equal(node.received.length, 0);
  });

  test('garbage, truncated and oversized datagrams are dropped and siplb keeps serving', async () => {
    reset();
    client.send('\x00\x01garbage that is not SIP\r\n\r\n', ports[0]);
    client.send(request({ callId: 'trunc' }).slice(0, 40), ports[0]);
    client.send(request({ callId: 'big', extra: `X-Pad: ${'a'.repeat(4000)}` }), ports[0]);
    client.send('SIP/2.0 200 OK\r\n\r\n', ports[0]);
    client.send(request({ callId: 'after-garbage' }), ports[0]);
    // siplb answers this one itself (483): an answer to any of the garbage, sent to the client
    // before it, would arrive before it (one socket pair, handled in order).
    client.send(request({ callId: 'barrier', maxForwards: '0' }), ports[0]);
    const got = await node.waitFor(1);
    assert.equal(got.length, 1, 'only the valid request reached the node');
    assert.match(got[0], /Call-ID: after-garbage/);
    const answered = await client.waitFor(1);
    assert.equal(answered.length, 1, `nothing answered to the garbage: ${answered.join('\n---\n')}`);
    assert.match(answered[0], /Call-ID: barrier\r\n/);
    await eventually('the oversized datagram logged', 2000, () => lb.logs().some((l) => l.includes('larger than maxMessageSize')));
  });

  test('no open relay: a client request for another host only ever reaches the cluster node', async () => {
    reset();
    client.send(request({ method: 'INVITE', callId: 'relay-1', ruri: `sip:victim@127.0.0.99:${victim.port}` }), ports[0]);
    client.send(request({ callId: 'relay-2', extra: `Route: <sip:127.0.0.99:${victim.port};lr>` }), ports[0]);
    // siplb handles a socket's datagrams in order: once this one is at the node, siplb has done
    // all it does for the two before it, and what it sent the victim would be there.
    client.send(request({ callId: 'relay-barrier' }), ports[0]);
    const got = await node.waitFor(3);
    assert.equal(got.length, 3);
    assert.deepEqual(got.map((m) => /Call-ID: (\S+)/.exec(m)?.[1]), ['relay-1', 'relay-2', 'relay-barrier']);
    assert.equal(victim.received.length, 0, 'nothing sent to the third party');
    // The INVITE's 100 Trying (isSendTrying, on by default) went back to its sender, not to the
    // host its Request-URI named.
    await eventually('the 100 Trying for the INVITE at the client', 2000, () => client.received.some((m) => /Call-ID: relay-1\r\n/.test(m)));
    const relayAnswers = client.received.filter((m) => /Call-ID: relay-/.test(m));
    assert.equal(relayAnswers.length, 1, relayAnswers.join('\n---\n'));
    assert.match(relayAnswers[0], /^SIP\/2\.0 100 Trying\r\n/);
  });

  test('stray and forged responses are dropped', async () => {
    reset();
    // Not our Via at all.
    client.send(`SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.99:${victim.port};branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`, ports[0]);
    // Our Via copied from a real forwarded request, but the Via below redirected to the victim.
    // rport: the genuine response must find the client's real port (RFC 3581).
    client.send(request({ method: 'INVITE', callId: 'forge', via: 'SIP/2.0/UDP 127.0.0.1:1;rport;branch=z9hG4bK-forge' }), ports[0]);
    const forwarded = (await node.waitFor(1))[0];
    const ourVia = /^Via: (SIP\/2\.0\/UDP [^\r\n]*branch=z9hG4bKLb[^\r\n]*)\r\n/m.exec(forwarded)?.[1];
    assert.ok(ourVia !== undefined, `siplb's Via in ${forwarded}`);
    const forged = `SIP/2.0 200 OK\r\nVia: ${ourVia}\r\nVia: SIP/2.0/UDP 127.0.0.99:${victim.port};branch=z9hG4bK-forge\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\nCall-ID: forge\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`;
    node.send(forged, ports[0]);
    // The genuine response (Via below ours unchanged) does reach the client. siplb handles the
    // node's datagrams in order, so once it is there the forged one was dealt with.
    const genuine = forwarded.split('\r\n').filter((l) => /^(Via|From|To|Call-ID|CSeq):/.test(l)).map((l) => (l.startsWith('To:') ? l + ';tag=2' : l));
    node.send(`SIP/2.0 200 OK\r\n${genuine.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, ports[0]);
    // The client's INVITE got siplb's 100 Trying (isSendTrying, on by default) first.
    const forCall = (): string[] => client.received.filter((m) => /\r\nCall-ID: forge\r\n/.test(m));
    await eventually('the 100 Trying and the genuine 200 at the client', 2000, () => forCall().length >= 2);
    const answered = forCall();
    assert.match(answered[0], /^SIP\/2\.0 100 Trying\r\n/);
    assert.match(answered[1], /^SIP\/2\.0 200 OK\r\n/);
    assert.equal(/branch=z9hG4bKLb/.test(answered[1]), false, "siplb's Via removed");
    assert.equal(victim.received.length, 0, 'forged response not relayed');
  });

  test('TCP: an oversized message closes that connection only; others keep working', async () => {
    const bad = net.connect(ports[0], '127.0.0.1');
    const closed = new Promise<void>((resolve) => bad.on('close', () => resolve()));
    bad.on('error', () => undefined);
    bad.write(`OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX-Pad: ${'a'.repeat(5000)}`);
    await closed;
    reset();
    const good = net.connect(ports[0], '127.0.0.1');
    await new Promise<void>((resolve) => good.on('connect', () => resolve()));
    good.write(request({ callId: 'tcp-after', via: 'SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-tcp-after' }));
    const got = await node.waitFor(1);
    good.destroy();
    assert.match(got[0] ?? '', /Call-ID: tcp-after/);
  });
});
