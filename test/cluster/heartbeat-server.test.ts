// HeartbeatServer over a real NodeRegistry, spoken to over real HTTP on 127.0.0.1
// (docs/heartbeat-protocol.md): the four verbs, session replacement, drain and removal, and the
// 400/404/405 answers that must leave the registry untouched.

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { HeartbeatServer } from '../../src/cluster/heartbeat-server.ts';
import { NodeRegistry, type RegistryEvent } from '../../src/cluster/node-registry.ts';

const log = pino({ level: 'silent' });

function newRegistry(): NodeRegistry {
  return new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
}

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

let registry: NodeRegistry;
let server: HeartbeatServer;
let base = '';
let events: RegistryEvent[] = [];

async function send(body: string, init: { method?: string; path?: string } = {}): Promise<Answer> {
  const method = init.method ?? 'POST';
  const res = await fetch(`${base}${init.path ?? '/'}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: method === 'GET' || method === 'HEAD' ? undefined : body,
    signal: AbortSignal.timeout(3000),
  });
  const text = await res.text();
  return { status: res.status, body: text.length === 0 ? undefined : JSON.parse(text), headers: res.headers };
}

const post = (obj: unknown): Promise<Answer> => send(JSON.stringify(obj));

function node(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ip: '127.0.0.1', udpPort: 5080, sessionId: 'sess-1', version: '1', ...over };
}

beforeEach(async () => {
  registry = newRegistry();
  events = [];
  registry.onEvent((e) => events.push(e));
  server = new HeartbeatServer(registry, log);
  await server.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${server.address().port}`;
});

afterEach(async () => {
  await server.close();
});

