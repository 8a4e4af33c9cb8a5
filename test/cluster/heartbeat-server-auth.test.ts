// HeartbeatServer with and without heartbeatToken, over real HTTP on loopback
// (docs/heartbeat-protocol.md, "Authentication"): who is let in, what a refusal answers and
// leaves untouched, how refusals are logged (once a minute per source address) and counted.

import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { pino, type Logger } from 'pino';
import { capturingLogger } from '../helpers/log.ts';
import { HeartbeatServer } from '../../src/cluster/heartbeat-server.ts';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';

const TOKEN = 'correct-horse-battery-staple-42';
const silent = pino({ level: 'silent' });

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

/** One POST /, from `localAddress` when given (127.0.0.x are all loopback on Linux). */
function post(port: number, body: unknown, headers: Record<string, string> = {}, localAddress?: string): Promise<Answer> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/', localAddress, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers },
      timeout: 3000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>, headers: res.headers }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.end(text);
  });
}

const START = { start: { ip: '127.0.0.1', udpPort: 5080, sessionId: 'sess-1', version: '1' } };
const NODE_ID = '127.0.0.1:5080';

const open: HeartbeatServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function serve(token: string | null, log: Logger = silent): Promise<{ server: HeartbeatServer; registry: NodeRegistry; port: number }> {
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log: silent });
  const server = new HeartbeatServer(registry, log, { token });
  open.push(server);
  await server.listen('127.0.0.1', 0);
  return { server, registry, port: server.address().port };
}

describe('without heartbeatToken', () => {
  test('a start without Authorization is accepted, and one with any Authorization too', async () => {
    const { server, registry, port } = await serve(null);
    assert.equal(server.authenticated, false);
    assert.equal((await post(port, START)).status, 200);
    assert.ok(registry.get(NODE_ID));
    assert.deepEqual((await post(port, { heartbeat: { sessionId: 'sess-1' } }, { authorization: 'Bearer whatever-it-is-ignored' })).body, { heartbeat: 'OK' });
    assert.deepEqual(server.rejected, { token: 0, invalid: 0 });
  });
});

