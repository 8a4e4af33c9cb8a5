// TlsEndpoint over real loopback sockets: messages in and back on the connection they came on,
// dialling a TLS peer (with and without a CA to check it against), the handshake deadline and
// the per-source bound (which count the raw connection, before its handshake), certificates
// replaced on reload for handshakes to come only, and client certificates by tlsClientAuth.
// Certificates are made with openssl for each run, in a temp dir removed afterwards.

import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { ConnectionTable } from '../../src/transport/connections.ts';
import { TlsEndpoint } from '../../src/transport/tls.ts';
import { readTlsFiles, type ClientAuth, type TlsFiles } from '../../src/transport/tls-files.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { eventually, nextEvent, sleep } from '../helpers/wait.ts';

const MSG = (tag: string): Buffer => Buffer.from(
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK-${tag}\r\nCall-ID: ${tag}\r\nContent-Length: 0\r\n\r\n`, 'latin1');

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  } catch (err) {
    assert.fail(`openssl could not make a test certificate (apt-get install openssl): ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
}

// EC keys: a fraction of the time RSA takes to generate, and as good for a handshake on loopback.
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
let dir = '';
const pem = (name: string): string => join(dir, name);
/** Self-signed: first, second (server certificates), ca. Signed by ca: client, node. */
const files = (name: string, withCa = false): TlsFiles =>
  readTlsFiles(pem(`${name}.pem`), pem(`${name}.key`), withCa ? pem('ca.pem') : null);
