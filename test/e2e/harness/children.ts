// Child processes owned by a test or benchmark process (siplb, sipp, kamailio).
//
// Every child spawned through spawnOwned() is killed with SIGKILL, by its own pid, when this
// process exits or is told to stop by a signal, so a failing assertion, an uncaught exception or
// the test runner's timeout never leaves a load generator or balancer running on the machine.

import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';

export interface ExitStatus {
  code: number | null;          // null when ended by a signal
  signal: NodeJS.Signals | null;
}

export interface OwnedChild {
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  /** True once the 'exit' event was seen. */
  hasExited(): boolean;
}

const live = new Set<ChildProcess>();
const extraCleanups = new Set<() => void>();
let hooksInstalled = false;

function killAllNow(): void {
  for (const cleanup of extraCleanups) {
    try {
      cleanup();
    } catch {
      // A cleanup must not stop the others from running.
    }
  }
  extraCleanups.clear();
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already reaped between the check and the kill.
      }
    }
  }
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow();
      process.removeListener(sig, onSignal);
      // With our listener gone the default action applies again (unless someone else listens),
      // so the process still dies of the signal as it would have without this module.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/**
 * Registers a synchronous cleanup to run when this process exits or is stopped by a signal, for
 * processes that are not our direct children (e.g. the workers a daemon forks). Returns a
 * function that unregisters it.
 */
export function registerCleanup(cleanup: () => void): () => void {
  installHooks();
  extraCleanups.add(cleanup);
  return () => {
    extraCleanups.delete(cleanup);
  };
}

/** Spawns a child that this process owns: tracked for kill-on-exit, exit status as a promise. */
export function spawnOwned(command: string, args: readonly string[], options: SpawnOptions): OwnedChild {
  installHooks();
  const child = spawn(command, args, options);
  let done = false;
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    child.once('error', (err) => {
      // 'error' without 'exit' means the spawn itself failed (ENOENT, EACCES).
      if (child.pid === undefined) {
        done = true;
        live.delete(child);
        reject(err);
      }
    });
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(child);
      resolve({ code, signal });
    });
  });
  // Callers that only care about the exit through other paths must not crash on a spawn error.
  exited.catch(() => undefined);
  if (child.pid === undefined) {
    return { pid: -1, process: child, exited, hasExited: () => true };
  }
  live.add(child);
  return { pid: child.pid, process: child, exited, hasExited: () => done };
}

/**
 * Sends `signal`, waits up to `graceMs` for the exit, then SIGKILLs and waits for that exit.
 * Returns the exit status and whether the hard kill was needed.
 */
export async function terminate(
  owned: OwnedChild,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<{ status: ExitStatus; forced: boolean }> {
  if (owned.hasExited()) return { status: await owned.exited, forced: false };
  try {
    owned.process.kill(signal);
  } catch {
    // Exited in the meantime; the exit promise settles below.
  }
  const timer = new Promise<'timeout'>((resolve) => {
    const t = setTimeout(() => resolve('timeout'), graceMs);
    t.unref();
  });
  const first = await Promise.race([owned.exited, timer]);
  if (first !== 'timeout') return { status: first, forced: false };
  try {
    owned.process.kill('SIGKILL');
  } catch {
    // Exited just now.
  }
  return { status: await owned.exited, forced: true };
}

/** Feeds both of a child's output streams into one buffer (their relative order kept); returns the buffer. */
export function captureOutput(owned: OwnedChild, into: LineBuffer): LineBuffer {
  for (const stream of [owned.process.stdout, owned.process.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => into.push(chunk));
  }
  return into;
}

/**
 * Keeps the most recent lines of a stream. Partial lines are held until their newline so that
 * a JSON log line split across chunks is still one line.
 */
export class LineBuffer {
  private readonly maxLines: number;
  private readonly lines: string[] = [];
  private partial = '';
  private droppedCount = 0;
  private readonly listeners: Array<(line: string) => void> = [];

  constructor(maxLines: number) {
    this.maxLines = maxLines;
  }

  push(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) this.add(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
  }

  /** Flushes a trailing line without newline (call when the stream ends). */
  end(): void {
    if (this.partial !== '') {
      this.add(this.partial);
      this.partial = '';
    }
  }

  onLine(listener: (line: string) => void): void {
    this.listeners.push(listener);
  }

  snapshot(): string[] {
    return this.lines.slice(-this.maxLines);
  }

  get dropped(): number {
    return this.droppedCount + Math.max(0, this.lines.length - this.maxLines);
  }

  private add(line: string): void {
    this.lines.push(line);
    // Trim in batches: shifting one line per push is quadratic under a debug-level log flood.
    if (this.lines.length >= 2 * this.maxLines) {
      const excess = this.lines.length - this.maxLines;
      this.lines.splice(0, excess);
      this.droppedCount += excess;
    }
    for (const listener of this.listeners) listener(line);
  }
}
