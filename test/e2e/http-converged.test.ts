// End to end, converged load balancing (issue 10, "Choosing the node", point 2): a sipp call keyed
// by its caller (sipHeaderAffinityKey=From, the From URI's user) and an HTTP request carrying the
// same user as `?appsession=` (httpAffinityKey, default appsession) land on the same node: through
// one balancer with the user-based and the hash algorithm (all nodes up, a node killed, the node
// back), through two balancers sharing a real redis-server (SIP through one, HTTP through the
// other, both ways round, HTTP first or SIP first; a node killed), and through two balancers when
// a node joins after the users were placed (only the shared assignments can keep them together).
//
// Which node took what:
//   - every node is a sipp UAS (uas-node.xml, with -aa for siplb's OPTIONS probes) on its SIP port
//     plus a node:http server in this process on its HTTP port; both name the node by its SIP port,
//     the UAS in an X-Node header of its answers, the HTTP server in its response body;
//   - the UAC (uac-user.xml) calls once per line of an injection file (one user per line) and logs
//     "call <user> <X-Node>" per call, so the test knows each user's SIP node;
//   - each HTTP request's answer names the node that served it.
// Every phase runs and is checked on the SIP side at once (calls complete, users keep or move
// their node as they must); the SIP/HTTP disagreements of all phases are gathered and reported
// together at the end of the test, one line per user, so a failure shows the whole picture.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { eventually } from '../helpers/wait.ts';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { SCENARIO_DIR, describeResult, runSippUac, startSippUas, type SippUas } from './harness/sipp.ts';

const UAS_NODE = { file: join(SCENARIO_DIR, 'uas-node.xml') };
const UAC_USER = { file: join(SCENARIO_DIR, 'uac-user.xml') };

/** siplb's OPTIONS probing: a killed node (its port refuses) is out within ~0.5 s. */
const HEALTH = { healthCheckInterval: '300', healthCheckTimeout: '250', healthCheckFailures: '1', healthCheckSuccesses: '1' };
const VIA_SECRET = 'converged-e2e-via-secret-0123456789';

interface TestNode {
  readonly label: string;        // A, B, C: for messages
  readonly sipPort: number;      // also the node's name in X-Node and in HTTP bodies
  readonly httpPort: number;
  uas: SippUas | null;
  http: Server | null;
  /** HTTP requests this node served (for messages). */
  served: number;
}

type Placement = Map<string, string>;   // user -> node name (SIP port), or what went wrong

interface Bed {
  readonly dir: string;
  readonly nodes: TestNode[];
  readonly lbs: SiplbHandle[];
  readonly lbSip: number[];
  readonly lbHttp: number[];
  readonly uacPort: number;
  /** Users found on different nodes by different sides, one line each; asserted empty at the end. */
  readonly disagreements: string[];
  runs: number;
}

const users = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);

function nodeName(b: Bed, value: string | undefined): string {
  if (value === undefined) return '(nothing)';
  const n = b.nodes.find((x) => String(x.sipPort) === value);
  return n === undefined ? value : `${n.label}(${value})`;
}

async function startNodeHttp(n: TestNode): Promise<void> {
  const server = createServer((req, res) => {
    n.served++;
    req.resume();
    res.setHeader('content-type', 'text/plain');
    res.setHeader('x-node', String(n.sipPort));
    res.end(String(n.sipPort));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: n.httpPort, exclusive: true }, () => resolve());
  });
  n.http = server;
}

async function startNode(n: TestNode): Promise<void> {
  n.uas = await startSippUas({ scenario: UAS_NODE, transport: 'u1', localPort: n.sipPort, timeoutS: 60, extraArgs: ['-aa'] });
  await startNodeHttp(n);
}

