// Active health checks against fake SIP nodes on real loopback sockets: a UDP fake and a TCP
// fake that answer OPTIONS with a chosen status (or stay silent), and a closed TCP port. Most
// tests drive rounds by hand (`round()`, with an interval long enough that the checker's own timer
// never fires, and a 150 ms timeout) and wait until each round's probes have settled, so failure
// and success counts are exact; two tests let the timer run (intervalMs 200, timeoutMs 300), one
// on real time and one on mocked time (node:test mock timers).

import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { pino } from 'pino';
import { ActiveHealthCheck, type ActiveHealthOptions } from '../../src/cluster/active-health.ts';
import { PassiveHealth, type PassiveHealthOptions } from '../../src/cluster/passive-health.ts';
import { NodeRegistry, type NodeEntry } from '../../src/cluster/node-registry.ts';
import { nodeId } from '../../src/cluster/node.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';
import { parseVia } from '../../src/sip/via.ts';
import { eventually } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
/** Long enough that the checker's timer never fires during a test: rounds are driven by hand. */
const MANUAL = 60_000;

/** Bounded wait on real time (also while a test mocks the checker's timers). */
function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  return eventually(what, ms, check, 5);
}

/** What a fake answers to the `attempt`-th copy (1-based, per Call-ID) of a probe; null = silence. */
type Policy = (req: SipMessage, attempt: number) => number | null;

