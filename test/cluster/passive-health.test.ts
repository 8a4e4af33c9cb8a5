// Passive health: PassiveHealth over a real NodeRegistry. More than maxErrors error responses
// within windowMs take a node out of new-call selection (draining); good traffic is recorded as
// proof of life; a new session clears the trip. Time is passed explicitly (`now`), so the window
// arithmetic is exact.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { PassiveHealth, UNREACHABLE_TRIAL_MS, type PassiveHealthOptions } from '../../src/cluster/passive-health.ts';
import { NodeRegistry, type RegistryEvent } from '../../src/cluster/node-registry.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';

const log = pino({ level: 'silent' });
const ID = '127.0.0.1:5080';
const OTHER = '127.0.0.1:5090';

function setup(opts: Partial<PassiveHealthOptions> = {}): { registry: NodeRegistry; passiveHealth: PassiveHealth } {
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
  registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a1', version: '1' });
  registry.start({ ip: '127.0.0.1', ports: { udp: 5090 }, sessionId: 'b1', version: '1' });
  const passiveHealth = new PassiveHealth(registry, {
    errorStatuses: opts.errorStatuses ?? [503],
    maxErrors: opts.maxErrors ?? 3,
    windowMs: opts.windowMs ?? 1000,
    errorReason: opts.errorReason,
    maxUnanswered: opts.maxUnanswered,
    maxResponseTimeMs: opts.maxResponseTimeMs,
  });
  return { registry, passiveHealth };
}

function assertPassiveDown(registry: NodeRegistry, id: string): void {
  const snap = registry.snapshot();
  const n = snap.get(id);
  assert.ok(n);
  assert.equal(snap.stateOf(id), 'draining');
  assert.equal(snap.isAlive(n), true, 'keeps the calls it has');
  assert.equal(snap.isSelectable(n), false, 'takes no new calls');
  assert.equal(registry.get(id)?.passiveDown, true);
  assert.equal(registry.get(id)?.healthy, true, 'passive health does not mark the node down');
}

function assertActive(registry: NodeRegistry, id: string): void {
  const snap = registry.snapshot();
  assert.equal(snap.stateOf(id), 'active');
  assert.ok(snap.selectable.some((n) => n.id === id));
  assert.equal(registry.get(id)?.passiveDown, false);
}

describe('PassiveHealth error window (maxErrors 3, windowMs 1000, errors = [503])', () => {
  const T0 = 1_000_000;
  const cases: { name: string; errorsAt: number[]; tripped: boolean }[] = [
    { name: '4 errors within 300 ms trip it', errorsAt: [0, 100, 200, 300], tripped: true },
    { name: '4 errors spanning 999 ms trip it', errorsAt: [0, 333, 666, 999], tripped: true },
    { name: '3 errors (not more than maxErrors) do not', errorsAt: [0, 10, 20], tripped: false },
    { name: 'the 4th error 1001 ms after the 1st does not', errorsAt: [0, 400, 800, 1001], tripped: false },
    { name: '20 errors 600 ms apart never have 4 in a window', errorsAt: Array.from({ length: 20 }, (_, i) => i * 600), tripped: false },
    { name: '20 errors 400 ms apart never have 4 in a window', errorsAt: Array.from({ length: 20 }, (_, i) => i * 400), tripped: false },
    { name: 'spread errors then a burst trips it', errorsAt: [0, 2000, 4000, 6000, 6100, 6200, 6300], tripped: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { registry, passiveHealth } = setup();
      for (const t of c.errorsAt) passiveHealth.fromNode(ID, 503, undefined, T0 + t);
      if (c.tripped) assertPassiveDown(registry, ID);
      else assertActive(registry, ID);
      assertActive(registry, OTHER);
    });
  }

  test('it trips exactly on the (maxErrors + 1)th error', () => {
    const { registry, passiveHealth } = setup();
    for (let i = 0; i < 3; i++) {
      passiveHealth.fromNode(ID, 503, undefined, T0 + i);
      assertActive(registry, ID);
    }
    passiveHealth.fromNode(ID, 503, undefined, T0 + 3);
    assertPassiveDown(registry, ID);
  });

  test('errors are counted per node', () => {
    const { registry, passiveHealth } = setup();
    for (let i = 0; i < 3; i++) {
      passiveHealth.fromNode(ID, 503, undefined, T0 + i);
      passiveHealth.fromNode(OTHER, 503, undefined, T0 + i);
    }
    assertActive(registry, ID);
    assertActive(registry, OTHER);
  });

  test('statuses not in the error list never trip it', () => {
    const { registry, passiveHealth } = setup();
    for (const status of [500, 486, 404, 408, 603, 200, 180]) {
      for (let i = 0; i < 10; i++) passiveHealth.fromNode(ID, status, undefined, T0 + i);
    }
    assertActive(registry, ID);
  });

  test('every status in the error list counts', () => {
    const { registry, passiveHealth } = setup({ errorStatuses: [500, 503, 504] });
    for (const [i, status] of [500, 503, 504, 500].entries()) passiveHealth.fromNode(ID, status, undefined, T0 + i);
    assertPassiveDown(registry, ID);
  });

  test('errors from an unknown node do not throw or add it', () => {
    const { registry, passiveHealth } = setup({ maxErrors: 0 });
    passiveHealth.fromNode('10.9.9.9:5060', 503, undefined, T0);
    assert.equal(registry.get('10.9.9.9:5060'), undefined);
    assert.equal(registry.list().length, 2);
  });
});

