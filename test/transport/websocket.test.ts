// WebSocketEndpoint (RFC 7118) over real loopback sockets, driven with the `ws` client: what the
// handshake accepts and refuses, one SIP message per WebSocket message in both directions (text
// when UTF-8, binary otherwise), CRLF keep-alives kept from the parser, the size bound, pings that
// close a vanished client, dialling a peer's SIP WebSocket, the per-source bound, and WSS.

import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { WebSocket, WebSocketServer, type ClientOptions, type RawData } from 'ws';
import { ConnectionTable } from '../../src/transport/connections.ts';
import { readTlsFiles, type TlsFiles } from '../../src/transport/tls-files.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { WebSocketEndpoint } from '../../src/transport/websocket.ts';
import { eventually, nextEvent, sleep } from '../helpers/wait.ts';

const MSG = (tag: string): string =>
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS abc.invalid;branch=z9hG4bK-${tag}\r\nCall-ID: ${tag}\r\nContent-Length: 0\r\n\r\n`;

// ---- certificates for WSS (openssl, into a temp dir removed afterwards) ----

let dir = '';
const pem = (name: string): string => join(dir, name);
const files = (name: string): TlsFiles => readTlsFiles(pem(`${name}.pem`), pem(`${name}.key`));

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'siplb-wss-'));
  for (const cn of ['first', 'second']) {
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', pem(`${cn}.key`), '-out', pem(`${cn}.pem`), '-days', '1', '-subj', `/CN=${cn}`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    } catch (err) {
      assert.fail(`openssl could not make a test certificate (apt-get install openssl): ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
    }
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

// ---- the endpoint under test and clients ----

interface Bed {
  ep: WebSocketEndpoint;
  connections: ConnectionTable;
  port: number;
  url: string;
  received: { data: Buffer; src: Inbound }[];
  has: (tag: string) => boolean;
}

interface BedOptions {
  transport?: 'ws' | 'wss';
  host?: string;
  allowedOrigins?: string[];
  pingIntervalMs?: number;
  maxMessageSize?: number;
  maxConnectionsPerSource?: number;
  tls?: TlsFiles;
  handshakeTimeoutMs?: number;
}

