// Runs sipp (3.6.x) as owned child processes and reads its results.
//
// Results come from sipp's statistics file (-trace_stat -stf FILE -fd 1): a ';'-separated CSV
// whose header names every counter and whose last row, written when sipp exits, holds the final
// cumulative values ("(C)" columns). It is the only output that carries successful, failed,
// incoming-call and retransmission counts together in a stable, parseable form; the screen
// output is meant for terminals and the -trace_counts file has per-message columns only.
//
// Every sipp gets -timeout so it ends by itself even if the harness never stops it, its own
// loopback control port (-cp/-ci: by default every sipp on the host contends for UDP 8888 and
// up, bound on all interfaces), -nostdin, and no -bg: it stays our child, killed with us.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureOutput, LineBuffer, spawnOwned, terminate } from './children.ts';
import type { ExitStatus, OwnedChild } from './children.ts';
import { allocatePort, releasePorts } from './ports.ts';
import { allBound } from './procnet.ts';

/** One socket for all calls (u1, t1), or one per call (un, tn: each call from its own source port). */
export type SippTransport = 'u1' | 't1' | 'un' | 'tn';

/** Built-in scenario name (sipp -sn) or a scenario XML file (sipp -sf). */
export type SippScenario = 'uac' | 'uas' | { file: string };

export const SCENARIO_DIR = fileURLToPath(new URL('./scenarios/', import.meta.url));
export const SCENARIOS = {
  /** Built-in uac, but takes the route set from the 200 and sends ACK/BYE to [next_url] via [routes]. */
  uacRr: { file: join(SCENARIO_DIR, 'uac-rr.xml') },
  /** Built-in uas, but echoes the INVITE's Record-Route in the 180 and 200. */
  uasRr: { file: join(SCENARIO_DIR, 'uas-rr.xml') },
  /** Built-in uac, but ACK and BYE go to a second balancer (-set lb2host H -set lb2port P). */
  uacSplit: { file: join(SCENARIO_DIR, 'uac-split.xml') },
} as const;

export const SIPP_BIN = process.env['SIPP_BIN'] ?? 'sipp';

const MAX_LOG_BYTES = 8_000_000;
/** Seconds past -timeout after which the harness SIGKILLs a sipp that has not exited. */
const HARD_LIMIT_EXTRA_S = 10;

interface SippCommonOptions {
  scenario: SippScenario;
  transport: SippTransport;
  localPort: number;
  /** Local (and bind) address; default 127.0.0.1. Traffic must stay on loopback. */
  localIp?: string;
  /**
   * sipp's run time limit (-timeout, after which it winds down); the harness SIGKILLs it 10 s
   * later if it is still running.
   */
  timeoutS: number;
  /** Socket send/receive buffer size (-buff_size); the kernel caps it at net.core.[rw]mem_max. */
  buffSize?: number;
  /** Keep unexpected-message traces (-trace_err) and return them in the result. */
  traceErrors?: boolean;
  /**
   * Log every message sent and received (-trace_msg) and return the log in the result. Costs
   * sipp a write per message: for functional checks, never for load.
   */
  traceMessages?: boolean;
  /**
   * How often sipp writes its statistics row (-fd), ms; default 1000. Lower it where a test waits
   * on currentStats() (a UAS counting probes or calls).
   */
  statsEveryMs?: number;
  /** Extra sipp arguments, appended last. */
  extraArgs?: string[];
  /**
   * Network namespace to run sipp in (`ip netns exec`). Its control port is then chosen inside
   * that namespace, where no other process of the suite binds.
   */
  netns?: string;
}

export interface SippUasOptions extends SippCommonOptions {}

export interface SippUacOptions extends SippCommonOptions {
  /** host:port the calls are sent to. */
  remote: string;
  /** Calls started per rate period (-r). */
  rate: number;
  /** Rate period in ms (-rp); default 1000. */
  ratePeriodMs?: number;
  /** Total calls; sipp exits after this many (-m). */
  calls: number;
  /** Maximum simultaneous calls (-l); default sipp's own (3 x duration x rate). */
  maxConcurrent?: number;
}

export interface SippStats {
  incoming: number;         // IncomingCall(C): calls a UAS received (out-of-call requests such as OPTIONS included)
  autoAnswered: number;     // AutoAnswered(C): requests answered by -aa (OPTIONS, INFO, NOTIFY, UPDATE)
  outgoing: number;         // OutgoingCall(C): calls a UAC placed
  successful: number;       // SuccessfulCall(C)
  failed: number;           // FailedCall(C), all reasons
  retransmissions: number;  // Retransmissions(C): messages sipp had to send again (UDP)
  current: number;          // CurrentCall: calls still open at the time of the row
  outOfCallMessages: number;
  deadCallMessages: number;
  elapsedSeconds: number;   // ElapsedTime(C), whole seconds
  callRate: number;         // CallRate(C): calls/s averaged over the run
  /** Every column of the row, by header name, for counters not lifted above. */
  raw: Record<string, string>;
}

