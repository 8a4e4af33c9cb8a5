// Overload control: the controller's fraction as a function of the event loop's utilisation
// (table), the verdicts it gives (the same for every copy of one Call-ID, a share near the
// fraction), and the proxy's answers while shedding: 503 with Retry-After to new calls (RFC 7339
// parameters for a client that offers `oc`), nothing for ACK, BYE and the nodes' requests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { OverloadControl, type QueueSignal } from '../../src/proxy/overload.ts';
import type { Inbound } from '../../src/transport/types.ts';
import { harness, LB_IP, NODE_A } from '../helpers/proxy.ts';

const silent = pino({ level: 'silent' });
/** A controller past its warm-up, driven by hand. */
function controller(pending = 0): { oc: OverloadControl; at: (u: number) => void } {
  const oc = new OverloadControl(silent, () => pending, undefined, false);
  let now = Date.now() + 10_000;
  return { oc, at: (u) => { now += 100; oc.step(u, now); } };
}

const TABLE: { name: string; windows: number[]; fraction: number; state: string }[] = [
  { name: 'a loop with room: nothing shed', windows: [0.5, 0.7, 0.9, 0.94], fraction: 0, state: 'normal' },
  { name: 'two saturated windows are a spike, not overload', windows: [0.99, 0.99, 0.5, 0.99, 0.99], fraction: 0, state: 'normal' },
  { name: 'three saturated windows: 10 % shed', windows: [0.97, 0.97, 0.97], fraction: 0.1, state: 'shedding' },
  { name: 'each further saturated window adds 10 %', windows: [0.97, 0.97, 0.97, 0.98, 0.99], fraction: 0.3, state: 'shedding' },
  { name: 'between LOW and HIGH the fraction holds', windows: [0.97, 0.97, 0.97, 0.97, 0.9, 0.9, 0.9], fraction: 0.2, state: 'shedding' },
  { name: 'below LOW it comes down 5 % a window', windows: [0.97, 0.97, 0.97, 0.97, 0.5, 0.5], fraction: 0.1, state: 'shedding' },
  { name: 'and back to normal', windows: [0.97, 0.97, 0.97, 0.5, 0.5], fraction: 0, state: 'normal' },
  { name: 'never above 95 %', windows: Array(20).fill(1), fraction: 0.95, state: 'dropping' },
  { name: 'dropping only after 5 windows saturated at 95 %', windows: Array(15).fill(1), fraction: 0.95, state: 'shedding' },
  { name: 'dropping ends as soon as the loop has room', windows: [...Array(20).fill(1), 0.9], fraction: 0.95, state: 'shedding' },
];

for (const c of TABLE) {
  test(`controller: ${c.name}`, () => {
    const { oc, at } = controller();
    for (const u of c.windows) at(u);
    assert.equal(oc.fraction, c.fraction);
    assert.equal(oc.state, c.state);
  });
}

// With the receive queues readable, a busy loop sheds only while it also falls behind.
const QUEUE_TABLE: { name: string; windows: [number, QueueSignal][]; fraction: number }[] = [
  { name: 'busy with empty queues (a CPU quota, a busy but keeping-up loop): nothing shed', windows: Array(10).fill([1, 'clear']), fraction: 0 },
  { name: 'busy and behind for three windows: 5 % shed', windows: Array(3).fill([1, 'behind']), fraction: 0.05 },
  { name: 'busy and behind, then draining: the fraction holds', windows: [...Array(5).fill([1, 'behind']), [1, 'draining'], [1, 'draining']], fraction: 0.15 },
  { name: 'busy and behind, then busy with the queues emptied: the fraction comes down', windows: [...Array(6).fill([1, 'behind']), [1, 'clear'], [1, 'clear']], fraction: 0.1 },
  { name: 'behind and clear alternating is no sustained overload', windows: Array(10).fill(0).map((_, i) => [1, i % 2 === 0 ? 'behind' : 'clear']), fraction: 0 },
  { name: 'queues unreadable: utilisation decides alone', windows: Array(3).fill([1, 'unknown']), fraction: 0.1 },
  { name: 'a deep or overflowing queue: the big step', windows: Array(4).fill([1, 'deep']), fraction: 0.2 },
];