/** The node dies: its sipp UAS is SIGKILLed (its SIP port then refuses) and its HTTP server closes. */
async function killNode(n: TestNode): Promise<void> {
  const uas = n.uas;
  n.uas = null;
  if (uas !== null) {
    process.kill(uas.pid, 'SIGKILL');
    await uas.exited;
    await uas.stop(100).catch(() => undefined);
  }
  const http = n.http;
  n.http = null;
  if (http !== null) {
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
}

/** The node's latest up/down transition in the balancer's log is `state` (a static node starts up without one). */
function nodeIs(lb: SiplbHandle, n: TestNode, state: 'down' | 'healthy'): boolean {
  const id = `127.0.0.1:${n.sipPort}`;
  const transitions = lb.jsonLogs().filter((l) => l.msg === 'node state' && l.node === id && /^(down|healthy)\b/.test(String(l.detail)));
  return String(transitions.at(-1)?.detail ?? '').startsWith(state);
}

async function waitNodeState(b: Bed, n: TestNode, detailPrefix: 'down' | 'healthy'): Promise<void> {
  for (const [i, lb] of b.lbs.entries()) {
    await eventually(`balancer ${i + 1} to log node ${n.label} ${detailPrefix}`, 5_000, () => nodeIs(lb, n, detailPrefix));
  }
}

/** One sipp call per user through balancer `lb` (index); the node that answered each user's call. */
async function callAs(b: Bed, who: readonly string[], lb: number): Promise<Placement> {
  const tag = `uac-${++b.runs}`;
  const inf = join(b.dir, `${tag}.csv`);
  const log = join(b.dir, `${tag}.log`);
  writeFileSync(inf, ['SEQUENTIAL', ...who.map((u) => `${u};`)].join('\n') + '\n');
  const r = await runSippUac({
    scenario: UAC_USER, transport: 'u1', localPort: b.uacPort, remote: `127.0.0.1:${b.lbSip[lb]}`,
    rate: 50, calls: who.length, timeoutS: 15, traceErrors: true,
    extraArgs: ['-inf', inf, '-trace_logs', '-log_file', log],
  });
  const context = (): string => `${describeResult(`UAC through balancer ${lb + 1}`, r)}\nbalancer ${lb + 1} log (tail):\n${b.lbs[lb].logs().slice(-20).join('\n')}`;
  assert.equal(r.stats.failed, 0, `failed calls\n${context()}`);
  assert.equal(r.stats.successful, who.length, `successful calls\n${context()}`);
  const got: Placement = new Map();
  let text = '';
  try {
    text = readFileSync(log, 'latin1');
  } catch {
    // Asserted just below: every user must have a logged call.
  }
  for (const line of text.split('\n')) {
    const m = /^call (\S+) (\d+)\s*$/.exec(line);
    if (m !== null) got.set(m[1], m[2]);
  }
  assert.deepEqual([...got.keys()].sort(), [...who].sort(), `one logged call per user (sipp -log_file)\n${text.slice(0, 2000)}\n${context()}`);
  return got;
}

/** One GET /app/session?appsession=<user> per user through balancer `lb`'s HTTP port; the node that answered. */
async function httpAs(b: Bed, who: readonly string[], lb: number): Promise<Placement> {
  const got: Placement = new Map();
  for (const u of who) {
    const url = `http://127.0.0.1:${b.lbHttp[lb]}/app/session?appsession=${encodeURIComponent(u)}`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      const body = await res.text();
      got.set(u, res.status === 200 ? body.trim() : `HTTP ${res.status} ${body.slice(0, 60).trim()}`);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      got.set(u, `no answer (${cause?.code ?? cause?.message ?? (err as Error).message})`);
    }
  }
  return got;
}

/**
 * Records, for each user, every side that does not name the same node as the first side. The
 * first side is the reference (the user's SIP node).
 */
function agree(b: Bed, phase: string, who: readonly string[], sides: ReadonlyArray<readonly [string, Placement]>): void {
  const [refLabel, ref] = sides[0];
  for (const u of who) {
    const want = ref.get(u);
    for (const [label, p] of sides.slice(1)) {
      const got = p.get(u);
      if (got !== want) b.disagreements.push(`${phase}: ${u}: ${refLabel} -> ${nodeName(b, want)}, ${label} -> ${nodeName(b, got)}`);
    }
  }
}