/** Awaits `pending`; fails, rather than hanging the test, should it take longer than `ms`. */
async function within<T>(pending: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  try {
    return await Promise.race([pending, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function endpoint(t: TestContext, o: BedOptions = {}): Promise<Bed> {
  const transport = o.transport ?? 'ws';
  const host = o.host ?? '127.0.0.1';
  const received: Bed['received'] = [];
  const connections = new ConnectionTable();
  const ep = new WebSocketEndpoint({
    side: 'external', host, port: 0, maxMessageSize: o.maxMessageSize ?? 4096, log: pino({ level: 'silent' }),
    connections, onMessage: (data, src) => received.push({ data: Buffer.from(data), src }),
    maxConnectionsPerSource: o.maxConnectionsPerSource,
    ws: { allowedOrigins: o.allowedOrigins ?? [], pingIntervalMs: o.pingIntervalMs ?? 30_000 },
    ...(transport === 'wss' || o.handshakeTimeoutMs !== undefined
      ? { tls: { files: o.tls ?? files('first'), clientAuth: 'none' as const, handshakeTimeoutMs: o.handshakeTimeoutMs ?? 5000 } }
      : {}),
  }, transport);
  await ep.listen();
  // Bounded: should the close wait on a socket nobody closes, the test fails instead of hanging.
  t.after(() => within(ep.close(), 3000, 'the endpoint to close'));
  const port = ep.address().port;
  const url = `${transport}://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  return { ep, connections, port, url, received, has: (tag) => received.some((r) => r.data.toString('utf8').includes(tag)) };
}

interface Client {
  ws: WebSocket;
  /** The client's own port: the peer port the endpoint sees. */
  localPort: number;
  messages: { data: Buffer; isBinary: boolean }[];
  pings: number;
  /** WSS: the SHA-256 fingerprint of the certificate the server presented. */
  fingerprint: string;
  closed: Promise<{ code: number; at: number }>;
}

/** The result of a handshake: open, or the HTTP status of the refusal (with its headers). */
type Handshake = { open: Client } | { status: number; headers: http.IncomingHttpHeaders };

function handshake(t: TestContext, url: string, protocols: string[] | undefined, options: ClientOptions = {}): Promise<Handshake> {
  const ws = protocols === undefined ? new WebSocket(url, { rejectUnauthorized: false, ...options }) : new WebSocket(url, protocols, { rejectUnauthorized: false, ...options });
  t.after(() => ws.terminate());
  const client: Client = {
    ws, localPort: 0, messages: [], pings: 0, fingerprint: '',
    closed: new Promise((resolve) => ws.on('close', (code) => resolve({ code, at: Date.now() }))),
  };
  ws.on('message', (data: RawData, isBinary: boolean) => client.messages.push({ data: Buffer.from(data as Buffer), isBinary }));
  ws.on('ping', () => { client.pings++; });
  ws.on('upgrade', (res) => {
    client.localPort = res.socket.localPort ?? 0;
    if ('getPeerCertificate' in res.socket) client.fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no handshake result within 3000 ms')), 3000);
    ws.on('open', () => { clearTimeout(timer); resolve({ open: client }); });
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      req.destroy();
    });
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

/** A client that must open (offering `sip`). */
async function sipClient(t: TestContext, url: string, options: ClientOptions = {}): Promise<Client> {
  const r = await handshake(t, url, ['sip'], options);
  if (!('open' in r)) assert.fail(`handshake refused with ${r.status}`);
  return r.open;
}

/** A hand-written upgrade request offering `protocol`; resolves with the response head. */
function rawUpgrade(port: number, protocol: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no response head within 3000 ms')); }, 3000);
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end !== -1) {
        clearTimeout(timer);
        s.destroy();
        resolve(text.slice(0, end));
      }
    });
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`);
  });
}

describe('WebSocketEndpoint handshake (RFC 7118)', () => {
  const ORIGIN = 'https://app.example';
  const cases: { name: string; protocols?: string[]; origin?: string; allowedOrigins?: string[]; status: number | 'open' }[] = [
    { name: 'no subprotocol offered', protocols: undefined, status: 400 },
    { name: 'only chat offered', protocols: ['chat'], status: 400 },
    { name: 'chat and sip offered: sip is chosen', protocols: ['chat', 'sip'], status: 'open' },
    { name: 'an origin not on allowedOrigins', protocols: ['sip'], origin: 'https://evil.example', allowedOrigins: [ORIGIN], status: 403 },
    { name: 'no origin while allowedOrigins is set', protocols: ['sip'], allowedOrigins: [ORIGIN], status: 403 },
    { name: 'an allowed origin', protocols: ['sip'], origin: ORIGIN, allowedOrigins: [ORIGIN], status: 'open' },
    // Origins compare case-insensitively (the configured list is lowercase).
    { name: 'an allowed origin in other case', protocols: ['sip'], origin: 'HTTPS://App.Example', allowedOrigins: [ORIGIN], status: 'open' },
    { name: 'any origin while allowedOrigins is empty', protocols: ['sip'], origin: 'https://anywhere.example', status: 'open' },
  ];
  for (const c of cases) {
    test(`${c.name} -> ${c.status}`, async (t) => {
      const b = await endpoint(t, { allowedOrigins: c.allowedOrigins });
      const r = await handshake(t, b.url, c.protocols, c.origin === undefined ? {} : { origin: c.origin });
      if (c.status === 'open') {
        assert.ok('open' in r, 'the handshake succeeds');
        assert.equal(r.open.ws.protocol, 'sip');
        assert.equal(b.ep.handshakesRefused, 0);
        await eventually('the endpoint to hold the connection', 2000, () => b.ep.size === 1);
      } else {
        assert.ok('status' in r, 'the handshake is refused');
        assert.equal(r.status, c.status);
        assert.equal(r.headers.upgrade, undefined, 'no upgrade');
        assert.equal(b.ep.handshakesRefused, 1);
        assert.equal(b.ep.size, 0);
      }
    });
  }

  test('a plain HTTP GET is answered 426 Upgrade Required', async (t) => {
    const b = await endpoint(t);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: b.port, path: '/', agent: false }, resolve);
      req.on('error', reject);
      req.setTimeout(3000, () => req.destroy(new Error('no answer within 3000 ms')));
    });
    res.resume();
    assert.equal(res.statusCode, 426);
    assert.equal(res.headers.upgrade?.toLowerCase(), 'websocket');
    assert.equal(b.ep.handshakesRefused, 1);
  });

  // The endpoint's check reads the offer case-insensitively; whatever it decides, the outcome must
  // be a usable SIP WebSocket or a refusal, never a 101 without a subprotocol (which the client
  // must fail, RFC 6455 §4.1, while the endpoint counts it as neither open nor refused).
  test('an offer of SIP in upper case: opened with the subprotocol, or refused with 400', async (t) => {
    const b = await endpoint(t);
    const r = await handshake(t, b.url, ['SIP']).catch((err: Error) => ({ error: err.message }));
    if ('error' in r) {
      // The ws client fails a 101 that names no subprotocol; find what the 101 said.
      const raw = await rawUpgrade(b.port, 'SIP');
      const protocolIn101 = /^sec-websocket-protocol:\s*(.*)$/im.exec(raw)?.[1];
      assert.fail(`the handshake neither opened with a subprotocol nor was refused: ${r.error} (status line ${JSON.stringify(raw.split('\r\n')[0])}, Sec-WebSocket-Protocol ${JSON.stringify(protocolIn101)})`);
    }
    if ('open' in r) assert.equal(r.open.ws.protocol.toLowerCase(), 'sip');
    else assert.equal(r.status, 400);
  });

  test('a connection that sends no upgrade request within the handshake timeout is closed', async (t) => {
    const b = await endpoint(t, { handshakeTimeoutMs: 300 });
    const idle = net.connect(b.port, '127.0.0.1');
    t.after(() => idle.destroy());
    idle.on('error', () => undefined);
    // Read what comes (an HTTP 408, as Node words it): a socket left paused with unread data
    // never sees the end of its stream, so its close would go unnoticed.
    let answer = '';
    idle.on('data', (d: Buffer) => { answer += d.toString('latin1'); });
    await nextEvent(idle, 'connect', 2000);
    const started = Date.now();
    // A request line and one header, then nothing: the headers never complete.
    idle.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await nextEvent(idle, 'close', 3000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 2500, `closed after ${elapsed} ms`);
    assert.doesNotMatch(answer, /^HTTP\/1\.1 101/, 'never upgraded');
  });

  test('the handshake timeout does not touch a connection that finished its handshake', async (t) => {
    const b = await endpoint(t, { handshakeTimeoutMs: 300 });
    const client = await sipClient(t, b.url);
    // Several of the server's timeout checks (every 300 ms) go by.
    await sleep(1000);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    client.ws.send(MSG('after-timeout'));
    await eventually('a message after the handshake timeout has passed', 2000, () => b.has('after-timeout'));
  });
});