describe('with heartbeatToken', () => {
  const refused: { name: string; headers: Record<string, string>; reason: RegExp }[] = [
    { name: 'no Authorization', headers: {}, reason: /no heartbeat token/ },
    { name: 'another scheme (Basic)', headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }, reason: /no heartbeat token/ },
    { name: 'Bearer without a token', headers: { authorization: 'Bearer ' }, reason: /no heartbeat token/ },
    { name: 'a wrong token of the same length', headers: { authorization: `Bearer ${'x'.repeat(TOKEN.length)}` }, reason: /wrong heartbeat token/ },
    { name: 'a shorter token (a prefix)', headers: { authorization: `Bearer ${TOKEN.slice(0, 16)}` }, reason: /wrong heartbeat token/ },
    { name: 'a longer token (token + suffix)', headers: { authorization: `Bearer ${TOKEN}x` }, reason: /wrong heartbeat token/ },
    { name: 'the token in another case', headers: { authorization: `Bearer ${TOKEN.toUpperCase()}` }, reason: /wrong heartbeat token/ },
    { name: 'the token sent bare, without "Bearer"', headers: { authorization: TOKEN }, reason: /no heartbeat token/ },
  ];
  for (const c of refused) {
    test(`${c.name}: start refused with 401, WWW-Authenticate Bearer, the reason, and no node`, async () => {
      const { server, registry, port } = await serve(TOKEN);
      const a = await post(port, START, c.headers);
      assert.equal(a.status, 401);
      assert.match(String(a.headers['www-authenticate']), /^Bearer\b/);
      assert.match(String(a.headers['content-type']), /^application\/json/);
      assert.deepEqual(Object.keys(a.body), ['error']);
      assert.match(String(a.body.error), c.reason);
      assert.equal(registry.get(NODE_ID), undefined);
      assert.equal(registry.list().length, 0);
      assert.deepEqual(server.rejected, { token: 1, invalid: 0 });
    });
  }

  test('the token in the JSON body is not accepted (only the header counts)', async () => {
    const { registry, port } = await serve(TOKEN);
    const a = await post(port, { start: { ...START.start, token: TOKEN } });
    assert.equal(a.status, 401);
    assert.equal(registry.list().length, 0);
  });

  test('the right token: start, heartbeat, shutdown and stop are served; each without it is refused and changes nothing', async () => {
    const { server, registry, port } = await serve(TOKEN);
    assert.equal(server.authenticated, true);
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.deepEqual((await post(port, START, auth)).body, { start: 'OK' });
    assert.equal(registry.snapshot().stateOf(NODE_ID), 'active');
    // The scheme is case-insensitive (RFC 7235).
    assert.deepEqual((await post(port, { heartbeat: { sessionId: 'sess-1' } }, { authorization: `bearer ${TOKEN}` })).body, { heartbeat: 'OK' });

    const before = registry.snapshot();
    for (const kind of ['heartbeat', 'shutdown', 'stop'] as const) {
      const a = await post(port, { [kind]: { sessionId: 'sess-1' } });
      assert.equal(a.status, 401, kind);
    }
    assert.equal(registry.snapshot(), before, 'the refused shutdown and stop changed nothing');
    assert.equal(registry.snapshot().stateOf(NODE_ID), 'active');

    assert.deepEqual((await post(port, { shutdown: { sessionId: 'sess-1' } }, auth)).body, { shutdown: 'OK' });
    assert.equal(registry.snapshot().stateOf(NODE_ID), 'draining');
    assert.deepEqual((await post(port, { stop: { sessionId: 'sess-1' } }, auth)).body, { stop: 'OK' });
    assert.equal(registry.get(NODE_ID), undefined);
    assert.deepEqual(server.rejected, { token: 3, invalid: 0 });
  });

  test('the token is checked before the body: a body that is not JSON gets 401 without it, 400 with it', async () => {
    const { server, port } = await serve(TOKEN);
    assert.equal((await post(port, 'not json')).status, 401);
    assert.equal((await post(port, 'not json', { authorization: `Bearer ${TOKEN}` })).status, 400);
    assert.deepEqual(server.rejected, { token: 1, invalid: 1 });
  });

  test('setToken: the new token is required from the next request on; null lets everyone in again', async () => {
    const { server, registry, port } = await serve(TOKEN);
    const next = 'the-next-token-after-rotation';
    server.setToken(next);
    assert.equal((await post(port, START, { authorization: `Bearer ${TOKEN}` })).status, 401);
    assert.equal((await post(port, START, { authorization: `Bearer ${next}` })).status, 200);
    server.setToken(null);
    assert.equal(server.authenticated, false);
    assert.deepEqual((await post(port, { heartbeat: { sessionId: 'sess-1' } })).body, { heartbeat: 'OK' });
    assert.ok(registry.get(NODE_ID));
  });
});

describe('refusals in the log', () => {
  const refusalLines = (lines: Record<string, unknown>[]): Record<string, unknown>[] =>
    lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('heartbeat request refused'));

  test('two refusals from one source within a minute: one line; from a second source: a line of its own; the token is never logged', async () => {
    const { log, lines } = capturingLogger();
    const { server, port } = await serve(TOKEN, log);
    const wrong = { authorization: 'Bearer a-guess-that-is-wrong-1234' };
    await post(port, START, wrong, '127.0.0.1');
    await post(port, START, {}, '127.0.0.1');
    assert.equal(refusalLines(lines).length, 1);
    await post(port, START, wrong, '127.0.0.2');
    await post(port, START, wrong, '127.0.0.2');
    const shown = refusalLines(lines);
    assert.deepEqual(shown.map((l) => l.source), ['127.0.0.1', '127.0.0.2']);
    assert.ok(shown.every((l) => l.level === 40), 'warn');
    assert.equal(server.rejected.token, 4, 'every refusal is counted, logged or not');
    const all = JSON.stringify(lines);
    assert.ok(!all.includes(TOKEN) && !all.includes('a-guess-that-is-wrong'), 'neither the token nor a guess is logged');
  });
});