describe('start', () => {
  test('valid NODE -> 200 {"start":"OK"} and the node is selectable as ip:udpPort', async () => {
    const a = await post({ start: node() });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, { start: 'OK' });
    assert.match(a.headers.get('content-type') ?? '', /^application\/json/);
    const snap = registry.snapshot();
    assert.deepEqual(snap.selectable.map((n) => n.id), ['127.0.0.1:5080']);
    assert.equal(snap.stateOf('127.0.0.1:5080'), 'active');
    const e = registry.get('127.0.0.1:5080');
    assert.ok(e);
    assert.equal(e.source, 'heartbeat');
    assert.equal(e.sessionId, 'sess-1');
    assert.equal(e.version, '1');
    assert.deepEqual(e.node.ports, { udp: 5080 });
  });

  test('a new sessionId for the same ip/port replaces the entry; the old session is unknown; the new version is kept', async () => {
    assert.deepEqual((await post({ start: node({ sessionId: 'old', version: '1' }) })).body, { start: 'OK' });
    const first = registry.get('127.0.0.1:5080');
    assert.deepEqual((await post({ start: node({ sessionId: 'new', version: '2' }) })).body, { start: 'OK' });

    assert.equal(registry.list().length, 1, 'replaced, not added');
    const second = registry.get('127.0.0.1:5080');
    assert.ok(second);
    assert.notEqual(second, first);
    assert.equal(second.sessionId, 'new');
    assert.equal(second.version, '2');
    assert.equal(second.registration?.version, '2');
    assert.deepEqual(events.map((e) => e.type), ['added', 'replaced']);

    assert.deepEqual((await post({ heartbeat: { sessionId: 'old' } })).body, { heartbeat: 'UNKNOWN_SESSION', send: 'start' });
    assert.deepEqual((await post({ heartbeat: { sessionId: 'new' } })).body, { heartbeat: 'OK' });
    assert.deepEqual(registry.snapshot().selectable.map((n) => n.id), ['127.0.0.1:5080']);
  });

  test('a repeated start with the same sessionId keeps the same entry', async () => {
    await post({ start: node() });
    const first = registry.get('127.0.0.1:5080');
    const again = await post({ start: node() });
    assert.deepEqual(again.body, { start: 'OK' });
    assert.equal(registry.get('127.0.0.1:5080'), first);
    assert.deepEqual(events.map((e) => e.type), ['added']);
  });

  const accepted: { name: string; node: Record<string, unknown>; id: string; ports: Record<string, number>; check?: (id: string) => void }[] = [
    { name: 'string ports ("5080")', node: { ip: '127.0.0.1', udpPort: '5080', tcpPort: '5081', sessionId: 's' }, id: '127.0.0.1:5080', ports: { udp: 5080, tcp: 5081 } },
    { name: 'TCP port only', node: { ip: '127.0.0.1', tcpPort: 5090, sessionId: 's' }, id: '127.0.0.1:5090', ports: { tcp: 5090 } },
    { name: 'udpPort 0 means not offered', node: { ip: '127.0.0.1', udpPort: 0, tcpPort: 5091, sessionId: 's' }, id: '127.0.0.1:5091', ports: { tcp: 5091 } },
    { name: 'IPv6 literal', node: { ip: '::1', udpPort: 5060, sessionId: 's' }, id: '[::1]:5060', ports: { udp: 5060 } },
    { name: 'no version -> "0"', node: { ip: '127.0.0.1', udpPort: 5060, sessionId: 's' }, id: '127.0.0.1:5060', ports: { udp: 5060 },
      check: (id) => assert.equal(registry.get(id)?.version, '0') },
    {
      name: 'extra unknown fields are accepted and kept as metadata',
      node: { ip: '127.0.0.1', udpPort: 5060, sessionId: 's', hostName: 'as1', jvmRoute: 'r1', httpPort: 8080, heartbeatPort: 2222, color: 'blue', nested: { a: [1, 2] } },
      id: '127.0.0.1:5060', ports: { udp: 5060 },
      check: (id) => {
        const reg = registry.get(id)?.registration;
        assert.equal(reg?.hostName, 'as1');
        assert.equal(reg?.jvmRoute, 'r1');
        assert.equal(reg?.httpPort, 8080);
        assert.deepEqual(reg?.extra, { color: 'blue', nested: { a: [1, 2] } });
      },
    },
  ];
  for (const c of accepted) {
    test(`accepted: ${c.name}`, async () => {
      const a = await post({ start: c.node });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.deepEqual(a.body, { start: 'OK' });
      assert.deepEqual(registry.snapshot().selectable.map((n) => n.id), [c.id]);
      assert.deepEqual(registry.get(c.id)?.node.ports, c.ports);
      c.check?.(c.id);
    });
  }
});

describe('heartbeat, shutdown, stop', () => {
  test('heartbeat: known -> OK, unknown -> UNKNOWN_SESSION + send start', async () => {
    await post({ start: node() });
    const a = await post({ heartbeat: { sessionId: 'sess-1' } });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, { heartbeat: 'OK' });
    const b = await post({ heartbeat: { sessionId: 'nobody' } });
    assert.equal(b.status, 200);
    assert.deepEqual(b.body, { heartbeat: 'UNKNOWN_SESSION', send: 'start' });
  });

  test('shutdown drains (alive, not selectable); stop removes', async () => {
    await post({ start: node() });
    const a = await post({ shutdown: { sessionId: 'sess-1' } });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, { shutdown: 'OK' });
    let snap = registry.snapshot();
    const n = snap.get('127.0.0.1:5080');
    assert.ok(n, 'still known while draining');
    assert.equal(snap.stateOf(n.id), 'draining');
    assert.equal(snap.isAlive(n), true);
    assert.equal(snap.isSelectable(n), false);
    assert.deepEqual(snap.selectable, []);
    // A heartbeat during the drain keeps it alive and does not undrain it.
    assert.deepEqual((await post({ heartbeat: { sessionId: 'sess-1' } })).body, { heartbeat: 'OK' });
    assert.equal(registry.snapshot().stateOf(n.id), 'draining');

    const b = await post({ stop: { sessionId: 'sess-1' } });
    assert.equal(b.status, 200);
    assert.deepEqual(b.body, { stop: 'OK' });
    snap = registry.snapshot();
    assert.equal(snap.get(n.id), undefined);
    assert.equal(snap.stateOf(n.id), undefined);
    assert.equal(snap.isAlive(n), false);
    assert.equal(registry.list().length, 0);
    assert.deepEqual((await post({ heartbeat: { sessionId: 'sess-1' } })).body, { heartbeat: 'UNKNOWN_SESSION', send: 'start' });
  });

  test('shutdown and stop of an unknown session -> UNKNOWN_SESSION, nothing changes', async () => {
    await post({ start: node() });
    const before = registry.snapshot();
    assert.deepEqual((await post({ shutdown: { sessionId: 'nobody' } })).body, { shutdown: 'UNKNOWN_SESSION' });
    assert.deepEqual((await post({ stop: { sessionId: 'nobody' } })).body, { stop: 'UNKNOWN_SESSION' });
    assert.equal(registry.snapshot(), before);
    assert.equal(registry.list().length, 1);
  });
});