function answer(req: SipMessage, status: number): Buffer {
  const lines = [`SIP/2.0 ${status} Fake`];
  for (const v of req.getAll('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.get('from')}`, `To: ${req.get('to')};tag=fake`, `Call-ID: ${req.callId}`, `CSeq: ${req.get('cseq')}`, 'Content-Length: 0', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

interface Received {
  raw: Buffer;
  msg: SipMessage;
  /** Where it came from (UDP: the datagram's source; TCP: the connection's remote end). */
  fromPort: number;
}

class UdpFake {
  readonly socket = dgram.createSocket('udp4');
  readonly received: Received[] = [];
  policy: Policy = () => 200;
  private readonly attempts = new Map<string, number>();
  port = 0;

  async start(): Promise<this> {
    this.socket.on('message', (data, rinfo) => {
      const msg = parseSipMessage(data, true);
      if (isParseFailure(msg)) return;
      this.received.push({ raw: data, msg, fromPort: rinfo.port });
      const attempt = (this.attempts.get(msg.callId) ?? 0) + 1;
      this.attempts.set(msg.callId, attempt);
      const status = this.policy(msg, attempt);
      if (status !== null) this.socket.send(answer(msg, status), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()));
    this.port = this.socket.address().port;
    return this;
  }

  close(): void {
    this.socket.close();
  }
}

class TcpFake {
  readonly server: net.Server;
  readonly received: Received[] = [];
  policy: Policy = () => 200;
  /** With a null answer: close the connection at once instead of staying silent. */
  closeWhenSilent = false;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor() {
    this.server = net.createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        let end: number;
        while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
          const raw = buf.subarray(0, end + 4); // probes carry no body
          buf = buf.subarray(end + 4);
          const msg = parseSipMessage(raw, false);
          if (isParseFailure(msg)) continue;
          this.received.push({ raw, msg, fromPort: s.remotePort ?? 0 });
          const status = this.policy(msg, 1);
          if (status !== null) s.write(answer(msg, status));
          else if (this.closeWhenSilent) s.destroy();
        }
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A UDP port on 127.0.0.1 that nothing listens on (datagrams to it draw ICMP port unreachable). */
async function closedUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A ActiveHealthCheck that counts probes whose result has been recorded (test observation only). */
class ObservedChecker extends ActiveHealthCheck {
  settled = 0;

  override probe(e: NodeEntry): ReturnType<ActiveHealthCheck['probe']> {
    const p = super.probe(e);
    // round() records the result in a `then` registered after this one; setImmediate runs after
    // that microtask, so `settled` moves only once the result has been recorded.
    p.then(() => setImmediate(() => { this.settled++; }), () => undefined);
    return p;
  }
}

/** One round, waiting until every probe it started has been recorded. Returns probes started. */
async function runRound(c: ObservedChecker, ms = 3000): Promise<number> {
  const sent = c.probesSent;
  const settled = c.settled;
  c.round();
  const started = c.probesSent - sent;
  await until(() => c.settled >= settled + started, 'the round to settle', ms);
  return started;
}

interface World {
  registry: NodeRegistry;
  passiveHealth: PassiveHealth;
  checker: ObservedChecker;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function world(ports: { udp?: number; tcp?: number }, opts: Partial<ActiveHealthOptions> = {}, observerMaxErrors = 3,
  passiveOpts: Partial<PassiveHealthOptions> = {}): Promise<World & { id: string }> {
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
  const id = nodeId('127.0.0.1', (ports.udp ?? ports.tcp) as number);
  registry.addStatic([{ id, ip: '127.0.0.1', ports, weight: 1 }]);
  const passiveHealth = new PassiveHealth(registry, { errorStatuses: [503], maxErrors: observerMaxErrors, windowMs: 10_000, ...passiveOpts });
  const checker = new ObservedChecker(registry, passiveHealth, {
    intervalMs: MANUAL, timeoutMs: 150, failures: 1, successes: 1, bindHost: '127.0.0.1', log, ...opts,
  });
  await checker.start();
  cleanups.push(() => checker.close());
  return { registry, passiveHealth, checker, id };
}

/**
 * Answers the first probe 200, then follows `then`: silence from a node that never answered an
 * OPTIONS proves nothing, so tests of silence first let the node show that it answers.
 */
function answeredOnce(then: Policy): Policy {
  let first: string | null = null;
  return (req, attempt) => {
    first ??= req.callId;
    return req.callId === first ? 200 : then(req, attempt);
  };
}

async function udpFake(policy: Policy): Promise<UdpFake> {
  const f = await new UdpFake().start();
  f.policy = policy;
  cleanups.push(() => f.close());
  return f;
}

async function tcpFake(policy: Policy, closeWhenSilent = false): Promise<TcpFake> {
  const f = await new TcpFake().start();
  f.policy = policy;
  f.closeWhenSilent = closeWhenSilent;
  cleanups.push(() => f.close());
  return f;
}

describe('probe answers (failures = 1)', () => {
  const cases: { transport: 'udp' | 'tcp'; status: number; state: 'active' | 'down' }[] = [];
  for (const transport of ['udp', 'tcp'] as const) {
    for (const [status, state] of [[200, 'active'], [404, 'active'], [486, 'active'], [503, 'down'], [500, 'down'], [603, 'down']] as const) {
      cases.push({ transport, status, state });
    }
  }
  for (const c of cases) {
    test(`${c.transport.toUpperCase()} node answering ${c.status} -> ${c.state}`, async () => {
      const fake = c.transport === 'udp' ? await udpFake(() => c.status) : await tcpFake(() => c.status);
      const w = await world({ [c.transport]: fake.port });
      assert.equal(await runRound(w.checker), 1);
      assert.equal(fake.received.length, 1);
      assert.equal(w.registry.snapshot().stateOf(w.id), c.state);
      assert.equal(w.registry.get(w.id)?.healthy, c.state === 'active');
    });
  }

  test('probe() reports the status of the answer', async () => {
    const fake = await udpFake(() => 404);
    const w = await world({ udp: fake.port });
    assert.deepEqual(await w.checker.probe(w.registry.get(w.id)!), { ok: true, status: 404 });
    fake.policy = () => 503;
    const r = await w.checker.probe(w.registry.get(w.id)!);
    assert.equal(r.ok, false);
  });
});

describe('failures that take a node down', () => {
  // Nodes known to answer OPTIONS (they answered the first probe), then failing.
  const cases: { name: string; make: () => Promise<{ tcp?: number; udp?: number }> }[] = [
    { name: 'UDP node that stops answering', make: async () => ({ udp: (await udpFake(answeredOnce(() => null))).port }) },
    { name: 'TCP node that stops answering (accepts, never answers)', make: async () => ({ tcp: (await tcpFake(answeredOnce(() => null))).port }) },
    { name: 'TCP node that closes without answering', make: async () => ({ tcp: (await tcpFake(answeredOnce(() => null), true)).port }) },
  ];
  for (const c of cases) {
    test(`${c.name} -> down after one failure when failures = 1`, async () => {
      const w = await world(await c.make());
      assert.equal(await runRound(w.checker), 1);
      assert.equal(w.registry.snapshot().stateOf(w.id), 'active', 'answered the first probe');
      assert.equal(await runRound(w.checker), 1);
      assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
      assert.equal(w.registry.snapshot().selectable.length, 0);
    });
  }

  // Nothing listens any more: definitive, whether or not the node ever answered OPTIONS.
  const refused: { name: string; make: () => Promise<{ tcp?: number; udp?: number }> }[] = [
    { name: 'refused TCP connection', make: async () => ({ tcp: await closedPort() }) },
    { name: 'closed UDP port (ICMP port unreachable)', make: async () => ({ udp: await closedUdpPort() }) },
  ];
  for (const c of refused) {
    test(`${c.name} -> down after one failure, with no answer ever seen`, async () => {
      const w = await world(await c.make());
      assert.equal(await runRound(w.checker), 1);
      assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
    });
  }

  test('a node that never answered OPTIONS: taken out when its UDP port refuses, back once the port is open again', async () => {
    const port = await closedUdpPort();
    const w = await world({ udp: port }, { failures: 1, successes: 1 });
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
    const silent = dgram.createSocket('udp4'); // listens, ignores OPTIONS
    await new Promise<void>((r) => silent.bind(port, '127.0.0.1', () => r()));
    cleanups.push(() => silent.close());
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
  });

  // A SIP stack that ignores OPTIONS (sipp's built-in UAS) is not taken out for its silence.
  for (const transport of ['udp', 'tcp'] as const) {
    test(`${transport.toUpperCase()} node that never answered OPTIONS: silence keeps it in`, async () => {
      const fake = transport === 'udp' ? await udpFake(() => null) : await tcpFake(() => null);
      const w = await world({ [transport]: fake.port }, { failures: 1 });
      for (let i = 0; i < 3; i++) await runRound(w.checker);
      assert.equal(fake.received.length, 3, 'still probed');
      assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
    });
  }

  test('UDP node that stops answering, failures = 3: up after 1 and 2 failures, down after 3', async () => {
    const fake = await udpFake(answeredOnce(() => null));
    const w = await world({ udp: fake.port }, { failures: 3 });
    await runRound(w.checker);
    for (let i = 1; i <= 3; i++) {
      await runRound(w.checker);
      assert.equal(fake.received.length, i + 1);
      assert.equal(w.registry.snapshot().stateOf(w.id), i < 3 ? 'active' : 'down', `after ${i} failures`);
    }
  });

  test('failures must be consecutive: a good answer in between starts the count again', async () => {
    let answers: (number | null)[] = [200, null, null, 200, null, null];
    const fake = await udpFake(() => answers.shift() ?? null);
    const w = await world({ udp: fake.port }, { failures: 3 });
    for (let i = 0; i < 6; i++) await runRound(w.checker);
    assert.equal(fake.received.length, 6);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
    answers = [];
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down', 'third consecutive failure');
  });
});

describe('recovery (successes = 2)', () => {
  test('a down node keeps being probed and comes back after 2 consecutive good answers', async () => {
    const fake = await udpFake(answeredOnce(() => null));
    const w = await world({ udp: fake.port }, { failures: 1, successes: 2 });
    await runRound(w.checker);
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down');

    fake.policy = () => 200;
    assert.equal(await runRound(w.checker), 1, 'a down node is probed');
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down', 'one good answer is not enough');
    assert.equal(await runRound(w.checker), 1);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
    assert.equal(fake.received.length, 4);
  });

  test('a failure between good answers restarts the success count', async () => {
    const answers: (number | null)[] = [200, null, 200, null, 200, 200];
    const fake = await udpFake(() => answers.shift() ?? null);
    const w = await world({ udp: fake.port }, { failures: 1, successes: 2 });
    const states: string[] = [];
    for (let i = 0; i < 6; i++) {
      await runRound(w.checker);
      states.push(w.registry.snapshot().stateOf(w.id) ?? '?');
    }
    assert.deepEqual(states, ['active', 'down', 'down', 'down', 'down', 'active']);
  });

  test('a down node is probed even while it sends good traffic', async () => {
    const fake = await udpFake(answeredOnce(() => null));
    const w = await world({ udp: fake.port }, { failures: 1, successes: 1 });
    await runRound(w.checker);
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
    w.passiveHealth.fromNode(w.id, 0);
    assert.equal(await runRound(w.checker), 1);
    assert.equal(fake.received.length, 3);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down', 'traffic does not bring a down node back; a probe does');
  });
});

describe('traffic as proof of life', () => {
  const cases: { name: string; status: number }[] = [
    { name: 'a request (status 0)', status: 0 },
    { name: 'a 200 response', status: 200 },
    { name: 'a 180 response', status: 180 },
  ];
  for (const c of cases) {
    test(`a node that just sent ${c.name} is not probed and stays healthy`, async () => {
      const fake = await udpFake(() => 503); // a probe would take it down
      const w = await world({ udp: fake.port });
      w.passiveHealth.fromNode(w.id, c.status);
      assert.equal(await runRound(w.checker), 0);
      assert.equal(w.checker.probesSent, 0);
      assert.equal(fake.received.length, 0, 'the node saw no OPTIONS');
      assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
    });
  }

  test('traffic older than the interval does not count: the node is probed', async () => {
    const fake = await udpFake(() => 503);
    const w = await world({ udp: fake.port });
    w.passiveHealth.fromNode(w.id, 200, undefined, Date.now() - 2 * MANUAL);
    assert.equal(await runRound(w.checker), 1);
    assert.equal(fake.received.length, 1);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
  });

  test('error responses are not proof of life: the node is probed', async () => {
    const fake = await udpFake(() => 200);
    const w = await world({ udp: fake.port });
    w.passiveHealth.fromNode(w.id, 503);
    assert.equal(await runRound(w.checker), 1);
    assert.equal(fake.received.length, 1);
  });

  test('a passively-down node is probed despite its traffic, and a good probe clears passive down', async () => {
    const fake = await udpFake(() => 200);
    const w = await world({ udp: fake.port }, { successes: 1 }, 1);
    w.passiveHealth.fromNode(w.id, 503);
    w.passiveHealth.fromNode(w.id, 503);
    assert.equal(w.registry.get(w.id)?.passiveDown, true);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'draining');
    w.passiveHealth.fromNode(w.id, 0); // fresh good traffic would otherwise skip the probe

    assert.equal(await runRound(w.checker), 1);
    assert.equal(fake.received.length, 1, 'the node saw the OPTIONS');
    assert.equal(w.registry.get(w.id)?.passiveDown, false);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
  });

  test('a passively-down node that answers 503 stays out and goes down', async () => {
    const fake = await udpFake(() => 503);
    const w = await world({ udp: fake.port }, { successes: 1 }, 1);
    w.passiveHealth.fromNode(w.id, 503);
    w.passiveHealth.fromNode(w.id, 503);
    await runRound(w.checker);
    assert.equal(fake.received.length, 1);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
  });
});

describe('the probe is a well-formed OPTIONS', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    test(`over ${transport.toUpperCase()}`, async () => {
      const fake = transport === 'udp' ? await udpFake(() => 200) : await tcpFake(() => 200);
      const w = await world({ [transport]: fake.port });
      await runRound(w.checker);
      await runRound(w.checker);
      assert.equal(fake.received.length, 2);
      const branches = new Set<string>();
      const callIds = new Set<string>();
      for (const { msg, fromPort } of fake.received) {
        assert.equal(msg.error, null, `valid for a proxy: ${msg.error}`);
        assert.equal(msg.terminated, true);
        assert.equal(msg.isRequest, true);
        assert.equal(msg.method, 'OPTIONS');
        assert.match(msg.requestUri, new RegExp(`^sip:127\\.0\\.0\\.1:${fake.port}(;transport=tcp)?$`, 'i'));
        if (transport === 'tcp') assert.match(msg.requestUri, /;transport=tcp$/i);
        const mf = msg.get('max-forwards');
        assert.ok(mf !== undefined && /^\d+$/.test(mf) && Number(mf) > 0, `Max-Forwards: ${mf}`);
        assert.equal(msg.count('via'), 1);
        const via = parseVia(msg.get('via') ?? '');
        assert.ok(via, 'Via parses');
        assert.equal(via.transport, transport.toUpperCase());
        assert.match(via.branch ?? '', /^z9hG4bK.+/);
        assert.equal(via.host, '127.0.0.1');
        assert.equal(via.port, fromPort, 'sent-by is where the probe came from, so the answer gets back');
        assert.equal(msg.cseqNum, 1);
        assert.equal(msg.cseqMethod, 'OPTIONS');
        assert.ok(msg.callId.length > 0);
        assert.match(msg.from, /;tag=.+/);
        assert.ok(msg.to.length > 0);
        assert.equal(msg.get('content-length'), '0');
        assert.equal(msg.body.length, 0);
        branches.add(via.branch ?? '');
        callIds.add(msg.callId);
      }
      assert.equal(branches.size, 2, 'a new branch per probe');
      assert.equal(callIds.size, 2, 'a new Call-ID per probe');
    });
  }
});

describe('UDP retransmission', () => {
  const cases: { timeoutMs: number; state: 'active' | 'down'; copies: number }[] = [
    { timeoutMs: 800, state: 'active', copies: 2 },  // retransmitted at 500 ms, second copy answered
    { timeoutMs: 400, state: 'down', copies: 1 },    // times out before any retransmission
  ];
  for (const c of cases) {
    test(`first datagram ignored, second answered, timeoutMs ${c.timeoutMs} -> ${c.state}`, async () => {
      const fake = await udpFake(answeredOnce((_req, attempt) => (attempt === 1 ? null : 200)));
      const w = await world({ udp: fake.port }, { timeoutMs: c.timeoutMs, failures: 1 });
      await runRound(w.checker); // the node shows it answers OPTIONS
      const before = fake.received.length;
      assert.equal(await runRound(w.checker), 1, 'one probe, however many datagrams');
      assert.equal(fake.received.length - before, c.copies);
      if (c.copies === 2) {
        assert.deepEqual(fake.received[before + 1].raw, fake.received[before].raw, 'a retransmission is the same datagram');
      }
      assert.equal(w.registry.snapshot().stateOf(w.id), c.state);
    });
  }

  test('probe() resolves with the answer to the retransmission', async () => {
    const fake = await udpFake((_req, attempt) => (attempt === 1 ? null : 200));
    const w = await world({ udp: fake.port }, { timeoutMs: 800 });
    assert.deepEqual(await w.checker.probe(w.registry.get(w.id)!), { ok: true, status: 200 });
  });
});

describe('node replaced by a new session', () => {
  test('failures seen by the old session do not count against the new one', async () => {
    const fake = await udpFake(answeredOnce(() => null));
    const w = await world({ udp: fake.port }, { failures: 3 });
    // A registered node instead of the static one: same address, a session.
    w.registry.start({ ip: '127.0.0.1', ports: { udp: fake.port }, sessionId: 'old', version: '1' });
    await runRound(w.checker);
    await runRound(w.checker);
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active', 'two failures of three');
    w.registry.start({ ip: '127.0.0.1', ports: { udp: fake.port }, sessionId: 'new', version: '1' });
    fake.policy = answeredOnce(() => null);
    await runRound(w.checker);
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active', 'the new session has failed once, not three times');
  });
});

describe('a node passive health took out for leaving requests unanswered (maxUnanswered 1, 100 ms)', () => {
  const T0 = 1_000_000;
  /** Two requests 200 ms apart, neither answered: out for silence. */
  function silence(w: World & { id: string }): void {
    w.passiveHealth.requestSent(w.id, T0);
    w.passiveHealth.requestSent(w.id, T0 + 200);
    assert.equal(w.registry.get(w.id)?.passiveCause, 'silence');
  }
  const SILENCE = { maxUnanswered: 1, maxResponseTimeMs: 100 };

  // A hung SIP stack keeps its port open and says nothing, which is also what a stack that
  // ignores OPTIONS shows: only an answer proves it works again.
  const cases: { name: string; make: () => Promise<{ udp?: number; tcp?: number }>; after: 'draining' | 'active' | 'down' }[] = [
    { name: 'UDP port open, OPTIONS unanswered (never answered one): stays out', make: async () => ({ udp: (await udpFake(() => null)).port }), after: 'draining' },
    { name: 'TCP port open, OPTIONS unanswered (never answered one): stays out', make: async () => ({ tcp: (await tcpFake(() => null)).port }), after: 'draining' },
    { name: 'OPTIONS answered 200: back', make: async () => ({ udp: (await udpFake(() => 200)).port }), after: 'active' },
    { name: 'OPTIONS answered 503: down', make: async () => ({ udp: (await udpFake(() => 503)).port }), after: 'down' },
    { name: 'UDP port refuses: down', make: async () => ({ udp: await closedUdpPort() }), after: 'down' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const w = await world(await c.make(), { failures: 1, successes: 1 }, 3, SILENCE);
      silence(w);
      for (let i = 0; i < 2; i++) assert.equal(await runRound(w.checker), 1, 'probed while out');
      assert.equal(w.registry.snapshot().stateOf(w.id), c.after);
    });
  }

  test('out for error responses instead, the same silent port lets it back in (as before)', async () => {
    const fake = await udpFake(() => null);
    const w = await world({ udp: fake.port }, { failures: 1, successes: 1 }, 0, SILENCE);
    w.passiveHealth.fromNode(w.id, 503);
    assert.equal(w.registry.get(w.id)?.passiveCause, 'errors');
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
  });

  test('taken down once its port refused, it comes back when the port is open again, silent or not', async () => {
    const port = await closedUdpPort();
    const w = await world({ udp: port }, { failures: 1, successes: 1 }, 3, SILENCE);
    silence(w);
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'down');
    const restarted = dgram.createSocket('udp4'); // listens, ignores OPTIONS
    await new Promise<void>((r) => restarted.bind(port, '127.0.0.1', () => r()));
    cleanups.push(() => restarted.close());
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
    assert.equal(w.registry.get(w.id)?.passiveCause, null);
  });

  test('a SIP response brings it back without a probe', async () => {
    const fake = await udpFake(() => null);
    const w = await world({ udp: fake.port }, { failures: 1, successes: 1 }, 3, SILENCE);
    silence(w);
    await runRound(w.checker);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'draining');
    w.passiveHealth.fromNode(w.id, 200);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
  });
});

