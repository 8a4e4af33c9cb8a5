// What every siplb command does with its command line and its signals, so the three commands
// read their flags, report a bad one and stop alike.

import { parseArgs } from 'node:util';
import type { ParseArgsOptionsConfig } from 'node:util';
import { SiplbError, UsageError } from '../core/errors.ts';
import { isLogLevel, LOG_LEVELS, type LogFormat, type LogLevel } from '../core/log.ts';

export type ArgValues = Record<string, string | boolean | undefined>;

/** parseArgs with its errors turned into one-line UsageErrors. */
export function parseCommandLine(argv: string[], options: ParseArgsOptionsConfig): ArgValues {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as ArgValues;
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    throw new UsageError(text.split('\n')[0]);
  }
}

export function stringArg(values: ArgValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** An integer flag in [min, max]; undefined when absent. */
export function integerArg(values: ArgValues, name: string, min: number, max: number): number | undefined {
  const v = stringArg(values, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`--${name} ${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
  }
  return Number(v);
}

/** --log-level, else LOG_LEVEL from the environment, else info. */
export function logLevelArg(value: string | undefined): LogLevel {
  const level = value ?? process.env.LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/** --log-format json|pretty; absent: pretty on a terminal, JSON lines otherwise (files, pipes, supervisors). */
export function logFormatArg(value: string | undefined): LogFormat {
  if (value === undefined) return process.stdout.isTTY === true ? 'pretty' : 'json';
  if (value !== 'json' && value !== 'pretty') throw new UsageError(`--log-format ${JSON.stringify(value)}: expected json or pretty`);
  return value;
}

/**
 * Ends the command on an error it stopped for: one line on stderr and the exit code its class
 * gives (2 usage or configuration, 1 bind); a usage error also shows the usage line. Anything that
 * is not a SiplbError is a bug and is thrown on, to be printed with its stack.
 */
export function exitOnError(program: string, err: unknown, usage: string): never {
  if (!(err instanceof SiplbError)) throw err;
  const line = err instanceof UsageError ? `${err.message}; ${usage}` : err.message;
  process.stderr.write(`${program}: ${line}\n`);
  process.exit(err.exitCode);
}

/** Prints a bug's stack on stderr and exits 1: the last resort of every command's main(). */
export function exitOnBug(program: string): (err: unknown) => never {
  return (err) => {
    process.stderr.write(`${program}: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  };
}

/**
 * First SIGTERM/SIGINT runs `graceful`, a second one `immediate`; each gets the signal name.
 * Both are expected to end the process themselves.
 */
export function onTerminationSignals(graceful: (signal: string) => void, immediate: (signal: string) => void): void {
  let received = 0;
  const handler = (signal: NodeJS.Signals): void => {
    received++;
    if (received === 1) graceful(signal);
    else if (received === 2) immediate(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
