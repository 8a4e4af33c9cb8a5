// HeartbeatAgent and the siplb-node command against a real HTTP server in this file that speaks
// the heartbeat protocol (docs/heartbeat-protocol.md) and can be told to forget sessions, to
// answer 500, to stop answering, or to answer slowly. Timings are scaled down (interval 100 ms);
// the cases about when requests go out run the agent's timers on mocked time (node:test mock
// timers) over the real HTTP exchange, so what they check is exact instead of measured.

import { afterEach, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { ConfigError } from '../../src/core/errors.ts';
import { HeartbeatAgent, parseBalancers } from '../../src/node-agent/agent.ts';
import type { BalancerState, HeartbeatAgentOptions, StateChange } from '../../src/node-agent/agent.ts';
import { LineBuffer, terminate } from '../e2e/harness/children.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { startSiplb } from '../e2e/harness/siplb.ts';
import { runRepoScript, type RepoScript } from '../e2e/harness/repo-script.ts';
import { eventually, sleep } from '../helpers/wait.ts';

const INTERVAL = 100;
const silent = pino({ level: 'silent' });

type Mode = 'normal' | 'error500' | 'silent';

interface Recorded {
  at: number;
  kind: string;
  value: Record<string, unknown>;
  /** What the server answered: 'OK', 'UNKNOWN_SESSION', 'HTTP 500', 'none' (silent) or 'HTTP 400'. */
  answer: string;
}

/** A balancer's heartbeat endpoint as the protocol document describes it, instrumented. */
class FakeBalancer {
  readonly requests: Recorded[] = [];
  readonly sessions = new Set<string>();
  mode: Mode = 'normal';
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  private readonly server: http.Server;

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  kinds(from = 0): string[] {
    return this.requests.slice(from).map((r) => r.kind);
  }

  /** What a balancer restart or a node timeout does: every session is gone. */
  forget(): void {
    this.sessions.clear();
  }

  /** Closes every connection without an answer: a request held by 'silent' ends in a socket error. */
  hangUp(): void {
    this.server.closeAllConnections();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let open = true;
    res.on('close', () => {
      if (open) this.inFlight--;
      open = false;
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const send = (status: number, body: Record<string, unknown>): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST') return send(405, { error: 'POST only' });
      if (req.url !== '/') return send(404, { error: 'not found' });
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(400, { error: 'not JSON' });
      }
      const keys = typeof parsed === 'object' && parsed !== null ? Object.keys(parsed) : [];
      const kind = keys[0];
      const value = keys.length === 1 ? (parsed as Record<string, unknown>)[kind] : undefined;
      if (keys.length !== 1 || !['start', 'heartbeat', 'shutdown', 'stop'].includes(kind) || typeof value !== 'object' || value === null) {
        this.requests.push({ at, kind: String(kind), value: {}, answer: 'HTTP 400' });
        return send(400, { error: 'not exactly one known key with an object' });
      }
      const v = value as Record<string, unknown>;
      const record: Recorded = { at, kind, value: v, answer: 'none' };
      this.requests.push(record);
      if (typeof v.sessionId !== 'string' || v.sessionId.length === 0) {
        record.answer = 'HTTP 400';
        return send(400, { error: 'missing sessionId' });
      }
      if (this.mode === 'silent') return; // held until the client gives up or the server closes
      if (this.mode === 'error500') {
        record.answer = 'HTTP 500';
        return send(500, { error: 'told to fail' });
      }
      const answer = (): void => {
        if (res.destroyed) return;
        const sid = v.sessionId as string;
        if (kind === 'start') {
          const portOk = (p: unknown): boolean => p === undefined || (Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535);
          if (typeof v.ip !== 'string' || !(Number(v.udpPort ?? 0) > 0 || Number(v.tcpPort ?? 0) > 0) || !portOk(v.udpPort) || !portOk(v.tcpPort)) {
            record.answer = 'HTTP 400';
            return send(400, { error: 'bad node' });
          }
          this.sessions.add(sid);
          record.answer = 'OK';
          return send(200, { start: 'OK' });
        }
        const known = this.sessions.has(sid);
        if (kind === 'stop' && known) this.sessions.delete(sid);
        record.answer = known ? 'OK' : 'UNKNOWN_SESSION';
        if (kind === 'heartbeat' && !known) return send(200, { heartbeat: 'UNKNOWN_SESSION', send: 'start' });
        send(200, { [kind]: record.answer });
      };
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
  }
}

/** Polls (real time, also under mocked timers) until the condition holds; fails after timeoutMs. */
function waitFor(what: string, condition: () => boolean, timeoutMs = 3000): Promise<void> {
  return eventually(what, timeoutMs, condition, 5);
}

/**
 * The agent's timers (interval, request timeout, grace period) and Date on mocked time from here
 * on; the HTTP exchange stays real. A test moves time with t.mock.timers.tick() and reads the
 * agent's counters: a request is counted as it is sent, inside the tick, so "at the interval, not
 * before" and "nothing more is sent" are facts rather than time windows.
 */
function mockAgentTimers(t: TestContext): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
}

/** Answers (OK, UNKNOWN_SESSION or miss) the agent has recorded from its `i`-th balancer. */
function answered(agent: HeartbeatAgent, i = 0): number {
  const c = agent.status()[i].counters;
  return c.ok + c.unknownSession + c.missed;
}

/** Requests the agent has sent to its `i`-th balancer, of one kind or all. */
function sent(agent: HeartbeatAgent, kind?: 'start' | 'heartbeat' | 'shutdown' | 'stop', i = 0): number {
  const s = agent.status()[i].counters.sent;
  return kind === undefined ? s.start + s.heartbeat + s.shutdown + s.stop : s[kind];
}

/** Waits (real time) until the agent has recorded `n` answers in all from its first balancer. */
function answers(agent: HeartbeatAgent, n: number): Promise<void> {
  return waitFor(`${n} answers recorded (have ${answered(agent)})`, () => answered(agent) >= n);
}

/** Awaits `p`, failing after `ms` of real time: used where mocked time stands still. */
async function settles(what: string, p: Promise<unknown>, ms = 5000): Promise<void> {
  const done = await Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
  assert.ok(done, `${what} did not settle within ${ms} ms`);
}

/** Runs what is queued (microtasks, immediates) so that its effects can be read. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fakeBalancer(): Promise<FakeBalancer> {
  const fake = new FakeBalancer();
  await fake.listen();
  cleanups.push(() => fake.close());
  return fake;
}

function makeAgent(balancers: string, extra: Partial<HeartbeatAgentOptions> = {}): { agent: HeartbeatAgent; states: StateChange[] } {
  const agent = new HeartbeatAgent({
    balancers,
    node: { ip: '127.0.0.1', udpPort: 5080, tcpPort: 5080, version: '7', jvmRoute: 'node-a', hostName: 'demo-a' },
    intervalMs: INTERVAL,
    requestTimeoutMs: 150,
    shutdownGraceMs: 400,
    logger: silent,
    ...extra,
  });
  const states: StateChange[] = [];
  agent.on('state', (s) => states.push(s));
  cleanups.push(() => agent.stop());
  return { agent, states };
}

function stateOf(agent: HeartbeatAgent, balancer: string): BalancerState | undefined {
  return agent.status().find((s) => s.balancer === balancer)?.state;
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]);
}

describe('HeartbeatAgent', () => {
  test('registers with start, then sends heartbeats with the same session at the interval', async (t) => {
    mockAgentTimers(t);
    const fake = await fakeBalancer();
    const { agent, states } = makeAgent(fake.address);
    agent.start();
    assert.equal(sent(agent, 'start'), 1, 'start at once');
    await answers(agent, 1);
    for (let beat = 1; beat <= 6; beat++) {
      t.mock.timers.tick(INTERVAL - 1);
      await settle();
      assert.equal(sent(agent, 'heartbeat'), beat - 1, `heartbeat ${beat} not before the interval`);
      t.mock.timers.tick(1);
      assert.equal(sent(agent, 'heartbeat'), beat, `heartbeat ${beat} one interval after the previous request`);
      await answers(agent, beat + 1);
    }
    await agent.stop();

    const [start, ...rest] = fake.requests;
    assert.equal(start.kind, 'start');
    assert.match(String(agent.sessionId), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(start.value, {
      ip: '127.0.0.1', hostName: 'demo-a', udpPort: 5080, tcpPort: 5080, version: '7', jvmRoute: 'node-a', sessionId: agent.sessionId,
    });
    const beats = rest.filter((r) => r.kind === 'heartbeat');
    assert.equal(beats.length, 6);
    for (const b of beats) assert.deepEqual(b.value, { sessionId: agent.sessionId });
    assert.deepEqual(beats.map((b) => b.at), [1, 2, 3, 4, 5, 6].map((n) => n * INTERVAL), 'arrived at the mocked times they were sent');
    assert.equal(fake.requests.at(-1)?.kind, 'stop');
    assert.deepEqual(fake.requests.at(-1)?.value, { sessionId: agent.sessionId });
    assert.equal(fake.sessions.size, 0, 'stop removed the session');
    assert.deepEqual(states.map((s) => s.state), ['registered']);
    assert.equal(agent.phase, 'stopped');
  });

  test('answers UNKNOWN_SESSION with a new start of the same session at once, then heartbeats again', async (t) => {
    mockAgentTimers(t);
    const fake = await fakeBalancer();
    const interval = 300;
    const { agent, states } = makeAgent(fake.address, { intervalMs: interval });
    agent.start();
    await answers(agent, 1);
    for (let n = 2; n <= 3; n++) {
      t.mock.timers.tick(interval);
      await answers(agent, n);
    }
    fake.forget();
    const mark = fake.requests.length;
    t.mock.timers.tick(interval);
    await answers(agent, 4);
    // No time passes: the new start goes out at once, not an interval later.
    t.mock.timers.tick(0);
    assert.equal(sent(agent, 'start'), 2, 'start sent again without waiting for the interval');
    await answers(agent, 5);
    for (let n = 6; n <= 7; n++) {
      t.mock.timers.tick(interval);
      await answers(agent, n);
    }

    const after = fake.requests.slice(mark);
    assert.deepEqual(after.map((r) => `${r.kind}:${r.answer}`), ['heartbeat:UNKNOWN_SESSION', 'start:OK', 'heartbeat:OK', 'heartbeat:OK']);
    assert.equal(after[1].value.sessionId, agent.sessionId, 'same session, not a new one');
    assert.equal(after[1].at, after[0].at, 'the start followed the refused heartbeat with no time passing');
    assert.deepEqual(states.map((s) => s.state), ['registered', 'starting', 'registered']);
    assert.equal(agent.status()[0].counters.registrations, 2);
    assert.equal(agent.status()[0].counters.unknownSession, 1);
  });

  for (const mode of ['error500', 'silent'] as const) {
    test(`after 3 unanswered heartbeats (${mode === 'silent' ? 'timeouts' : 'HTTP 500'}) the balancer is lost and gets start until it answers`, async () => {
      const fake = await fakeBalancer();
      const { agent, states } = makeAgent(fake.address);
      agent.start();
      await waitFor('registered', () => stateOf(agent, fake.address) === 'registered');
      fake.mode = mode;
      const mark = fake.requests.length;
      await waitFor('three start attempts', () => fake.kinds(mark).filter((k) => k === 'start').length >= 3);

      const kinds = fake.kinds(mark);
      const firstStart = kinds.indexOf('start');
      assert.deepEqual(kinds.slice(0, firstStart), ['heartbeat', 'heartbeat', 'heartbeat'], `requests after the failure began: ${kinds.join(',')}`);
      assert.deepEqual(new Set(kinds.slice(firstStart)), new Set(['start']), 'only start while lost');
      assert.equal(stateOf(agent, fake.address), 'lost');
      const lost = states.find((s) => s.state === 'lost');
      assert.ok(lost !== undefined);
      assert.match(lost.reason, mode === 'silent' ? /3 requests unanswered.*no answer within 150 ms/ : /3 requests unanswered.*HTTP 500: told to fail/);

      fake.mode = 'normal';
      const healed = fake.requests.length;
      await waitFor('heartbeats after the new start', () => fake.kinds(healed).filter((k) => k === 'heartbeat').length >= 2, 4000);
      const after = fake.requests.slice(healed);
      // A silent server may still get one timed-out start before it answers again.
      const ok = after.findIndex((r) => r.kind === 'start' && r.answer === 'OK');
      assert.ok(ok !== -1 && after.slice(ok + 1).every((r) => r.kind === 'heartbeat'), after.map((r) => `${r.kind}:${r.answer}`).join(','));
      assert.equal(after[ok].value.sessionId, agent.sessionId);
      assert.equal(stateOf(agent, fake.address), 'registered');
      assert.deepEqual(states.map((s) => s.state), ['registered', 'lost', 'registered']);
    });
  }

  test('a balancer that refuses connections is lost after 3 starts; stop still settles', async (t) => {
    mockAgentTimers(t);
    const probe = await fakeBalancer();
    const port = probe.port;
    await probe.close();
    const { agent, states } = makeAgent(`127.0.0.1:${port}`);
    agent.start();
    await answers(agent, 1);
    for (let n = 2; n <= 3; n++) {
      t.mock.timers.tick(INTERVAL);
      await answers(agent, n);
    }
    assert.equal(stateOf(agent, `127.0.0.1:${port}`), 'lost');
    const status = agent.status()[0];
    assert.equal(status.counters.sent.start, 3);
    assert.equal(status.counters.sent.heartbeat, 0);
    assert.equal(status.counters.missed, 3);
    assert.match(states[0].reason, /ECONNREFUSED/);
    // Time stands still: stop() settles only if it waits on no timer (interval, request timeout).
    await settles('stop()', agent.stop());
    assert.equal(agent.status()[0].counters.sent.stop, 1);
  });

  test('shutdown drains (shutdown, heartbeats) and sends stop after the grace period', async (t) => {
    mockAgentTimers(t);
    const fake = await fakeBalancer();
    const grace = 400;
    const { agent } = makeAgent(fake.address, { shutdownGraceMs: grace });
    const phases: string[] = [];
    agent.on('phase', (p) => phases.push(p));
    agent.start();
    await answers(agent, 1);
    assert.equal(stateOf(agent, fake.address), 'registered');
    const mark = fake.requests.length;
    const t0 = Date.now();
    const done = agent.shutdown();
    assert.equal(agent.shutdown(), done, 'idempotent');
    await answers(agent, 2);
    // Heartbeats while draining, every interval, until the grace period is over.
    for (let n = 3; n < 2 + grace / INTERVAL; n++) {
      t.mock.timers.tick(INTERVAL);
      await answers(agent, n);
    }
    t.mock.timers.tick(grace - (Date.now() - t0) - 1);
    await settle();
    assert.equal(sent(agent, 'stop'), 0, 'no stop before the grace period is over');
    t.mock.timers.tick(1);
    await settles('shutdown()', done);
    assert.equal(Date.now() - t0, grace, 'shutdown() took the grace period');

    const after = fake.requests.slice(mark);
    const kinds = after.map((r) => r.kind);
    assert.equal(kinds[0], 'shutdown', kinds.join(','));
    assert.equal(after[0].answer, 'OK');
    assert.equal(kinds.at(-1), 'stop');
    const drainBeats = kinds.slice(1, -1);
    assert.ok(drainBeats.length >= grace / INTERVAL - 1 && drainBeats.every((k) => k === 'heartbeat'), `heartbeats keep the draining node alive: ${kinds.join(',')}`);
    assert.equal(after.at(-1)!.at - t0, grace, 'stop at the end of the grace period');
    assert.deepEqual(phases, ['running', 'draining', 'stopping', 'stopped']);

    const count = sent(agent);
    await agent.stop();
    await agent.shutdown();
    // Any timer left running would fire inside this tick and count what it sends.
    t.mock.timers.tick(10 * INTERVAL);
    await settle();
    assert.equal(sent(agent), count, 'nothing is sent after stop');
  });

  test('stop() during the grace period sends stop at once and ends shutdown()', async (t) => {
    mockAgentTimers(t);
    const fake = await fakeBalancer();
    const { agent } = makeAgent(fake.address, { shutdownGraceMs: 60_000 });
    agent.start();
    await answers(agent, 1);
    const done = agent.shutdown();
    await answers(agent, 2);
    assert.equal(fake.kinds().at(-1), 'shutdown');
    // Time stands still, so the grace period cannot run out: only stop() can end shutdown().
    await settles('stop()', agent.stop());
    await settles('shutdown()', done);
    assert.equal(fake.kinds().at(-1), 'stop');
    assert.equal(fake.sessions.size, 0);
  });

  test('two balancers are handled independently', async () => {
    const good = await fakeBalancer();
    const bad = await fakeBalancer();
    bad.mode = 'silent';
    // A request timeout far longer than the test: the silent balancer holds its first start all along.
    const { agent } = makeAgent(`${good.address};${bad.address}`, { requestTimeoutMs: 30_000 });
    agent.start();
    await waitFor('a start held by the silent balancer', () => bad.inFlight === 1);
    await waitFor('6 heartbeats to the answering balancer', () => good.kinds().filter((k) => k === 'heartbeat').length >= 6);
    // ... all sent while the silent balancer's start was unanswered: the links do not wait for each other.
    assert.equal(stateOf(agent, good.address), 'registered');
    assert.notEqual(stateOf(agent, bad.address), 'registered');
    assert.deepEqual(bad.kinds(), ['start'], 'one request at a time to the silent balancer');
    assert.equal(bad.inFlight, 1, 'the start is still held');

    bad.mode = 'normal';
    bad.hangUp();
    await waitFor('second balancer registered', () => stateOf(agent, bad.address) === 'registered', 3000);
    assert.equal(bad.maxInFlight, 1);
    assert.equal(good.requests.filter((r) => r.kind === 'start').length, 1, 'the first balancer never re-registered');
    assert.equal(good.requests[0].value.sessionId, bad.requests.at(-1)!.value.sessionId, 'one session for all balancers');
    await agent.stop();
    assert.equal(good.kinds().at(-1), 'stop');
    assert.equal(bad.kinds().at(-1), 'stop');
  });

  test('never more than one request in flight to a balancer, even when it answers slower than the interval', async () => {
    const fake = await fakeBalancer();
    fake.delayMs = 250;
    const { agent } = makeAgent(fake.address, { requestTimeoutMs: 1000, shutdownGraceMs: 300 });
    agent.start();
    await waitFor('four requests', () => fake.requests.length >= 4);
    // shutdown() and stop() while a request is in flight must queue behind it.
    await waitFor('a request in flight', () => fake.inFlight === 1);
    await agent.shutdown();
    assert.equal(fake.maxInFlight, 1);
    const times = fake.requests.map((r) => r.at);
    for (const gap of gaps(times)) assert.ok(gap >= 250 - 10, `requests ${gap} ms apart while each takes 250 ms`);
    assert.equal(fake.kinds().at(-1), 'stop');
    assert.ok(fake.kinds().includes('shutdown'));
  });

  test('a throwing listener does not stop the heartbeats; start() is a no-op the second time', async () => {
    const fake = await fakeBalancer();
    const { agent } = makeAgent(fake.address);
    agent.on('answer', () => {
      throw new Error('listener bug');
    });
    agent.start();
    const session = agent.sessionId;
    agent.start();
    assert.equal(agent.sessionId, session);
    await waitFor('heartbeats', () => fake.kinds().filter((k) => k === 'heartbeat').length >= 3);
    assert.equal(fake.kinds().filter((k) => k === 'start').length, 1);
  });

  test('stop() and shutdown() before start() send nothing', async (t) => {
    mockAgentTimers(t);
    const fake = await fakeBalancer();
    const { agent } = makeAgent(fake.address);
    await agent.shutdown();
    await agent.stop();
    agent.start();
    // Any request start() scheduled would be sent (and counted) inside this tick.
    t.mock.timers.tick(10 * INTERVAL);
    await settle();
    assert.equal(sent(agent), 0);
    assert.equal(fake.requests.length, 0);
    assert.equal(agent.phase, 'stopped');
  });
});

describe('HeartbeatAgent with a real siplb', () => {
  test('registers; after siplb restarts it registers again with the same session; stop removes it', async () => {
    const [sipPort, hbPort] = await allocatePorts(2);
    cleanups.push(async () => releasePorts([sipPort, hbPort]));
    const props = { host: '127.0.0.1', externalPort: String(sipPort), heartbeatPort: String(hbPort) };
    let siplb = await startSiplb(props, { logLevel: 'warn' });
    cleanups.push(() => siplb.stop());
    const { agent, states } = makeAgent(`127.0.0.1:${hbPort}`, { intervalMs: 200, requestTimeoutMs: 500 });
    agent.start();
    await waitFor('registered', () => stateOf(agent, `127.0.0.1:${hbPort}`) === 'registered', 5000);

    await siplb.stop();
    siplb = await startSiplb(props, { logLevel: 'warn' });
    await waitFor('registered again', () => agent.status()[0].counters.registrations === 2, 10_000);
    assert.equal(stateOf(agent, `127.0.0.1:${hbPort}`), 'registered');
    // Depending on how long the restart took: forgotten (UNKNOWN_SESSION) or lost (3 misses).
    assert.ok(['starting', 'lost'].includes(states[1].state), JSON.stringify(states));
    assert.equal(states.at(-1)?.state, 'registered');

    const answers: string[] = [];
    agent.on('answer', (e) => answers.push(`${e.request}:${e.outcome}`));
    await agent.stop();
    // A heartbeat in flight when stop() was called may be answered first.
    assert.deepEqual(answers.filter((x) => !x.startsWith('heartbeat:')), ['stop:ok']);
  });
});

describe('agent options', () => {
  test('parseBalancers: default port 2610, IPv6 in brackets, ; separated', () => {
    assert.deepEqual(parseBalancers('127.0.0.1;10.0.0.2:2611; [::1]:2612'), [
      { host: '127.0.0.1', port: 2610 }, { host: '10.0.0.2', port: 2611 }, { host: '::1', port: 2612 },
    ]);
  });

  for (const bad of ['', ' ; ', '127.0.0.1:0', '127.0.0.1:70000', 'a b:1', '[::1', '127.0.0.1:2610;127.0.0.1']) {
    test(`parseBalancers refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseBalancers(bad), (err: unknown) => err instanceof ConfigError && err.key === 'balancers' && err.value === bad);
    });
  }

  test('the node needs an IP literal and a UDP or TCP port; timings must be positive', () => {
    const base = { balancers: '127.0.0.1', logger: silent };
    assert.throws(() => new HeartbeatAgent({ ...base, node: { ip: 'node.example', udpPort: 5080 } }), (e: unknown) => e instanceof ConfigError && e.key === 'ip');
    assert.throws(() => new HeartbeatAgent({ ...base, node: { ip: '127.0.0.1', httpPort: 8080 } }), (e: unknown) => e instanceof ConfigError && e.key === 'udpPort');
    assert.throws(() => new HeartbeatAgent({ ...base, node: { ip: '127.0.0.1', udpPort: 70000 } }), (e: unknown) => e instanceof ConfigError && e.key === 'udpPort');
    assert.throws(() => new HeartbeatAgent({ ...base, node: { ip: '127.0.0.1', tcpPort: 5080 }, intervalMs: 0 }), (e: unknown) => e instanceof ConfigError && e.key === 'intervalMs');
    assert.doesNotThrow(() => new HeartbeatAgent({ ...base, node: { ip: '::1', tcpPort: 5080 }, shutdownGraceMs: 0 }));
  });
});

describe('siplb-node command', () => {
  function run(args: string[]): RepoScript {
    const script = runRepoScript('src/cli/siplb-node.ts', args);
    cleanups.push(() => terminate(script.child, 'SIGKILL', 1000));
    return script;
  }

  function messages(lines: LineBuffer): string[] {
    return lines.snapshot().flatMap((l) => {
      try {
        return [String((JSON.parse(l) as { msg?: unknown }).msg)];
      } catch {
        return [];
      }
    });
  }

  test('registers, drains on SIGTERM, sends stop after --grace and exits 0', async () => {
    const fake = await fakeBalancer();
    const { child, lines, closed } = run(['--balancers', fake.address, '--ip', '127.0.0.1', '--udp-port', '5080', '--http-port', '8080',
      '--version', '3', '--interval', '100', '--grace', '300', '--log-level', 'warn']);
    await waitFor('heartbeats', () => fake.kinds().filter((k) => k === 'heartbeat').length >= 2, 10_000);
    assert.deepEqual(Object.keys(fake.requests[0].value).sort(), ['httpPort', 'ip', 'sessionId', 'udpPort', 'version']);
    assert.equal(fake.requests[0].value.version, '3');
    const mark = fake.requests.length;
    const t0 = Date.now();
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    const kinds = fake.kinds(mark);
    assert.ok(kinds.includes('shutdown'), kinds.join(','));
    assert.equal(kinds.at(-1), 'stop');
    assert.ok(fake.requests.at(-1)!.at - t0 >= 290, 'stop came after the grace period');
    await closed;
    assert.deepEqual(messages(lines), ['siplb-node ready', 'siplb-node draining', 'siplb-node stopped']);
  });

  test('a second signal sends stop at once', async () => {
    const fake = await fakeBalancer();
    const { child } = run(['--balancers', fake.address, '--ip', '127.0.0.1', '--tcp-port', '5080', '--interval', '100', '--grace', '60000']);
    await waitFor('registered', () => fake.requests.some((r) => r.kind === 'start' && r.answer === 'OK'), 10_000);
    child.process.kill('SIGINT');
    await waitFor('shutdown', () => fake.kinds().includes('shutdown'));
    const t0 = Date.now();
    child.process.kill('SIGINT');
    const exit = await child.exited;
    assert.equal(exit.code, 0);
    // The grace period is 60 s: exiting well inside it means the second signal cut it short (one
    // stop request on loopback; 10 s leaves a loaded machine room).
    assert.ok(Date.now() - t0 < 10_000, `exited ${Date.now() - t0} ms after the second signal`);
    assert.equal(fake.kinds().at(-1), 'stop');
    assert.equal(fake.sessions.size, 0);
  });

  const BAD: Array<{ args: string[]; mention: string }> = [
    { args: ['--ip', '127.0.0.1', '--udp-port', '5080'], mention: '--balancers' },
    { args: ['--balancers', '127.0.0.1', '--udp-port', '5080'], mention: '--ip' },
    { args: ['--balancers', '127.0.0.1', '--ip', '127.0.0.1'], mention: '--udp-port or --tcp-port' },
    { args: ['--balancers', '127.0.0.1', '--ip', 'localhost', '--udp-port', '5080'], mention: '--ip "localhost"' },
    { args: ['--balancers', '127.0.0.1', '--ip', '127.0.0.1', '--udp-port', '0'], mention: '--udp-port "0"' },
    { args: ['--balancers', '127.0.0.1:x', '--ip', '127.0.0.1', '--udp-port', '5080'], mention: '--balancers "127.0.0.1:x"' },
    { args: ['--balancers', '127.0.0.1', '--ip', '127.0.0.1', '--udp-port', '5080', '--interval', 'fast'], mention: '--interval "fast"' },
    { args: ['--balancers', '127.0.0.1', '--ip', '127.0.0.1', '--udp-port', '5080', '--log-level', 'loud'], mention: '--log-level "loud"' },
    { args: ['--balancers', '127.0.0.1', '--ip', '127.0.0.1', '--udp-port', '5080', '--frobnicate'], mention: '--frobnicate' },
    { args: ['--balancers', '127.0.0.1', '--ip', '127.0.0.1', '--udp-port', '5080', 'extra'], mention: 'extra' },
  ];
  for (const c of BAD) {
    test(`bad command line: ${c.args.join(' ')} -> one stderr line, exit 2`, async () => {
      const { child, lines, closed } = run(c.args);
      const exit = await child.exited;
      await closed;
      assert.equal(exit.code, 2);
      const out = lines.snapshot().filter((l) => l.trim() !== '');
      assert.equal(out.length, 1, out.join('\n'));
      assert.ok(out[0].startsWith('siplb-node: '), out[0]);
      assert.ok(out[0].includes(c.mention), `${out[0]} mentions ${c.mention}`);
    });
  }

  test('--help prints the usage and exits 0', async () => {
    const { child, lines, closed } = run(['--help']);
    assert.equal((await child.exited).code, 0);
    await closed;
    assert.match(lines.snapshot().join('\n'), /^usage: siplb-node --balancers/);
  });
});