function byNode(b: Bed, p: Placement): string {
  return b.nodes.map((n) => `${n.label}=${[...p.values()].filter((v) => v === String(n.sipPort)).length}`).join(' ');
}

/** The node holding the most of these users (the one whose death moves the most). */
function busiest(b: Bed, p: Placement): TestNode {
  let best = b.nodes[0];
  let bestCount = -1;
  for (const n of b.nodes) {
    const c = [...p.values()].filter((v) => v === String(n.sipPort)).length;
    if (c > bestCount) {
      best = n;
      bestCount = c;
    }
  }
  return best;
}

function assertNoDisagreement(b: Bed): void {
  const served = b.nodes.map((n) => `${n.label}(${n.sipPort}) served ${n.served}`).join(', ');
  assert.equal(b.disagreements.length, 0,
    `${b.disagreements.length} time(s) a user's calls and requests were not all on one node (HTTP requests per node: ${served}):\n` +
    `${b.disagreements.slice(0, 120).join('\n')}\nbalancer 1 log (tail):\n${b.lbs[0]?.logs().slice(-15).join('\n') ?? ''}`);
}

interface BedOptions {
  balancers: 1 | 2;
  algorithm: 'user' | 'hash';
  redis?: RedisServer;
  /** Nodes (by index) left dead at start: configured in nodes=, but nothing listens yet. */
  startDown?: number[];
}

async function withBed(opts: BedOptions, body: (b: Bed) => Promise<void>): Promise<void> {
  const n = opts.balancers;
  const ports = await allocatePorts(3 * n + 1 + 6);
  const lbSip = ports.slice(0, n);
  const lbHttp = ports.slice(n, 2 * n);
  // Own heartbeat ports: the default (2610) is shared by every balancer on the machine.
  const lbHeartbeat = ports.slice(2 * n, 3 * n);
  const uacPort = ports[3 * n];
  const nodePorts = ports.slice(3 * n + 1);
  const nodes: TestNode[] = ['A', 'B', 'C'].map((label, i) => ({
    label, sipPort: nodePorts[2 * i], httpPort: nodePorts[2 * i + 1], uas: null, http: null, served: 0,
  }));
  const b: Bed = { dir: mkdtempSync(join(tmpdir(), 'siplb-converged-')), nodes, lbs: [], lbSip, lbHttp, uacPort, disagreements: [], runs: 0 };
  try {
    for (const [i, node] of nodes.entries()) if (!(opts.startDown ?? []).includes(i)) await startNode(node);
    const shared: Record<string, string> = opts.redis === undefined ? { stateStore: 'memory' } : {
      stateStore: 'redis', redisUrl: opts.redis.url, redisKeyPrefix: `converged-${process.pid}:`,
      // A read that outlasts the default 100 ms is decided without Redis by design; not under test.
      redisReadTimeout: '2000',
    };
    for (let i = 0; i < n; i++) {
      b.lbs.push(await startSiplb({
        host: '127.0.0.1', externalPort: String(lbSip[i]), httpPort: String(lbHttp[i]), heartbeatPort: String(lbHeartbeat[i]),
        nodes: nodes.map((x) => `127.0.0.1:${x.sipPort};http=${x.httpPort}`).join(','),
        algorithmClass: opts.algorithm, sipHeaderAffinityKey: 'From', httpAffinityKey: 'appsession',
        viaSecret: VIA_SECRET, ...HEALTH, ...shared,
      }, { logLevel: 'info' }));
    }
    for (const i of opts.startDown ?? []) await waitNodeState(b, nodes[i], 'down');
    await body(b);
  } finally {
    await Promise.allSettled(nodes.map((x) => killNode(x)));
    await Promise.allSettled(b.lbs.map((lb) => lb.stop()));
    rmSync(b.dir, { recursive: true, force: true });
    releasePorts(ports);
  }
}