export interface SippResult {
  stats: SippStats;
  exit: ExitStatus;
  /** true when sipp had to be SIGKILLed and `stats` come from the last periodic row (<= 1 s old). */
  forced: boolean;
  command: string[];
  /** Last lines of sipp's stdout/stderr (its screen), for failure messages. */
  output: string[];
  /** Head of the -trace_err file when traceErrors was set, else ''. */
  errorLog: string;
  /** The -trace_msg log (first 8 MB) when traceMessages was set, else ''. */
  messageLog: string;
}

export interface SippUas {
  readonly pid: number;
  readonly port: number;
  readonly transport: SippTransport;
  readonly exited: Promise<ExitStatus>;
  /** Latest periodic statistics row (up to statsEveryMs old), or null before the first row. */
  currentStats(): SippStats | null;
  /**
   * Soft stop (SIGUSR1: take no new calls, finish open ones, which for the built-in uas includes
   * its 4 s timewait), SIGKILL after graceMs (default 10 000), then the final statistics.
   */
  stop(graceMs?: number): Promise<SippResult>;
}

export interface SippUac {
  readonly pid: number;
  /** Settles when sipp exits (after -m calls, -timeout, or abort()). */
  readonly done: Promise<SippResult>;
  /** Stops the UAC now (SIGUSR1, SIGKILL after graceMs); resolves like `done`. */
  abort(graceMs?: number): Promise<SippResult>;
}

/**
 * Calls a sipp UAS has taken so far, from its periodic statistics row: incoming requests less
 * those -aa answered on its own (OPTIONS probes of the balancer's health checks); 0 before the first row.
 */
export function callsTaken(u: SippUas): number {
  const s = u.currentStats();
  return s === null ? 0 : s.incoming - s.autoAnswered;
}

/** A numeric column of a sipp statistics row (SippStats.raw); 0 when absent or not a number. */
export function statNumber(raw: Record<string, string>, key: string): number {
  const value = Number(raw[key]);
  return Number.isFinite(value) ? value : 0;
}

function hmsToSeconds(text: string | undefined): number {
  if (text === undefined) return 0;
  const parts = text.split(':').map(Number);
  if (parts.some((p) => !Number.isFinite(p))) return 0;
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

/**
 * Parses a sipp -trace_stat file and returns its last complete row. A row is complete when it
 * has as many fields as the header; sipp may be killed while writing one.
 */
export function parseStatFile(text: string): SippStats | null {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length < 2) return null;
  const header = lines[0].split(';');
  for (let i = lines.length - 1; i >= 1; i--) {
    const fields = lines[i].split(';');
    if (fields.length !== header.length) continue;
    const raw: Record<string, string> = {};
    header.forEach((name, idx) => {
      if (name !== '') raw[name] = fields[idx];
    });
    return {
      incoming: statNumber(raw, 'IncomingCall(C)'),
      autoAnswered: statNumber(raw, 'AutoAnswered(C)'),
      outgoing: statNumber(raw, 'OutgoingCall(C)'),
      successful: statNumber(raw, 'SuccessfulCall(C)'),
      failed: statNumber(raw, 'FailedCall(C)'),
      retransmissions: statNumber(raw, 'Retransmissions(C)'),
      current: statNumber(raw, 'CurrentCall'),
      outOfCallMessages: statNumber(raw, 'OutOfCallMsgs(C)'),
      deadCallMessages: statNumber(raw, 'DeadCallMsgs(C)'),
      elapsedSeconds: hmsToSeconds(raw['ElapsedTime(C)']),
      callRate: statNumber(raw, 'CallRate(C)'),
      raw,
    };
  }
  return null;
}

/** Non-zero Failed*(C) counters, e.g. "FailedMaxUDPRetrans=3", for failure messages. */
export function failureBreakdown(stats: SippStats): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(stats.raw)) {
    if (name.startsWith('Failed') && name.endsWith('(C)') && name !== 'FailedCall(C)' && Number(value) > 0) {
      parts.push(`${name.slice(0, -3)}=${value}`);
    }
  }
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** Multi-line description of a result for assertion messages. */
export function describeResult(label: string, result: SippResult): string {
  const s = result.stats;
  const lines = [
    `${label}: exit ${result.exit.code ?? result.exit.signal}${result.forced ? ' (killed)' : ''}; ` +
      `incoming=${s.incoming} outgoing=${s.outgoing} successful=${s.successful} failed=${s.failed} ` +
      `retransmissions=${s.retransmissions} outOfCall=${s.outOfCallMessages} deadCall=${s.deadCallMessages}; ` +
      `failure reasons: ${failureBreakdown(s)}`,
    `  command: ${result.command.join(' ')}`,
  ];
  if (result.errorLog !== '') lines.push(`  -trace_err (head):\n${result.errorLog.slice(0, 4000)}`);
  else lines.push(`  output (tail):\n${result.output.slice(-30).join('\n')}`);
  return lines.join('\n');
}

