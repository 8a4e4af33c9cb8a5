// The operator surface's reload, weight and shared drain against real running balancers
// (startBalancer on a configuration file, real sockets on loopback, real HTTP clients, UDP nodes
// that answer INVITEs): POST /api/v1/reload adds a node that new calls then reach, refuses a
// changed port naming the key and changes nothing, answers 400 for a bad file; POST
// /api/v1/nodes/{id}/weight changes what weighted round robin gives the node ({"weight": null}
// gives back the configured one); a drain set on one balancer is shared through a real
// redis-server with another, stays through the heartbeats of the node, and is ended by an
// activate on the other; a weight and a /lbnoderegex pin are shared the same way.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfigFile } from '../../src/config/load.ts';
import { startBalancer, type RunningBalancer } from '../../src/wiring/balancer.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { startRedis } from '../helpers/redis.ts';
import { eventually } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });

/** A UDP node that answers INVITE and BYE 200 and remembers the Call-IDs of its INVITEs. */
class UdpNode {
  readonly socket = dgram.createSocket('udp4');
  readonly invites: string[] = [];
  port = 0;

  async start(t: TestContext): Promise<this> {
    this.socket.on('message', (m, rinfo) => {
      const text = m.toString('latin1');
      const method = text.slice(0, text.indexOf(' '));
      if (method === 'INVITE') this.invites.push(/^Call-ID:\s*(.+)$/mi.exec(text)?.[1].trim() ?? '');
      if (method !== 'INVITE' && method !== 'BYE') return;
      const head = text.split('\r\n\r\n')[0].split('\r\n');
      const keep = head.filter((l) => /^(Via|From|Call-ID|CSeq|Record-Route):/i.test(l));
      const to = head.find((l) => /^To:/i.test(l)) ?? 'To: <sip:x@x>';
      this.socket.send(['SIP/2.0 200 OK', ...keep, `${to};tag=node`, `Contact: <sip:node@127.0.0.1:${this.port}>`, 'Content-Length: 0', '', ''].join('\r\n'), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.port = this.socket.address().port;
    t.after(() => this.socket.close());
    return this;
  }

  get id(): string {
    return `127.0.0.1:${this.port}`;
  }

  count(prefix: string): number {
    return this.invites.filter((c) => c.startsWith(prefix)).length;
  }
}

/** Sends INVITEs (each a new call) to a balancer from one UDP socket. */
class Caller {
  readonly socket = dgram.createSocket('udp4');

  async start(t: TestContext): Promise<this> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    t.after(() => this.socket.close());
    return this;
  }

  invites(lbPort: number, prefix: string, n: number): void {
    const port = this.socket.address().port;
    for (let i = 0; i < n; i++) {
      const callId = `${prefix}-${i}`;
      this.socket.send([
        `INVITE sip:service@127.0.0.1:${lbPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId};rport`,
        'Max-Forwards: 70', 'From: <sip:alice@example.org>;tag=1', 'To: <sip:service@example.org>', `Call-ID: ${callId}`,
        'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${port}>`, 'Content-Length: 0', '', '',
      ].join('\r\n'), lbPort, '127.0.0.1');
    }
  }
}

interface Lb {
  lb: RunningBalancer;
  api: string;
  sipPort: number;
  /** Rewrites the file: the ports, then these lines. */
  write(lines: string[], ports?: { sip?: number }): void;
}

async function balancer(t: TestContext, lines: string[]): Promise<Lb> {
  const ports = await allocatePorts(3);
  const [sipPort, apiPort, hbPort] = ports;
  const dir = mkdtempSync(join(tmpdir(), 'siplb-admin-reload-'));
  const path = join(dir, 'lb.properties');
  const write = (l: string[], p: { sip?: number } = {}): void => {
    writeFileSync(path, [`externalUdpPort=${p.sip ?? sipPort}`, `apiPort=${apiPort}`, `heartbeatPort=${hbPort}`, 'healthCheckInterval=0', 'isSendTrying=false', ...l].join('\n') + '\n');
  };
  write(lines);
  const lb = await startBalancer(loadConfigFile(path).config, log, { configPath: path });
  t.after(async () => {
    await lb.close();
    releasePorts(ports);
    rmSync(dir, { recursive: true, force: true });
  });
  return { lb, api: `http://127.0.0.1:${lb.apiPort}`, sipPort, write };
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers };
}

const post = (body?: unknown): RequestInit => ({
  method: 'POST', headers: { 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
});

interface NodeView { id: string; state: string; why: string; weight: number; adminDrained: boolean }

async function nodes(api: string): Promise<NodeView[]> {
  return (await call(`${api}/api/v1/nodes`)).body['nodes'] as NodeView[];
}

describe('POST /api/v1/reload', () => {
  test('a node added to the file takes new calls after the reload; the config endpoint shows the new file', async (t) => {
    const [a, b, c] = await Promise.all([new UdpNode().start(t), new UdpNode().start(t), new UdpNode().start(t)]);
    const caller = await new Caller().start(t);
    const s = await balancer(t, [`nodes=${a.id},${b.id}`]);
    caller.invites(s.sipPort, 'before', 10);
    await eventually('10 calls placed', 3000, () => a.count('before') + b.count('before') === 10);
    assert.equal(c.count('before'), 0);

    s.write([`nodes=${a.id},${b.id},${c.id}`, 'blockedValues=scanner-x']);
    const reloaded = await call(`${s.api}/api/v1/reload`, post());
    assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));
    assert.deepEqual(reloaded.body, { applied: ['nodes', 'blockedValues'], tlsListeners: 0, warnings: [], notes: [] });
    assert.deepEqual((await nodes(s.api)).map((n) => [n.id, n.state]).sort(), [[a.id, 'active'], [b.id, 'active'], [c.id, 'active']].sort());
    const config = (await call(`${s.api}/api/v1/config`)).body['config'] as Record<string, unknown>;
    assert.deepEqual(config['blockedValues'], ['scanner-x']);

    caller.invites(s.sipPort, 'after', 30);
    await eventually('30 calls placed', 3000, () => a.count('after') + b.count('after') + c.count('after') === 30);
    assert.equal(c.count('after'), 10, 'round robin over three nodes');

    // Removed from the file: it drains (its calls would go on) and takes no new call.
    s.write([`nodes=${b.id},${c.id}`, 'blockedValues=scanner-x']);
    const removed = await call(`${s.api}/api/v1/reload`, post());
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    const viewA = (await nodes(s.api)).find((n) => n.id === a.id);
    assert.equal(viewA?.state, 'draining');
    assert.equal(viewA?.why, 'removed from nodes=: takes no new calls, leaves once its calls have ended');
    caller.invites(s.sipPort, 'later', 20);
    await eventually('20 calls placed', 3000, () => b.count('later') + c.count('later') === 20);
    assert.equal(a.count('later'), 0);
  });

  test('a changed port is refused naming the key, and nothing changes (the nodes added in the same file neither)', async (t) => {
    const [a, b] = await Promise.all([new UdpNode().start(t), new UdpNode().start(t)]);
    const caller = await new Caller().start(t);
    const s = await balancer(t, [`nodes=${a.id}`]);
    s.write([`nodes=${a.id},${b.id}`], { sip: s.sipPort + 1 });
    const refused = await call(`${s.api}/api/v1/reload`, post());
    assert.equal(refused.status, 409);
    const list = refused.body['refused'] as { key: string; reason: string }[];
    assert.deepEqual(list.map((r) => r.key), ['externalUdpPort']);
    assert.match(list[0].reason, /new sockets/);
    assert.match(String(refused.body['error']), /externalUdpPort/);
    assert.deepEqual((await nodes(s.api)).map((n) => n.id), [a.id]);
    const config = (await call(`${s.api}/api/v1/config`)).body['config'] as Record<string, unknown>;
    assert.equal(config['externalUdpPort'], s.sipPort);
    caller.invites(s.sipPort, 'still', 5);
    await eventually('calls still placed on the old port', 3000, () => a.count('still') === 5);
  });

  test('a bad file: 400 naming the key; GET is 405', async (t) => {
    const s = await balancer(t, []);
    s.write(['healthCheckTimeout=later']);
    const bad = await call(`${s.api}/api/v1/reload`, post());
    assert.equal(bad.status, 400);
    assert.deepEqual((bad.body['refused'] as { key: string }[]).map((r) => r.key), ['healthCheckTimeout']);
    assert.match(String(bad.body['error']), /nothing was changed/);
    const get = await call(`${s.api}/api/v1/reload`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
  });
});

describe('POST /api/v1/nodes/{id}/weight', () => {
  test('weighted round robin follows the new weight; GET /api/v1/nodes shows it', async (t) => {
    const [a, b] = await Promise.all([new UdpNode().start(t), new UdpNode().start(t)]);
    const caller = await new Caller().start(t);
    const s = await balancer(t, ['algorithmClass=wrr', `nodes=${a.id},${b.id}`]);
    const res = await call(`${s.api}/api/v1/nodes/${encodeURIComponent(a.id)}/weight`, post({ weight: 3 }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((res.body['node'] as NodeView).weight, 3);
    assert.equal(res.body['note'], undefined, 'wrr honours weights');
    assert.deepEqual((await nodes(s.api)).map((n) => [n.id, n.weight]).sort(), [[a.id, 3], [b.id, 1]].sort());
    caller.invites(s.sipPort, 'w', 40);
    await eventually('40 calls placed', 3000, () => a.count('w') + b.count('w') === 40);
    assert.deepEqual([a.count('w'), b.count('w')], [30, 10]);
  });

  test('bad input is 400, an unknown node 404, GET 405; nothing changes', async (t) => {
    const a = await new UdpNode().start(t);
    const s = await balancer(t, [`nodes=${a.id}`]);
    const url = `${s.api}/api/v1/nodes/${encodeURIComponent(a.id)}/weight`;
    for (const body of [{ weight: 0 }, { weight: 1001 }, { weight: 2.5 }, { weight: '3' }, {}, [3], 'not json', '7']) {
      const res = await call(url, post(body));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(typeof res.body['error'], 'string');
    }
    assert.equal((await call(`${s.api}/api/v1/nodes/10.9.9.9%3A5060/weight`, post({ weight: 2 }))).status, 404);
    assert.equal((await call(url)).status, 405);
    assert.equal((await nodes(s.api))[0].weight, 1);
  });

  test('{"weight": null} gives the node back the weight nodes= gives it', async (t) => {
    const a = await new UdpNode().start(t);
    const s = await balancer(t, ['algorithmClass=wrr', `nodes=${a.id};weight=2`]);
    const url = `${s.api}/api/v1/nodes/${encodeURIComponent(a.id)}/weight`;
    assert.equal((await call(url, post({ weight: 9 }))).status, 200);
    assert.equal((await nodes(s.api))[0].weight, 9);
    const res = await call(url, post({ weight: null }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((res.body['node'] as NodeView).weight, 2);
  });

  test('with an algorithm that ignores weights, the answer says so', async (t) => {
    const a = await new UdpNode().start(t);
    const s = await balancer(t, [`nodes=${a.id}`]);
    const res = await call(`${s.api}/api/v1/nodes/${encodeURIComponent(a.id)}/weight`, post({ weight: 5 }));
    assert.equal(res.status, 200);
    assert.match(String(res.body['note']), /algorithm callid ignores node weights/);
  });
});

describe('drains shared between balancers (redis)', () => {
  test('drained on balancer 1, drained on balancer 2 whatever the node\'s heartbeats; activated on balancer 2, active on both', { timeout: 60_000 }, async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const a = await new UdpNode().start(t);
    const caller = await new Caller().start(t);
    const shared = ['stateStore=redis', `redisUrl=${redis.url}`, 'redisKeyPrefix=drain-test:', `nodes=${a.id}`, 'nodeTimeout=3000'];
    const one = await balancer(t, shared);
    const two = await balancer(t, shared);
    // A registered node too, heard by balancer 2 only: its heartbeat records keep coming.
    const regId = '10.0.0.9:5080';
    two.lb.registry.start({ ip: '10.0.0.9', ports: { udp: 5080 }, sessionId: 'r1', version: '1' });
    const beats = setInterval(() => two.lb.registry.heartbeat('r1'), 200);
    t.after(() => clearInterval(beats));
    await eventually('balancer 1 learns the registered node', 5000, async () => (await nodes(one.api)).some((n) => n.id === regId), 100);

    for (const id of [a.id, regId]) {
      const res = await call(`${one.api}/api/v1/nodes/${encodeURIComponent(id)}/drain`, post());
      assert.equal(res.status, 200);
      assert.equal((res.body['node'] as NodeView).adminDrained, true);
    }
    const drainedAt = async (api: string, id: string): Promise<boolean> => {
      const n = (await nodes(api)).find((x) => x.id === id);
      return n?.state === 'draining' && n.adminDrained && n.why === 'drained by an operator';
    };
    await eventually('both drained on balancer 2', 5000, async () => (await drainedAt(two.api, a.id)) && (await drainedAt(two.api, regId)), 100);
    // Several heartbeat records of balancer 2 later, still drained everywhere.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    for (const api of [one.api, two.api]) {
      assert.equal(await drainedAt(api, a.id), true);
      assert.equal(await drainedAt(api, regId), true);
    }
    // New calls at balancer 2 avoid the drained static node (no node left: 503).
    caller.invites(two.sipPort, 'drained', 3);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(a.count('drained'), 0);

    const activated = await call(`${two.api}/api/v1/nodes/${encodeURIComponent(a.id)}/activate`, post());
    assert.equal(activated.status, 200);
    await eventually('active again on balancer 1', 5000, async () => (await nodes(one.api)).find((n) => n.id === a.id)?.state === 'active', 100);
    assert.equal(await drainedAt(one.api, regId), true, 'only that node');
    caller.invites(one.sipPort, 'back', 3);
    await eventually('calls reach it again', 3000, () => a.count('back') === 3);
  });
});

describe('weights shared between balancers (redis)', () => {
  test('a weight set on balancer 1 shapes balancer 2\'s picks; withdrawn on balancer 2, gone on both', { timeout: 60_000 }, async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const [a, b] = await Promise.all([new UdpNode().start(t), new UdpNode().start(t)]);
    const caller = await new Caller().start(t);
    const shared = ['stateStore=redis', `redisUrl=${redis.url}`, 'redisKeyPrefix=weight-test:', 'algorithmClass=wrr', `nodes=${a.id},${b.id}`];
    const one = await balancer(t, shared);
    const two = await balancer(t, shared);
    const weightAt = async (api: string, id: string): Promise<number | undefined> => (await nodes(api)).find((n) => n.id === id)?.weight;

    const res = await call(`${one.api}/api/v1/nodes/${encodeURIComponent(a.id)}/weight`, post({ weight: 3 }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await eventually('balancer 2 gives node a weight 3', 5000, async () => (await weightAt(two.api, a.id)) === 3, 100);
    caller.invites(two.sipPort, 'shared', 40);
    await eventually('40 calls placed', 3000, () => a.count('shared') + b.count('shared') === 40);
    assert.deepEqual([a.count('shared'), b.count('shared')], [30, 10]);

    const withdrawn = await call(`${two.api}/api/v1/nodes/${encodeURIComponent(a.id)}/weight`, post({ weight: null }));
    assert.equal(withdrawn.status, 200);
    await eventually('weight 1 again on balancer 1', 5000, async () => (await weightAt(one.api, a.id)) === 1, 100);
    assert.equal(await weightAt(two.api, a.id), 1);
  });
});

describe('pins shared between balancers (redis)', () => {
  test('/lbnoderegex on balancer 1 pins the matching users\' calls at balancer 2; removed on balancer 2, gone at balancer 1', { timeout: 60_000 }, async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const [a, b] = await Promise.all([new UdpNode().start(t), new UdpNode().start(t)]);
    const caller = await new Caller().start(t);
    const shared = ['stateStore=redis', `redisUrl=${redis.url}`, 'redisKeyPrefix=pin-test:', `nodes=${a.id},${b.id}`];
    const one = await balancer(t, shared);
    const two = await balancer(t, shared);
    const creds = 'login=daddy&password=123456';
    // The Caller's From user is alice: every call of its matches.
    const set = await fetch(`${one.api}/lbnoderegex?regex=${encodeURIComponent('^ali')}&ip=127.0.0.1&port=${b.port}&${creds}`);
    assert.equal(set.status, 200, await set.text());
    // Each probe: four new calls, all at node b once the pin has arrived (then 20 more must be).
    let probe = 0;
    await eventually('balancer 2 pins alice to node b', 5000, async () => {
      const prefix = `probe${++probe}-`;
      caller.invites(two.sipPort, prefix, 4);
      await eventually('probe placed', 2000, () => a.count(prefix) + b.count(prefix) === 4);
      return b.count(prefix) === 4;
    }, 200);
    caller.invites(two.sipPort, 'pinned', 20);
    await eventually('20 calls placed', 3000, () => a.count('pinned') + b.count('pinned') === 20);
    assert.deepEqual([a.count('pinned'), b.count('pinned')], [0, 20]);

    const removed = await fetch(`${two.api}/lbnoderegex?regex=${encodeURIComponent('^ali')}&${creds}`);
    assert.equal(await removed.text(), 'Regex removed');
    // Balancer 1 no longer pins: its Call-ID hash sends some of 40 calls to node a.
    let free = 0;
    await eventually('balancer 1 spreads alice\'s calls again', 5000, async () => {
      const prefix = `free${++free}-`;
      caller.invites(one.sipPort, prefix, 10);
      await eventually('calls placed', 2000, () => a.count(prefix) + b.count(prefix) === 10);
      return a.count(prefix) > 0;
    }, 200);
  });
});
