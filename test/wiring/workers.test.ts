// The worker side of workers > 1 (workers.ts) without processes: which process is a worker.
// test/e2e/workers.test.ts runs the supervisor and its workers for real.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WORKER_ENV, workerIndexFromEnv } from '../../src/wiring/workers.ts';

test('SIPLB_WORKER names the worker as index/count; anything else is not a worker', () => {
  const CASES: [string | undefined, { index: number; count: number } | null][] = [
    ['0/2', { index: 0, count: 2 }],
    ['3/4', { index: 3, count: 4 }],
    ['2/2', null],
    ['1', null],
    ['-1/2', null],
    ['', null],
    [undefined, null],
  ];
  for (const [value, want] of CASES) {
    assert.deepEqual(workerIndexFromEnv(value === undefined ? {} : { [WORKER_ENV]: value }), want, String(value));
  }
});