describe('PassiveHealth lastGood', () => {
  const cases: { name: string; status: number; good: boolean }[] = [
    { name: 'a request (status 0)', status: 0, good: true },
    { name: '100 Trying', status: 100, good: true },
    { name: '180 Ringing', status: 180, good: true },
    { name: '200 OK', status: 200, good: true },
    { name: '486 Busy Here (not in the error list)', status: 486, good: true },
    { name: '500 (not in the error list)', status: 500, good: true },
    { name: '503 (in the error list)', status: 503, good: false },
  ];
  for (const c of cases) {
    test(`${c.name} ${c.good ? 'updates' : 'does not update'} lastGood`, () => {
      const { passiveHealth } = setup();
      assert.equal(passiveHealth.lastGood(ID), undefined);
      passiveHealth.fromNode(ID, 0, undefined, 1000);
      assert.equal(passiveHealth.lastGood(ID), 1000);
      passiveHealth.fromNode(ID, c.status, undefined, 2000);
      assert.equal(passiveHealth.lastGood(ID), c.good ? 2000 : 1000);
      assert.equal(passiveHealth.lastGood(OTHER), undefined, 'per node');
    });
  }

  test('the clock defaults to Date.now()', () => {
    const { passiveHealth } = setup();
    const before = Date.now();
    passiveHealth.fromNode(ID, 200);
    const at = passiveHealth.lastGood(ID);
    assert.ok(at !== undefined && at >= before && at <= Date.now());
  });

  test('forget drops what was seen', () => {
    const { passiveHealth } = setup();
    passiveHealth.fromNode(ID, 0, undefined, 1000);
    passiveHealth.forget(ID);
    assert.equal(passiveHealth.lastGood(ID), undefined);
  });
});

describe('recovery from passive down', () => {
  const T0 = 5_000_000;
  function trip(passiveHealth: PassiveHealth, at: number): void {
    for (let i = 0; i < 4; i++) passiveHealth.fromNode(ID, 503, undefined, at + i);
  }

  test('a new start session for the node clears passive down', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    assertPassiveDown(registry, ID);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a2', version: '1' });
    assertActive(registry, ID);
    assert.equal(registry.get(ID)?.sessionId, 'a2');
  });

  test('a repeated start with the same session does not clear it', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a1', version: '1' });
    assertPassiveDown(registry, ID);
  });

  test('heartbeats and good traffic alone do not clear it', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    assert.equal(registry.heartbeat('a1'), true);
    passiveHealth.fromNode(ID, 200, undefined, T0 + 10);
    passiveHealth.fromNode(ID, 0, undefined, T0 + 11);
    assertPassiveDown(registry, ID);
  });

  test('after a trip the count starts again: the next trip needs another maxErrors + 1 errors', () => {
    const { registry, passiveHealth } = setup();
    trip(passiveHealth, T0);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a2', version: '1' });
    for (let i = 0; i < 3; i++) passiveHealth.fromNode(ID, 503, undefined, T0 + 10 + i);
    assertActive(registry, ID);
    passiveHealth.fromNode(ID, 503, undefined, T0 + 20);
    assertPassiveDown(registry, ID);
  });

  test('a static node trips and shows draining too', () => {
    const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
    registry.addStatic([{ id: '127.0.0.1:5070', ip: '127.0.0.1', ports: { udp: 5070 }, weight: 1 }]);
    const passiveHealth = new PassiveHealth(registry, { errorStatuses: [503], maxErrors: 1, windowMs: 1000 });
    passiveHealth.fromNode('127.0.0.1:5070', 503, undefined, T0);
    assert.equal(registry.snapshot().stateOf('127.0.0.1:5070'), 'active');
    passiveHealth.fromNode('127.0.0.1:5070', 503, undefined, T0 + 1);
    assertPassiveDown(registry, '127.0.0.1:5070');
  });
});

