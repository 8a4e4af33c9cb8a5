// The workers' shared node view (registry-relay.ts): worker 0's registry as a view, applied to a
// follower's registry; the follower's own passive decisions reported back and applied by worker 0.
// Real clock: the relay compares heartbeat times with Date.now(), as the workers do.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';
import { applyPassiveReport, viewOf, ViewFollower, type PassiveReport } from '../../src/cluster/registry-relay.ts';
import type { SipNode } from '../../src/cluster/node.ts';
import type { NodeRegistration } from '../../src/heartbeat/protocol.ts';

const log = pino({ level: 'silent' });
const STATIC_A: SipNode = { id: '10.0.0.1:5080', ip: '10.0.0.1', ports: { udp: 5080 }, weight: 1 };
const REG_B: NodeRegistration = { ip: '10.0.0.2', ports: { udp: 5080 }, sessionId: 'b-1', version: '0' };
const B = '10.0.0.2:5080';

function pair(): { leader: NodeRegistry; follower: NodeRegistry; relay: ViewFollower; sync: () => void } {
  const make = (): NodeRegistry => {
    const r = new NodeRegistry({ nodeTimeoutMs: 8400, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 10, log });
    r.addStatic([STATIC_A]);
    return r;
  };
  const leader = make();
  const follower = make();
  const relay = new ViewFollower(follower, log);
  return { leader, follower, relay, sync: () => relay.apply(JSON.parse(JSON.stringify(viewOf(leader)))) };
}

test('a node registered with worker 0 is selectable on the follower; its drain and its stop follow', () => {
  const { leader, follower, sync } = pair();
  leader.start(REG_B);
  sync();
  assert.deepEqual(follower.snapshot().selectable.map((n) => n.id).sort(), [STATIC_A.id, B]);
  assert.equal(follower.get(B)?.origin, 'remote');
  // Applying the same view again changes nothing.
  const before = follower.snapshot();
  sync();
  assert.equal(follower.snapshot(), before);

  leader.shutdown('b-1');
  sync();
  assert.equal(follower.snapshot().stateOf(B), 'draining');
  leader.stop('b-1');
  sync();
  assert.equal(follower.get(B), undefined);
});

test('health, weight and admin drains of worker 0 reach the follower; static nodes are not duplicated', () => {
  const { leader, follower, sync } = pair();
  leader.setHealthy(STATIC_A.id, false, 'probe failed');
  leader.setWeight(STATIC_A.id, 7);
  sync();
  assert.equal(follower.snapshot().stateOf(STATIC_A.id), 'down');
  assert.equal(follower.get(STATIC_A.id)?.node.weight, 7);
  assert.equal(follower.list().length, 1);
  leader.setHealthy(STATIC_A.id, true, 'probe passed');
  leader.adminDrain(STATIC_A.id, true);
  sync();
  assert.equal(follower.snapshot().stateOf(STATIC_A.id), 'draining');
  assert.equal(follower.get(STATIC_A.id)?.adminDrained, true);
  leader.adminDrain(STATIC_A.id, false);
  sync();
  assert.equal(follower.snapshot().stateOf(STATIC_A.id), 'active');
});

test("a follower's passive decision goes to worker 0 and comes back in its view; a view does not undo it meanwhile", () => {
  const { leader, follower, relay, sync } = pair();
  const reports: PassiveReport[] = [];
  relay.onPassiveReport((r) => reports.push(r));
  follower.setPassiveDown(STATIC_A.id, 'errors seen by worker 1', 'errors');
  assert.deepEqual(reports, [{ id: STATIC_A.id, down: true, cause: 'errors' }]);
  // Worker 0 has not applied it yet: its view still has the node in; the follower keeps it out.
  sync();
  assert.equal(follower.snapshot().stateOf(STATIC_A.id), 'draining');
  applyPassiveReport(leader, reports[0], 1);
  assert.equal(leader.snapshot().stateOf(STATIC_A.id), 'draining');
  assert.equal(leader.get(STATIC_A.id)?.passiveCause, 'errors');
  // Views do not make the follower report again.
  sync();
  assert.equal(reports.length, 1);

  follower.clearPassiveDown(STATIC_A.id, 'errors', 'probe');
  assert.deepEqual(reports[1], { id: STATIC_A.id, down: false, cause: 'errors' });
  applyPassiveReport(leader, reports[1], 1);
  assert.equal(leader.snapshot().stateOf(STATIC_A.id), 'active');
});

test("worker 0's passive decisions reach a follower that has not decided anything itself", () => {
  const { leader, follower, sync } = pair();
  leader.setPassiveDown(STATIC_A.id, 'silence', 'silence');
  sync();
  assert.equal(follower.get(STATIC_A.id)?.passiveCause, 'silence');
  leader.clearPassiveDown(STATIC_A.id, 'silence', 'answered');
  sync();
  assert.equal(follower.get(STATIC_A.id)?.passiveDown, false);
});
