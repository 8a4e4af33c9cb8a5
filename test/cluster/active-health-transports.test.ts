// ActiveHealthCheck.probe() for nodes that offer neither UDP nor TCP: an OPTIONS over TLS to a
// TLS-only node, over a SIP WebSocket (subprotocol sip, RFC 7118) to a WS- or WSS-only node.
// Fake nodes on real loopback sockets answer with a chosen status; a closed port is refused.
// The WSS fake's certificate is made with openssl, in a temp dir removed afterwards.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { WebSocketServer, type RawData } from 'ws';
import { ActiveHealthCheck } from '../../src/cluster/active-health.ts';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';
import { nodeId } from '../../src/cluster/node.ts';
import { PassiveHealth } from '../../src/cluster/passive-health.ts';
import type { Transport } from '../../src/config/types.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { parseVia } from '../../src/sip/via.ts';

const log = pino({ level: 'silent' });

let dir = '';
let cert: { cert: Buffer; key: Buffer };
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'siplb-health-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'node.key'), '-out', join(dir, 'node.pem'), '-days', '1', '-subj', '/CN=node'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  } catch (err) {
    assert.fail(`openssl could not make a test certificate (apt-get install openssl): ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
  cert = { cert: readFileSync(join(dir, 'node.pem')), key: readFileSync(join(dir, 'node.key')) };
});
after(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function answer(req: SipMessage, status: number): Buffer {
  const lines = [`SIP/2.0 ${status} Fake`];
  for (const v of req.getAll('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.get('from')}`, `To: ${req.get('to')};tag=fake`, `Call-ID: ${req.callId}`, `CSeq: ${req.get('cseq')}`, 'Content-Length: 0', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

interface Fake {
  port: number;
  /** The OPTIONS the node received. */
  received: SipMessage[];
}

/** A TLS-only node: answers each OPTIONS with `status` (null: silence). */
async function tlsNode(host: string, status: number | null): Promise<Fake> {
  const received: SipMessage[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(cert, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
        const raw = buf.subarray(0, end + 4); // probes carry no body
        buf = buf.subarray(end + 4);
        const msg = parseSipMessage(raw, false);
        if (isParseFailure(msg)) continue;
        received.push(msg);
        if (status !== null) s.write(answer(msg, status));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, received };
}

/**
 * A WS- or WSS-only node: accepts only a handshake offering `sip` (as a SIP WebSocket server
 * must), then answers each OPTIONS with `status` as a text message.
 */
async function wsNode(host: string, secure: boolean, status: number | null): Promise<Fake & { protocols: string[] }> {
  const received: SipMessage[] = [];
  const protocols: string[] = [];
  const server = secure ? https.createServer(cert) : http.createServer();
  const offersSip = (req: http.IncomingMessage): boolean =>
    (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).includes('sip');
  const wss = new WebSocketServer({ server, verifyClient: (info: { req: http.IncomingMessage }) => offersSip(info.req), handleProtocols: (p) => (p.has('sip') ? 'sip' : false) });
  wss.on('connection', (ws) => {
    protocols.push(ws.protocol);
    ws.on('message', (data: RawData) => {
      const msg = parseSipMessage(Buffer.from(data as Buffer), false);
      if (isParseFailure(msg)) return;
      received.push(msg);
      if (status !== null) ws.send(answer(msg, status).toString('latin1'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, received, protocols };
}

/** A TCP port on `host` that nothing listens on. */
async function closedPort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** One node offering only `transport` on `port`, and a checker (its timer not started: probes are called by hand). */
function probeOf(host: string, transport: Transport, port: number, timeoutMs = 1000): () => ReturnType<ActiveHealthCheck['probe']> {
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
  const id = nodeId(host, port);
  registry.addStatic([{ id, ip: host, ports: { [transport]: port }, weight: 1 }]);
  const passiveHealth = new PassiveHealth(registry, { errorStatuses: [503], maxErrors: 3, windowMs: 10_000 });
  const checker = new ActiveHealthCheck(registry, passiveHealth, {
    intervalMs: 60_000, timeoutMs, failures: 1, successes: 1, bindHost: host, log,
  });
  cleanups.push(() => checker.close());
  return () => checker.probe(registry.get(id)!);
}

describe('probe() over TLS and SIP WebSockets', () => {
  const cases: { transport: 'tls' | 'ws' | 'wss'; host: string; status: number; ok: boolean }[] = [];
  for (const transport of ['tls', 'ws', 'wss'] as const) {
    for (const [status, ok] of [[200, true], [404, true], [503, false]] as const) cases.push({ transport, host: '127.0.0.1', status, ok });
    cases.push({ transport, host: '::1', status: 200, ok: true });
  }
  for (const c of cases) {
    test(`a ${c.transport.toUpperCase()}-only node on ${c.host} answering ${c.status} -> ${c.ok ? 'ok' : 'failure'}`, async () => {
      const fake = c.transport === 'tls' ? await tlsNode(c.host, c.status) : await wsNode(c.host, c.transport === 'wss', c.status);
      const r = await probeOf(c.host, c.transport, fake.port)();
      if (c.ok) assert.deepEqual(r, { ok: true, status: c.status });
      else assert.deepEqual(r, { ok: false, reason: `OPTIONS answered ${c.status}`, answered: true, refused: false });
      assert.equal(fake.received.length, 1, 'one OPTIONS');
      const msg = fake.received[0];
      assert.equal(msg.method, 'OPTIONS');
      // RFC 7118 §5: the URI parameter is transport=ws for WSS too; the Via names WSS.
      const uriTransport = c.transport === 'tls' ? 'tls' : 'ws';
      assert.match(msg.requestUri, new RegExp(`;transport=${uriTransport}$`, 'i'));
      assert.equal(parseVia(msg.get('via') ?? '')?.transport, c.transport.toUpperCase());
      if ('protocols' in fake) assert.deepEqual(fake.protocols, ['sip'], 'the WebSocket was opened with the sip subprotocol');
    });
  }

  // Nothing listens: the node is down for certain, whether or not it ever answered an OPTIONS.
  for (const transport of ['tls', 'ws', 'wss'] as const) {
    test(`a ${transport.toUpperCase()} port with nothing listening -> refused`, async () => {
      const port = await closedPort('127.0.0.1');
      const r = await probeOf('127.0.0.1', transport, port)();
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.refused, `refused: ${JSON.stringify(r)}`);
      assert.equal(!r.ok && r.answered, false);
    });
  }

  // An open port that never answers: not refused, not answered (the checker then judges the node
  // by whether it ever answered an OPTIONS), and settled by the timeout.
  for (const transport of ['tls', 'ws'] as const) {
    test(`a ${transport.toUpperCase()} node that accepts and never answers -> a timeout, neither refused nor answered`, async () => {
      const fake = transport === 'tls' ? await tlsNode('127.0.0.1', null) : await wsNode('127.0.0.1', false, null);
      const started = Date.now();
      const r = await probeOf('127.0.0.1', transport, fake.port, 300)();
      const elapsed = Date.now() - started;
      assert.deepEqual(r, { ok: false, reason: 'no answer to OPTIONS within 300 ms', answered: false, refused: false });
      assert.ok(elapsed >= 250 && elapsed < 2000, `settled after ${elapsed} ms`);
      assert.equal(fake.received.length, 1, 'the OPTIONS reached the node');
    });
  }
});
