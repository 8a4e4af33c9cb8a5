// HTTP load benchmark: wrk -> balancer (siplb's HTTP side, or nginx) -> two HTTP backends,
// all on loopback.
//
//   npm run bench -- --http [--compare nginx | --nginx-only] [--rounds 3] [--duration 10]
//                           [--connections 50] [--threads 2] [--warmup 2] [--log-level warn]
//   node bench/http-load.ts ...   (the same, without --http)
//
// The backends are one nginx (one worker) with two server blocks on two ports, each answering
// every request with a fixed 200 body; both balancers balance over the same two ports, with
// keep-alive connections to them. Every process is started once; each round then runs wrk once
// against each balancer, alternating which goes first, and the medians over the rounds are
// compared. Per run: requests/s and p99 latency (wrk --latency), errors (socket errors and
// non-2xx/3xx responses: any is a failed measurement), and the balancer's CPU per request:
// utime+stime from /proc/PID/stat of every balancer process (siplb's process; nginx's master and
// worker), read just before wrk starts and just after it exits, / requests wrk completed.
// Ends with one JSON line (prefix-free, starts with {"bench":"http-load") for scripts.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption, nodeFlagsOption, usageExit } from './options.ts';
import { busyPercent, CLK_TCK, cpuTicks, machineTicks, statFields, sumTicks } from './proc.ts';
import { captureOutput, LineBuffer, registerCleanup, spawnOwned, terminate } from '../test/e2e/harness/children.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { allBound } from '../test/e2e/harness/procnet.ts';
import { startSiplb } from '../test/e2e/harness/siplb.ts';
import type { SiplbLogLevel } from '../test/e2e/harness/siplb.ts';

type Target = 'siplb' | 'nginx';

/** The claim of issue 10: siplb's CPU per request at most this many times nginx's. */
const CPU_RATIO_TARGET = 2.5;

export interface Options {
  targets: Target[];
  /** --against DIR: another siplb checkout, measured side by side with this one (http-pair.ts). */
  against: string | null;
  rounds: number;
  durationS: number;
  connections: number;
  threads: number;
  warmupS: number;
  logLevel: SiplbLogLevel;
  /** --node-flags: Node/V8 flags for siplb after its own. */
  nodeFlags: string[];
}

interface WrkResult {
  requests: number;
  seconds: number;          // wrk's own measured duration ("N requests in 10.00s")
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx3xx: number;
  /** Every error wrk counted: socket errors of all kinds plus non-2xx/3xx responses. */
  errors: number;
}

interface RunResult extends WrkResult {
  round: number;
  target: Target;
  balancerCpuS: number;
  balancerProcesses: number;
  cpuUsPerRequest: number;
  /** Balancer CPU / wall time of the wrk run: 100 = one core busy all the time. */
  balancerCpuPercent: number;
  backendCpuUsPerRequest: number;
  wrkCpuS: number;
  /** Share of both cores in use, any process, over the run (from /proc/stat). */
  machineBusyPercent: number;
}

const USAGE =
  'usage: npm run bench -- --http [--compare nginx | --nginx-only] [--rounds 3] [--duration 10]\n' +
  '                               [--connections 50] [--threads 2] [--warmup 2] [--log-level warn]\n' +
  '                               [--node-flags=\'--a-v8-flag\'] [--against DIR]\n';

function usage(message: string): never {
  return usageExit('http-load', USAGE, message);
}

