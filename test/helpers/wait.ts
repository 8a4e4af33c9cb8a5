// Bounded waiting for tests: every poll has a deadline and fails with what it waited for.

import assert from 'node:assert/strict';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 20 ms until it returns true; fails naming `what` after `ms`. */
export async function eventually(what: string, ms: number, probe: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}
