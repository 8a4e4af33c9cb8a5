// HTTP passive health: the threshold and window (as SIP's maxNumberResponsesWithError within
// maxErrorTime), which statuses count, and the ways back (recovered(), good probes in a row).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { SipNode } from '../../src/cluster/node.ts';
import { HttpHealth, isNodeFailureStatus, type HttpHealthOptions } from '../../src/http/http-health.ts';
import { snapshotOf } from '../helpers/cluster.ts';
import { eventually } from '../helpers/wait.ts';

const N: SipNode = { id: '10.0.0.1:5080', ip: '10.0.0.1', ports: { udp: 5080 }, weight: 1, http: { port: 8080 } };

function health(over: Partial<HttpHealthOptions> = {}): HttpHealth {
  return new HttpHealth({
    maxErrors: 2, windowMs: 1000, probeIntervalMs: 0, probeSuccesses: 1,
    log: pino({ level: 'silent' }), probe: async () => true, cluster: () => snapshotOf([N]), ...over,
  });
}

const statuses: [number, boolean][] = [
  [200, false], [404, false], [499, false], [500, true], [501, false], [502, true], [503, true], [504, true], [505, false], [599, true],
];
for (const [status, counts] of statuses) {
  test(`status ${status} ${counts ? 'counts' : 'does not count'} against the node`, () => assert.equal(isNodeFailureStatus(status), counts));
}

test('more than maxErrors failures within the window take the node out; the version moves', () => {
  const h = health();
  h.failure(N.id, 'a', 0);
  h.failure(N.id, 'b', 100);
  assert.equal(h.isOut(N.id), false, 'two failures are not more than two');
  const v = h.version;
  h.failure(N.id, 'c', 200);
  assert.equal(h.isOut(N.id), true);
  assert.ok(h.version > v);
  assert.deepEqual(h.outNodes().map((o) => o.nodeId), [N.id]);
  assert.match(h.outNodes()[0].reason, /3 HTTP failures within 1000 ms, the last: c/);
});

test('failures older than the window do not count', () => {
  const h = health();
  h.failure(N.id, 'a', 0);
  h.failure(N.id, 'b', 100);
  h.failure(N.id, 'c', 1500);
  h.failure(N.id, 'd', 1600);
  assert.equal(h.isOut(N.id), false);
  h.failure(N.id, 'e', 1700);
  assert.equal(h.isOut(N.id), true);
});

test('recovered() brings a node back with a clean count; forget() drops it', () => {
  const h = health({ maxErrors: 0 });
  h.failure(N.id, 'a', 0);
  assert.equal(h.outCount, 1);
  h.recovered(N.id, 'test');
  assert.equal(h.outCount, 0);
  h.failure(N.id, 'b', 10);
  h.forget(N.id);
  assert.equal(h.isOut(N.id), false);
});

test('probes go only to nodes that are out, and bring one back after probeSuccesses good ones in a row', async (t) => {
  const answers = [false, true, false, true, true];
  let probes = 0;
  const h = health({
    maxErrors: 0, probeIntervalMs: 20, probeSuccesses: 2,
    probe: async () => answers[Math.min(probes++, answers.length - 1)],
  });
  t.after(() => h.close());
  h.start();
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(probes, 0, 'a node that is in is not probed');
  h.failure(N.id, 'a');
  await eventually('back after two good probes in a row', 2000, () => !h.isOut(N.id));
  assert.equal(probes, 5);
});

test('takeOut: out at once with the reason given, once; recovered brings it back', () => {
  const h = health();
  const v = h.version;
  h.takeOut(N.id, 'status 400 to GET /a (requestCheckPattern)', 5);
  assert.ok(h.isOut(N.id));
  assert.equal(h.version, v + 1);
  h.takeOut(N.id, 'again', 6);
  assert.equal(h.version, v + 1, 'a node already out is not taken out again');
  assert.deepEqual(h.outNodes(), [{ nodeId: N.id, since: 5, reason: 'status 400 to GET /a (requestCheckPattern)' }]);
  h.recovered(N.id, 'probes');
  assert.equal(h.isOut(N.id), false);
});
