// Starts the real siplb CLI as a child process for end-to-end tests and the benchmark.
//
// The contract relied on (src/cli/siplb.ts): `siplb [lb.properties] [--log-level L]` logs pino
// JSON lines on stdout, one of which has msg "siplb ready" once every socket is bound; SIGTERM
// and SIGINT end it with exit code 0; a bad configuration prints one line on stderr and exits 2.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineBuffer, spawnOwned, terminate } from './children.ts';
import { allocatePort } from './ports.ts';
import type { ExitStatus, OwnedChild } from './children.ts';

export type SiplbLogLevel = 'error' | 'warn' | 'info' | 'debug';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SIPLB_CLI = join(REPO_ROOT, 'src', 'cli', 'siplb.ts');
/**
 * What npm start and npx siplb run: the version check, then dist/cli/siplb.js when dist/ is built
 * from src/ as it is (npm ci builds it), else SIPLB_CLI with Node's compile cache on (so that from
 * the second start on no type stripper is loaded, about 30 MB less RSS). The harness starts siplb
 * this way, so that tests and benchmarks see what operators run.
 */
export const SIPLB_LAUNCHER = join(REPO_ROOT, 'bin', 'siplb.cjs');

/**
 * The Node that runs siplb: the pinned one in node_modules (a real ELF binary, not a shim, so
 * the child pid is the balancer itself and /proc/PID/stat measures the balancer's CPU).
 */
export function nodeBinary(): string {
  const pinned = join(REPO_ROOT, 'node_modules', '.bin', 'node');
  return existsSync(pinned) ? pinned : process.execPath;
}

export interface SiplbOptions {
  logLevel?: SiplbLogLevel;   // passed as --log-level; default: the CLI's own default
  readyTimeoutMs?: number;    // default 20 000
  stopGraceMs?: number;       // SIGTERM -> SIGKILL delay in stop(); default 3 000
  maxLogLines?: number;       // lines kept for logs(); default 50 000
  extraArgs?: string[];       // appended to the command line
  nodeFlags?: string[];       // Node flags after the CLI's own (e.g. --cpu-prof for scripts/profile.ts)
  netns?: string;             // network namespace to run in (`ip netns exec`); ports are then the caller's
  executable?: string;        // run this file (an installed siplb: its shebang picks Node and flags) instead of src/cli/siplb.ts
  env?: NodeJS.ProcessEnv;    // the child's environment (default: the test's)
}

export interface SiplbHandle {
  readonly pid: number;
  readonly propertiesPath: string;
  /** Exit code; null if the process died of a signal (e.g. the SIGKILL fallback of stop()). */
  readonly exitCode: Promise<number | null>;
  readonly exit: Promise<ExitStatus>;
  /** True once the process has exited (whatever the reason). */
  hasExited(): boolean;
  /** SIGTERM, wait up to stopGraceMs, then SIGKILL. Idempotent; also removes the temp files. */
  stop(): Promise<void>;
  /** stdout and stderr lines, in arrival order (stdout lines are pino JSON). */
  logs(): string[];
  /** stdout lines that parsed as JSON objects. */
  jsonLogs(): Array<Record<string, unknown>>;
}

/** siplb's first 'node state' log line for `nodeId` whose detail starts with `detailPrefix`, if any. */
export function nodeStateLine(lb: SiplbHandle, nodeId: string, detailPrefix: string): Record<string, unknown> | undefined {
  return lb.jsonLogs().find((l) => l.msg === 'node state' && l.node === nodeId && String(l.detail).startsWith(detailPrefix));
}

/** lb.properties text from a key/value map (values are written verbatim, one key per line). */
export function propertiesText(props: Record<string, string>): string {
  return Object.entries(props)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n') + '\n';
}

function isReadyLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null && (parsed as { msg?: unknown }).msg === 'siplb ready';
  } catch {
    return false;
  }
}

function describeOutput(lines: string[]): string {
  const tail = lines.slice(-60);
  return tail.length === 0 ? '(no output)' : tail.join('\n');
}

/**
 * The Node flags on the CLI's `#!/usr/bin/env -S node ...` line (the young generation's cap), so
 * tests and benchmarks run siplb with the heap it has when installed; [] for a plain `node` line.
 */
export function cliNodeFlags(file: string = SIPLB_CLI): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env(?: -S)? node((?:\s+--\S+)*)\s*$/.exec(first);
  if (m === null) throw new Error(`${file}: first line is not a node shebang: ${first}`);
  return m[1].trim() === '' ? [] : m[1].trim().split(/\s+/);
}

