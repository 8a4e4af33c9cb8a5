// The memory a fuzzing worker and its supervisor share: [sequence, length, variant, index] and
// the current input's bytes.

import { MAX_INPUT } from './mutate.ts';

export const SHARED_HEADER = 4 * Int32Array.BYTES_PER_ELEMENT;

export function newShared(): SharedArrayBuffer {
  return new SharedArrayBuffer(SHARED_HEADER + MAX_INPUT);
}

export function sharedViews(shared: SharedArrayBuffer): { meta: Int32Array; bytes: Uint8Array } {
  return { meta: new Int32Array(shared, 0, 4), bytes: new Uint8Array(shared, SHARED_HEADER) };
}
