// A pino logger whose lines a test can read back, parsed.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export function capturingLogger(level: 'debug' | 'info' | 'warn' = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}
