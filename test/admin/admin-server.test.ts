// The admin port against a real running balancer (startBalancer, real sockets on loopback) and
// real HTTP clients: the probes, Restcomm's endpoints with Restcomm's shapes and credentials,
// /api/v1 (nodes, drain and activate, config with secrets masked, stats, log level, stop), the
// bearer token, 405 for a GET on a mutation, 4xx with a JSON reason for bad input; and what the
// API changes reaching the data path: a drained node gets no new INVITE, a /lbnoderegex pin
// sends a user's calls to its node, a graceful stop answers new INVITEs 503 and closes once the
// calls in progress have ended.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { pino } from 'pino';
import { loadConfigText } from '../../src/config/load.ts';
import { startBalancer, type RunningBalancer } from '../../src/wiring/balancer.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { eventually } from '../helpers/wait.ts';

const until = (probe: () => boolean | Promise<boolean>, ms: number): Promise<void> => eventually('the condition', ms, probe);

const TOKEN = 'an-admin-token-of-some-length';

/** A UDP node that answers INVITE 200 and BYE 200 and remembers the Call-IDs it got INVITEs for. */
class UdpNode {
  readonly socket = dgram.createSocket('udp4');
  readonly invites: string[] = [];
  readonly byes: string[] = [];

  async start(port: number): Promise<void> {
    this.socket.on('message', (m, rinfo) => {
      const text = m.toString('latin1');
      const method = text.slice(0, text.indexOf(' '));
      const callId = /^Call-ID:\s*(.+)$/mi.exec(text)?.[1].trim() ?? '';
      if (method === 'INVITE') this.invites.push(callId);
      if (method === 'BYE') this.byes.push(callId);
      if (method !== 'INVITE' && method !== 'BYE' && method !== 'OPTIONS') return;
      const head = text.split('\r\n\r\n')[0].split('\r\n');
      const keep = head.filter((l) => /^(Via|From|Call-ID|CSeq|Record-Route):/i.test(l));
      const to = head.find((l) => /^To:/i.test(l)) ?? 'To: <sip:x@x>';
      const reply = ['SIP/2.0 200 OK', ...keep, /;tag=/.test(to) ? to : `${to};tag=node`, `Contact: <sip:node@127.0.0.1:${port}>`, 'Content-Length: 0', '', ''].join('\r\n');
      this.socket.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => this.socket.bind(port, '127.0.0.1', () => resolve()));
  }

  close(): void {
    this.socket.close();
  }
}

/** A UDP client that sends requests and collects the responses by Call-ID. */
class Client {
  readonly socket = dgram.createSocket('udp4');
  readonly responses = new Map<string, string[]>();