/** After `dead` died: users of the survivors kept their node, users of the dead one moved off it. */
function checkMoves(b: Bed, phase: string, who: readonly string[], dead: TestNode, before: Placement, after: Placement): void {
  const deadName = String(dead.sipPort);
  for (const u of who) {
    const was = before.get(u);
    const now = after.get(u);
    if (was === deadName) assert.notEqual(now, deadName, `${phase}: ${u} still placed on the dead node ${nodeName(b, deadName)}`);
    else assert.equal(now, was, `${phase}: ${u} of surviving node ${nodeName(b, was)} moved to ${nodeName(b, now)}`);
  }
}

async function oneBalancer(algorithm: 'user' | 'hash'): Promise<void> {
  await withBed({ balancers: 1, algorithm }, async (b) => {
    const callers = users('u', 30);
    const httpFirst = users('h', 6);
    const all = [...callers, ...httpFirst];

    // HTTP first for some users, then one call per user, then HTTP for the callers.
    const httpBefore = await httpAs(b, httpFirst, 0);
    const sip = await callAs(b, all, 0);
    console.log(`${algorithm}, one balancer: calls per node ${byNode(b, sip)}`);
    assert.ok(b.nodes.every((n) => [...sip.values()].includes(String(n.sipPort))), `the users spread over all three nodes: ${byNode(b, sip)}`);
    const http = await httpAs(b, callers, 0);
    agree(b, 'all nodes up', callers, [['SIP', sip], ['HTTP', http]]);
    agree(b, 'all nodes up, HTTP before the call', httpFirst, [['SIP', sip], ['HTTP', httpBefore]]);

    // A node dies; every user calls again and sends a request again.
    const dead = busiest(b, sip);
    await killNode(dead);
    await waitNodeState(b, dead, 'down');
    const sip2 = await callAs(b, all, 0);
    checkMoves(b, `node ${dead.label} dead, SIP`, all, dead, sip, sip2);
    const http2 = await httpAs(b, all, 0);
    agree(b, `node ${dead.label} dead`, all, [['SIP', sip2], ['HTTP', http2]]);

    // The node comes back (joins again). The user-based algorithm keeps every placed user where it
    // is; the hash gives the returning node its keys back. Either way both sides follow.
    await startNode(dead);
    await waitNodeState(b, dead, 'healthy');
    const sip3 = await callAs(b, all, 0);
    if (algorithm === 'user') {
      for (const u of all) assert.equal(sip3.get(u), sip2.get(u), `node ${dead.label} back, SIP: ${u} moved from ${nodeName(b, sip2.get(u))} to ${nodeName(b, sip3.get(u))}`);
    } else {
      for (const u of all) assert.equal(sip3.get(u), sip.get(u), `node ${dead.label} back, SIP: ${u} on ${nodeName(b, sip3.get(u))}, hashed to ${nodeName(b, sip.get(u))} with all nodes up`);
    }
    const http3 = await httpAs(b, all, 0);
    agree(b, `node ${dead.label} back`, all, [['SIP', sip3], ['HTTP', http3]]);
    assertNoDisagreement(b);
  });
}