describe('with the timer running (intervalMs 200, timeoutMs 300)', () => {
  test('a node that goes silent is taken down, and brought back when it answers again', async () => {
    const fake = await udpFake(answeredOnce(() => null));
    const w = await world({ udp: fake.port }, { intervalMs: 200, timeoutMs: 300, failures: 2, successes: 2 });
    await until(() => w.registry.snapshot().stateOf(w.id) === 'down', 'the node to go down');
    assert.ok(fake.received.length >= 3);
    fake.policy = () => 200;
    await until(() => w.registry.snapshot().stateOf(w.id) === 'active', 'the node to come back');
  });

  test('a node that keeps sending traffic sees no OPTIONS; once it goes quiet it is probed', async (t) => {
    // The checker's rounds and clock on mocked time: traffic every 20 ms is always within the
    // 200 ms interval, however loaded the machine (on real time a stalled loop would break that).
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'] });
    const fake = await udpFake(() => 200);
    const w = await world({ udp: fake.port }, { intervalMs: 200, timeoutMs: 300 });
    for (let ms = 0; ms < 700; ms += 20) {
      w.passiveHealth.fromNode(w.id, 0);
      t.mock.timers.tick(20);
    }
    assert.equal(w.checker.probesSent, 0, 'no OPTIONS while busy (rounds at 200, 400 and 600 ms)');
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
    // Last traffic at 680 ms: the round at 800 ms still counts it, the one at 1000 ms probes.
    // (Each tick ends at a round's time, so the round reads that time from the mocked clock.)
    t.mock.timers.tick(100);
    assert.equal(w.checker.probesSent, 0, 'traffic 120 ms ago is within the interval');
    t.mock.timers.tick(200);
    assert.equal(w.checker.probesSent, 1, 'probed once quiet for longer than the interval');
    await until(() => w.checker.settled === 1, 'the probe to be answered and recorded');
    assert.equal(fake.received.length, 1);
    assert.equal(w.registry.snapshot().stateOf(w.id), 'active');
  });
});