function int(raw: string | undefined, fallback: number, name: string, min: number, max: number): number {
  return intOption(raw, fallback, name, min, max, usage);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      http: { type: 'boolean' },
      compare: { type: 'string' },
      'nginx-only': { type: 'boolean' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      warmup: { type: 'string' },
      'log-level': { type: 'string' },
      'node-flags': { type: 'string' },
      against: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.compare !== undefined && values.compare !== 'nginx') usage(`--compare with --http knows nginx, got ${values.compare}`);
  if (values.compare !== undefined && values['nginx-only'] === true) usage('--compare nginx and --nginx-only exclude each other');
  const logLevel = values['log-level'] ?? 'warn';
  if (logLevel !== 'error' && logLevel !== 'warn' && logLevel !== 'info' && logLevel !== 'debug') usage(`bad --log-level ${logLevel}`);
  const against = values.against ?? null;
  if (against !== null && (values.compare !== undefined || values['nginx-only'] === true)) usage('--against measures two siplb checkouts; it takes no --compare or --nginx-only');
  if (against !== null && !existsSync(join(against, 'bin', 'siplb.cjs'))) usage(`--against ${against}: no bin/siplb.cjs there (a siplb checkout, with npm ci run in it)`);
  // Side by side, each siplb gets its own wrk: half the usual load each.
  const connections = int(values.connections, against === null ? 50 : 25, 'connections', 1, 10_000);
  const threads = int(values.threads, against === null ? 2 : 1, 'threads', 1, 64);
  if (threads > connections) usage(`--threads (${threads}) must not exceed --connections (${connections}): wrk needs a connection per thread`);
  return {
    targets: values['nginx-only'] === true ? ['nginx'] : values.compare === 'nginx' ? ['siplb', 'nginx'] : ['siplb'],
    against,
    rounds: int(values.rounds, 3, 'rounds', 1, 50),
    durationS: int(values.duration, 10, 'duration', 1, 600),
    connections,
    threads,
    warmupS: int(values.warmup, 2, 'warmup', 0, 60),
    nodeFlags: nodeFlagsOption(values['node-flags'], usage),
    logLevel,
  };
}

// ---- /proc accounting -------------------------------------------------------------------------

/** Live (non-zombie) processes whose field `index` of rest (1 = ppid, 2 = pgrp) is `value`. */
function processesWhere(index: 1 | 2, value: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const rest = statFields(Number(name));
    if (rest !== null && Number(rest[index]) === value && rest[0] !== 'Z') out.push(Number(name));
  }
  return out;
}

/** `root` and all its live descendants. */
function processTree(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...processesWhere(1, out[i]));
  return out.filter((pid) => statFields(pid) !== null);
}


// ---- binaries ---------------------------------------------------------------------------------

function findBinary(name: string, candidates: string[]): string | null {
  for (const candidate of candidates) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : null;
}

