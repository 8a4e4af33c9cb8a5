// One fuzzing run in a worker thread, so its supervisor (supervise.ts) can stop an input that
// never returns. Before each input its bytes are copied into shared memory with a sequence
// number: what the supervisor needs to name the input that hung, with this thread frozen.

import { parentPort, workerData } from 'node:worker_threads';
import { runFuzz, type FuzzOptions } from './engine.ts';
import { sharedViews } from './shared.ts';

const { options, shared } = workerData as { options: FuzzOptions; shared: SharedArrayBuffer };
const { meta, bytes } = sharedViews(shared);

const result = runFuzz(options, (input, index) => {
  const n = Math.min(input.data.length, bytes.length);
  bytes.set(input.data.subarray(0, n));
  meta[1] = n;
  meta[2] = input.variant;
  meta[3] = index;
  Atomics.add(meta, 0, 1);
});
parentPort?.postMessage(result);