for (const c of QUEUE_TABLE) {
  test(`controller with queues: ${c.name}`, () => {
    const oc = new OverloadControl(silent, () => 0, undefined, false);
    let now = Date.now() + 10_000;
    for (const [u, q] of c.windows) oc.step(u, now += 100, q);
    assert.equal(oc.fraction, c.fraction);
  });
}

test('controller: picks waiting for the store count as overload too', () => {
  const { oc, at } = controller(5000);
  for (let i = 0; i < 3; i++) at(0.2);
  assert.equal(oc.state, 'shedding');
});

test('controller: no shedding during the first 3 s of the process', () => {
  const oc = new OverloadControl(silent, () => 0, undefined, false);
  const start = Date.now();
  for (let i = 0; i < 10; i++) oc.step(1, start + i * 100);
  assert.equal(oc.state, 'normal');
});

test('verdicts: the same for every copy of a Call-ID, and a share of calls near the fraction', () => {
  const { oc, at } = controller();
  for (let i = 0; i < 7; i++) at(0.99);
  assert.equal(oc.fraction, 0.5);
  let rejected = 0;
  for (let i = 0; i < 10_000; i++) {
    const v = oc.verdict(`call-${i}@client`, false);
    if (v === 'reject') rejected++;
    assert.equal(oc.verdict(`call-${i}@client`, false), v, 'a retransmission gets the same verdict');
  }
  assert.ok(rejected > 4700 && rejected < 5300, `${rejected} of 10000 refused at 50 %`);
  assert.equal(oc.counters.rejected, 2 * rejected);
});

const CLIENT: Inbound = { transport: 'udp', side: 'external', ip: '192.0.2.60', port: 5060, connectionId: 0 };
const NODE_SRC: Inbound = { transport: 'udp', side: 'external', ip: NODE_A.ip, port: NODE_A.ports.udp as number, connectionId: 0 };

function request(method: string, callId: string, opts: { toTag?: boolean; viaParams?: string; from?: Inbound } = {}): Buffer {
  const src = opts.from ?? CLIENT;
  return Buffer.from([
    `${method} sip:service@${LB_IP}:5060 SIP/2.0`, `Via: SIP/2.0/UDP ${src.ip}:${src.port};branch=z9hG4bK-${method}-${callId}${opts.viaParams ?? ''}`,
    'Max-Forwards: 70', 'From: <sip:a@example.org>;tag=f1', `To: <sip:service@example.org>${opts.toTag === true ? ';tag=t1' : ''}`,
    `Call-ID: ${callId}`, `CSeq: 1 ${method}`, 'Content-Length: 0', '', '',
  ].join('\r\n'), 'latin1');
}

/** A harness whose controller sheds everything it may (95 %, or dropping). */
function shedding(drop = false): ReturnType<typeof harness> {
  const h = harness({ config: { overloadControl: true } });
  const oc = h.proxy.overloadControl;
  assert.ok(oc !== null);
  oc.close();
  let now = Date.now() + 10_000;
  for (let i = 0; i < (drop ? 20 : 12); i++) oc.step(1, now += 100);
  assert.equal(oc.state, drop ? 'dropping' : 'shedding');
  return h;
}