  async start(): Promise<void> {
    this.socket.on('message', (m) => {
      const text = m.toString('latin1');
      const callId = /^Call-ID:\s*(.+)$/mi.exec(text)?.[1].trim() ?? '';
      const list = this.responses.get(callId) ?? [];
      list.push(text.split('\r\n')[0]);
      this.responses.set(callId, list);
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
  }

  send(lbPort: number, method: string, callId: string, o: { fromUser?: string; toTag?: string; route?: string } = {}): void {
    const port = this.socket.address().port;
    const msg = [
      `${method} sip:service@127.0.0.1:${lbPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId}-${method};rport`,
      'Max-Forwards: 70',
      ...(o.route === undefined ? [] : [`Route: ${o.route}`]),
      `From: <sip:${o.fromUser ?? 'alice'}@example.org>;tag=c1`,
      `To: <sip:service@example.org>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
      `Call-ID: ${callId}`, `CSeq: ${method === 'BYE' ? 2 : 1} ${method}`, `Contact: <sip:alice@127.0.0.1:${port}>`, 'Content-Length: 0', '', '',
    ].join('\r\n');
    this.socket.send(msg, lbPort, '127.0.0.1');
  }

  finals(callId: string): string[] {
    return (this.responses.get(callId) ?? []).filter((l) => !/^SIP\/2\.0 1\d\d/.test(l));
  }

  close(): void {
    this.socket.close();
  }
}

interface Setup {
  lb: RunningBalancer;
  api: string;
  sipPort: number;
  nodes: [UdpNode, UdpNode];
  nodeIds: [string, string];
  client: Client;
  close(): Promise<void>;
}

async function setup(extra: string[] = []): Promise<Setup> {
  const [sipPort, apiPort, hbPort, a, b] = await allocatePorts(5);
  const nodes: [UdpNode, UdpNode] = [new UdpNode(), new UdpNode()];
  await nodes[0].start(a);
  await nodes[1].start(b);
  const { config } = loadConfigText([
    `externalUdpPort=${sipPort}`, `apiPort=${apiPort}`, `heartbeatPort=${hbPort}`, 'healthCheckInterval=0', 'isSendTrying=false',
    `nodes=127.0.0.1:${a};transport=udp,127.0.0.1:${b};transport=udp`, 'shutdownTimeout=4000', ...extra,
  ].join('\n'));
  const lb = await startBalancer(config, pino({ level: 'silent' }), { configPath: '/etc/siplb/lb.properties' });
  const client = new Client();
  await client.start();
  return {
    lb, api: `http://127.0.0.1:${lb.apiPort}`, sipPort, nodes, nodeIds: [`127.0.0.1:${a}`, `127.0.0.1:${b}`], client,
    async close() {
      client.close();
      for (const n of nodes) n.close();
      await lb.close();
      releasePorts([sipPort, apiPort, hbPort, a, b]);
    },
  };
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; text: string; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: Restcomm's plain-text answers
  }
  return { status: res.status, body, text, headers: res.headers };
}

const post = (body?: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
});

describe('admin API without a token (loopback only)', () => {
  let s: Setup;
  before(async () => { s = await setup(['securityRequired=true', 'login=daddy', 'password=123456']); });
  after(() => s.close());

  test('/healthz is up; /readyz is ready with active nodes', async () => {
    assert.deepEqual((await call(`${s.api}/healthz`)).body, { status: 'up' });
    assert.deepEqual((await call(`${s.api}/readyz`)).body, { ready: true, activeNodes: 2 });
  });

  test("Restcomm's /lbstat and /lbinfo keep Restcomm's shapes", async () => {
    const stat = (await call(`${s.api}/lbstat`)).body as { Metrics: Record<string, unknown> };
    for (const field of ['releaseName', 'releaseVersion', 'activeNodes', 'JvmCpuUsage', 'JvmHeapSize', 'NumberOfActiveSipConnections', 'NumberOfRequestsProcessed', 'NumberOfResponsesProcessed', 'NumberOfActiveCalls', 'NumberOfHttpRequests']) {
      assert.ok(field in stat.Metrics, `Metrics.${field}`);
    }
    assert.equal(stat.Metrics['activeNodes'], 2);
    const info = (await call(`${s.api}/lbinfo`)).body as { 'Nodes info': { nodesIPv4: { ip: string; properties: Record<string, string>; gracefulShutdown: boolean }[]; nodesIPv6: unknown[] } };
    assert.equal(info['Nodes info'].nodesIPv4.length, 2);
    assert.deepEqual(info['Nodes info'].nodesIPv6, []);
    const node = info['Nodes info'].nodesIPv4[0];
    assert.equal(node.ip, '127.0.0.1');
    assert.match(node.properties['udpPort'], /^\d+$/);
    assert.equal(node.gracefulShutdown, false);
  });

  test('securityRequired: the changing Restcomm endpoints want login and password, as in Restcomm', async () => {
    assert.equal((await call(`${s.api}/lbloglevel?logLevel=DEBUG`)).status, 401);
    assert.equal((await call(`${s.api}/lbloglevel?logLevel=DEBUG&login=daddy&password=wrong`)).status, 401);
    const ok = await call(`${s.api}/lbloglevel?logLevel=WARN&login=daddy&password=123456`);
    assert.deepEqual([ok.status, ok.text], [200, 'Log level changed']);
    assert.deepEqual((await call(`${s.api}/api/v1/log-level`)).body, { level: 'warn' });
    const bad = await call(`${s.api}/lbloglevel?logLevel=LOUD&login=daddy&password=123456`);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /unknown logLevel 'LOUD'/);
    // Reading needs no credentials.
    assert.equal((await call(`${s.api}/lbstat`)).status, 200);
  });

  test('/api/v1/nodes lists the nodes; drain and activate change the state, and a drained node gets no new INVITE', async () => {
    const nodes = (await call(`${s.api}/api/v1/nodes`)).body as { nodes: { id: string; state: string; source: string; ports: Record<string, number> }[] };
    assert.deepEqual(nodes.nodes.map((n) => [n.id, n.state, n.source]), [[s.nodeIds[0], 'active', 'static'], [s.nodeIds[1], 'active', 'static']]);
    const drained = await call(`${s.api}/api/v1/nodes/${encodeURIComponent(s.nodeIds[0])}/drain`, post());
    assert.equal(drained.status, 200);
    assert.equal((drained.body as { node: { state: string } }).node.state, 'draining');
    for (let i = 0; i < 10; i++) s.client.send(s.sipPort, 'INVITE', `drain-${i}`);
    await until(() => s.nodes[1].invites.filter((c) => c.startsWith('drain-')).length === 10, 3000);
    assert.deepEqual(s.nodes[0].invites.filter((c) => c.startsWith('drain-')), [], 'no new call to the drained node');
    const active = await call(`${s.api}/api/v1/nodes/${encodeURIComponent(s.nodeIds[0])}/activate`, post());
    assert.equal((active.body as { node: { state: string } }).node.state, 'active');
  });

  test('bad input: 405 with Allow for a GET on a mutation, 404 naming the nodes for an unknown one, 400 for a bad body', async () => {
    const get = await call(`${s.api}/api/v1/nodes/${encodeURIComponent(s.nodeIds[0])}/drain`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    const unknown = await call(`${s.api}/api/v1/nodes/10.9.9.9%3A5060/drain`, post());
    assert.equal(unknown.status, 404);
    assert.deepEqual((unknown.body as { nodes: string[] }).nodes, s.nodeIds);
    const notJson = await call(`${s.api}/api/v1/log-level`, post('{level:'));
    assert.equal(notJson.status, 400);
    assert.match((notJson.body as { error: string }).error, /not JSON/);
    const badLevel = await call(`${s.api}/api/v1/log-level`, post({ level: 'chatty' }));
    assert.equal(badLevel.status, 400);
    assert.equal((await call(`${s.api}/api/v1/log-level`)).status, 200, 'nothing changed, the API still answers');
    assert.equal((await call(`${s.api}/api/v1/nodes/x/reboot`, post())).status, 404);
    assert.equal((await call(`${s.api}/nothing-here`)).status, 404);
  });

  test('/api/v1/config shows the configuration with secrets masked', async () => {
    const c = (await call(`${s.api}/api/v1/config`)).body as { configPath: string; config: Record<string, unknown> };
    assert.equal(c.configPath, '/etc/siplb/lb.properties');
    assert.equal(c.config['password'], '(hidden)');
    assert.equal(c.config['login'], 'daddy');
    assert.equal(c.config['shutdownTimeout'], 4000);
  });

  test("/lbnoderegex pins the users that match to a node; the pin goes when only regex is given", async () => {
    const [ip, port] = s.nodeIds[1].split(':');
    const creds = 'login=daddy&password=123456';
    const set = await call(`${s.api}/lbnoderegex?regex=${encodeURIComponent('^vip-')}&ip=${ip}&port=${port}&${creds}`);
    assert.deepEqual([set.status, set.text], [200, 'Regex set']);
    for (let i = 0; i < 6; i++) s.client.send(s.sipPort, 'INVITE', `pin-${i}`, { fromUser: `vip-${i}` });
    await until(() => s.nodes[1].invites.filter((c) => c.startsWith('pin-')).length === 6, 3000);
    assert.deepEqual(s.nodes[0].invites.filter((c) => c.startsWith('pin-')), []);
    const nowhere = await call(`${s.api}/lbnoderegex?regex=x&ip=10.1.1.1&port=5060&${creds}`);
    assert.equal(nowhere.status, 400);
    assert.match(nowhere.text, /no node at 10\.1\.1\.1:5060/);
    const badRe = await call(`${s.api}/lbnoderegex?regex=${encodeURIComponent('(')}&ip=${ip}&port=${port}&${creds}`);
    assert.equal(badRe.status, 400);
    assert.equal((await call(`${s.api}/lbnoderegex?regex=${encodeURIComponent('^vip-')}&${creds}`)).text, 'Regex removed');
    assert.equal((await call(`${s.api}/lbnoderegex?regex=${encodeURIComponent('^vip-')}&${creds}`)).status, 400, 'nothing left to remove');
  });

  test('/api/v1/stats counts what the data path saw', async () => {
    const st = (await call(`${s.api}/api/v1/stats`)).body as { sip: { requestsIn: number; callsStarted: number }; calls: number; balancer: { stopping: boolean } };
    assert.ok(st.sip.requestsIn >= 16);
    assert.ok(st.sip.callsStarted >= 16);
    assert.equal(st.balancer.stopping, false);
  });
});

describe('admin API with apiToken', () => {
  let s: Setup;
  before(async () => { s = await setup([`apiToken=${TOKEN}`]); });
  after(() => s.close());

  const cases: { name: string; headers: Record<string, string>; status: number }[] = [
    { name: 'no Authorization', headers: {}, status: 401 },
    { name: 'a wrong token', headers: { Authorization: 'Bearer not-the-token-at-all' }, status: 401 },
    { name: 'the token as Basic', headers: { Authorization: `Basic ${TOKEN}` }, status: 401 },
    { name: 'the right token', headers: { Authorization: `Bearer ${TOKEN}` }, status: 200 },
  ];
  for (const c of cases) {
    test(`GET /api/v1/nodes with ${c.name}: ${c.status}`, async () => {
      const r = await call(`${s.api}/api/v1/nodes`, { headers: c.headers });
      assert.equal(r.status, c.status);
      if (c.status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    });
  }

  test('the probes need no token; everything else does, Restcomm endpoints and metrics included', async () => {
    assert.equal((await call(`${s.api}/healthz`)).status, 200);
    assert.equal((await call(`${s.api}/readyz`)).status, 200);
    for (const p of ['/lbstat', '/lbinfo', '/metrics', '/api/v1/config', '/api/v1/events']) assert.equal((await call(`${s.api}${p}`)).status, 401, p);
    // The dashboard page itself loads (it holds no data, and asks for the token).
    assert.equal((await call(`${s.api}/`)).status, 200);
    const masked = (await call(`${s.api}/api/v1/config`, { headers: { Authorization: `Bearer ${TOKEN}` } })).body as { config: Record<string, unknown> };
    assert.equal(masked.config['apiToken'], '(hidden)');
  });
});

describe('graceful stop through the API', () => {
  test('POST /api/v1/stop: readyz 503, new INVITEs 503, the call in progress ends normally, then the balancer closes', async () => {
    const s = await setup();
    try {
      s.client.send(s.sipPort, 'INVITE', 'held-call');
      await until(() => s.client.finals('held-call').length > 0, 3000);
      assert.equal(s.lb.calls.size, 1);
      const stopping = await call(`${s.api}/api/v1/stop`, post());
      assert.equal(stopping.status, 202);
      assert.deepEqual((await call(`${s.api}/readyz`)).body, { ready: false, reason: 'stopping' });
      s.client.send(s.sipPort, 'INVITE', 'too-late');
      await until(() => s.client.finals('too-late').length > 0, 3000);
      assert.deepEqual(s.client.finals('too-late'), ['SIP/2.0 503 Service Unavailable (balancer stopping)']);
      // An IP sprayer's OPTIONS probe is refused too, so it takes this balancer out.
      s.client.send(s.sipPort, 'OPTIONS', 'sprayer-probe');
      await until(() => s.client.finals('sprayer-probe').length > 0, 3000);
      assert.deepEqual(s.client.finals('sprayer-probe'), ['SIP/2.0 503 Service Unavailable (balancer stopping)']);
      // The call's BYE, routed by the Record-Route the node's 200 carried, still gets through.
      const invite = s.nodes.find((n) => n.invites.includes('held-call'));
      assert.ok(invite !== undefined);
      s.client.send(s.sipPort, 'BYE', 'held-call', { toTag: 'node', route: `<sip:127.0.0.1:${s.sipPort};lr;lbnode=${s.nodeIds[s.nodes.indexOf(invite)]}>` });
      await until(() => invite.byes.includes('held-call'), 3000);
      // No call left: the balancer closes within about a second, long before shutdownTimeout.
      const began = Date.now();
      await until(async () => (await fetch(`${s.api}/healthz`).then(() => false, () => true)), 4000);
      assert.ok(Date.now() - began < 3000, `closed ${Date.now() - began} ms after the last call ended`);
    } finally {
      await s.close();
    }
  });
});