const fingerprint = (name: string): string => new X509Certificate(files(name).cert).fingerprint256;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'siplb-tls-endpoint-'));
  for (const cn of ['first', 'second', 'ca']) {
    openssl(['req', '-x509', ...EC, '-keyout', pem(`${cn}.key`), '-out', pem(`${cn}.pem`), '-days', '1', '-subj', `/CN=${cn}`]);
  }
  for (const cn of ['client', 'node']) {
    openssl(['req', '-new', ...EC, '-keyout', pem(`${cn}.key`), '-out', pem(`${cn}.csr`), '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', pem(`${cn}.csr`), '-CA', pem('ca.pem'), '-CAkey', pem('ca.key'), '-CAcreateserial', '-out', pem(`${cn}.pem`), '-days', '1']);
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Bed {
  ep: TlsEndpoint;
  port: number;
  received: { data: string; src: Inbound }[];
  /** The test's own sockets to the endpoint, destroyed before it closes. */
  sockets: Set<net.Socket>;
}

/** Awaits `closing`; fails, rather than hanging the test, should it take longer than `ms`. */
async function within(closing: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  try {
    await Promise.race([closing, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function endpoint(t: TestContext, o: { files?: TlsFiles; clientAuth?: ClientAuth; handshakeTimeoutMs?: number; maxConnectionsPerSource?: number } = {}): Promise<Bed> {
  const received: Bed['received'] = [];
  const ep = new TlsEndpoint({
    side: 'external', host: '127.0.0.1', port: 0, maxMessageSize: 4096, log: pino({ level: 'silent' }),
    connections: new ConnectionTable(), onMessage: (data, src) => received.push({ data: data.toString('latin1'), src }),
    maxConnectionsPerSource: o.maxConnectionsPerSource,
    tls: { files: o.files ?? files('first'), clientAuth: o.clientAuth ?? 'none', handshakeTimeoutMs: o.handshakeTimeoutMs ?? 5000 },
  });
  await ep.listen();
  const sockets = new Set<net.Socket>();
  t.after(async () => {
    // The server's close waits for every socket, a handshake in progress too: the test's own go
    // first, and should the close still hang, the test fails instead of hanging.
    for (const s of sockets) s.destroy();
    await within(ep.close(), 3000, 'the endpoint to close');
  });
  return { ep, port: ep.address().port, received, sockets };
}

interface Client {
  socket: tls.TLSSocket;
  got: () => string;
}

/** A TLS client that has finished its handshake and records what it receives. */
async function tlsClient(b: Bed, options: tls.ConnectionOptions = {}): Promise<Client> {
  let got = '';
  const socket = tls.connect({ host: '127.0.0.1', port: b.port, rejectUnauthorized: false, ...options });
  b.sockets.add(socket);
  socket.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  await nextEvent(socket, 'secureConnect', 3000);
  return { socket, got: () => got };
}

/**
 * A connection attempt the endpoint turns away: resolves once the socket has closed, with
 * whether it ever finished a handshake; what it sent must not have reached the handler.
 */
async function turnedAway(b: Bed, tag: string, options: tls.ConnectionOptions = {}): Promise<{ handshook: boolean }> {
  const socket = tls.connect({ host: '127.0.0.1', port: b.port, rejectUnauthorized: false, ...options });
  b.sockets.add(socket);
  socket.on('error', () => undefined);
  let handshook = false;
  // Under TLS 1.3 a client finishes its side of the handshake before the server has judged its
  // certificate: it may see secureConnect and only then the alert. What it sends must still not
  // get through.
  socket.on('secureConnect', () => {
    handshook = true;
    socket.write(MSG(tag));
  });
  await nextEvent(socket, 'close', 3000);
  assert.equal(b.received.some((r) => r.data.includes(tag)), false, `${tag} must not reach the handler`);
  return { handshook };
}

describe('TlsEndpoint messages', () => {
  test('a message from a TLS client arrives as transport tls and the answer goes back on the same connection', async (t) => {
    const b = await endpoint(t);
    const client = await tlsClient(b);
    client.socket.write(MSG('in-1'));
    await eventually('the message to arrive', 2000, () => b.received.some((r) => r.data.includes('in-1')));
    const { src } = b.received.find((r) => r.data.includes('in-1'))!;
    assert.deepEqual({ ...src, connectionId: 0 }, { transport: 'tls', side: 'external', ip: '127.0.0.1', port: client.socket.localPort, connectionId: 0 });
    assert.ok(src.connectionId > 0, 'a stream message names its connection');
    b.ep.send(src.ip, src.port, MSG('back-1'));
    await eventually('the answer on the client connection', 2000, () => client.got().includes('back-1'));
  });

  // The endpoint dials with its own certificate (for a peer that asks for one) and, with a CA in
  // its files, checks the peer's certificate against it (not its name: a node is an address).
  const dials: { name: string; withCa: boolean; serverCert: string; delivered: boolean }[] = [
    { name: 'no CA: any certificate is accepted', withCa: false, serverCert: 'second', delivered: true },
    { name: 'a CA: a certificate it signed is accepted', withCa: true, serverCert: 'node', delivered: true },
    { name: 'a CA: a self-signed certificate is refused', withCa: true, serverCert: 'second', delivered: false },
  ];
  for (const d of dials) {
    test(`send() with no open connection dials the peer over TLS (${d.name})`, async (t) => {
      const b = await endpoint(t, { files: files('first', d.withCa) });
      let got = '';
      let connections = 0;
      const peerCerts: string[] = [];
      const handshakeErrors: string[] = [];
      const server = tls.createServer({ ...files(d.serverCert), requestCert: true, rejectUnauthorized: false }, (s) => {
        connections++;
        peerCerts.push(s.getPeerCertificate().fingerprint256);
        s.on('error', () => undefined);
        s.on('data', (chunk: Buffer) => { got += chunk.toString('latin1'); });
      });
      server.on('tlsClientError', (err) => handshakeErrors.push(err.message));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.after(() => { server.close(); });
      const port = (server.address() as net.AddressInfo).port;

      b.ep.send('127.0.0.1', port, MSG('dial-1'));
      if (!d.delivered) {
        // The endpoint aborts the handshake when the chain does not verify; the server sees that.
        await eventually('the server to see the handshake fail', 3000, () => handshakeErrors.length > 0);
        await sleep(100);
        assert.equal(connections, 0);
        assert.equal(got, '');
        return;
      }
      await eventually('the message at the dialled peer', 3000, () => got.includes('dial-1'));
      assert.deepEqual(peerCerts, [fingerprint('first')], 'the endpoint presents its own certificate');
      b.ep.send('127.0.0.1', port, MSG('dial-2'));
      await eventually('the second message', 2000, () => got.includes('dial-2'));
      assert.equal(connections, 1, 'the second message reuses the connection');
    });
  }
});

describe('TlsEndpoint bounds', () => {
  test('a client that never starts its handshake holds its slot until handshakeTimeoutMs, then is closed and the slot is free again', async (t) => {
    const b = await endpoint(t, { handshakeTimeoutMs: 300, maxConnectionsPerSource: 1 });
    const stalled = net.connect(b.port, '127.0.0.1');
    b.sockets.add(stalled);
    stalled.on('error', () => undefined);
    stalled.resume(); // a paused socket would not see the end of its stream
    await nextEvent(stalled, 'connect', 2000);
    const started = Date.now();
    const stalledClosed = nextEvent(stalled, 'close', 3000);

    // The bound counts the raw connection: while the stalled one is open, 127.0.0.1 has no room.
    const meanwhile = await turnedAway(b, 'while-stalled');
    assert.equal(meanwhile.handshook, false);
    assert.equal(b.ep.refused, 1);
    const failuresBefore = b.ep.handshakeFailures;

    await stalledClosed;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 2000, `closed after ${elapsed} ms`);
    assert.equal(b.ep.handshakeFailures, failuresBefore + 1, 'the timed-out handshake is counted');

    // Give the endpoint's close listener its turn, then the one slot of 127.0.0.1 must be free.
    await sleep(50);
    const client = await tlsClient(b);
    client.socket.write(MSG('after-stall'));
    await eventually('a message on the connection admitted after the stall', 2000, () => b.received.some((r) => r.data.includes('after-stall')));
    assert.equal(b.ep.refused, 1, 'the new connection was not refused');
  });

  // The other direction: a peer (a node whose TLS stack hangs) that accepts the TCP connection and
  // never answers the ClientHello. The connection must not wait for the 10-minute idle timeout
  // while the messages for that peer pile up in it.
  test('a dialled peer that accepts TCP but never answers the TLS handshake is abandoned within handshakeTimeoutMs', async (t) => {
    const b = await endpoint(t, { handshakeTimeoutMs: 300 });
    const peerSockets: { closedAt: number | null }[] = [];
    const hung = net.createServer((s) => {
      const entry = { closedAt: null as number | null };
      peerSockets.push(entry);
      s.on('error', () => undefined);
      s.resume();
      s.on('close', () => { entry.closedAt = Date.now(); });
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    t.after(() => { hung.close(); });
    const port = (hung.address() as net.AddressInfo).port;
    const started = Date.now();
    b.ep.send('127.0.0.1', port, MSG('to-hung'));
    await eventually('the endpoint to connect', 2000, () => peerSockets.length === 1);
    await eventually('the endpoint to give up the handshake', 2000, () => peerSockets[0].closedAt !== null);
    const elapsed = (peerSockets[0].closedAt ?? 0) - started;
    assert.ok(elapsed >= 250, `abandoned after ${elapsed} ms, not before the timeout`);
  });

  test('maxConnectionsPerSource 1: a second simultaneous connection from the same address is refused, the first keeps working', async (t) => {
    const b = await endpoint(t, { maxConnectionsPerSource: 1 });
    const first = await tlsClient(b);
    const second = await turnedAway(b, 'second');
    assert.equal(second.handshook, false, 'refused before its handshake');
    assert.equal(b.ep.refused, 1);
    first.socket.write(MSG('first-still'));
    await eventually('the first connection still carries messages', 2000, () => b.received.some((r) => r.data.includes('first-still')));
  });
});

describe('TlsEndpoint certificates', () => {
  test('reloadTls: a new handshake sees the new certificate; a connection opened before keeps working', async (t) => {
    const b = await endpoint(t, { files: files('first') });
    const old = await tlsClient(b);
    assert.equal(old.socket.getPeerCertificate().fingerprint256, fingerprint('first'));

    b.ep.reloadTls(files('second'));
    const fresh = await tlsClient(b);
    assert.equal(fresh.socket.getPeerCertificate().fingerprint256, fingerprint('second'));
    assert.notEqual(fingerprint('first'), fingerprint('second'));

    old.socket.write(MSG('old-conn'));
    await eventually('a message on the connection from before the reload', 2000, () => b.received.some((r) => r.data.includes('old-conn')));
    const { src } = b.received.find((r) => r.data.includes('old-conn'))!;
    b.ep.send(src.ip, src.port, MSG('old-back'));
    await eventually('the answer on it', 2000, () => old.got().includes('old-back'));
    fresh.socket.write(MSG('fresh-conn'));
    await eventually('a message on the new connection', 2000, () => b.received.some((r) => r.data.includes('fresh-conn')));
  });

  // tlsClientAuth with tlsCaFile: 'require' admits only a client whose certificate the CA signed;
  // 'request' asks for one but admits a client without.
  const clientAuth: { clientAuth: ClientAuth; clientCert: 'none' | 'client' | 'first'; admitted: boolean }[] = [
    { clientAuth: 'require', clientCert: 'none', admitted: false },
    { clientAuth: 'require', clientCert: 'first', admitted: false }, // self-signed, not by the CA
    { clientAuth: 'require', clientCert: 'client', admitted: true },
    { clientAuth: 'request', clientCert: 'none', admitted: true },
  ];
  for (const c of clientAuth) {
    test(`tlsClientAuth ${c.clientAuth}, client certificate ${c.clientCert} -> ${c.admitted ? 'admitted' : 'handshake fails'}`, async (t) => {
      const b = await endpoint(t, { files: files('first', true), clientAuth: c.clientAuth });
      const options: tls.ConnectionOptions = c.clientCert === 'none' ? {} : { cert: files(c.clientCert).cert, key: files(c.clientCert).key };
      const tag = `auth-${c.clientAuth}-${c.clientCert}`;
      if (!c.admitted) {
        await turnedAway(b, tag, options);
        assert.equal(b.ep.handshakeFailures, 1);
        return;
      }
      const client = await tlsClient(b, options);
      client.socket.write(MSG(tag));
      await eventually('the message of the admitted client', 2000, () => b.received.some((r) => r.data.includes(tag)));
      assert.equal(b.ep.handshakeFailures, 0);
    });
  }
});