/** A parsed response whose status line is exactly `statusLine` (as a node would send it). */
function response(statusLine: string): SipMessage {
  const m = parseSipMessage(Buffer.from([
    statusLine,
    'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-lb',
    'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-c',
    'From: <sip:a@example.org>;tag=1',
    'To: <sip:b@example.org>;tag=2',
    'Call-ID: r1',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
  ].join('\r\n') + '\r\n\r\n', 'utf8'), true);
  if (isParseFailure(m) || m.error !== null) throw new Error(`bad test response ${statusLine}`);
  return m;
}

describe('PassiveHealth responseReasonNodeRemoval (maxErrors 0: one error trips)', () => {
  const REASON = 'Unable to setup media services';
  const cases: { name: string; errorReason: string | null; status: number; reason: () => SipMessage | string | undefined; error: boolean }[] = [
    { name: 'no reason configured: a 503 with any reason', errorReason: null, status: 503, reason: () => response('SIP/2.0 503 Whatever'), error: true },
    { name: 'no reason configured: a 503 given no reason at all', errorReason: null, status: 503, reason: () => undefined, error: true },
    { name: 'the configured reason, exact', errorReason: REASON, status: 503, reason: () => response(`SIP/2.0 503 ${REASON}`), error: true },
    { name: 'the configured reason, other case', errorReason: REASON, status: 503, reason: () => response('SIP/2.0 503 UNABLE TO SETUP MEDIA SERVICES'), error: true },
    { name: 'the configured reason with trailing blanks', errorReason: REASON, status: 503, reason: () => response(`SIP/2.0 503 ${REASON}  `), error: true },
    { name: 'the configured reason given as a string', errorReason: REASON, status: 503, reason: () => ` ${REASON.toLowerCase()} `, error: true },
    { name: 'a configured reason with blanks around it', errorReason: `  ${REASON} `, status: 503, reason: () => response(`SIP/2.0 503 ${REASON}`), error: true },
    { name: 'a non-ASCII reason (UTF-8 on the wire)', errorReason: 'Médias indisponibles', status: 503, reason: () => response('SIP/2.0 503 Médias indisponibles'), error: true },
    { name: 'another reason', errorReason: REASON, status: 503, reason: () => response('SIP/2.0 503 Service Unavailable'), error: false },
    { name: 'a reason that only contains it', errorReason: REASON, status: 503, reason: () => response(`SIP/2.0 503 ${REASON} now`), error: false },
    { name: 'an empty reason', errorReason: REASON, status: 503, reason: () => response('SIP/2.0 503 '), error: false },
    { name: 'no reason phrase at all', errorReason: REASON, status: 503, reason: () => response('SIP/2.0 503'), error: false },
    { name: 'no response given', errorReason: REASON, status: 503, reason: () => undefined, error: false },
    { name: 'the reason on a status not in the list', errorReason: REASON, status: 500, reason: () => response(`SIP/2.0 500 ${REASON}`), error: false },
    { name: 'a blank configured reason means any', errorReason: '  ', status: 503, reason: () => response('SIP/2.0 503 Whatever'), error: true },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.error ? 'a node error' : 'not a node error (proof of life)'}`, () => {
      const { registry, passiveHealth } = setup({ maxErrors: 0, errorReason: c.errorReason });
      passiveHealth.fromNode(ID, c.status, c.reason(), 1000);
      assert.equal(registry.get(ID)?.passiveDown, c.error);
      assert.equal(passiveHealth.lastGood(ID), c.error ? undefined : 1000);
    });
  }

  test('the trip names the reason', () => {
    const { registry, passiveHealth } = setup({ maxErrors: 0, errorReason: REASON });
    const events: RegistryEvent[] = [];
    registry.onEvent((e) => events.push(e));
    passiveHealth.fromNode(ID, 503, response(`SIP/2.0 503 ${REASON}`), 1000);
    assert.deepEqual(events.map((e) => e.detail), [`out of new-call selection (1 responses 503 "${REASON}" within 1000 ms)`]);
  });
});

describe('PassiveHealth requests left unanswered (maxUnanswered 3, maxResponseTimeMs 500)', () => {
  const T0 = 7_000_000;
  type Step = [at: number, what: 'req' | 'resp' | 'err' | 'fromNode'];
  const req = (...ats: number[]): Step[] => ats.map((at) => [at, 'req']);
  const cases: { name: string; steps: Step[]; tripped: boolean }[] = [
    { name: '4 unanswered over 600 ms', steps: req(0, 200, 400, 600), tripped: true },
    { name: '3 unanswered (not more than 3) over 10 s', steps: req(0, 5000, 10_000), tripped: false },
    { name: '4 unanswered within 500 ms (not more than 500 ms)', steps: req(0, 100, 200, 500), tripped: false },
    { name: '4 within 400 ms, a 5th at 501 ms', steps: req(0, 100, 200, 400, 501), tripped: true },
    { name: 'a node that never answered: timed from the first request', steps: req(0, 1000, 1001, 1002), tripped: true },
    { name: 'a response in between starts the count again', steps: [...req(0, 100, 200), [300, 'resp'], ...req(400, 500, 600, 700)], tripped: false },
    { name: 'an error response is an answer too', steps: [...req(0, 100, 200), [300, 'err'], ...req(400, 500, 600, 700)], tripped: false },
    { name: 'requests from the node are not answers', steps: [...req(0, 100, 200), [300, 'fromNode'], ...req(600)], tripped: true },
    { name: 'answers keep up: 100 requests, each answered', steps: Array.from({ length: 100 }, (_, i): Step[] => [[i * 100, 'req'], [i * 100 + 50, 'resp']]).flat(), tripped: false },
    // Restcomm times from the last response: a burst after an idle hour would trip it.
    { name: 'idle for an hour after a response, then a burst of 10 within 5 ms', steps: [[0, 'resp'], ...req(3_600_000, 3_600_001, 3_600_002, 3_600_003, 3_600_004, 3_600_005)], tripped: false },
    { name: 'idle for an hour, then the burst stays unanswered past 500 ms', steps: [[0, 'resp'], ...req(3_600_000, 3_600_001, 3_600_002, 3_600_003, 3_600_600)], tripped: true },
  ];
  for (const c of cases) {
    test(`${c.name} -> ${c.tripped ? 'out of new-call selection' : 'stays in'}`, () => {
      const { registry, passiveHealth } = setup({ maxUnanswered: 3, maxResponseTimeMs: 500 });
      for (const [at, what] of c.steps) {
        if (what === 'req') passiveHealth.requestSent(ID, T0 + at);
        else passiveHealth.fromNode(ID, what === 'resp' ? 200 : what === 'err' ? 503 : 0, undefined, T0 + at);
      }
      if (c.tripped) {
        assertPassiveDown(registry, ID);
        assert.equal(registry.get(ID)?.passiveCause, 'silence');
      } else assertActive(registry, ID);
      assertActive(registry, OTHER);
    });
  }

  const off: { name: string; opts: Partial<PassiveHealthOptions> }[] = [
    { name: 'both unset', opts: {} },
    { name: 'only maxRequestNumberWithoutResponse', opts: { maxUnanswered: 3, maxResponseTimeMs: null } },
    { name: 'only maxResponseTime', opts: { maxUnanswered: null, maxResponseTimeMs: 500 } },
  ];
  for (const c of off) {
    test(`off with ${c.name}: nothing is counted`, () => {
      const { registry, passiveHealth } = setup(c.opts);
      for (let i = 0; i < 100; i++) passiveHealth.requestSent(ID, T0 + i * 1000);
      assert.equal(passiveHealth.unanswered(ID), 0);
      assertActive(registry, ID);
    });
  }

  test('the clock defaults to Date.now(); the trip says how many and for how long', () => {
    const { registry, passiveHealth } = setup({ maxUnanswered: 1, maxResponseTimeMs: 1 });
    const events: RegistryEvent[] = [];
    registry.onEvent((e) => events.push(e));
    passiveHealth.requestSent(ID, Date.now() - 1000);
    passiveHealth.requestSent(ID);
    assertPassiveDown(registry, ID);
    assert.equal(events.length, 1);
    assert.match(String(events[0].detail), /^out of new-call selection \(2 requests unanswered for \d+ ms\)$/);
  });

  test('an unknown node does not throw and is not added', () => {
    const { registry, passiveHealth } = setup({ maxUnanswered: 1, maxResponseTimeMs: 1 });
    for (let i = 0; i < 5; i++) passiveHealth.requestSent('10.9.9.9:5060', T0 + i * 100);
    assert.equal(registry.get('10.9.9.9:5060'), undefined);
    assert.equal(registry.list().length, 2);
  });
});

describe('recovery from unanswered requests', () => {
  const T0 = 9_000_000;
  function silence(passiveHealth: PassiveHealth, at: number): void {
    for (let i = 0; i < 4; i++) passiveHealth.requestSent(ID, at + i * 200);
  }
  const opts = { maxUnanswered: 3, maxResponseTimeMs: 500 };

  const answers: { name: string; status: number }[] = [
    { name: '100 Trying', status: 100 },
    { name: '200 OK', status: 200 },
    { name: '503 (an answer, even an error one)', status: 503 },
  ];
  for (const c of answers) {
    test(`a response (${c.name}) brings it back`, () => {
      const { registry, passiveHealth } = setup(opts);
      const events: RegistryEvent[] = [];
      registry.onEvent((e) => events.push(e));
      silence(passiveHealth, T0);
      assertPassiveDown(registry, ID);
      passiveHealth.fromNode(ID, c.status, undefined, T0 + 2000);
      assertActive(registry, ID);
      assert.equal(registry.get(ID)?.passiveCause, null);
      assert.equal(events.at(-1)?.detail, `back in new-call selection (answered again with ${c.status})`);
    });
  }

  test('a request from the node does not bring it back', () => {
    const { registry, passiveHealth } = setup(opts);
    silence(passiveHealth, T0);
    passiveHealth.fromNode(ID, 0, undefined, T0 + 2000);
    assertPassiveDown(registry, ID);
  });

  test('a node out for error responses stays out when it answers (its answers are the problem)', () => {
    const { registry, passiveHealth } = setup({ ...opts, maxErrors: 0 });
    passiveHealth.fromNode(ID, 503, undefined, T0);
    assert.equal(registry.get(ID)?.passiveCause, 'errors');
    silence(passiveHealth, T0 + 10);
    passiveHealth.fromNode(ID, 200, undefined, T0 + 2000);
    assertPassiveDown(registry, ID);
    assert.equal(registry.get(ID)?.passiveCause, 'errors');
  });

  test('a good probe brings it back; it is then judged afresh: another 4 unanswered over 500 ms take it out again', () => {
    const { registry, passiveHealth } = setup(opts);
    silence(passiveHealth, T0);
    // Requests of calls it still has keep reaching it while it is out.
    for (let i = 0; i < 10; i++) passiveHealth.requestSent(ID, T0 + 1000 + i * 100);
    registry.setHealthy(ID, true, 'OPTIONS answered 200');
    assertActive(registry, ID);
    passiveHealth.requestSent(ID, T0 + 5000);
    assertActive(registry, ID);
    silence(passiveHealth, T0 + 5100);
    assertPassiveDown(registry, ID);
    assert.equal(registry.get(ID)?.passiveCause, 'silence');
    passiveHealth.fromNode(ID, 200, undefined, T0 + 6000);
    assertActive(registry, ID);
  });

  test('a new session brings it back and starts the count again', () => {
    const { registry, passiveHealth } = setup(opts);
    registry.onEvent((e) => {
      if (e.type === 'removed' || e.type === 'replaced') passiveHealth.forget(e.nodeId);
    });
    silence(passiveHealth, T0);
    registry.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a2', version: '1' });
    assertActive(registry, ID);
    assert.equal(passiveHealth.unanswered(ID), 0);
    for (let i = 0; i < 3; i++) passiveHealth.requestSent(ID, T0 + 10_000 + i * 300);
    assertActive(registry, ID);
  });

  test('per node: the silent node goes, the other stays', () => {
    const { registry, passiveHealth } = setup(opts);
    for (let i = 0; i < 10; i++) {
      passiveHealth.requestSent(ID, T0 + i * 100);
      passiveHealth.requestSent(OTHER, T0 + i * 100);
      passiveHealth.fromNode(OTHER, 200, undefined, T0 + i * 100 + 10);
    }
    assertPassiveDown(registry, ID);
    assertActive(registry, OTHER);
  });
});

describe('PassiveHealth: ICMP port unreachable from a node\'s SIP port', () => {
  function assertDown(registry: NodeRegistry, id: string): void {
    const snap = registry.snapshot();
    const n = snap.get(id);
    assert.ok(n);
    assert.equal(snap.stateOf(id), 'down');
    assert.equal(snap.isAlive(n), false, 'its calls fail over: its port is closed');
    assert.equal(registry.get(id)?.passiveCause, 'unreachable');
  }

  // Each way back, as a table: what happens after the ICMP error, and whether the node is active again.
  const WAYS_BACK: { name: string; act: (r: NodeRegistry, p: PassiveHealth, t: { tick(ms: number): void }) => void }[] = [
    { name: 'it sends a request', act: (_r, p) => p.fromNode(ID, 0) },
    { name: 'it sends a response, even an error one', act: (_r, p) => p.fromNode(ID, 503) },
    { name: 'a probe succeeds', act: (r) => r.setHealthy(ID, true, 'OPTIONS 200') },
    { name: 'it registers with a new session', act: (r) => r.start({ ip: '127.0.0.1', ports: { udp: 5080 }, sessionId: 'a2', version: '1' }) },
    { name: 'its trial comes after UNREACHABLE_TRIAL_MS', act: (_r, _p, t) => t.tick(UNREACHABLE_TRIAL_MS) },
  ];
  for (const way of WAYS_BACK) {
    test(`down at once, and back when ${way.name}`, (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const { registry, passiveHealth } = setup();
      passiveHealth.unreachable(ID, 'ICMP port unreachable from 127.0.0.1:5080');
      assertDown(registry, ID);
      assertActive(registry, OTHER);
      t.mock.timers.tick(UNREACHABLE_TRIAL_MS - 1);
      assertDown(registry, ID);
      way.act(registry, passiveHealth, { tick: (ms) => t.mock.timers.tick(ms) });
      assertActive(registry, ID);
      passiveHealth.close();
    });
  }

  test('a node out for error responses stays out for them (the ICMP error changes nothing)', () => {
    const { registry, passiveHealth } = setup();
    for (let i = 0; i < 4; i++) passiveHealth.fromNode(ID, 503, undefined, 100 + i);
    assertPassiveDown(registry, ID);
    passiveHealth.unreachable(ID, 'ICMP');
    assert.equal(registry.get(ID)?.passiveCause, 'errors');
    passiveHealth.close();
  });

  test('unreachable again on trial: out again, with a new trial', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { registry, passiveHealth } = setup();
    passiveHealth.unreachable(ID, 'ICMP');
    t.mock.timers.tick(UNREACHABLE_TRIAL_MS);
    assertActive(registry, ID);
    passiveHealth.unreachable(ID, 'ICMP again');
    assertDown(registry, ID);
    t.mock.timers.tick(UNREACHABLE_TRIAL_MS);
    assertActive(registry, ID);
    passiveHealth.close();
  });

  test('an unknown node id is ignored', () => {
    const { registry, passiveHealth } = setup();
    passiveHealth.unreachable('10.9.9.9:5060', 'ICMP');
    assertActive(registry, ID);
  });
});
