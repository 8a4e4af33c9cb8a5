// siplb's native addons, native/build/<name>.node, compiled at install by native/build.cjs from
// native/<name>.c. Each is optional: without it (no C compiler, not Linux) siplb does the same
// work in JavaScript, and the caller says at start-up what it runs without.

import { createRequire } from 'node:module';

export type AddonResult<T> = { addon: T; problem: null } | { addon: null; problem: string };

/** Loads native/build/<name>.node (next to src/ or dist/: both one level below the package root) and checks it exports `functions`. */
export function loadNativeAddon<T>(name: string, functions: readonly string[]): AddonResult<T> {
  if (process.platform !== 'linux') return { addon: null, problem: `not on Linux (${process.platform})` };
  const file = `native/build/${name}.node`;
  const require = createRequire(import.meta.url);
  try {
    const addon = require(`../../${file}`) as Record<string, unknown>;
    const missing = functions.filter((f) => typeof addon[f] !== 'function');
    if (missing.length > 0) return { addon: null, problem: `${file} lacks ${missing.join(', ')}: rebuild it with node native/build.cjs` };
    return { addon: addon as T, problem: null };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      addon: null,
      problem: code === 'MODULE_NOT_FOUND'
        ? `${file} is not built (node native/build.cjs builds it; it needs a C compiler)`
        : `${file} does not load: ${(err as Error).message}`,
    };
  }
}