/** Finds `name`, or installs Debian's `pkg` when root (apt-get update only if the first try fails). */
export function ensureBinary(name: string, pkg: string, candidates: string[]): string {
  const found = findBinary(name, candidates);
  if (found !== null) return found;
  if (process.getuid?.() !== 0) throw new Error(`${name} is not installed and this is not root: apt-get install -y ${pkg}`);
  console.log(`${name} not found: apt-get install -y ${pkg}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let install = spawnSync('apt-get', ['install', '-y', pkg], { stdio: 'inherit', env, timeout: 600_000 });
  if (install.status !== 0) {
    console.log('install failed: apt-get update, then retry');
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env, timeout: 600_000 });
    install = spawnSync('apt-get', ['install', '-y', pkg], { stdio: 'inherit', env, timeout: 600_000 });
  }
  const installed = findBinary(name, candidates);
  if (install.status !== 0 || installed === null) throw new Error(`could not install ${pkg} with apt-get`);
  return installed;
}

// ---- nginx (backends and balancer) ------------------------------------------------------------

export interface Running {
  /** Every process whose CPU counts (for nginx: master and worker). */
  pids(): number[];
  stop(): Promise<void>;
}

/** The part of an nginx configuration that keeps every file of the instance inside `dir`. */
function nginxPreamble(dir: string): string {
  // As root, nginx switches its workers to `user` (default nobody), who could not write into
  // the mkdtemp directory: keep them as the user who runs the benchmark.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : '';
  return `${user}worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
`;
}

function nginxTempPaths(dir: string): string {
  // Debian compiles these in as absolute paths under /var/lib/nginx.
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((what) => `  ${what}_temp_path ${dir}/${what}_temp;`).join('\n');
}

/**
 * Starts `nginx -c conf` in the foreground as the leader of its own process group (detached), so
 * its worker is found (and killed on exit) by group even if the master dies first. Resolves once
 * the group has bound every TCP port in `ports`.
 */
export async function startNginx(label: string, dir: string, config: string, ports: number[]): Promise<Running> {
  const binary = ensureBinary('nginx', 'nginx-light', ['/usr/sbin/nginx']);
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, config);
  // -e: the error log from the first moment, before the configuration names one (Debian's
  // compiled-in default is stderr, which would do too, but this keeps everything in one file).
  const owned = spawnOwned(binary, ['-p', dir, '-e', join(dir, 'error.log'), '-c', confPath],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = owned.pid;
  const group = (): number[] => processesWhere(2, pgid);
  const killAll = (): void => {
    for (const pid of group()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };
  const unregister = registerCleanup(killAll);
  const output = new LineBuffer(100);
  captureOutput(owned, output);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // SIGTERM is nginx's fast shutdown: the master stops its worker and exits.
      await terminate(owned, 'SIGTERM', 5_000);
      killAll();
      unregister();
    })();
    return stopping;
  };
  const describe = (): string => {
    let log = '';
    try {
      log = readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      // Not written yet.
    }
    return `${output.snapshot().join('\n')}\n${log}`.trim();
  };
  const wanted = ports.map((port) => ({ proto: 'tcp' as const, port }));
  const deadline = Date.now() + 10_000;
  while (true) {
    if (owned.hasExited()) {
      await stop();
      throw new Error(`nginx (${label}) exited at start:\n${describe()}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx (${label}) did not listen on ${ports.join(', ')} within 10 s:\n${describe()}`);
    }
    const members = group();
    // Master plus worker: the master binds before forking, the worker is what serves.
    if (members.length >= 2 && allBound(members, wanted)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { pids: group, stop };
}

/** Two backends in one nginx (one worker): fixed 200 bodies, keep-alive without a request cap. */
export function backendConfig(dir: string, ports: number[]): string {
  const servers = ports.map((port, i) => {
    const name = String.fromCharCode(65 + i);
    return `  server {
    listen 127.0.0.1:${port};
    location / { return 200 "backend ${name}: a fixed body of a few dozen bytes\\n"; }
  }`;
  }).join('\n');
  return `${nginxPreamble(dir)}http {
  access_log off;
  default_type text/plain;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
${nginxTempPaths(dir)}
${servers}
}
`;
}

/**
 * nginx as the reference balancer, configured the way an operator would put it in front of app
 * servers: round robin over the two backends, a keep-alive pool to them (HTTP/1.1, Connection
 * cleared), Host passed through and the X-Forwarded-* / Forwarded headers set, as siplb does.
 */
function balancerConfig(dir: string, port: number, backendPorts: number[]): string {
  return `${nginxPreamble(dir)}http {
  access_log off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
${nginxTempPaths(dir)}
  upstream backends {
${backendPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 32;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header Forwarded "for=$remote_addr;host=$http_host;proto=$scheme";
    }
  }
}
`;
}

// ---- siplb ------------------------------------------------------------------------------------

/** `executable`: another checkout's bin/siplb.cjs (its shebang's Node flags); else this checkout's. */
export async function startSiplbHttp(httpPort: number, sipPort: number, fakeSipPorts: number[], backendPorts: number[],
  logLevel: SiplbLogLevel, nodeFlags: string[], executable?: string): Promise<Running> {
  const handle = await startSiplb({
    host: '127.0.0.1',
    // SIP has to bind somewhere; nothing sends SIP in this benchmark.
    externalPort: String(sipPort),
    httpPort: String(httpPort),
    // The SIP ports of the nodes need not listen: no SIP is sent and no OPTIONS probe either.
    nodes: backendPorts.map((p, i) => `127.0.0.1:${fakeSipPorts[i]};http=${p}`).join(','),
    healthCheckInterval: '0',
  }, { logLevel, nodeFlags, executable });
  // "siplb ready" is logged once its sockets are bound; two seconds' grace in case the HTTP
  // listener is bound after that line.
  const deadline = Date.now() + 2_000;
  while (!allBound(handle.pid, [{ proto: 'tcp', port: httpPort }]) && Date.now() < deadline && !handle.hasExited()) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!allBound(handle.pid, [{ proto: 'tcp', port: httpPort }])) {
    const warnings = handle.logs().filter((line) => /http/i.test(line)).slice(0, 5).join('\n');
    await handle.stop();
    throw new Error(`siplb started but nothing listens on httpPort ${httpPort}: is its HTTP balancer there yet?` +
      `${warnings === '' ? '' : `\nsiplb said:\n${warnings}`}`);
  }
  return {
    // Its own process, and any it forked (none today).
    pids: () => processTree(handle.pid),
    stop: () => handle.stop(),
  };
}

// ---- wrk --------------------------------------------------------------------------------------

function toMs(value: string, unit: string): number {
  const n = Number(value);
  switch (unit) {
    case 'us': return n / 1000;
    case 'ms': return n;
    case 's': return n * 1000;
    case 'm': return n * 60_000;
    case 'h': return n * 3_600_000;
    default: throw new Error(`unknown wrk latency unit ${unit}`);
  }
}

export function parseWrk(output: string): WrkResult {
  const fail = (what: string): never => {
    throw new Error(`wrk output without ${what}:\n${output}`);
  };
  const requestsMatch = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m.exec(output) ?? fail('"N requests in"');
  const rpsMatch = /^Requests\/sec:\s+([\d.]+)/m.exec(output) ?? fail('Requests/sec');
  const p50Match = /^\s+50(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)/m.exec(output) ?? fail('the 50% latency line (--latency)');
  const p99Match = /^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)/m.exec(output) ?? fail('the 99% latency line (--latency)');
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  const socketErrors = socket === null
    ? { connect: 0, read: 0, write: 0, timeout: 0 }
    : { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) };
  const non2xx3xx = non2xx === null ? 0 : Number(non2xx[1]);
  return {
    requests: Number(requestsMatch[1]),
    seconds: toMs(requestsMatch[2], requestsMatch[3]) / 1000,
    requestsPerSec: Number(rpsMatch[1]),
    p50Ms: toMs(p50Match[1], p50Match[2]),
    p99Ms: toMs(p99Match[1], p99Match[2]),
    socketErrors,
    non2xx3xx,
    errors: non2xx3xx + socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
  };
}

interface WrkRun {
  output: string;
  /** wrk's own CPU, sampled every 200 ms while it ran (a reaped process has no /proc entry). */
  cpuTicks: number;
}

export async function runWrk(binary: string, port: number, o: Options, durationS: number): Promise<WrkRun> {
  const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${durationS}s`, '--latency', `http://127.0.0.1:${port}/`];
  const owned = spawnOwned(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  owned.process.stdout?.setEncoding('utf8');
  owned.process.stderr?.setEncoding('utf8');
  owned.process.stdout?.on('data', (c: string) => { stdout += c; });
  owned.process.stderr?.on('data', (c: string) => { stderr += c; });
  const closed = new Promise<void>((resolve) => owned.process.once('close', () => resolve()));
  let ticks = 0;
  const sampler = setInterval(() => {
    ticks = Math.max(ticks, cpuTicks(owned.pid) ?? 0);
  }, 200);
  // Bounded: wrk stops by itself after the duration; 30 s more and it is killed.
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    void terminate(owned, 'SIGKILL', 1_000);
  }, (durationS + 30) * 1000);
  try {
    const status = await owned.exited;
    await closed;
    if (timedOut) throw new Error(`wrk still running ${durationS + 30} s after its start; killed. Output:\n${stdout}${stderr}`);
    if (status.code !== 0) throw new Error(`wrk exited with ${status.code ?? status.signal}:\n${stdout}${stderr}`);
  } finally {
    clearInterval(sampler);
    clearTimeout(killer);
  }
  return { output: stdout, cpuTicks: ticks };
}