describe('WebSocketEndpoint messages', () => {
  for (const host of ['127.0.0.1', '::1']) {
    test(`a text SIP message arrives with transport ws, its side and connection; send() to that peer comes back as a text frame (${host})`, async (t) => {
      const b = await endpoint(t, { host });
      const client = await sipClient(t, b.url);
      client.ws.send(MSG('text-1'));
      await eventually('the message at onMessage', 2000, () => b.has('text-1'));
      const { data, src } = b.received[0];
      assert.equal(data.toString('utf8'), MSG('text-1'), 'the message whole, as sent');
      assert.deepEqual({ ...src, connectionId: 0 }, { transport: 'ws', side: 'external', ip: host, port: client.localPort, connectionId: 0 });
      assert.ok(src.connectionId > 0);
      assert.equal(b.connections.get(src.connectionId)?.transport, 'ws');

      b.ep.send(src.ip, src.port, Buffer.from(MSG('reply-1')));
      await eventually('the reply at the client', 2000, () => client.messages.length === 1);
      assert.equal(client.messages[0].isBinary, false);
      assert.equal(client.messages[0].data.toString('utf8'), MSG('reply-1'));
    });
  }

  // RFC 6455 §5.6: a text message must be UTF-8; a browser closes on one that is not.
  const frames: { name: string; body: Buffer; isBinary: boolean }[] = [
    { name: 'UTF-8 (with non-ASCII characters)', body: Buffer.from('caf\u00e9 \u2603', 'utf8'), isBinary: false },
    { name: 'a byte that is not UTF-8', body: Buffer.from([0x61, 0xff, 0x62]), isBinary: true },
  ];
  for (const f of frames) {
    test(`a message whose body is ${f.name} goes as a ${f.isBinary ? 'binary' : 'text'} frame`, async (t) => {
      const b = await endpoint(t);
      const client = await sipClient(t, b.url);
      client.ws.send(MSG('hello'));
      await eventually('the client to be known', 2000, () => b.received.length === 1);
      const { src } = b.received[0];
      const head = Buffer.from(`MESSAGE sip:a@b.invalid SIP/2.0\r\nCall-ID: bin\r\nContent-Length: ${f.body.length}\r\n\r\n`, 'latin1');
      const message = Buffer.concat([head, f.body]);
      b.ep.send(src.ip, src.port, message);
      await eventually('the message at the client', 2000, () => client.messages.length === 1);
      assert.equal(client.messages[0].isBinary, f.isBinary);
      assert.deepEqual(client.messages[0].data, message, 'every byte as sent');
    });
  }

  test('a CRLFCRLF keep-alive is answered with CRLF and does not reach onMessage', async (t) => {
    const b = await endpoint(t);
    const client = await sipClient(t, b.url);
    client.ws.send('\r\n\r\n');
    await eventually('the CRLF pong', 2000, () => client.messages.length === 1);
    assert.deepEqual(client.messages[0], { data: Buffer.from('\r\n'), isBinary: false });
    // A message after it on the same connection: once that has arrived, the keep-alive (sent
    // before it) has been handled, so its absence at onMessage is not a matter of waiting longer.
    client.ws.send(MSG('after-ping'));
    await eventually('the message after the keep-alive', 2000, () => b.has('after-ping'));
    assert.equal(b.received.length, 1, 'only the SIP message reached onMessage');
  });

  test('a message larger than maxMessageSize closes the connection with 1009', async (t) => {
    const b = await endpoint(t, { maxMessageSize: 4096 });
    const client = await sipClient(t, b.url);
    client.ws.on('error', () => undefined);
    client.ws.send(MSG('big') + 'X'.repeat(5000));
    const { code } = await client.closed;
    assert.equal(code, 1009);
    assert.equal(b.received.length, 0);
    await eventually('the endpoint to let the connection go', 2000, () => b.ep.size === 0 && b.connections.size === 0);
  });

  test('a message sent in fragments arrives whole, once', async (t) => {
    const b = await endpoint(t);
    const client = await sipClient(t, b.url);
    const whole = MSG('fragmented');
    const cut = [0, 20, 61, whole.length];
    for (let i = 0; i < cut.length - 1; i++) client.ws.send(whole.slice(cut[i], cut[i + 1]), { binary: false, fin: i === cut.length - 2 });
    await eventually('the reassembled message', 2000, () => b.received.length === 1);
    assert.equal(b.received[0].data.toString('utf8'), whole);
    await sleep(50);
    assert.equal(b.received.length, 1, 'one SIP message per WebSocket message, not per frame');
  });
});

