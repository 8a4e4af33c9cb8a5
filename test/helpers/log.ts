// A pino logger whose lines a test can read back, parsed.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** `L`: the shape a test reads its lines as (pino's JSON lines, parsed). */
export function capturingLogger<L = Record<string, unknown>>(level: 'debug' | 'info' | 'warn' = 'info'): { log: Logger; lines: L[] } {
  const lines: L[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as L);
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}
