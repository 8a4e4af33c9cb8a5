// The counters worker 0's admin API shows with workers > 1 (worker-stats.ts): its own plus the
// other workers' digests, in every form the admin surface reads them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyStats } from '../../src/proxy/stats.ts';
import { digestOf, summedStats } from '../../src/wiring/worker-stats.ts';

function counted(calls: number, node: string): ProxyStats {
  const s = new ProxyStats();
  for (let i = 0; i < calls; i++) {
    s.requestsIn += 3;
    s.requestsForwarded += 3;
    s.callsStarted++;
    s.countRequest('udp', 'INVITE');
    s.countResponse('udp', 200);
    s.countReply(100);
    s.countSentTo(node);
  }
  s.countDrop('no-tcp-socket');
  return s;
}

test('counters, maps and per-transport tables are summed; JSON shows the sums', () => {
  const own = counted(5, 'a');
  const other = counted(7, 'b');
  // Through IPC: plain data.
  const digest = JSON.parse(JSON.stringify(digestOf(other)));
  const sum = summedStats(own, () => [digest]);
  assert.equal(sum.callsStarted, 12);
  assert.equal(sum.requestsIn, 36);
  assert.equal(sum.localReplies.get(100), 12);
  assert.equal(sum.dropped.get('no-tcp-socket'), 2);
  assert.equal(sum.requestsByMethod.udp.get('INVITE'), 12);
  assert.equal(sum.responsesByClass.udp[2], 12);
  assert.equal(sum.sentToNode.get('a'), 5);
  assert.equal(sum.sentToNode.get('b'), 7);
  const json = sum.toJSON() as { callsStarted: number; localReplies: Record<string, number> };
  assert.equal(json.callsStarted, 12);
  assert.deepEqual(json.localReplies, { 100: 12 });
  // The worker's own counters are untouched.
  assert.equal(own.callsStarted, 5);
});

test('writes and methods go to the worker\'s own counters; no digest yet: its own figures', () => {
  const own = new ProxyStats();
  const digests: ReturnType<typeof digestOf>[] = [];
  const sum = summedStats(own, () => digests);
  sum.countDrop('x');
  const hook = (): void => undefined;
  sum.observeHandling = hook;
  assert.equal(own.dropped.get('x'), 1);
  assert.equal(own.observeHandling, hook);
  assert.equal(sum.dropped.get('x'), 1);
  digests.push(digestOf(counted(2, 'a')));
  assert.equal(sum.dropped.get('x'), 1);
  assert.equal(sum.dropped.get('no-tcp-socket'), 1);
  assert.equal(sum.callsStarted, 2);
});
