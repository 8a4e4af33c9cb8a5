// The HTTP/1.1 client towards nodes, against scripted nodes on loopback that write raw bytes:
// response framing (RFC 9112 §6.3), connection reuse, malformed responses, timeouts, request
// bodies, and the resend of an idempotent request whose reused connection was closed under it.

import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import {
  NODE_HTTP_ERRORS, NodeClient, type BodyFraming, type NodeRequestController,
} from '../../src/http/node-client.ts';

/** What one scripted node connection saw: the raw request bytes, and the socket to answer on. */
interface Seen {
  socket: Socket;
  /** Every byte received on this connection. */
  bytes: string;
}

interface Node {
  port: number;
  connections: Seen[];
  /** Resolves once `n` requests' heads (by their empty line) arrived, over all connections. */
  heads(n: number): Promise<void>;
}

/**
 * A node that calls `answer` with every complete request head (and the connection it came on);
 * `answer` writes whatever raw bytes the case wants.
 */
async function scriptedNode(t: TestContext, answer: (seen: Seen, index: number) => void): Promise<Node> {
  const connections: Seen[] = [];
  let heads = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const server: Server = createServer((socket) => {
    const seen: Seen = { socket, bytes: '' };
    connections.push(seen);
    let counted = 0;
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      seen.bytes += chunk.toString('latin1');
      const complete = seen.bytes.split('\r\n\r\n').length - 1;
      while (counted < complete) {
        counted++;
        const index = heads++;
        answer(seen, index);
        for (const w of waiters.splice(0)) if (heads >= w.n) w.resolve(); else waiters.push(w);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const c of connections) c.socket.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return {
    port, connections,
    heads: (n) => (heads >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

function client(t: TestContext, port: number, opts: { responseTimeoutMs?: number; keepAliveMs?: number } = {}): NodeClient {
  const c = new NodeClient({
    host: '127.0.0.1', port, responseTimeoutMs: opts.responseTimeoutMs ?? 2_000, connectTimeoutMs: 1_000, keepAliveMs: opts.keepAliveMs ?? 15_000,
  });
  t.after(() => c.destroy());
  return c;
}

interface Outcome {
  status?: number;
  reason?: string;
  headers?: string[];
  body: string;
  error?: Error & { code?: string };
  /** The error came with a controller (a connection existed). */
  errorWithController?: boolean;
  sent: boolean;
}

interface Send {
  method?: string;
  path?: string;
  headers?: string[];
  body?: Readable | null;
  framing?: BodyFraming;
  idempotent?: boolean;
  /** Called with the controller at response start. */
  onStart?: (c: NodeRequestController) => void;
}

function send(c: NodeClient, s: Send = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { body: '', sent: false };
    const method = s.method ?? 'GET';
    c.dispatch({
      method, path: s.path ?? '/', headers: s.headers ?? ['Host', 'node.test'], body: s.body ?? null,
      framing: s.framing ?? 'none', idempotent: s.idempotent ?? (method === 'GET' || method === 'HEAD'),
    }, {
      onRequestStart() { /* nothing */ },
      onRequestSent() { out.sent = true; },
      onResponseStart(ctrl, status, headers, reason) {
        out.status = status;
        out.headers = headers;
        out.reason = reason;
        s.onStart?.(ctrl);
      },
      onResponseData(_c, chunk) { out.body += chunk.toString('latin1'); },
      onResponseEnd() { resolve(out); },
      onResponseError(ctrl, err) {
        out.error = err as Error & { code?: string };
        out.errorWithController = ctrl !== null;
        resolve(out);
      },
    });
  });
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- framing: one table, each response answered to two requests in a row --------------------

interface FramingCase {
  name: string;
  method?: string;
  response: string;
  status: number;
  body: string;
  /** The second request went on the same connection. */
  reused: boolean;
}

const framing: FramingCase[] = [
  { name: 'Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', status: 200, body: 'hello', reused: true },
  { name: 'Content-Length 0', response: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', status: 200, body: '', reused: true },
  {
    name: 'chunked, with extensions and trailers',
    response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n',
    status: 200, body: 'hello, world!!!', reused: true,
  },
  { name: 'chunked, upper-case hex and no trailers', response: 'HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\nB\r\nhello world\r\n0\r\n\r\n', status: 200, body: 'hello world', reused: true },
  { name: 'neither length nor chunks: to the end of the connection', response: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close', status: 200, body: 'until close', reused: false },
  { name: 'a coding other than chunked: to the end of the connection', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz', status: 200, body: 'zzz', reused: false },
  { name: 'Transfer-Encoding and Content-Length: chunks win, the connection is not reused', response: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', status: 200, body: 'ok', reused: false },
  { name: 'HEAD: Content-Length without a body', method: 'HEAD', response: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', status: 200, body: '', reused: true },
  { name: '204 without a body', response: 'HTTP/1.1 204 No Content\r\n\r\n', status: 204, body: '', reused: true },
  { name: '304 with a Content-Length and no body', response: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', status: 304, body: '', reused: true },
  { name: 'interim 100 and 103 skipped', response: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok', status: 201, body: 'ok', reused: true },
  { name: 'Connection: close', response: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', reused: false },
  { name: 'HTTP/1.0 without keep-alive', response: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', reused: false },
  { name: 'HTTP/1.0 with Connection: keep-alive', response: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', reused: true },
  { name: 'Keep-Alive: timeout=1 (the node closes before siplb could reuse it)', response: 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', reused: false },
  { name: 'status line without a reason', response: 'HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok', status: 200, body: 'ok', reused: true },
  { name: 'bytes after a complete response: not reused', response: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', status: 200, body: 'ok', reused: false },
];

for (const c of framing) {
  test(`framing: ${c.name}`, async (t) => {
    const node = await scriptedNode(t, (seen) => {
      seen.socket.write(c.response);
      // A response framed by the end of the connection needs that end.
      if (!/content-length|chunked/i.test(c.response) && c.status !== 204) seen.socket.end();
    });
    const nc = client(t, node.port);
    for (let i = 0; i < 2; i++) {
      const out = await send(nc, { method: c.method });
      assert.equal(out.error, undefined, out.error?.message);
      assert.equal(out.status, c.status);
      assert.equal(out.body, c.body);
    }
    assert.equal(node.connections.length, c.reused ? 1 : 2);
  });
}

test('framing: a response split at every byte is read the same', async (t) => {
  const response = 'HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n';
  const node = await scriptedNode(t, (seen) => {
    void (async () => {
      for (const ch of response) {
        seen.socket.write(ch);
        await tick(1);
      }
    })();
  });
  const nc = client(t, node.port);
  const first = await send(nc);
  assert.equal(first.status, 200);
  assert.deepEqual(first.headers, ['X-A', '1', 'Transfer-Encoding', 'chunked']);
  assert.equal(first.body, 'abcde');
  const second = await send(nc);
  assert.equal(second.body, 'abcde');
  assert.equal(node.connections.length, 1);
});

test('response headers come as the node spelled them, in order, values without surrounding blanks', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.write(
    'HTTP/1.1 404 Not  Found\r\nSet-Cookie: a=1\r\nset-cookie:b=2\r\nX-Empty:\r\nX-Tab:\t v \t\r\nContent-Length: 0\r\n\r\n'));
  const out = await send(client(t, node.port));
  assert.equal(out.status, 404);
  assert.equal(out.reason, 'Not  Found');
  assert.deepEqual(out.headers, ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Empty', '', 'X-Tab', 'v', 'Content-Length', '0']);
});

// ---- responses siplb cannot frame -------------------------------------------------------------

const bad: [string, string][] = [
  ['not HTTP', 'HELLO\r\n\r\n'],
  ['HTTP/2 status line', 'HTTP/2 200 OK\r\n\r\n'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
  ['status 600', 'HTTP/1.1 600 Odd\r\n\r\n'],
  ['a header line without a colon', 'HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n'],
  ['a blank before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n'],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n'],
  ['Content-Length not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello'],
  ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
  ['Content-Length fields that differ', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok'],
  ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
  ['chunk data not followed by CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n'],
  ['a chunk size of 13 hex digits', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n'],
  ['101 to a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'],
  ['a response head over 64 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`],
  ['a head that never ends, over 64 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}`],
];

for (const [name, response] of bad) {
  test(`bad response: ${name}`, async (t) => {
    const node = await scriptedNode(t, (seen) => seen.socket.write(response));
    const out = await send(client(t, node.port));
    assert.equal(out.error?.code, NODE_HTTP_ERRORS.badResponse, `got ${out.error?.code} ${out.error?.message} status ${out.status}`);
    assert.equal(out.errorWithController, true);
  });
}

test('bytes on an idle connection: it is closed, the next request opens another', async (t) => {
  const node = await scriptedNode(t, (seen, i) => {
    seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    if (i === 0) setTimeout(() => seen.socket.write('HTTP/1.1 200 OK\r\n'), 20);
  });
  const nc = client(t, node.port);
  assert.equal((await send(nc)).body, 'ok');
  await tick(100);
  assert.equal(nc.connections, 0);
  assert.equal((await send(nc)).body, 'ok');
  assert.equal(node.connections.length, 2);
});

// ---- failures ---------------------------------------------------------------------------------

test('connection refused: the system code, no controller, nothing sent', async (t) => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const out = await send(client(t, port));
  assert.equal(out.error?.code, 'ECONNREFUSED');
  assert.equal(out.errorWithController, false);
  assert.equal(out.sent, false);
});

test('no response head within the response timeout: headers timeout', async (t) => {
  const node = await scriptedNode(t, () => undefined);
  const started = Date.now();
  const out = await send(client(t, node.port, { responseTimeoutMs: 200 }));
  assert.equal(out.error?.code, NODE_HTTP_ERRORS.headersTimeout);
  assert.ok(Date.now() - started >= 180, `timed out after ${Date.now() - started} ms`);
  assert.equal(out.sent, true);
});

test('a response body that stalls: body timeout, after the head was delivered', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'));
  const out = await send(client(t, node.port, { responseTimeoutMs: 200 }));
  assert.equal(out.status, 200);
  assert.equal(out.body, 'half');
  assert.equal(out.error?.code, NODE_HTTP_ERRORS.bodyTimeout);
});

test('the node closes in the middle of a body: closed', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'));
  const out = await send(client(t, node.port));
  assert.equal(out.body, 'half');
  assert.equal(out.error?.code, NODE_HTTP_ERRORS.closed);
});

test('a reused connection closed under a GET: sent once more on a new connection; a POST fails', async (t) => {
  // The node answers the first request on each connection and closes the connection at the second.
  const node = await scriptedNode(t, (seen) => {
    if (seen.bytes.split('\r\n\r\n').length - 1 === 1) seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else seen.socket.destroy();
  });
  const nc = client(t, node.port);
  assert.equal((await send(nc)).body, 'ok');
  const get = await send(nc);
  assert.equal(get.error, undefined, get.error?.message);
  assert.equal(get.body, 'ok');
  assert.equal(node.connections.length, 2);
  // The second connection is idle and reused now: a POST on it must not be repeated.
  const post = await send(nc, { method: 'POST', idempotent: false });
  assert.ok(post.error !== undefined, 'the POST failed');
  assert.ok([NODE_HTTP_ERRORS.closed, 'ECONNRESET', 'EPIPE'].includes(post.error.code ?? ''), String(post.error.code));
  assert.equal(node.connections.length, 2);
});

test('requests HTTP/1.1 cannot carry here are refused before any connection: CONNECT, a target with a blank', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  const nc = client(t, node.port);
  for (const s of [{ method: 'CONNECT', path: 'example.com:443' }, { path: '/a b' }, { method: 'GET\r\nX' }]) {
    const out = await send(nc, s);
    assert.equal(out.error?.code, NODE_HTTP_ERRORS.badRequest);
    assert.equal(out.errorWithController, false);
  }
  assert.equal(node.connections.length, 0);
});

// ---- the request --------------------------------------------------------------------------------

test('the request head: the fields given, Host added when missing, Content-Length: 0 for a POST without body', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  const nc = client(t, node.port);
  await send(nc, { method: 'OPTIONS', path: '*', headers: ['X-A', 'é'] });
  await send(nc, { method: 'POST', path: '/p?q=1', headers: ['Host', 'h'] });
  const [first, second] = node.connections[0].bytes.split('\r\n\r\n');
  assert.equal(first, `OPTIONS * HTTP/1.1\r\nX-A: \u00e9\r\nhost: 127.0.0.1:${node.port}`);
  assert.equal(second, 'POST /p?q=1 HTTP/1.1\r\nHost: h\r\ncontent-length: 0');
});

test('a body of known length streams as is; a body of unknown length goes in chunks', async (t) => {
  const node = await scriptedNode(t, () => undefined);
  node.connections.length = 0;
  const nc = client(t, node.port);
  const lengthDone = send(nc, { method: 'PUT', headers: ['Host', 'h', 'Content-Length', '11'], body: Readable.from([Buffer.from('hello '), Buffer.from('world')]), framing: 'length' });
  await node.heads(1);
  await tick(50);
  assert.ok(node.connections[0].bytes.endsWith('\r\n\r\nhello world'), node.connections[0].bytes);
  node.connections[0].socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.equal((await lengthDone).status, 200);

  const chunkedDone = send(nc, { method: 'POST', headers: ['Host', 'h'], body: Readable.from([Buffer.from('abc'), Buffer.from('0123456789abcdef')]), framing: 'chunked' });
  await node.heads(2);
  await tick(50);
  const bytes = node.connections[0].bytes;
  const second = bytes.slice(bytes.indexOf('POST'));
  assert.equal(second, 'POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n');
  node.connections[0].socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.equal((await chunkedDone).status, 200);
  assert.equal(node.connections.length, 1);
});

test('the node answers before the request body is complete: the response passes, the connection is not reused', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.write('HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n'));
  const nc = client(t, node.port);
  const body = new Readable({ read() { /* pushed below */ } });
  body.push('first part');
  const out = await send(nc, { method: 'POST', headers: ['Host', 'h', 'Content-Length', '1000'], body, framing: 'length' });
  assert.equal(out.status, 413);
  body.push('more, to nowhere');
  assert.equal(nc.connections, 0);
});

test('a body stream that fails fails the request with its error', async (t) => {
  const node = await scriptedNode(t, () => undefined);
  const boom = new Error('client went away');
  const body = new Readable({ read() { this.destroy(boom); } });
  const out = await send(client(t, node.port), { method: 'POST', body, framing: 'chunked' });
  assert.equal(out.error, boom);
});

// ---- flow control, keep-alive, closing ----------------------------------------------------------

test('pause and resume: a 4 MB body arrives whole, nothing read while paused', async (t) => {
  const size = 4 * 1024 * 1024;
  const node = await scriptedNode(t, (seen) => {
    seen.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
    seen.socket.write(Buffer.alloc(size, 0x61));
  });
  const nc = client(t, node.port, { responseTimeoutMs: 300 });
  let ctrl: NodeRequestController | null = null;
  let received = 0;
  let whilePaused = -1;
  const done = new Promise<Error | null>((resolve) => {
    nc.dispatch({ method: 'GET', path: '/', headers: ['Host', 'h'], body: null, framing: 'none', idempotent: true }, {
      onRequestStart() { /* nothing */ },
      onRequestSent() { /* nothing */ },
      onResponseStart(c) { ctrl = c; },
      onResponseData(c, chunk) {
        received += chunk.length;
        if (whilePaused < 0 && received > 256 * 1024) {
          c.pause();
          whilePaused = received;
          // Longer than the response timeout: a pause held by siplb is not the node stalling.
          setTimeout(() => {
            assert.equal(received, whilePaused);
            c.resume();
          }, 500);
        }
      },
      onResponseEnd() { resolve(null); },
      onResponseError(_c, err) { resolve(err); },
    });
  });
  assert.equal(await done, null);
  assert.ok(ctrl !== null);
  assert.equal(received, size);
});

test('idle connections close after keepAliveMs', async (t) => {
  const node = await scriptedNode(t, (seen) => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  const nc = client(t, node.port, { keepAliveMs: 1_500 });
  await Promise.all([send(nc), send(nc), send(nc)]);
  assert.equal(nc.idleConnections, 3);
  await tick(2_600);
  assert.equal(nc.connections, 0);
});

test('concurrent requests get a connection each; idle ones are reused', async (t) => {
  const node = await scriptedNode(t, (seen) => setTimeout(() => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx'), 10));
  const nc = client(t, node.port);
  await Promise.all(Array.from({ length: 10 }, () => send(nc)));
  assert.equal(node.connections.length, 10);
  for (let i = 0; i < 20; i++) await send(nc);
  await Promise.all(Array.from({ length: 10 }, () => send(nc)));
  assert.equal(node.connections.length, 10);
});

test('close(): idle connections go at once, a request in flight finishes, later requests fail', async (t) => {
  const node = await scriptedNode(t, (seen, i) => {
    const reply = (): void => { seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'); };
    if (i === 0) reply();
    else setTimeout(reply, 100);
  });
  const nc = client(t, node.port);
  await send(nc);
  const inFlight = send(nc, { headers: ['Host', 'h'] });
  const slow = send(nc);
  await node.heads(3);
  const closed = nc.close();
  assert.equal((await inFlight).body, 'ok');
  assert.equal((await slow).body, 'ok');
  await closed;
  assert.equal(nc.connections, 0);
  const late = await send(nc);
  assert.equal(late.error?.code, NODE_HTTP_ERRORS.clientClosed);
});

test('probe(): the status of OPTIONS /, or a rejection in time', async (t) => {
  const node = await scriptedNode(t, (seen) => {
    if (seen.bytes.includes('OPTIONS / HTTP/1.1\r\nuser-agent: siplb-http-probe')) seen.socket.write('HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy');
  });
  assert.equal(await client(t, node.port).probe(500), 503);
  const silent = await scriptedNode(t, () => undefined);
  await assert.rejects(client(t, silent.port).probe(200), { code: NODE_HTTP_ERRORS.headersTimeout });
});

test('a node on IPv6 loopback: Host carries the bracketed address when the client sent none', async (t) => {
  const seen: string[] = [];
  const server = createServer((socket) => {
    socket.on('data', (d) => {
      seen.push(d.toString('latin1'));
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '::1', resolve);
  });
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const nc = new NodeClient({ host: '::1', port, responseTimeoutMs: 2_000, connectTimeoutMs: 1_000, keepAliveMs: 15_000 });
  t.after(() => nc.destroy());
  const out = await send(nc, { headers: [] });
  assert.equal(out.body, 'v6');
  assert.equal(seen[0], `GET / HTTP/1.1\r\nhost: [::1]:${port}\r\n\r\n`);
});

test('idle connections each keep their own limit: a short Keep-Alive hint closes its connection behind an older, longer-lived one', async (t) => {
  let n = 0;
  const node = await scriptedNode(t, (seen) => {
    const first = n++ === 0;
    // The first answers at once without a hint (15 s here); the second later, with timeout=2 (1 s).
    if (first) seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    else setTimeout(() => seen.socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 0\r\n\r\n'), 50);
  });
  const nc = client(t, node.port);
  await Promise.all([send(nc), send(nc)]);
  assert.equal(nc.idleConnections, 2);
  await tick(2_600);
  assert.equal(nc.idleConnections, 1);
  assert.equal(nc.connections, 1);
});