/** One GET, no keep-alive; resolves with status and body, rejects after 5 s. */
function getOnce(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer on port ${port} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** 20 sequential requests: all 200, and both backends answer (the balancer balances). */
export async function sanityCheck(target: Target, port: number): Promise<string> {
  const seen = new Map<string, number>();
  for (let i = 0; i < 20; i++) {
    const { status, body } = await getOnce(port);
    if (status !== 200) throw new Error(`${target}: GET / answered ${status}: ${body.slice(0, 200)}`);
    const backend = /^backend (\w+):/.exec(body)?.[1] ?? `unexpected body ${JSON.stringify(body.slice(0, 80))}`;
    seen.set(backend, (seen.get(backend) ?? 0) + 1);
  }
  const summary = [...seen].sort().map(([name, count]) => `${name} ${count}`).join(', ');
  if (seen.size !== 2 || ![...seen.keys()].every((k) => k === 'A' || k === 'B')) {
    throw new Error(`${target}: 20 requests should reach backends A and B, got ${summary}`);
  }
  return summary;
}

// ---- the run ----------------------------------------------------------------------------------

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function measure(round: number, target: Target, balancer: Running, port: number, backend: Running,
  wrk: string, o: Options): Promise<RunResult> {
  const pidsBefore = balancer.pids();
  const ticksBefore = sumTicks(pidsBefore);
  const backendBefore = sumTicks(backend.pids());
  const machineBefore = machineTicks();
  const started = process.hrtime.bigint();
  const run = await runWrk(wrk, port, o, o.durationS);
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  const pidsAfter = balancer.pids();
  const ticksAfter = sumTicks(pidsAfter);
  const backendAfter = sumTicks(backend.pids());
  const machineAfter = machineTicks();
  if (pidsAfter.length === 0) throw new Error(`${target} is gone after the wrk run`);
  const parsed = parseWrk(run.output);
  const cpuS = (ticksAfter - ticksBefore) / CLK_TCK;
  const perRequest = (seconds: number): number => parsed.requests === 0 ? Number.NaN : (seconds / parsed.requests) * 1e6;
  return {
    ...parsed,
    round,
    target,
    balancerCpuS: cpuS,
    balancerProcesses: new Set([...pidsBefore, ...pidsAfter]).size,
    cpuUsPerRequest: perRequest(cpuS),
    balancerCpuPercent: (cpuS / wallS) * 100,
    backendCpuUsPerRequest: perRequest((backendAfter - backendBefore) / CLK_TCK),
    wrkCpuS: run.cpuTicks / CLK_TCK,
    machineBusyPercent: busyPercent(machineBefore, machineAfter),
  };
}

function errorText(r: WrkResult): string {
  if (r.errors === 0) return '0';
  const s = r.socketErrors;
  return `${r.errors} (connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}, non-2xx/3xx ${r.non2xx3xx})`;
}

const COLUMNS = ['round', 'balancer', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'CPU %', 'backend µs/req', 'wrk CPU s', 'machine busy %', 'errors'];

function row(cells: string[]): string {
  const widths = [5, 8, 9, 9, 7, 7, 10, 6, 14, 9, 14, 6];
  return cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

function printRun(r: RunResult): void {
  console.log(row([String(r.round), r.target, String(r.requests), r.requestsPerSec.toFixed(0), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2),
    r.cpuUsPerRequest.toFixed(2), r.balancerCpuPercent.toFixed(0), r.backendCpuUsPerRequest.toFixed(2), r.wrkCpuS.toFixed(1),
    r.machineBusyPercent.toFixed(0), errorText(r)]));
}

interface Summary {
  target: Target;
  requestsPerSec: number;
  p99Ms: number;
  cpuUsPerRequest: number;
}

function summarize(target: Target, results: RunResult[]): Summary | null {
  const mine = results.filter((r) => r.target === target);
  if (mine.length === 0) return null;
  return {
    target,
    requestsPerSec: median(mine.map((r) => r.requestsPerSec)),
    p99Ms: median(mine.map((r) => r.p99Ms)),
    cpuUsPerRequest: median(mine.map((r) => r.cpuUsPerRequest)),
  };
}

export async function runHttpBench(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  const wrk = ensureBinary('wrk', 'wrk', ['/usr/bin/wrk']);
  ensureBinary('nginx', 'nginx-light', ['/usr/sbin/nginx']);
  if (o.against !== null) return (await import('./http-pair.ts')).runPaired(o, wrk);
  console.log(`http-load: ${o.targets.join(' vs ')}, ${o.rounds} round(s) of wrk -t${o.threads} -c${o.connections} -d${o.durationS}s --latency,` +
    ` ${o.warmupS} s warm-up each, CLK_TCK ${CLK_TCK}`);

  // siplb: HTTP port, SIP port, two SIP ports for the nodes that nothing listens on.
  // nginx balancer: one port. Backends: two ports.
  const ports = await allocatePorts(7);
  const [siplbHttpPort, siplbSipPort, fakeSipA, fakeSipB, nginxPort, backendA, backendB] = ports;
  const backendPorts = [backendA, backendB];
  const dirs: string[] = [];
  const removeDirs = (): void => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  // Also when the benchmark is interrupted (Ctrl-C): children.ts runs this beside its kills.
  const unregisterDirs = registerCleanup(removeDirs);
  const tempDir = (what: string): string => {
    const dir = mkdtempSync(join(tmpdir(), `siplb-bench-${what}-`));
    dirs.push(dir);
    return dir;
  };
  const running: Running[] = [];
  const results: RunResult[] = [];
  try {
    const backendDir = tempDir('backends');
    const backend = await startNginx('backends', backendDir, backendConfig(backendDir, backendPorts), backendPorts);
    running.push(backend);
    const balancers = new Map<Target, { running: Running; port: number }>();
    for (const target of o.targets) {
      if (target === 'siplb') {
        const siplb = await startSiplbHttp(siplbHttpPort, siplbSipPort, [fakeSipA, fakeSipB], backendPorts, o.logLevel, o.nodeFlags);
        running.push(siplb);
        balancers.set(target, { running: siplb, port: siplbHttpPort });
      } else {
        const dir = tempDir('nginx');
        const nginx = await startNginx('balancer', dir, balancerConfig(dir, nginxPort, backendPorts), [nginxPort]);
        running.push(nginx);
        balancers.set(target, { running: nginx, port: nginxPort });
      }
    }
    for (const [target, { port }] of balancers) {
      console.log(`${target} on 127.0.0.1:${port}, 20 GETs reach backends: ${await sanityCheck(target, port)}`);
      if (o.warmupS > 0) {
        // Not measured: lets V8 compile siplb's hot path and both balancers fill their pools.
        const warm = parseWrk((await runWrk(wrk, port, o, o.warmupS)).output);
        console.log(`${target} warm-up: ${warm.requestsPerSec.toFixed(0)} req/s, errors ${errorText(warm)}`);
      }
    }
    console.log('');
    console.log(row(COLUMNS));
    for (let round = 1; round <= o.rounds; round++) {
      // Alternate who goes first, so a drift of the machine over the run hits both alike.
      const order = round % 2 === 1 ? o.targets : [...o.targets].reverse();
      for (const target of order) {
        const { running: balancer, port } = balancers.get(target)!;
        const r = await measure(round, target, balancer, port, backend, wrk, o);
        printRun(r);
        results.push(r);
      }
    }
  } finally {
    for (const r of running.reverse()) await r.stop();
    removeDirs();
    unregisterDirs();
    releasePorts(ports);
  }

  const siplb = summarize('siplb', results);
  const nginx = summarize('nginx', results);
  console.log(`\nmedians over ${o.rounds} round(s):`);
  for (const s of [siplb, nginx]) {
    if (s === null) continue;
    console.log(`  ${s.target.padEnd(6)} ${s.requestsPerSec.toFixed(0).padStart(7)} req/s   p99 ${s.p99Ms.toFixed(2).padStart(6)} ms   ${s.cpuUsPerRequest.toFixed(2).padStart(6)} CPU µs/request`);
  }
  let ratios: { cpuPerRequest: number; requestsPerSec: number; p99: number; perRoundCpu: number[] } | null = null;
  if (siplb !== null && nginx !== null) {
    const perRoundCpu: number[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const s = results.find((r) => r.round === round && r.target === 'siplb');
      const n = results.find((r) => r.round === round && r.target === 'nginx');
      if (s !== undefined && n !== undefined) perRoundCpu.push(s.cpuUsPerRequest / n.cpuUsPerRequest);
    }
    ratios = {
      cpuPerRequest: siplb.cpuUsPerRequest / nginx.cpuUsPerRequest,
      requestsPerSec: siplb.requestsPerSec / nginx.requestsPerSec,
      p99: siplb.p99Ms / nginx.p99Ms,
      perRoundCpu,
    };
    console.log('siplb / nginx (of the medians):');
    console.log(`  CPU µs per request  ${ratios.cpuPerRequest.toFixed(2)}  (per round: ${perRoundCpu.map((v) => v.toFixed(2)).join(', ')};` +
      ` target ≤ ${CPU_RATIO_TARGET.toFixed(2)}: ${ratios.cpuPerRequest <= CPU_RATIO_TARGET ? 'met' : 'NOT met'})`);
    console.log(`  requests/s          ${ratios.requestsPerSec.toFixed(2)}`);
    console.log(`  p99 latency         ${ratios.p99.toFixed(2)}`);
  }
  const failed = results.filter((r) => r.errors > 0 || r.requests === 0);
  for (const r of failed) console.log(`round ${r.round}, ${r.target}: ${errorText(r)} errors in ${r.requests} requests`);
  console.log(JSON.stringify({
    bench: 'http-load', clkTck: CLK_TCK,
    options: { rounds: o.rounds, durationS: o.durationS, connections: o.connections, threads: o.threads, warmupS: o.warmupS },
    results, medians: { siplb, nginx }, ratiosSiplbToNginx: ratios, cpuRatioTarget: CPU_RATIO_TARGET,
  }));
  // Any error makes the run a failed measurement, for scripts that check the exit code.
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  runHttpBench(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      process.stderr.write(`http-load: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
