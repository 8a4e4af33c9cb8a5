// The HTTP balancer over real sockets: Tomcat-like nodes (test/helpers/tomcat-node.ts) behind an
// HttpBalancer in this process (test/helpers/http-balancer.ts), real clients (undici with
// keep-alive, raw sockets where the wire itself matters). Membership changes go through the
// node registry, as heartbeats and health checks make them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { startHttpBalancer, type BalancerUnderTest } from '../helpers/http-balancer.ts';
import { startTomcatNode, type NodeAnswer, type TomcatNode } from '../helpers/tomcat-node.ts';
import { eventually } from '../helpers/wait.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: NodeAnswer | null;
  text: string;
}

/** One request through a keep-alive agent the test owns; the body read whole. */
async function send(agent: Dispatcher, url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer | Readable } = {}): Promise<Reply> {
  const res = await request(url, {
    dispatcher: agent, method: (init.method ?? 'GET') as Dispatcher.HttpMethod, headers: init.headers, body: init.body,
    headersTimeout: 5000, bodyTimeout: 5000,
  });
  const text = await res.body.text();
  let json: NodeAnswer | null = null;
  if (String(res.headers['content-type'] ?? '').startsWith('application/json')) json = JSON.parse(text) as NodeAnswer;
  return { status: res.statusCode, headers: res.headers, json, text };
}

function sessionCookie(r: Reply): string {
  const sc = r.headers['set-cookie'];
  const first = Array.isArray(sc) ? sc[0] : sc;
  assert.ok(first !== undefined, 'the node set no cookie');
  return first.split(';')[0];
}

async function twoNodes(t: import('node:test').TestContext, cfg: Parameters<typeof startHttpBalancer>[2] = {}): Promise<{ lb: BalancerUnderTest; a: TomcatNode; b: TomcatNode; agent: Agent }> {
  const a = await startTomcatNode('node1');
  const b = await startTomcatNode('node2');
  t.after(() => a.kill());
  t.after(() => b.kill());
  const lb = await startHttpBalancer(t, [{ port: a.port, jvmRoute: 'node1' }, { port: b.port, jvmRoute: 'node2' }], cfg);
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  t.after(() => agent.close());
  return { lb, a, b, agent };
}

function nodeOf(lb: BalancerUnderTest, route: string): string {
  const n = lb.nodes.find((x) => x.http?.jvmRoute === route);
  assert.ok(n !== undefined);
  return n.id;
}

test('without a session, requests alternate between the nodes; each node issues its own session', async (t) => {
  const { lb, agent } = await twoNodes(t);
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await send(agent, `${lb.base}/app`);
    assert.equal(r.status, 200);
    assert.ok(r.json?.newSession);
    assert.ok(r.json.session.endsWith(`.${r.json.node}`));
    seen.push(r.json.node);
  }
  assert.deepEqual(seen.slice().sort(), ['node1', 'node1', 'node2', 'node2']);
});

test('stickiness by the JSESSIONID cookie: every request of the session reaches its node', async (t) => {
  const { lb, agent } = await twoNodes(t);
  const first = await send(agent, `${lb.base}/app`);
  const cookie = sessionCookie(first);
  const home = first.json?.node ?? '';
  for (let i = 0; i < 6; i++) {
    const r = await send(agent, `${lb.base}/app/page${i}`, { headers: { cookie: `theme=dark; ${cookie}; lang=en` } });
    assert.equal(r.json?.node, home);
    assert.equal(r.json?.newSession, false);
  }
  assert.equal(lb.balancer.stats.node(nodeOf(lb, home)).stickyHits, 6);
});

test('stickiness by ;jsessionid= path parameter, by jsessionid query parameter, and by a cookie name in any case', async (t) => {
  const { lb, agent } = await twoNodes(t);
  const first = await send(agent, `${lb.base}/app`);
  const session = first.json?.session ?? '';
  const home = first.json?.node;
  for (const url of [`/app/cart;jsessionid=${session}`, `/app/cart;jsessionid=${session}?item=3`, `/app/cart?item=3&jsessionid=${session}`]) {
    for (let i = 0; i < 3; i++) {
      const r = await send(agent, `${lb.base}${url}`);
      assert.equal(r.json?.node, home, url);
    }
  }
  const r = await send(agent, `${lb.base}/app`, { headers: { cookie: `jsessionid=${session}` } });
  assert.equal(r.json?.node, home);
});

