// One pino logger for the process: JSON lines on stdout (or human-readable lines through
// pino-pretty, --log-format pretty, the default on a terminal), level from --log-level / LOG_LEVEL.

import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

let format: LogFormat = 'json';

/** How every logger created from now on writes (the CLI sets it once, before creating any). */
export function setLogFormat(f: LogFormat): void {
  format = f;
}

/** pino-pretty as a synchronous stream, loaded only when asked for: JSON costs nothing extra. */
function destination(): DestinationStream | undefined {
  if (format === 'json') return undefined;
  const pretty = createRequire(import.meta.url)('pino-pretty') as (opts: Record<string, unknown>) => DestinationStream;
  return pretty({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** `name` tells the processes apart when their logs are merged (siplb, siplb-node, siplb-demo-node). */
export function createLogger(level: LogLevel, name = 'siplb'): Logger {
  return pino({ level, base: { name } }, destination() as DestinationStream);
}

/**
 * Start-up and shutdown lines (`siplb ready`, `siplb stopping`) are printed at every level:
 * supervisors and scripts wait for them even when an operator runs at warn or error.
 */
export function createLifecycleLogger(name = 'siplb'): Logger {
  return pino({ level: 'info', base: { name } }, destination() as DestinationStream);
}

/**
 * A gate for log lines that input can trigger: true at most once per interval, so a flood of bad
 * input (or a bug hit by every message) leaves a trace without flooding the log.
 */
export function rateLimit(intervalMs: number): () => boolean {
  let last = -Infinity;
  return () => {
    const now = Date.now();
    if (now - last < intervalMs) return false;
    last = now;
    return true;
  };
}

/**
 * `rateLimit` per key (a peer's address): true at most once per interval for each key. At most
 * `maxKeys` keys are remembered, so a flood from many (or forged) sources cannot grow memory; when
 * all of them are within their interval, every further key shares one gate of its own, which
 * still leaves a trace of the flood without a line per source.
 */
export function rateLimitPerKey(intervalMs: number, maxKeys: number): (key: string) => boolean {
  // A key is inserted only when it passes, and it passes only once its previous entry expired and
  // was dropped: insertion order is time order, so expired entries are always at the front.
  const last = new Map<string, number>();
  const overflow = rateLimit(intervalMs);
  return (key) => {
    const now = Date.now();
    for (const [k, at] of last) {
      if (now - at < intervalMs) break;
      last.delete(k);
    }
    if (last.has(key)) return false;
    if (last.size >= maxKeys) return overflow();
    last.set(key, now);
    return true;
  };
}