describe('WebSocketEndpoint pings (pingIntervalMs 200)', () => {
  test('a client that does not answer pings is closed after two unanswered pings; a client that answers stays open', async (t) => {
    const INTERVAL = 200;
    const b = await endpoint(t, { pingIntervalMs: INTERVAL });
    const deaf = await sipClient(t, b.url, { autoPong: false });
    const opened = Date.now();
    deaf.ws.on('error', () => undefined);
    const normal = await sipClient(t, b.url);
    const { at } = await within(deaf.closed, 3000, 'the deaf client to be closed');
    const elapsed = at - opened;
    // Quiet for an interval, then a ping per interval; closed at the look after the second one.
    assert.ok(elapsed >= 2 * INTERVAL && elapsed < 2500, `closed after ${elapsed} ms`);
    assert.equal(deaf.pings, 2, 'two pings went unanswered');
    assert.equal(b.ep.pingTimeouts, 1);
    // The answering client has been pinged too, and is still open two intervals later.
    await sleep(2 * INTERVAL);
    assert.ok(normal.pings >= 1, 'the answering client was pinged');
    assert.equal(normal.ws.readyState, WebSocket.OPEN);
    assert.equal(b.ep.pingTimeouts, 1);
    normal.ws.send(MSG('still-here'));
    await eventually('a message from the answering client', 2000, () => b.has('still-here'));
  });
});