test('a draining node keeps its sessions and takes no new ones', async (t) => {
  const { lb, agent } = await twoNodes(t);
  const first = await send(agent, `${lb.base}/app`);
  const cookie = sessionCookie(first);
  const home = first.json?.node ?? '';
  lb.registry.setDraining(nodeOf(lb, home), true);
  for (let i = 0; i < 4; i++) {
    assert.equal((await send(agent, `${lb.base}/app`, { headers: { cookie } })).json?.node, home, 'sticky request left the draining node');
    assert.notEqual((await send(agent, `${lb.base}/app`)).json?.node, home, 'new session on the draining node');
  }
});

test('a node taken down: its sessions move to the other node and count sticky misses', async (t) => {
  const { lb, a, b, agent } = await twoNodes(t);
  const first = await send(agent, `${lb.base}/app`);
  const cookie = sessionCookie(first);
  const home = first.json?.node ?? '';
  const other = home === 'node1' ? 'node2' : 'node1';
  await (home === 'node1' ? a : b).kill();
  lb.registry.setHealthy(nodeOf(lb, home), false, 'killed by the test');
  const moved = await send(agent, `${lb.base}/app`, { headers: { cookie } });
  assert.equal(moved.json?.node, other);
  assert.equal(moved.json?.newSession, true, 'the surviving node issues a new session');
  // The client follows the new cookie and sticks to its new node.
  const again = await send(agent, `${lb.base}/app`, { headers: { cookie: sessionCookie(moved) } });
  assert.equal(again.json?.node, other);
  assert.equal(again.json?.newSession, false);
  assert.equal(lb.balancer.stats.node(nodeOf(lb, home)).stickyMisses, 1);
});

test('a killed node not yet known dead: a GET is retried once on the other node, a POST is never replayed (502)', async (t) => {
  const { lb, a, b, agent } = await twoNodes(t);
  const first = await send(agent, `${lb.base}/app`);
  const cookie = sessionCookie(first);
  const home = first.json?.node ?? '';
  const dead = home === 'node1' ? a : b;
  const live = home === 'node1' ? b : a;
  await dead.kill();
  const before = live.received.length;
  const post = await send(agent, `${lb.base}/app/order`, { method: 'POST', headers: { cookie, 'content-type': 'text/plain' }, body: 'buy one' });
  assert.equal(post.status, 502);
  assert.equal(live.received.length, before, 'the POST reached the other node');
  const get = await send(agent, `${lb.base}/app/order`, { headers: { cookie } });
  assert.equal(get.status, 200);
  assert.equal(get.json?.node, live.jvmRoute);
  const stats = lb.balancer.stats;
  assert.equal(stats.local.retries, 1);
  assert.equal(stats.node(nodeOf(lb, home)).connect, 2);
  assert.equal(stats.node(nodeOf(lb, home)).stickyMisses, 1, 'the retried sticky GET counts a miss');
});

test('431 for a header section over httpMaxHeaderSize', async (t) => {
  const { lb, a, b, agent } = await twoNodes(t, { httpMaxHeaderSize: 2048 });
  const r = await send(agent, `${lb.base}/app`, { headers: { 'x-big': 'x'.repeat(4000) } });
  assert.equal(r.status, 431);
  assert.equal(a.received.length + b.received.length, 0);
  assert.equal((await send(agent, `${lb.base}/app`, { headers: { 'x-small': 'x'.repeat(500) } })).status, 200);
});

test('413 for a Content-Length over maxContentLength, before anything reaches a node', async (t) => {
  const { lb, a, b, agent } = await twoNodes(t, { maxContentLength: 1000 });
  const r = await send(agent, `${lb.base}/app/upload`, { method: 'POST', body: Buffer.alloc(1500, 1) });
  assert.equal(r.status, 413);
  assert.equal(r.headers['connection'], 'close');
  assert.equal(a.received.length + b.received.length, 0);
  const ok = await send(agent, `${lb.base}/count`, { method: 'POST', body: Buffer.alloc(1000, 1) });
  assert.equal(ok.status, 200);
  assert.equal(ok.json?.bodyBytes, 1000);
  assert.equal(lb.balancer.stats.local.tooLarge, 1);
});

test('413 for a chunked body once it passes maxContentLength; a chunked body within it passes', async (t) => {
  const { lb, agent } = await twoNodes(t, { maxContentLength: 100_000 });
  const chunks = (n: number): Readable => Readable.from((function* () {
    for (let i = 0; i < n; i++) yield Buffer.alloc(10_000, 0x62);
  })());
  const ok = await send(agent, `${lb.base}/count`, { method: 'PUT', body: chunks(10) });
  assert.equal(ok.status, 200);
  assert.equal(ok.json?.bodyBytes, 100_000);
  const r = await send(agent, `${lb.base}/count`, { method: 'PUT', body: chunks(20) }).catch((err: Error) => err);
  // The balancer answers 413 and closes; a client still sending may see the close first.
  if (r instanceof Error) assert.match(r.message, /closed|reset|EPIPE|socket/i);
  else assert.equal(r.status, 413);
  await eventually('413 counted', 2000, () => lb.balancer.stats.local.tooLarge === 1);
});