describe('bad requests -> 400 {"error": reason}, registry unchanged', () => {
  const big = JSON.stringify({ heartbeat: { sessionId: 'sess-1', pad: 'x'.repeat(70 * 1024) } });
  const cases: { name: string; body: string }[] = [
    { name: 'not JSON', body: '{"start": ' },
    { name: 'empty body', body: '' },
    { name: 'JSON array', body: JSON.stringify([{ heartbeat: { sessionId: 'sess-1' } }]) },
    { name: 'JSON string', body: '"start"' },
    { name: 'JSON null', body: 'null' },
    { name: 'two keys', body: JSON.stringify({ heartbeat: { sessionId: 'sess-1' }, stop: { sessionId: 'sess-1' } }) },
    { name: 'no key', body: '{}' },
    { name: 'unknown verb', body: JSON.stringify({ restart: { sessionId: 'sess-1' } }) },
    { name: 'verb holding a string', body: JSON.stringify({ heartbeat: 'sess-1' }) },
    { name: 'start without ip', body: JSON.stringify({ start: node({ ip: undefined, udpPort: 5099, sessionId: 'new' }) }) },
    { name: 'start with a hostname instead of an IP', body: JSON.stringify({ start: node({ ip: 'as1.example.com', udpPort: 5099, sessionId: 'new' }) }) },
    { name: 'start without udpPort and tcpPort', body: JSON.stringify({ start: { ip: '127.0.0.1', httpPort: 8080, sessionId: 'new' } }) },
    { name: 'start with port 70000', body: JSON.stringify({ start: node({ udpPort: 70000, sessionId: 'new' }) }) },
    { name: 'start with port "abc"', body: JSON.stringify({ start: node({ udpPort: 'abc', sessionId: 'new' }) }) },
    { name: 'start with port -1', body: JSON.stringify({ start: node({ udpPort: -1, sessionId: 'new' }) }) },
    { name: 'start with port 5060.5', body: JSON.stringify({ start: node({ udpPort: 5060.5, sessionId: 'new' }) }) },
    { name: 'start with a bad optional port', body: JSON.stringify({ start: node({ udpPort: 5099, httpPort: 'http', sessionId: 'new' }) }) },
    { name: 'start with an empty sessionId', body: JSON.stringify({ start: node({ udpPort: 5099, sessionId: '' }) }) },
    { name: 'start with a sessionId of 300 chars', body: JSON.stringify({ start: node({ udpPort: 5099, sessionId: 's'.repeat(300) }) }) },
    { name: 'start with a numeric sessionId', body: JSON.stringify({ start: node({ udpPort: 5099, sessionId: 42 }) }) },
    { name: 'start replacing the live node with a bad port', body: JSON.stringify({ start: node({ tcpPort: 'x', sessionId: 'new' }) }) },
    { name: 'heartbeat without sessionId', body: JSON.stringify({ heartbeat: {} }) },
    { name: 'shutdown without sessionId', body: JSON.stringify({ shutdown: { session: 'sess-1' } }) },
    { name: 'stop with an empty sessionId', body: JSON.stringify({ stop: { sessionId: '' } }) },
    { name: 'body over 64 KiB', body: big },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      await post({ start: node() });
      const snapBefore = registry.snapshot();
      const listBefore = JSON.stringify(registry.list());
      const eventsBefore = events.length;
      const badBefore = server.badRequests;

      const a = await send(c.body);
      assert.equal(a.status, 400);
      assert.match(a.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(typeof a.body, 'object');
      assert.deepEqual(Object.keys(a.body as object), ['error']);
      const reason = (a.body as { error: unknown }).error;
      assert.equal(typeof reason, 'string');
      assert.ok((reason as string).length > 0, 'the reason is not empty');

      assert.equal(registry.snapshot(), snapBefore, 'no new snapshot');
      assert.equal(JSON.stringify(registry.list()), listBefore, 'entries untouched (including lastHeard)');
      assert.equal(events.length, eventsBefore, 'no registry events');
      assert.equal(server.badRequests, badBefore + 1);
      // The live session is still the live session.
      assert.deepEqual((await post({ heartbeat: { sessionId: 'sess-1' } })).body, { heartbeat: 'OK' });
    });
  }
});

