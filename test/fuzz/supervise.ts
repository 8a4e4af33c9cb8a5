// Runs engine.ts in a worker and watches it: an input that does not return within `stallMs` is a
// hang the engine cannot time itself (an endless loop never gets back to its clock), so the
// worker is stopped and the input it was on, read from shared memory, is the reproducer.

import { Worker } from 'node:worker_threads';
import type { FuzzOptions, FuzzResult } from './engine.ts';
import { writeReproducer } from './engine.ts';
import { newShared, sharedViews } from './shared.ts';

export interface SuperviseOptions extends FuzzOptions {
  /** No new input for this long: the worker is stopped and the run reports a hang. */
  stallMs: number;
}

export function fuzzInWorker(o: SuperviseOptions): Promise<FuzzResult> {
  const shared = newShared();
  const { meta, bytes } = sharedViews(shared);
  const { stallMs, ...options } = o;
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: { options, shared } });
  const started = performance.now();
  return new Promise<FuzzResult>((resolve, reject) => {
    let lastSeq = -1;
    let lastChange = performance.now();
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearInterval(watch);
      fn();
    };
    const watch = setInterval(() => {
      const seq = Atomics.load(meta, 0);
      const now = performance.now();
      if (seq !== lastSeq) {
        lastSeq = seq;
        lastChange = now;
        return;
      }
      if (now - lastChange < stallMs) return;
      const data = Buffer.from(bytes.subarray(0, meta[1]));
      const f = { kind: 'hang' as const, target: o.target, seed: o.seed, index: meta[3], variant: meta[2], data: data.toString('base64'), detail: `no return within ${stallMs} ms: worker stopped` };
      const file = o.reproDir === null ? undefined : writeReproducer(o.reproDir, f, data);
      void worker.terminate();
      finish(() => resolve({
        target: o.target, seed: o.seed, inputs: seq, elapsedMs: performance.now() - started, crashes: 0, hangs: 1,
        slowOnce: 0, slowestMs: now - lastChange, corpus: 0, signatures: 0, findings: [{ ...f, file }],
      }));
    }, 100);
    worker.once('message', (r: FuzzResult) => finish(() => { void worker.terminate(); resolve(r); }));
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) => finish(() => reject(new Error(`fuzz worker exited with code ${code} before reporting`))));
  });
}

export function formatResult(r: FuzzResult): string {
  const rate = r.inputs / (r.elapsedMs / 1000);
  return `${r.target.padEnd(6)} seed ${String(r.seed).padStart(10)}: ${String(r.inputs).padStart(8)} inputs in ${(r.elapsedMs / 1000).toFixed(1)} s `
    + `(${Math.round(rate)}/s), crashes ${r.crashes}, hangs ${r.hangs}, slowest ${r.slowestMs.toFixed(1)} ms, `
    + `corpus ${r.corpus}, signatures ${r.signatures}`;
}