describe('converged SIP and HTTP: a user\'s calls and its appsession requests reach the same node', { concurrency: true }, () => {
  test('one balancer, algorithm user (sipHeaderAffinityKey=From): all nodes up, a node dies, it comes back', { timeout: 40_000 }, () => oneBalancer('user'));

  test('one balancer, algorithm hash (sipHeaderAffinityKey=From): all nodes up, a node dies, it comes back', { timeout: 40_000 }, () => oneBalancer('hash'));

  test('two balancers on one redis-server, algorithm user: SIP through one, HTTP through the other; then a node dies', { timeout: 40_000 }, async () => {
    const redis = await startRedis();
    try {
      await withBed({ balancers: 2, algorithm: 'user', redis }, async (b) => {
        const viaOne = users('a', 12);     // SIP through balancer 1, HTTP through balancer 2
        const viaTwo = users('b', 12);     // SIP through balancer 2, HTTP through balancer 1
        const httpFirst = users('h', 6);   // HTTP through balancer 2 first, then SIP through balancer 1
        const all = [...viaOne, ...viaTwo, ...httpFirst];

        const httpFirstAnswers = await httpAs(b, httpFirst, 1);
        const sip1 = await callAs(b, [...viaOne, ...httpFirst], 0);
        const sip2 = await callAs(b, viaTwo, 1);
        const sip = new Map([...sip1, ...sip2]);
        console.log(`user, two balancers: calls per node ${byNode(b, sip)}`);
        const httpLb1 = await httpAs(b, all, 0);
        const httpLb2 = await httpAs(b, all, 1);
        agree(b, 'all nodes up', all, [['SIP', sip], ['HTTP via balancer 1', httpLb1], ['HTTP via balancer 2', httpLb2]]);
        agree(b, 'all nodes up, HTTP via balancer 2 before the call via balancer 1', httpFirst, [['SIP', sip], ['HTTP', httpFirstAnswers]]);

        const dead = busiest(b, sip);
        await killNode(dead);
        await waitNodeState(b, dead, 'down');
        // Every user calls again through the balancer it called through before.
        const again = new Map([...await callAs(b, [...viaOne, ...httpFirst], 0), ...await callAs(b, viaTwo, 1)]);
        checkMoves(b, `node ${dead.label} dead, SIP`, all, dead, sip, again);
        const httpLb1After = await httpAs(b, all, 0);
        const httpLb2After = await httpAs(b, all, 1);
        agree(b, `node ${dead.label} dead`, all, [['SIP', again], ['HTTP via balancer 1', httpLb1After], ['HTTP via balancer 2', httpLb2After]]);
        assertNoDisagreement(b);
      });
    } finally {
      await redis.stop();
    }
  });

  test('two balancers on one redis-server, algorithm user: users placed through balancer 1, then a node joins; both balancers keep them there for SIP and HTTP', { timeout: 40_000 }, async () => {
    const redis = await startRedis();
    try {
      // Node C is configured on both balancers but down until the users have their nodes.
      await withBed({ balancers: 2, algorithm: 'user', redis, startDown: [2] }, async (b) => {
        const all = users('j', 30);
        const sip = await callAs(b, all, 0);
        console.log(`user, two balancers, before C joins: calls per node ${byNode(b, sip)}`);
        assert.ok(![...sip.values()].includes(String(b.nodes[2].sipPort)), 'no call reached the down node C');
        // Balancer 2 sees a third of the users before the join; the others it first sees after it,
        // when only the shared assignments (Redis) can tell it where balancer 1 put them.
        const seenEarly = all.slice(0, 10);
        const httpBefore = await httpAs(b, seenEarly, 1);
        agree(b, 'C down', seenEarly, [['SIP via balancer 1', sip], ['HTTP via balancer 2', httpBefore]]);

        const [, , joiner] = b.nodes;
        await startNode(joiner);
        await waitNodeState(b, joiner, 'healthy');
        // A user's assignment outlives a node joining (the point of the user-based algorithm): every
        // later call and request of a placed user, through either balancer, stays on its node.
        const httpLb2 = await httpAs(b, all, 1);
        const httpLb1 = await httpAs(b, all, 0);
        const sipLb2 = await callAs(b, all, 1);
        const sipLb1 = await callAs(b, all, 0);
        agree(b, 'C joined', all, [['first SIP via balancer 1', sip], ['HTTP via balancer 2', httpLb2], ['HTTP via balancer 1', httpLb1],
          ['SIP via balancer 2', sipLb2], ['SIP via balancer 1', sipLb1]]);
        assertNoDisagreement(b);
      });
    } finally {
      await redis.stop();
    }
  });
});