function spawnCli(propertiesPath: string, opts: SiplbOptions): { owned: OwnedChild; lines: LineBuffer } {
  const args = opts.executable === undefined ? [...cliNodeFlags(), ...(opts.nodeFlags ?? []), SIPLB_LAUNCHER, propertiesPath] : [propertiesPath];
  if (opts.logLevel !== undefined) args.push('--log-level', opts.logLevel);
  if (opts.extraArgs !== undefined) args.push(...opts.extraArgs);
  const owned = opts.executable !== undefined
    ? spawnOwned(opts.executable, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT, env: opts.env ?? process.env })
    : opts.netns === undefined
    ? spawnOwned(nodeBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT, env: opts.env ?? process.env })
    : spawnOwned('ip', ['netns', 'exec', opts.netns, nodeBinary(), ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  const lines = new LineBuffer(opts.maxLogLines ?? 50_000);
  owned.process.stdout?.setEncoding('utf8');
  owned.process.stderr?.setEncoding('utf8');
  // One buffer for both streams keeps their relative order, which is what a reader of a
  // failure message needs; stderr lines are recognisable as non-JSON.
  const errLines = new LineBuffer(1);
  errLines.onLine((line) => lines.push(line + '\n'));
  owned.process.stdout?.on('data', (chunk: string) => lines.push(chunk));
  owned.process.stdout?.on('end', () => lines.end());
  owned.process.stderr?.on('data', (chunk: string) => errLines.push(chunk));
  owned.process.stderr?.on('end', () => errLines.end());
  return { owned, lines };
}

/**
 * Writes `props` to a temporary lb.properties, starts siplb on it, and resolves once it logged
 * "siplb ready" (printed at every log level once its sockets are bound). Rejects, with the
 * captured output in the message, if it exits or stays silent for readyTimeoutMs; the process is
 * killed in that case.
 */
export async function startSiplb(props: Record<string, string>, opts: SiplbOptions = {}): Promise<SiplbHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-e2e-'));
  const propertiesPath = join(dir, 'lb.properties');
  // Ports of its own for the admin API and the heartbeats: left unset, every balancer of the
  // suite would race for 2006 and 2610, which Restcomm's own files (run unchanged by other
  // tests) name explicitly.
  const own = { ...props };
  // In a namespace of its own a balancer has the defaults to itself (and allocatePort, which
  // binds here, could not vouch for a port there).
  if (opts.netns === undefined && own['apiPort'] === undefined && own['statisticPort'] === undefined) own['apiPort'] = String(await allocatePort());
  if (opts.netns === undefined && own['heartbeatPort'] === undefined) own['heartbeatPort'] = String(await allocatePort());
  writeFileSync(propertiesPath, propertiesText(own));
  return startSiplbWithFile(propertiesPath, opts, dir);
}

/**
 * Starts siplb on a configuration file as it is (e.g. one of Restcomm's own, either format);
 * `ownedDir`, when given, is removed on stop.
 */
export async function startSiplbWithFile(propertiesPath: string, opts: SiplbOptions = {}, ownedDir?: string): Promise<SiplbHandle> {
  const { owned, lines } = spawnCli(propertiesPath, opts);
  // 20 s: a 2-core CI machine starting several balancers at once, beside sipp, needs more than
  // the 1-1.5 s of CPU one start takes.
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;

  const ready = new Promise<void>((resolve, reject) => {
    for (const line of lines.snapshot()) if (isReadyLine(line)) resolve();
    lines.onLine((line) => {
      if (isReadyLine(line)) resolve();
    });
    owned.exited.then(
      (status) =>
        reject(new Error(
          `siplb exited before ready (code ${status.code}, signal ${status.signal}); config:\n` +
            `${readFileSync(propertiesPath, 'utf8')}\noutput:\n${describeOutput(lines.snapshot())}`,
        )),
      (err: unknown) => reject(new Error(`siplb could not be started: ${String(err)}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`siplb not ready after ${readyTimeoutMs} ms; output:\n${describeOutput(lines.snapshot())}`)),
      readyTimeoutMs,
    );
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(owned, 'SIGTERM', opts.stopGraceMs ?? 3_000);
      // Let the stream 'end' events flush the last lines before logs() is read.
      await new Promise((resolve) => setImmediate(resolve));
      if (ownedDir !== undefined) rmSync(ownedDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    await Promise.race([ready, timeout]);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }

  return {
    pid: owned.pid,
    propertiesPath,
    exit: owned.exited,
    hasExited: () => owned.hasExited(),
    exitCode: owned.exited.then((s) => s.code),
    stop,
    logs: () => lines.snapshot(),
    jsonLogs: () => {
      const out: Array<Record<string, unknown>> = [];
      for (const line of lines.snapshot()) {
        if (!line.startsWith('{')) continue;
        try {
          const parsed: unknown = JSON.parse(line);
          if (typeof parsed === 'object' && parsed !== null) out.push(parsed as Record<string, unknown>);
        } catch {
          // A non-JSON line that happens to start with '{' is not a log record.
        }
      }
      return out;
    },
  };
}

export interface SiplbFailure {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs siplb on `propertiesContent` (raw lb.properties text, so malformed files can be tested)
 * and waits for it to exit by itself. If it is still running after `timeoutMs` it is killed and
 * this rejects: a config that should fail but starts is a test failure, not a hang.
 */
export async function runSiplbExpectingFailure(
  propertiesContent: string,
  opts: { timeoutMs?: number; extraArgs?: string[] } = {},
): Promise<SiplbFailure> {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-e2e-'));
  const propertiesPath = join(dir, 'lb.properties');
  writeFileSync(propertiesPath, propertiesContent);
  const args = [SIPLB_CLI, propertiesPath, ...(opts.extraArgs ?? [])];
  const owned = spawnOwned(nodeBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  let stdout = '';
  let stderr = '';
  owned.process.stdout?.setEncoding('utf8');
  owned.process.stderr?.setEncoding('utf8');
  owned.process.stdout?.on('data', (c: string) => { stdout += c; });
  owned.process.stderr?.on('data', (c: string) => { stderr += c; });
  const streamsClosed = new Promise<void>((resolve) => owned.process.once('close', () => resolve()));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const first = await Promise.race([owned.exited, timedOut]);
    if (first === 'timeout') {
      await terminate(owned, 'SIGKILL', 1_000);
      throw new Error(`siplb still running after ${timeoutMs} ms on a config expected to fail; stdout:\n${stdout}\nstderr:\n${stderr}`);
    }
    await streamsClosed;
    return { code: first.code, signal: first.signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  }
}
