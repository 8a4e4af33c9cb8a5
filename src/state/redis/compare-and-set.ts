// The compare-and-set behind AssignmentMap.claim(key, nodeId, replacing): take the key when it is
// absent or holds exactly `replacing`, answer what it holds afterwards. It must be one atomic step
// in Redis (a GET then a SET from here would let two balancers both see the old node and both
// write), so it is a Lua script over its one key: routed by that key's slot in a Redis Cluster like
// any single-key command. It is sent by its SHA1 (EVALSHA); a server that does not have it cached
// yet (first use, a restart, another cluster master) answers NOSCRIPT and gets the script itself
// (EVAL), which caches it there.
//
// A claim without `replacing` does not need it: SET NX (plus a GET only when the key was taken)
// is one plain command on the hot path of every new call, cheaper for redis-server than a script.

import { createHash } from 'node:crypto';
import type { Commands } from './connection.ts';

const SCRIPT = `local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return cur`;

const SHA1 = createHash('sha1').update(SCRIPT).digest('hex');

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Sets `key` to `value` with a TTL of `ttlMs` when it is absent or holds `replacing`; resolves to
 * what the key holds afterwards (null for a reply that is not a string). Rejects as the command
 * does; may throw synchronously as node-redis may.
 */
export function compareAndSet(c: Commands, key: string, value: string, ttlMs: string, replacing: string): Promise<string | null> {
  const options = { keys: [key], arguments: [value, ttlMs, replacing] };
  return c.evalSha(SHA1, options)
    .catch((err: unknown) => (isNoScript(err) ? c.eval(SCRIPT, options) : Promise.reject(err)))
    .then((held) => (typeof held === 'string' ? held : null));
}