/** A SIP WebSocket server (a node's WS port) that refuses handshakes without `sip` and records what it gets. */
async function wsPeer(t: TestContext, host: string, secure = false): Promise<{ port: number; got: string[]; sockets: WebSocket[] }> {
  const got: string[] = [];
  const sockets: WebSocket[] = [];
  const offersSip = (req: http.IncomingMessage): boolean =>
    (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).includes('sip');
  const server = secure ? https.createServer(files('second')) : http.createServer();
  const wss = new WebSocketServer({ server, verifyClient: (info: { req: http.IncomingMessage }) => offersSip(info.req), handleProtocols: (p) => (p.has('sip') ? 'sip' : false) });
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data: RawData) => got.push(Buffer.from(data as Buffer).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(() => {
    for (const ws of sockets) ws.terminate();
    wss.close();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, got, sockets };
}

describe('WebSocketEndpoint dialling', () => {
  for (const host of ['127.0.0.1', '::1']) {
    test(`send() to a SIP WebSocket server with no open connection dials it; a second send reuses the connection (${host})`, async (t) => {
      const b = await endpoint(t, { host });
      const peer = await wsPeer(t, host);
      b.ep.send(host, peer.port, Buffer.from(MSG('out-1')));
      await eventually('the first message at the peer', 3000, () => peer.got.length === 1);
      assert.equal(peer.got[0], MSG('out-1'));
      assert.equal(peer.sockets[0].protocol, 'sip');
      b.ep.send(host, peer.port, Buffer.from(MSG('out-2')));
      await eventually('the second message at the peer', 2000, () => peer.got.length === 2);
      assert.equal(peer.sockets.length, 1, 'one connection for both');
      // What the peer sends back on it arrives from the peer's address and port.
      peer.sockets[0].send(MSG('answer'));
      await eventually('the answer at onMessage', 2000, () => b.has('answer'));
      const { src } = b.received[0];
      assert.deepEqual({ ...src, connectionId: 0 }, { transport: 'ws', side: 'external', ip: host, port: peer.port, connectionId: 0 });
    });
  }
});

describe('WebSocketEndpoint maxConnectionsPerSource 1', () => {
  test('a second connection from the same address is refused; once the first closes a new one is admitted', async (t) => {
    const b = await endpoint(t, { maxConnectionsPerSource: 1 });
    const first = await sipClient(t, b.url);
    await assert.rejects(handshake(t, b.url, ['sip']), 'the second handshake fails');
    assert.equal(b.ep.refused, 1);
    first.ws.send(MSG('first-still'));
    await eventually('the first connection still carries messages', 2000, () => b.has('first-still'));

    first.ws.close();
    await first.closed;
    await eventually('the endpoint to let the first go', 2000, () => b.ep.size === 0);
    await sleep(50);
    const again = await sipClient(t, b.url);
    again.ws.send(MSG('again'));
    await eventually('a message on the connection admitted after the close', 2000, () => b.has('again'));
    assert.equal(b.ep.refused, 1);
  });
});

describe('WebSocketEndpoint wss (self-signed certificate)', () => {
  test('a message round trip over WSS, with transport wss', async (t) => {
    const b = await endpoint(t, { transport: 'wss' });
    const client = await sipClient(t, b.url);
    client.ws.send(MSG('secure-1'));
    await eventually('the message at onMessage', 2000, () => b.has('secure-1'));
    const { src } = b.received[0];
    assert.equal(src.transport, 'wss');
    b.ep.send(src.ip, src.port, Buffer.from(MSG('secure-back')));
    await eventually('the answer at the client', 2000, () => client.messages.length === 1);
    assert.equal(client.messages[0].data.toString('utf8'), MSG('secure-back'));
  });

  test('the handshake without sip is refused with 400 over WSS too', async (t) => {
    const b = await endpoint(t, { transport: 'wss' });
    const r = await handshake(t, b.url, ['chat']);
    assert.ok('status' in r);
    assert.equal(r.status, 400);
  });

  test('send() dials a WSS peer', async (t) => {
    const b = await endpoint(t, { transport: 'wss' });
    const peer = await wsPeer(t, '127.0.0.1', true);
    b.ep.send('127.0.0.1', peer.port, Buffer.from(MSG('wss-out')));
    await eventually('the message at the WSS peer', 3000, () => peer.got.length === 1);
    assert.equal(peer.got[0], MSG('wss-out'));
  });

  test('reloadTls: a new handshake sees the new certificate; a connection opened before keeps working', async (t) => {
    const b = await endpoint(t, { transport: 'wss', tls: files('first') });
    const fingerprint = (name: string): string => new X509Certificate(files(name).cert).fingerprint256;
    const old = await sipClient(t, b.url);
    assert.equal(old.fingerprint, fingerprint('first'));

    b.ep.reloadTls(files('second'));
    const fresh = await sipClient(t, b.url);
    assert.equal(fresh.fingerprint, fingerprint('second'));
    assert.notEqual(fingerprint('first'), fingerprint('second'));

    old.ws.send(MSG('old-conn'));
    await eventually('a message on the connection from before the reload', 2000, () => b.has('old-conn'));
    const { src } = b.received.find((r) => r.data.toString('utf8').includes('old-conn'))!;
    b.ep.send(src.ip, src.port, Buffer.from(MSG('old-back')));
    await eventually('the answer on it', 2000, () => old.messages.length === 1);
    fresh.ws.send(MSG('fresh-conn'));
    await eventually('a message on the new connection', 2000, () => b.has('fresh-conn'));
  });
});
