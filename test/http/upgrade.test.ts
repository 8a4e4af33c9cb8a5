// WebSocket handshakes through the HTTP balancer: which node and which port a handshake goes to
// (session stickiness as for plain requests; the `sip` subprotocol to the node's wsPort), the
// per-node tunnel counters, a draining node keeping its tunnel, and the answer when no node can
// take one. Real `ws` servers as nodes and real `ws` clients; the tunnel itself is
// websocket-tunnel.ts (its own tests cover relaying).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startHttpBalancer } from '../helpers/http-balancer.ts';
import { eventually, nextEvent } from '../helpers/wait.ts';

const WAIT_MS = 3000;

function once<T extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms = WAIT_MS): Promise<T> {
  return nextEvent<T>(emitter, event, ms);
}

interface WsNode {
  route: string;
  httpPort: number;
  wsPort: number;
}

/**
 * A node: an HTTP server that issues `JSESSIONID=<n>.<route>` to plain GETs and takes WebSocket
 * upgrades (echoing `<route>:<message>`), and a separate SIP WebSocket port (echoing
 * `<route>-sip:<message>`) that accepts only the `sip` subprotocol.
 */
async function startWsNode(t: TestContext, route: string): Promise<WsNode> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'set-cookie': `JSESSIONID=S${Math.random().toString(16).slice(2)}.${route}; Path=/`, 'content-length': '2' });
    res.end('ok');
  });
  const web = new WebSocketServer({ server });
  web.on('connection', (ws) => ws.on('message', (d: RawData) => ws.send(`${route}:${String(d)}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sip = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has('sip') ? 'sip' : false) });
  sip.on('connection', (ws) => ws.on('message', (d: RawData) => ws.send(`${route}-sip:${String(d)}`)));
  await once(sip, 'listening');
  t.after(() => {
    for (const ws of [...web.clients, ...sip.clients]) ws.terminate();
    web.close();
    sip.close();
    server.closeAllConnections();
    server.close();
  });
  return { route, httpPort: (server.address() as AddressInfo).port, wsPort: (sip.address() as AddressInfo).port };
}

async function open(t: TestContext, url: string, opts: { protocols?: string[]; cookie?: string } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, opts.protocols, opts.cookie === undefined ? {} : { headers: { cookie: opts.cookie } });
  t.after(() => ws.terminate());
  await once(ws, 'open');
  return ws;
}

async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = once<[Buffer]>(ws, 'message');
  ws.send(text);
  return String((await reply)[0]);
}

async function setup(t: TestContext) {
  const n1 = await startWsNode(t, 'node1');
  const n2 = await startWsNode(t, 'node2');
  const lb = await startHttpBalancer(t, [
    { port: n1.httpPort, jvmRoute: 'node1', wsPort: n1.wsPort },
    { port: n2.httpPort, jvmRoute: 'node2', wsPort: n2.wsPort },
  ]);
  return { lb, ws: `ws://127.0.0.1:${lb.port}` };
}

test('a WebSocket with a JSESSIONID cookie goes to its session\'s node, and is counted as an open tunnel there', async (t) => {
  const { lb, ws } = await setup(t);
  for (const route of ['node1', 'node2']) {
    const socket = await open(t, `${ws}/chat`, { cookie: `JSESSIONID=ABC.${route}` });
    assert.equal(await echo(socket, 'hi'), `${route}:hi`);
    const id = lb.nodes.find((n) => n.http?.jvmRoute === route)?.id ?? '';
    await eventually('tunnel counted open', WAIT_MS, () => lb.balancer.stats.node(id).tunnels === 1);
    assert.equal(lb.balancer.stats.node(id).stickyHits, 1);
    socket.close();
    await eventually('tunnel counted closed', WAIT_MS, () => lb.balancer.stats.node(id).tunnels === 0);
    assert.equal(lb.balancer.stats.node(id).tunnelsOpened, 1);
  }
});

test('Sec-WebSocket-Protocol: sip goes to the node\'s wsPort; other subprotocols to its HTTP port', async (t) => {
  const { ws } = await setup(t);
  const sip = await open(t, `${ws}/`, { protocols: ['sip'], cookie: 'JSESSIONID=X.node2' });
  assert.equal(sip.protocol, 'sip');
  assert.equal(await echo(sip, 'REGISTER'), 'node2-sip:REGISTER');
  const plain = await open(t, `${ws}/`, { protocols: ['chat'], cookie: 'JSESSIONID=X.node2' });
  assert.equal(await echo(plain, 'x'), 'node2:x');
});

test('a draining node keeps its open tunnel; new handshakes go elsewhere', async (t) => {
  const { lb, ws } = await setup(t);
  const first = await open(t, `${ws}/`, { cookie: 'JSESSIONID=A.node1' });
  const id = lb.nodes[0].id;
  lb.registry.setDraining(id, true);
  assert.equal(await echo(first, 'still'), 'node1:still');
  for (let i = 0; i < 3; i++) {
    const fresh = await open(t, `${ws}/`);
    assert.equal(await echo(fresh, 'new'), 'node2:new');
    fresh.close();
  }
});

test('no node for a handshake: 503 with Retry-After on the socket', async (t) => {
  const { lb, ws } = await setup(t);
  for (const n of lb.nodes) lb.registry.setHealthy(n.id, false, 'test');
  const client = new WebSocket(`${ws}/`);
  t.after(() => client.terminate());
  client.on('error', () => {});
  const [, res] = await once<[http.ClientRequest, http.IncomingMessage]>(client, 'unexpected-response');
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers['retry-after'], '5');
  res.resume();
});

test('an Upgrade other than websocket (h2c) is served as a plain HTTP request', async (t) => {
  const { lb } = await setup(t);
  const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get(`${lb.base}/`, { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += String(d); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  assert.deepEqual(got, { status: 200, body: 'ok' });
});
