// Bounded waiting for tests: every poll has a deadline and fails with what it waited for.
//
// The timer and the clock are taken when this module loads (setTimeout) and from
// performance.now(), which node:test mock timers leave alone: a wait keeps real time while a test
// drives the code under test with `t.mock.timers` (which replaces the global setTimeout and Date).

import assert from 'node:assert/strict';

const realSetTimeout = globalThis.setTimeout;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => realSetTimeout(resolve, ms));

/** Polls `probe` every `everyMs` (20) ms until it returns true; fails naming `what` after `ms`. */
export async function eventually(what: string, ms: number, probe: () => Promise<boolean> | boolean, everyMs = 20): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (performance.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(everyMs);
  }
}

/** Resolves with the arguments of the next `event` of `emitter`; fails naming it after `ms`. */
export function nextEvent<T extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = realSetTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}