interface Launched {
  owned: OwnedChild;
  command: string[];
  output: LineBuffer;
  dir: string;
  statFile: string;
  errorFile: string;
  messageFile: string;
  controlPort: number;
  /** The control port came from allocatePort and goes back to it. */
  ownPort: boolean;
}

function scenarioArgs(scenario: SippScenario): string[] {
  return typeof scenario === 'string' ? ['-sn', scenario] : ['-sf', scenario.file];
}

let sippChecked = false;

/**
 * sipp must be there: when it is missing and we are root, install Debian's sip-tester (as the
 * README says); otherwise fail with the one-line fix rather than a bare spawn ENOENT in a test.
 */
function assertSippInstalled(): void {
  if (sippChecked) return;
  let probe = spawnSync(SIPP_BIN, ['-v'], { encoding: 'utf8' });
  if (probe.error !== undefined && process.getuid?.() === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let install = spawnSync('apt-get', ['install', '-y', '-qq', 'sip-tester'], { encoding: 'utf8', env });
    if (install.status !== 0) {
      spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env });
      install = spawnSync('apt-get', ['install', '-y', '-qq', 'sip-tester'], { encoding: 'utf8', env });
    }
    probe = spawnSync(SIPP_BIN, ['-v'], { encoding: 'utf8' });
  }
  if (probe.error !== undefined) {
    throw new Error(`cannot run ${SIPP_BIN} (${probe.error.message}): install sipp as root with: apt-get install -y sip-tester`);
  }
  sippChecked = true;
}