test('proxy while shedding: most new INVITEs get 503 with Retry-After; ACK, BYE and the nodes\' requests pass', () => {
  const h = shedding();
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    const out = h.feed(request('INVITE', `shed-${i}`), CLIENT);
    const first = out[0]?.data.toString('latin1') ?? '';
    if (first.startsWith('SIP/2.0 503 Service Unavailable (overloaded)')) {
      refused++;
      assert.match(first, /^Retry-After: [2-6]\r$/m);
      assert.deepEqual([out[0].ip, out[0].port], [CLIENT.ip, CLIENT.port]);
    }
  }
  assert.ok(refused >= 170, `${refused} of 200 new INVITEs refused at 95 %`);
  assert.equal(h.stats.overload.rejected, refused);
  for (const method of ['BYE', 'ACK']) {
    const out = h.feed(request(method, 'in-dialog', { toTag: true }), CLIENT);
    assert.ok(out.every((m) => !m.data.toString('latin1').startsWith('SIP/2.0 503')), `${method} is not shed`);
  }
  const fromNode = h.feed(request('INVITE', 'node-originated', { from: NODE_SRC }), NODE_SRC);
  assert.ok(fromNode.every((m) => !m.data.toString('latin1').startsWith('SIP/2.0 503')), 'a node\'s new request is not shed');
});

test('proxy while shedding: a client that offers oc gets RFC 7339 parameters in its Via', () => {
  const h = shedding();
  for (let i = 0; i < 50; i++) {
    const out = h.feed(request('INVITE', `oc-${i}`, { viaParams: ';oc' }), CLIENT);
    const text = out[0]?.data.toString('latin1') ?? '';
    if (!text.startsWith('SIP/2.0 503')) continue;
    assert.match(text, /^Via: SIP\/2\.0\/UDP 192\.0\.2\.60:5060;branch=z9hG4bK-INVITE-oc-\d+;oc=95;oc-algo="loss";oc-validity=1000;oc-seq=\d+\r$/m);
    return;
  }
  assert.fail('no 503 in 50 INVITEs at 95 %');
});

const TCP_CLIENT: Inbound = { transport: 'tcp', side: 'external', ip: '192.0.2.61', port: 40000, connectionId: 7 };

test('proxy past the hard limit: new INVITEs over a stream are dropped unanswered and counted', () => {
  const h = shedding(true);
  let answered = 0;
  for (let i = 0; i < 100; i++) answered += h.feed(request('INVITE', `drop-${i}`, { from: TCP_CLIENT }), TCP_CLIENT).filter((m) => m.data.toString('latin1').startsWith('SIP/2.0 503')).length;
  assert.equal(answered, 0);
  assert.ok(h.stats.overload.dropped >= 85, `${h.stats.overload.dropped} dropped`);
  assert.equal(h.stats.dropped.get('overload'), h.stats.overload.dropped);
});

test('proxy past the hard limit: a new INVITE over UDP still gets its 503 (its client would resend it ten times)', () => {
  const h = shedding(true);
  let answered = 0;
  for (let i = 0; i < 100; i++) answered += h.feed(request('INVITE', `udp-${i}`), CLIENT).filter((m) => m.data.toString('latin1').startsWith('SIP/2.0 503')).length;
  assert.ok(answered >= 85, `${answered} of 100 answered`);
  assert.equal(h.stats.overload.dropped, 0);
});

test('proxy: the ACK for its own 503 is absorbed, not forwarded; an ACK for a node\'s answer is forwarded', () => {
  const h = shedding();
  for (let i = 0; i < 50; i++) {
    const callId = `ack-${i}`;
    const out = h.feed(request('INVITE', callId), CLIENT);
    const text = out[0]?.data.toString('latin1') ?? '';
    if (!text.startsWith('SIP/2.0 503')) continue;
    const tag = /^To: .*;tag=(lb[0-9a-f]{10})\r$/m.exec(text)?.[1];
    assert.ok(tag !== undefined, text);
    const ack = Buffer.from(request('ACK', callId).toString('latin1').replace('To: <sip:service@example.org>', `To: <sip:service@example.org>;tag=${tag}`), 'latin1');
    assert.deepEqual(h.feed(ack, CLIENT), [], 'nothing goes out for the ACK of a local 503');
    assert.equal(h.stats.dropped.get('ack-to-local-reply'), 1);
    const other = h.feed(request('ACK', callId, { toTag: true }), CLIENT);
    assert.equal(other.length, 1, 'an ACK with a node\'s tag goes on');
    return;
  }
  assert.fail('no 503 in 50 INVITEs at 95 %');
});
