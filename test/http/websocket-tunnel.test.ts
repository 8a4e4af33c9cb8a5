// tunnel() between real peers on loopback: a node:http front server whose 'upgrade' handler
// tunnels to real `ws` WebSocket servers, spoken to by real `ws` clients. Covers relaying both
// ways (text, 1 MB binary, the SIP subprotocol), the node's own refusal passing through, the 502
// for an unreachable node, the idle timeout, closes propagating, and the forwarded headers.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { tunnel, type TunnelTarget } from '../../src/http/websocket-tunnel.ts';
import { eventually, sleep, nextEvent } from '../helpers/wait.ts';

const HOST = '127.0.0.1';
const WAIT_MS = 3000;

function once<T extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms = WAIT_MS): Promise<T> {
  return nextEvent<T>(emitter, event, ms);
}

interface Front {
  port: number;
  url: string;
  opened: number;
  closed: number;
}

/** The balancer's part, reduced to what tunnel() is handed: the upgrade, a target, rewritten headers. */
async function startFront(t: TestContext, target: TunnelTarget, idleTimeoutMs = 5000): Promise<Front> {
  const sockets = new Set<Duplex>();
  const front: Front = { port: 0, url: '', opened: 0, closed: 0 };
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    tunnel(req, socket, head, target, {
      idleTimeoutMs,
      headers: { ...(req.headers as Record<string, string | string[]>), 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-multi': ['one', 'two'] },
      log: pino({ level: 'silent' }),
      onOpen: () => { front.opened++; },
      onClose: () => { front.closed++; },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  front.port = (server.address() as net.AddressInfo).port;
  front.url = `ws://${HOST}:${front.port}/ws`;
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    server.close();
  });
  return front;
}

interface Node {
  target: TunnelTarget;
  wss: WebSocketServer;
  /** The node-side request of every connection accepted, in order. */
  requests: http.IncomingMessage[];
}

/** A WebSocket server that echoes every message with its type. */
async function startEchoNode(t: TestContext, options: Partial<ConstructorParameters<typeof WebSocketServer>[0]> = {}): Promise<Node> {
  const wss = new WebSocketServer({ host: HOST, port: 0, ...options });
  const requests: http.IncomingMessage[] = [];
  wss.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data as Buffer, { binary: isBinary }));
  });
  await once(wss, 'listening');
  t.after(() => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });
  return { target: { host: HOST, port: (wss.address() as net.AddressInfo).port }, wss, requests };
}

async function connect(t: TestContext, url: string, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols);
  t.after(() => ws.terminate());
  await once(ws, 'open');
  return ws;
}

async function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  const reply = once<[Buffer, boolean]>(ws, 'message');
  ws.send(data);
  const [got, isBinary] = await reply;
  return { data: got, isBinary };
}

/** The answer a client gets when the upgrade is refused: status and body. */
async function refusedUpgrade(t: TestContext, url: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const ws = new WebSocket(url);
  t.after(() => ws.terminate());
  ws.on('error', () => {});
  const [, res] = await once<[http.ClientRequest, http.IncomingMessage]>(ws, 'unexpected-response');
  let body = '';
  res.setEncoding('latin1');
  res.on('data', (d: string) => { body += d; });
  await once(res, 'end');
  return { status: res.statusCode ?? 0, body, headers: res.headers };
}

