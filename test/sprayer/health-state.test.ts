// A balancer's state from its rounds: the first round decides at once, then `fall` failures in
// a row take it out and `rise` passes in a row bring it back. Each row: rise, fall, the rounds
// (P pass, F fail), the states after each round.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthState, type BalancerState } from '../../src/sprayer/health-state.ts';

const U = 'up';
const D = 'down';
const CASES: Array<{ name: string; rise: number; fall: number; rounds: string; states: BalancerState[] }> = [
  { name: 'first pass: up at once', rise: 2, fall: 3, rounds: 'P', states: [U] },
  { name: 'first failure: down at once', rise: 2, fall: 3, rounds: 'F', states: [D] },
  { name: 'fall 3: two failures keep it up, the third takes it out', rise: 2, fall: 3, rounds: 'PFFF', states: [U, U, U, D] },
  { name: 'a pass between failures resets the count', rise: 2, fall: 3, rounds: 'PFFPFF', states: [U, U, U, U, U, U] },
  { name: 'rise 2: one pass keeps it down, the second brings it back', rise: 2, fall: 3, rounds: 'FPP', states: [D, D, U] },
  { name: 'a failure between passes resets the count', rise: 2, fall: 3, rounds: 'FPFPP', states: [D, D, D, D, U] },
  { name: 'rise 1 fall 1: every round decides', rise: 1, fall: 1, rounds: 'PFPF', states: [U, D, U, D] },
  { name: 'down, back, down again', rise: 2, fall: 2, rounds: 'PFFPPFF', states: [U, U, D, D, U, U, D] },
];

for (const c of CASES) {
  test(`rise ${c.rise} fall ${c.fall}, ${c.rounds}: ${c.name}`, () => {
    const h = new HealthState(c.rise, c.fall, 0);
    assert.equal(h.state, 'unknown');
    const got = [...c.rounds].map((r, i) => {
      h.record(r === 'P', r === 'P' ? 'udp: 200 OK' : 'udp: 503 Service Unavailable', i + 1);
      return h.state;
    });
    assert.deepEqual(got, c.states);
  });
}

test('a transition names from, to and the reason; since moves only on transitions', () => {
  const h = new HealthState(2, 2, 0);
  assert.deepEqual(h.record(true, 'udp: 200 OK', 10), { from: 'unknown', to: 'up', reason: 'udp: 200 OK' });
  assert.equal(h.record(false, 'udp: no answer within 2000 ms', 20), null);
  assert.equal(h.since, 10);
  assert.equal(h.consecutiveFail, 1);
  assert.deepEqual(h.record(false, 'udp: UDP port unreachable (nothing listening)', 30),
    { from: 'up', to: 'down', reason: 'udp: UDP port unreachable (nothing listening)' });
  assert.equal(h.since, 30);
  // While down, the reason stays the failure that took it out.
  assert.equal(h.record(true, 'udp: 200 OK', 40), null);
  assert.equal(h.reason, 'udp: UDP port unreachable (nothing listening)');
  assert.equal(h.consecutivePass, 1);
});

test('rise and fall below 1 are refused', () => {
  assert.throws(() => new HealthState(0, 3), RangeError);
  assert.throws(() => new HealthState(2, 0), RangeError);
});