async function launch(common: SippCommonOptions, roleArgs: string[]): Promise<Launched> {
  assertSippInstalled();
  if (typeof common.scenario !== 'string' && !existsSync(common.scenario.file)) {
    throw new Error(`sipp scenario file not found: ${common.scenario.file}`);
  }
  const localIp = common.localIp ?? '127.0.0.1';
  // Inside a namespace of its own, no other test binds: any port of the ephemeral range will do.
  const controlPort = common.netns === undefined ? await allocatePort(localIp) : 20_000 + Math.floor(Math.random() * 20_000);
  const dir = mkdtempSync(join(tmpdir(), 'sipp-e2e-'));
  const statFile = join(dir, 'stat.csv');
  const errorFile = join(dir, 'errors.log');
  const messageFile = join(dir, 'messages.log');
  const args = [
    ...roleArgs,
    ...scenarioArgs(common.scenario),
    '-t', common.transport,
    '-i', localIp,
    '-p', String(common.localPort),
    // Bind to the loopback address instead of all interfaces.
    '-bind_local',
    '-ci', localIp,
    '-cp', String(controlPort),
    '-nostdin',
    '-timeout', `${common.timeoutS}s`,
    '-trace_stat', '-stf', statFile, '-fd', common.statsEveryMs === undefined ? '1' : `${common.statsEveryMs}ms`,
  ];
  // A socket per call: sipp's default cap (50 000) exceeds the usual open-file limit, and sipp
  // refuses to start rather than lower it.
  if (common.transport === 'un' || common.transport === 'tn') args.push('-max_socket', '10000');
  if (common.buffSize !== undefined) args.push('-buff_size', String(common.buffSize));
  if (common.traceErrors === true) args.push('-trace_err', '-error_file', errorFile);
  if (common.traceMessages === true) args.push('-trace_msg', '-message_file', messageFile);
  // Bounds each log file, so a run that goes wrong at a high rate cannot fill the disk.
  if (common.traceErrors === true || common.traceMessages === true) args.push('-max_log_size', String(MAX_LOG_BYTES));
  if (common.extraArgs !== undefined) args.push(...common.extraArgs);

  const [cmd, cmdArgs] = common.netns === undefined ? [SIPP_BIN, args] : ['ip', ['netns', 'exec', common.netns, SIPP_BIN, ...args]];
  const owned = spawnOwned(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  // sipp's -timeout is a soft stop: calls in progress still run their retransmission timers out
  // (up to 32 s for an unanswered INVITE). This makes the limit hard.
  const watchdog = setTimeout(() => {
    if (!owned.hasExited()) owned.process.kill('SIGKILL');
  }, (common.timeoutS + HARD_LIMIT_EXTRA_S) * 1000);
  watchdog.unref();
  owned.exited.finally(() => clearTimeout(watchdog)).catch(() => undefined);
  const output = new LineBuffer(400);
  captureOutput(owned, output);
  return { owned, command: [cmd, ...cmdArgs], output, dir, statFile, errorFile, messageFile, controlPort, ownPort: common.netns === undefined };
}

function readHead(file: string, maxBytes: number): string {
  try {
    const text = readFileSync(file, 'latin1');
    return text.length > maxBytes ? text.slice(0, maxBytes) : text;
  } catch {
    // Not written: tracing was off or nothing to trace.
    return '';
  }
}

function readStats(file: string): SippStats | null {
  try {
    return parseStatFile(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function emptyStats(): SippStats {
  return {
    incoming: 0, autoAnswered: 0, outgoing: 0, successful: 0, failed: 0, retransmissions: 0, current: 0,
    outOfCallMessages: 0, deadCallMessages: 0, elapsedSeconds: 0, callRate: 0, raw: {},
  };
}

async function collect(l: Launched, exit: ExitStatus): Promise<SippResult> {
  // Only the harness sends SIGKILL to sipp (the fallback after a soft stop timed out).
  const forced = exit.signal === 'SIGKILL';
  const stats = readStats(l.statFile);
  const errorLog = readHead(l.errorFile, 64_000);
  const messageLog = readHead(l.messageFile, MAX_LOG_BYTES);
  rmSync(l.dir, { recursive: true, force: true });
  if (l.ownPort) releasePorts([l.controlPort]);
  const result: SippResult = {
    stats: stats ?? emptyStats(),
    exit,
    forced,
    command: l.command,
    output: l.output.snapshot(),
    errorLog,
    messageLog,
  };
  if (stats === null) {
    throw new Error(`sipp left no statistics (it probably failed to start)\n${describeResult('sipp', result)}`);
  }
  return result;
}

/** Waits until sipp's SIP port is bound (UDP) or listening (TCP) by the sipp process itself. */
async function waitForListening(owned: OwnedChild, transport: SippTransport, port: number, timeoutMs: number): Promise<void> {
  const wanted = [{ proto: transport === 'u1' || transport === 'un' ? 'udp' : 'tcp', port }] as const;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (owned.hasExited()) return;
    if (allBound(owned.pid, wanted)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`sipp did not bind ${transport === 'u1' || transport === 'un' ? 'UDP' : 'TCP'} port ${port} within ${timeoutMs} ms`);
}

/**
 * Starts a sipp UAS and resolves once its SIP socket is bound/listening, so a UAC or balancer
 * started next never races it.
 */
export async function startSippUas(opts: SippUasOptions): Promise<SippUas> {
  const l = await launch(opts, []);
  try {
    await waitForListening(l.owned, opts.transport, opts.localPort, 5_000);
  } catch (err) {
    await terminate(l.owned, 'SIGKILL', 1_000);
    await collect(l, await l.owned.exited).catch(() => undefined);
    throw new Error(`${(err as Error).message}\ncommand: ${l.command.join(' ')}\n${l.output.snapshot().slice(-20).join('\n')}`);
  }
  if (l.owned.hasExited()) {
    const exit = await l.owned.exited;
    const detail = l.output.snapshot().slice(-20).join('\n');
    rmSync(l.dir, { recursive: true, force: true });
    if (l.ownPort) releasePorts([l.controlPort]);
    throw new Error(`sipp UAS exited at start (code ${exit.code}, signal ${exit.signal})\ncommand: ${l.command.join(' ')}\n${detail}`);
  }
  let stopping: Promise<SippResult> | undefined;
  return {
    pid: l.owned.pid,
    port: opts.localPort,
    transport: opts.transport,
    exited: l.owned.exited,
    currentStats: () => readStats(l.statFile),
    stop: (graceMs = 10_000) => {
      stopping ??= (async () => {
        const { status } = await terminate(l.owned, 'SIGUSR1', graceMs);
        return collect(l, status);
      })();
      return stopping;
    },
  };
}

/** Starts a sipp UAC; `done` settles when it exits. */
export async function startSippUac(opts: SippUacOptions): Promise<SippUac> {
  const roleArgs = [opts.remote, '-r', String(opts.rate), '-rp', String(opts.ratePeriodMs ?? 1000), '-m', String(opts.calls)];
  if (opts.maxConcurrent !== undefined) roleArgs.push('-l', String(opts.maxConcurrent));
  const l = await launch(opts, roleArgs);
  const done = l.owned.exited.then((exit) => collect(l, exit));
  // A caller that only uses abort() must not see an unhandled rejection from `done`.
  done.catch(() => undefined);
  return {
    pid: l.owned.pid,
    done,
    abort: async (graceMs = 5_000) => {
      await terminate(l.owned, 'SIGUSR1', graceMs);
      return done;
    },
  };
}

/** Runs a sipp UAC to completion (all -m calls, or -timeout) and returns its result. */
export async function runSippUac(opts: SippUacOptions): Promise<SippResult> {
  const uac = await startSippUac(opts);
  return uac.done;
}