/** A loopback port where nothing listens: bound, read, released. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, HOST, resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('text and a 1 MB binary message echo through the tunnel', async (t) => {
  const node = await startEchoNode(t);
  const front = await startFront(t, node.target);
  const ws = await connect(t, front.url);

  const text = await roundTrip(ws, 'hello through siplb');
  assert.equal(text.isBinary, false);
  assert.equal(text.data.toString('utf8'), 'hello through siplb');

  const big = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  const binary = await roundTrip(ws, big);
  assert.equal(binary.isBinary, true);
  assert.ok(binary.data.equals(big), '1 MB binary message came back unchanged');
  assert.equal(front.opened, 1);
});

test('Sec-WebSocket-Protocol: sip is negotiated end to end and a REGISTER frame echoes', async (t) => {
  const node = await startEchoNode(t, { handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false) });
  const front = await startFront(t, node.target);
  const ws = await connect(t, front.url, ['sip']);
  assert.equal(ws.protocol, 'sip');
  assert.equal(node.requests[0].headers['sec-websocket-protocol'], 'sip');

  const register =
    'REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n' +
    'From: <sip:alice@example.com>;tag=65bnmj.34asd\r\nTo: <sip:alice@example.com>\r\nCall-ID: aiuy7k9njasd\r\n' +
    'CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:alice@df7jal23ls0d.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n';
  const echoed = await roundTrip(ws, register);
  assert.equal(echoed.isBinary, false);
  assert.equal(echoed.data.toString('utf8'), register);
});

test('a node that refuses the connection -> the client gets 502 and no tunnel is counted', async (t) => {
  const front = await startFront(t, { host: HOST, port: await deadPort() });
  const answer = await refusedUpgrade(t, front.url);
  assert.equal(answer.status, 502);
  assert.equal(answer.headers['content-type'], 'text/plain');
  assert.equal(answer.headers.connection, 'close');
  assert.match(answer.body, /cannot connect to the node/);
  assert.equal(Number(answer.headers['content-length']), Buffer.byteLength(answer.body));
  await sleep(50);
  assert.deepEqual([front.opened, front.closed], [0, 0]);
});

test('an impossible target port -> 502, not a throw', async (t) => {
  const front = await startFront(t, { host: HOST, port: 70_000 });
  const answer = await refusedUpgrade(t, front.url);
  assert.equal(answer.status, 502);
});

test('the node answering 403 to the upgrade reaches the client as 403, then both sides close', async (t) => {
  const node = await startEchoNode(t, { verifyClient: (_info, cb) => cb(false, 403, 'Forbidden') });
  const front = await startFront(t, node.target);
  const answer = await refusedUpgrade(t, front.url);
  assert.equal(answer.status, 403);
  assert.equal(answer.body, 'Forbidden');
  await eventually('tunnel closed after the 403', WAIT_MS, () => front.closed === 1);
  assert.equal(front.opened, 1);
});

test('a node that accepts the connection and closes it without answering -> 502', async (t) => {
  const silent = net.createServer((s) => s.end());
  await new Promise<void>((resolve) => silent.listen(0, HOST, resolve));
  t.after(() => silent.close());
  const front = await startFront(t, { host: HOST, port: (silent.address() as net.AddressInfo).port });
  const answer = await refusedUpgrade(t, front.url);
  assert.equal(answer.status, 502);
  assert.match(answer.body, /without answering/);
  await eventually('tunnel closed', WAIT_MS, () => front.closed === 1);
});

test('idle timeout: traffic keeps the tunnel open, 300 ms of silence closes both sides', async (t) => {
  const node = await startEchoNode(t);
  const front = await startFront(t, node.target, 300);
  const ws = await connect(t, front.url);
  const nodeSideClosed = once(node.wss.clients.values().next().value!, 'close');
  const clientClosed = once(ws, 'close');

  // 600 ms of traffic every 100 ms: twice the timeout, yet never 300 ms without a byte.
  for (let i = 0; i < 6; i++) {
    await roundTrip(ws, `tick ${i}`);
    await sleep(100);
  }
  assert.equal(ws.readyState, WebSocket.OPEN);

  const silentSince = performance.now();
  await clientClosed;
  const silentFor = performance.now() - silentSince;
  assert.ok(silentFor >= 150 && silentFor < 1500, `closed after ${Math.round(silentFor)} ms of silence`);
  await nodeSideClosed;
  await eventually('onClose called', WAIT_MS, () => front.closed === 1);
  await sleep(50);
  assert.deepEqual([front.opened, front.closed], [1, 1]);
});

test('the client closing ends the node side too: close handshake and abrupt terminate', async (t) => {
  const node = await startEchoNode(t);
  const front = await startFront(t, node.target);

  const polite = await connect(t, front.url);
  const politeAtNode = once<[number]>(node.wss.clients.values().next().value!, 'close');
  polite.close(1000, 'bye');
  const [code] = await politeAtNode;
  assert.equal(code, 1000);
  await eventually('first tunnel closed', WAIT_MS, () => front.closed === 1);

  const abrupt = await connect(t, front.url);
  const abruptAtNode = once<[number]>([...node.wss.clients].at(-1)!, 'close');
  abrupt.terminate();
  const [abruptCode] = await abruptAtNode;
  assert.equal(abruptCode, 1006, 'the node saw its socket close without a close frame');
  await eventually('second tunnel closed', WAIT_MS, () => front.closed === 2);
  assert.equal(front.opened, 2);
});

test('the node going away mid-session ends the client side', async (t) => {
  const node = await startEchoNode(t);
  const front = await startFront(t, node.target);
  const ws = await connect(t, front.url);
  await roundTrip(ws, 'before');
  const clientClosed = once<[number]>(ws, 'close');
  node.wss.clients.values().next().value!.terminate();
  const [code] = await clientClosed;
  assert.equal(code, 1006, 'the client saw its socket close without a close frame');
  await eventually('tunnel closed', WAIT_MS, () => front.closed === 1);
});

test('X-Forwarded-For and array headers (one line per value) arrive at the node', async (t) => {
  const node = await startEchoNode(t);
  const front = await startFront(t, node.target);
  const ws = await connect(t, front.url + '?a=1');
  await roundTrip(ws, 'x');
  const req = node.requests[0];
  assert.equal(req.url, '/ws?a=1');
  assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(req.headers.host, `${HOST}:${front.port}`);
  const multi = req.rawHeaders.filter((_v, i) => i % 2 === 1 && req.rawHeaders[i - 1].toLowerCase() === 'x-multi');
  assert.deepEqual(multi, ['one', 'two']);
});