test('Expect: 100-continue: refused before the body is sent when too large, continued when not', async (t) => {
  const { lb } = await twoNodes(t, { maxContentLength: 1000 });
  const exchange = (head: string, body: string | null): Promise<string> => new Promise((resolve, reject) => {
    const s = connect(lb.port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
      if (body !== null && got.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !got.includes('200 OK')) {
        s.write(body);
        body = null;
      }
      if (/\r\n\r\n[\s\S]*"bodyBytes"/.test(got) || got.includes('413 Payload Too Large')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.setTimeout(3000, () => { s.destroy(); reject(new Error(`timeout; got ${got}`)); });
    s.write(head);
  });
  const big = await exchange('POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n', null);
  assert.match(big, /^HTTP\/1\.1 413 /);
  const small = await exchange('POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n', '0123456789');
  assert.match(small, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
  assert.match(small, /"bodyBytes":10/);
});

test('502 for a node that resets the connection or answers garbage; neither is retried', async (t) => {
  const { lb, a, b, agent } = await twoNodes(t);
  for (const path of ['/reset', '/garbage']) {
    const before = a.received.length + b.received.length;
    const r = await send(agent, `${lb.base}${path}`);
    assert.equal(r.status, 502, path);
    assert.equal(a.received.length + b.received.length, before + 1, `${path} was sent more than once`);
  }
  assert.equal(lb.balancer.stats.local.badGateway, 2);
});

test('503 with Retry-After when no node has an HTTP side up; 302 to unavailableHost when set', async (t) => {
  const { lb, agent } = await twoNodes(t);
  for (const n of lb.nodes) lb.registry.setHealthy(n.id, false, 'test');
  const r = await send(agent, `${lb.base}/app?x=1`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '5');

  const other = await startHttpBalancer(t, [{ port: 1, jvmRoute: 'gone' }], { unavailableHost: 'sorry.example.com' });
  other.registry.setHealthy(other.nodes[0].id, false, 'test');
  const redirect = await send(agent, `${other.base}/app/page?x=1`);
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers['location'], 'http://sorry.example.com/app/page?x=1');
});

test('504 when the node sends no response head within httpResponseTimeout', async (t) => {
  const { lb, agent } = await twoNodes(t, { httpResponseTimeout: 300 });
  const started = performance.now();
  const r = await send(agent, `${lb.base}/slow/3000`);
  assert.equal(r.status, 504);
  assert.ok(performance.now() - started < 2000, 'the 504 came late');
  assert.equal(lb.balancer.stats.local.gatewayTimeout, 1);
});

/** A GET with node:http's client, which sends Connection and TE as given (undici does not). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: NodeAnswer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(text) as NodeAnswer }));
    });
    req.on('error', reject);
  });
}

test('forwarding headers: X-Forwarded-For appended, X-Forwarded-Proto/Host and Forwarded set, Host kept, hop-by-hop removed', async (t) => {
  const { lb } = await twoNodes(t);
  const r = await rawGet(`${lb.base}/app`, {
    host: 'app.example.com:8080',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-proto': 'gopher',
    connection: 'keep-alive, x-hop',
    'x-hop': 'secret',
    te: 'trailers',
    'proxy-authorization': 'Basic c2lwbGI6c2lwbGI=',
    'x-end-to-end': 'kept',
  });
  const h = r.json.headers;
  assert.equal(h['host'], 'app.example.com:8080');
  assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'app.example.com:8080');
  assert.equal(h['forwarded'], 'for=127.0.0.1;proto=http;host="app.example.com:8080"');
  assert.equal(h['x-end-to-end'], 'kept');
  for (const gone of ['x-hop', 'te', 'proxy-authorization', 'keep-alive']) assert.equal(h[gone], undefined, gone);
  assert.equal(r.headers['x-node'], r.json.node, 'response headers pass through');
});

test('bodies stream both ways: the node echoes a 16 MB upload while the client is still sending it', async (t) => {
  const { lb, agent } = await twoNodes(t, { maxContentLength: 64 * 1024 * 1024 });
  const chunk = Buffer.alloc(64 * 1024, 0x63);
  const total = 256; // chunks: 16 MB
  let received = 0;
  let sent = 0;
  let wake: (() => void) | null = null;
  const body = Readable.from((async function* () {
    for (; sent < total; sent++) {
      // After the first 2 MB, send more only once the echo of what was sent has mostly come
      // back: a balancer that buffered the request before forwarding it would stall here.
      while (sent >= 32 && received < (sent - 16) * chunk.length) await new Promise<void>((resolve) => { wake = resolve; });
      yield chunk;
    }
  })());
  const res = await request(`${lb.base}/echo`, { dispatcher: agent, method: 'POST', body, headersTimeout: 5000, bodyTimeout: 5000 });
  assert.equal(res.statusCode, 200);
  for await (const data of res.body) {
    received += (data as Buffer).length;
    const w = wake as (() => void) | null;
    wake = null;
    w?.();
  }
  assert.equal(received, total * chunk.length);
});

test('a large response streams to the client (64 MB, chunked)', async (t) => {
  const { lb, agent } = await twoNodes(t);
  const res = await request(`${lb.base}/big/${64 * 1024 * 1024}`, { dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 });
  let n = 0;
  for await (const data of res.body) n += (data as Buffer).length;
  assert.equal(n, 64 * 1024 * 1024);
});

test('passive health: a node answering 5xx leaves new sessions, keeps its sticky ones, and comes back when the registry reports it anew', async (t) => {
  const { lb, agent } = await twoNodes(t, { maxNumberResponsesWithError: 2, maxErrorTime: 60_000 });
  const first = await send(agent, `${lb.base}/app`);
  const cookie = sessionCookie(first);
  const home = first.json?.node ?? '';
  const id = nodeOf(lb, home);
  for (let i = 0; i < 3; i++) assert.equal((await send(agent, `${lb.base}/status/503`, { headers: { cookie } })).status, 503);
  assert.ok(lb.balancer.health.isOut(id));
  for (let i = 0; i < 4; i++) {
    assert.notEqual((await send(agent, `${lb.base}/app`)).json?.node, home, 'a new session went to the node that is out');
    assert.equal((await send(agent, `${lb.base}/app`, { headers: { cookie } })).json?.node, home, 'a sticky request left the node');
  }
  assert.equal(lb.balancer.stats.node(id).status5xx, 3);
  // A down/up cycle of the registry (a failed then a good SIP probe) brings it back.
  lb.registry.setHealthy(id, false, 'probe failed');
  lb.registry.setHealthy(id, true, 'probe answered');
  assert.equal(lb.balancer.health.isOut(id), false);
});

test('passive health: a node that is out comes back by good HTTP probes (OPTIONS / every healthCheckInterval)', async (t) => {
  const { lb, agent } = await twoNodes(t, { maxNumberResponsesWithError: 1, maxErrorTime: 60_000, healthCheckInterval: 100, healthCheckSuccesses: 2 });
  const a = await send(agent, `${lb.base}/status/500`);
  const id = nodeOf(lb, a.json?.node ?? '');
  await send(agent, `${lb.base}/status/500`, { headers: { cookie: sessionCookie(a) } });
  assert.ok(lb.balancer.health.isOut(id));
  await eventually('the node back after two good probes', 3000, () => !lb.balancer.health.isOut(id));
});

/** A node that answers every request with `status` and counts what it got (Restcomm's "bad server"). */
async function answeringNode(t: import('node:test').TestContext, status: number): Promise<{ port: number; urls: string[] }> {
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    urls.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(status, { 'content-length': '0' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as import('node:net').AddressInfo).port, urls };
}

// Restcomm's HttpBadResponseNodeRemovalTest: requestCheckPattern "(/Accounts/)", one node answering
// 400, four clients posting to /restcomm/.../Accounts/<sid>/Calls.json one after the other.
test('requestCheckPattern: an error answer to a matching request takes the node out at once; other URLs do not', async (t) => {
  const bad = await answeringNode(t, 400);
  const good = await startTomcatNode('good');
  t.after(() => good.kill());
  const lb = await startHttpBalancer(t, [{ port: bad.port, jvmRoute: 'bad' }, { port: good.port, jvmRoute: 'good' }], { requestCheckPattern: '(/Accounts/)' });
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  t.after(() => agent.close());
  const badId = nodeOf(lb, 'bad');

  // A 4xx to a URL the pattern does not find counts for nothing (and is not a 5xx either).
  const other: number[] = [];
  for (let i = 0; i < 2; i++) other.push((await send(agent, `${lb.base}/restcomm/other`)).status);
  assert.deepEqual(other.sort(), [200, 400]);
  assert.equal(lb.balancer.health.isOut(badId), false);

  const statuses: number[] = [];
  for (let sid = 0; sid < 4; sid++) {
    statuses.push((await send(agent, `${lb.base}/restcomm/2012-04-24/Accounts/${sid}/Calls.json/CA00af667a6a2cbfda0c07d923e78194cd`, { method: 'POST', body: 'To=1234' })).status);
  }
  assert.deepEqual(statuses, [400, 200, 200, 200], 'the first matching request met the bad node, which then took no more');
  assert.equal(bad.urls.filter((u) => u.includes('/Accounts/')).length, 1);
  assert.ok(lb.balancer.health.isOut(badId));
  assert.match(lb.balancer.health.outNodes()[0].reason, /status 400 to POST \/restcomm\/2012-04-24\/Accounts\/0\/.* \(requestCheckPattern\)/);
});

test('requestCheckPattern: a node taken out comes back by good HTTP probes like any other outage', async (t) => {
  const bad = await answeringNode(t, 404);
  const good = await startTomcatNode('good');
  t.after(() => good.kill());
  const lb = await startHttpBalancer(t, [{ port: bad.port, jvmRoute: 'bad' }, { port: good.port, jvmRoute: 'good' }],
    { requestCheckPattern: '^/api/', healthCheckInterval: 100, healthCheckSuccesses: 2 });
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  t.after(() => agent.close());
  for (let i = 0; i < 2; i++) await send(agent, `${lb.base}/api/x`);
  const badId = nodeOf(lb, 'bad');
  assert.ok(lb.balancer.health.isOut(badId));
  // The probe (OPTIONS /) is answered below 500: the node answers HTTP again.
  await eventually('the node back after two good probes', 3000, () => !lb.balancer.health.isOut(badId));
  assert.ok(bad.urls.includes('OPTIONS /'));
});

test('response heads are timed per node from the request\'s arrival (the metrics\' histogram)', async (t) => {
  const { lb, agent } = await twoNodes(t);
  const seen: [string, number][] = [];
  lb.balancer.stats.observeResponse = (node, seconds) => seen.push([node, seconds]);
  const fast = await send(agent, `${lb.base}/app`);
  const slow = await send(agent, `${lb.base}/slow/150`);
  assert.equal(fast.status, 200);
  assert.equal(slow.status, 200);
  assert.equal(seen.length, 2);
  assert.equal(seen[0][0], nodeOf(lb, fast.json?.node ?? ''));
  assert.equal(seen[1][0], nodeOf(lb, slow.json?.node ?? ''));
  assert.ok(seen[0][1] >= 0 && seen[0][1] < 0.15, `fast: ${seen[0][1]} s`);
  assert.ok(seen[1][1] >= 0.15 && seen[1][1] < 5, `slow: ${seen[1][1]} s`);
});

test('every HTTP node out of new sessions: requests still go to them rather than 503', async (t) => {
  const { lb, agent } = await twoNodes(t, { maxNumberResponsesWithError: 1, maxErrorTime: 60_000 });
  for (let i = 0; i < 4; i++) await send(agent, `${lb.base}/status/500`);
  for (const n of lb.nodes) assert.ok(lb.balancer.health.isOut(n.id));
  assert.equal((await send(agent, `${lb.base}/app`)).status, 200);
});

test('HTTPS listener with a self-signed certificate: requests are forwarded with X-Forwarded-Proto https', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  } catch {
    assert.fail('openssl is needed to make a test certificate: apt-get install openssl');
  }
  const node = await startTomcatNode('node1');
  t.after(() => node.kill());
  const lb = await startHttpBalancer(t, [{ port: node.port, jvmRoute: 'node1' }], { httpPort: null, httpsPort: 0, tlsCertFile: cert, tlsKeyFile: key });
  assert.equal(lb.balancer.addresses().http, null);
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  t.after(() => agent.close());
  const r = await send(agent, `https://127.0.0.1:${lb.port}/app`);
  assert.equal(r.status, 200);
  assert.equal(r.json?.headers['x-forwarded-proto'], 'https');
  assert.match(String(r.json?.headers['forwarded']), /proto=https/);
});

test('an unreadable tlsCertFile stops start-up with a ConfigError naming the key', async (t) => {
  await assert.rejects(
    startHttpBalancer(t, [], { httpPort: null, httpsPort: 0, tlsCertFile: '/nonexistent/cert.pem', tlsKeyFile: '/nonexistent/key.pem' }),
    (err: unknown) => (err as { code?: string; key?: string }).code === 'SIPLB_CONFIG' && (err as { key?: string }).key === 'tlsCertFile',
  );
});