describe('method and path', () => {
  const cases: { name: string; method: string; path: string; status: number }[] = [
    { name: 'GET / -> 405', method: 'GET', path: '/', status: 405 },
    { name: 'PUT / -> 405', method: 'PUT', path: '/', status: 405 },
    { name: 'DELETE / -> 405', method: 'DELETE', path: '/', status: 405 },
    { name: 'POST /other -> 404', method: 'POST', path: '/other', status: 404 },
    { name: 'POST /start -> 404', method: 'POST', path: '/start', status: 404 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      await post({ start: node() });
      const snapBefore = registry.snapshot();
      const a = await send(JSON.stringify({ stop: { sessionId: 'sess-1' } }), { method: c.method, path: c.path });
      assert.equal(a.status, c.status);
      if (c.status === 405) assert.equal(a.headers.get('allow'), 'POST');
      assert.equal(typeof (a.body as { error?: unknown }).error, 'string');
      assert.equal(registry.snapshot(), snapBefore);
      assert.equal(registry.list().length, 1);
    });
  }
});

describe('nothing thrown behind the endpoint escapes', () => {
  test('a registry listener that throws (an algorithm or user module bug): the start is answered OK and the node registered', async () => {
    registry.onEvent(() => { throw new Error('listener bug'); });
    const a = await post({ start: node() });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, { start: 'OK' });
    assert.deepEqual(registry.snapshot().selectable.map((n) => n.id), ['127.0.0.1:5080']);
  });

  test('a registry that throws: 500 with a reason, and the endpoint keeps serving', async () => {
    await server.close();
    class FailingOnce extends NodeRegistry {
      failed = false;
      override heartbeat(sessionId: string): boolean {
        if (!this.failed) {
          this.failed = true;
          throw new Error('registry bug');
        }
        return super.heartbeat(sessionId);
      }
    }
    registry = new FailingOnce({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
    server = new HeartbeatServer(registry, log);
    await server.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${server.address().port}`;
    const failed = await post({ heartbeat: { sessionId: 'sess-1' } });
    assert.equal(failed.status, 500);
    assert.match(String((failed.body as { error: string }).error), /internal error/);
    assert.equal(server.internalErrors, 1);
    assert.equal((await post({ start: node() })).status, 200);
    assert.deepEqual((await post({ heartbeat: { sessionId: 'sess-1' } })).body, { heartbeat: 'OK' });
  });
});
