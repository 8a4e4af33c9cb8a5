// The profile script's arithmetic: self time per function from a V8 .cpuprofile, idle apart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selfTimes } from '../../scripts/profile.ts';

test('selfTimes sums each sample\'s delta on its function, idle apart, sorted by time', () => {
  const frame = (functionName: string, url = '', lineNumber = -1) => ({ functionName, url, lineNumber });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)') },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('doSend', 'node:dgram', 832) },
      { id: 4, callFrame: frame('', 'file:///repo/src/proxy/proxy.ts', 201) },
    ],
    samples: [2, 3, 4, 3, 2, 3],
    timeDeltas: [5000, 1000, 2000, 1000, 5000, 1000],
  };
  const { rows, idleMs, totalMs } = selfTimes(profile);
  assert.equal(idleMs, 10);
  assert.equal(totalMs, 15);
  assert.deepEqual(rows, [
    { where: 'doSend node:dgram:833', ms: 3 },
    { where: '(anonymous) proxy.ts:202', ms: 2 },
  ]);
});
