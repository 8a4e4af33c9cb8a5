// One pino logger for the process: JSON lines on stdout, level from --log-level / LOG_LEVEL.

import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** `name` tells the processes apart when their logs are merged (siplb, siplb-node, siplb-demo-node). */
export function createLogger(level: LogLevel, name = 'siplb'): Logger {
  return pino({ level, base: { name } });
}

/**
 * Start-up and shutdown lines (`siplb ready`, `siplb stopping`) are printed at every level:
 * supervisors and scripts wait for them even when an operator runs at warn or error.
 */
export function createLifecycleLogger(name = 'siplb'): Logger {
  return pino({ level: 'info', base: { name } });
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
