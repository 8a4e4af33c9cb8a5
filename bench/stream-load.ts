// Stream-transport benchmark: what a call costs siplb over TLS and WebSocket next to UDP, measured
// in one run on one balancer, and how many idle TLS / WS connections it holds per GiB.
//
//   npm run bench -- --streams [--rate 500] [--calls N] [--rounds 3] [--hold 5000]
//                              [--connections 50] [--transports udp,tls,ws] [--warmup N]
//                              [--call-timeout 10000] [--log-level warn]
//   node bench/stream-load.ts ...   (the same, without --streams)
//
//   sipp UAC (UDP) ───────────┐
//   bench/sip-stream-client   ├──► siplb ──► sipp UAS #1 (UDP)
//     (TLS / WS / WSS / TCP) ─┘          └─► sipp UAS #2 (UDP)
//
// One siplb listens on every transport asked for (externalUdpPort, externalTlsPort,
// externalWsPort, ...; one-port mode) and balances over two sipp UASes on UDP (uas-rr.xml: the
// 200 carries the Record-Route set). Each round runs the same call load over each transport in
// turn, the order alternating between rounds so a drift of the machine hits all alike: over UDP
// with sipp's UAC (uac-rr.xml, as `npm run bench -- --scenario rr`), over the stream transports
// with bench/sip-stream-client.ts in a child process (sipp has no WebSocket, Debian's sipp no
// TLS). The figure is siplb's CPU per successful call: utime+stime of its process from
// /proc/PID/stat just before the load starts and just after it ends. For the stream clients the
// connections are opened before and closed after that window (the TLS handshakes are reported
// apart), so every transport is measured on its steady state: calls over open connections.
//
// Then the connection hold: for each stream transport a freshly started siplb (so the heap slack
// the call load left behind does not absorb the new connections), --hold connections opened from
// this process, ramped, each sending one OPTIONS with Max-Forwards: 0 (which siplb parses and
// answers itself with 483: every connection carries a real SIP exchange) and then idle; siplb's
// VmRSS (/proc/PID/status) before and after gives bytes per connection and connections per GiB.
//
// Ends with one JSON line (prefix-free, starts with {"bench":"stream-load") for scripts. Exit
// code 0 only if every measured call succeeded and every held connection was opened and answered.
//
// The /proc readers below repeat sipp-load.ts's few lines rather than import them: that file
// runs its benchmark when loaded.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { intOption, usageExit } from './options.ts';
import { busyPercent, CLK_TCK, cpuTicks, machineTicks, statusKiB, ticksToMs } from './proc.ts';
import { LineBuffer, registerCleanup, spawnOwned, terminate } from '../test/e2e/harness/children.ts';
import type { OwnedChild } from '../test/e2e/harness/children.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { allBound } from '../test/e2e/harness/procnet.ts';
import { nodeBinary, startSiplb } from '../test/e2e/harness/siplb.ts';
import type { SiplbHandle, SiplbLogLevel } from '../test/e2e/harness/siplb.ts';
import { SCENARIOS, failureBreakdown, startSippUac, startSippUas } from '../test/e2e/harness/sipp.ts';
import type { SippUas } from '../test/e2e/harness/sipp.ts';
import { STREAM_TRANSPORTS, closeFlows, openIdleFlows } from './sip-stream-client.ts';
import type { ClientToParent, IdleFlows, LoadResult, ParentToClient, StreamTransport } from './sip-stream-client.ts';

const CLIENT_SCRIPT = fileURLToPath(new URL('./sip-stream-client.ts', import.meta.url));

type Transport = 'udp' | StreamTransport;
const ALL_TRANSPORTS: readonly Transport[] = ['udp', ...STREAM_TRANSPORTS];

// As sipp-load.ts: socket buffers as large as net.core.[rw]mem_max allows, so sipp's 10 ms
// scheduler bursts are not dropped at sipp itself.
const SIPP_BUFF_SIZE = 4 * 1024 * 1024;
/** Held connections per source address: siplb's maxConnectionsPerSource defaults to 1000. */
const HOLD_PER_SOURCE = 500;
/** siplb accepts at most 10 000 connections per listener; leave room for the warm-up batch. */
const MAX_HOLD = 9_000;
/** Connections opened and closed on a fresh siplb before its baseline RSS is read. */
const HOLD_WARMUP = 100;

interface Options {
  rate: number;
  calls: number;
  rounds: number;
  hold: number;
  connections: number;
  transports: Transport[];
  warmupCalls: number;
  callTimeoutMs: number;
  logLevel: SiplbLogLevel;
}

const USAGE =
  'usage: npm run bench -- --streams [--rate 500] [--calls N (default rate*10)] [--rounds 3] [--hold 5000]\n' +
  '                                  [--connections 50] [--transports udp,tls,ws] [--warmup N (default rate*2)]\n' +
  '                                  [--call-timeout 10000] [--log-level warn]\n';

function usage(message: string): never {
  return usageExit('stream-load', USAGE, message);
}

function int(raw: string | undefined, fallback: number, name: string, min: number, max: number): number {
  return intOption(raw, fallback, name, min, max, usage);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      streams: { type: 'boolean' },
      rate: { type: 'string' },
      calls: { type: 'string' },
      rounds: { type: 'string' },
      hold: { type: 'string' },
      connections: { type: 'string' },
      transports: { type: 'string' },
      warmup: { type: 'string' },
      'call-timeout': { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const rate = int(values.rate, 500, 'rate', 1, 20_000);
  const transports = (values.transports ?? 'udp,tls,ws').split(',').map((t) => t.trim().toLowerCase());
  for (const t of transports) if (!ALL_TRANSPORTS.includes(t as Transport)) usage(`--transports knows ${ALL_TRANSPORTS.join(', ')}, got ${t}`);
  if (new Set(transports).size !== transports.length) usage('--transports lists a transport twice');
  const logLevel = values['log-level'] ?? 'warn';
  if (logLevel !== 'error' && logLevel !== 'warn' && logLevel !== 'info' && logLevel !== 'debug') usage(`bad --log-level ${logLevel}`);
  return {
    rate,
    calls: int(values.calls, rate * 10, 'calls', 1, 2_000_000),
    rounds: int(values.rounds, 3, 'rounds', 1, 50),
    hold: int(values.hold, 5000, 'hold', 0, MAX_HOLD),
    connections: int(values.connections, 50, 'connections', 1, 900),
    transports: transports as Transport[],
    warmupCalls: int(values.warmup, rate * 2, 'warmup', 0, 2_000_000),
    callTimeoutMs: int(values['call-timeout'], 10_000, 'call-timeout', 100, 120_000),
    logLevel,
  };
}

// ---- /proc accounting -------------------------------------------------------------------------

function mustTicks(pid: number): number {
  const t = cpuTicks(pid);
  if (t === null) throw new Error(`siplb (pid ${pid}) is gone`);
  return t;
}


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Median of `samples` VmRSS readings `everyMs` apart: one reading catches whatever the allocator is doing that instant. */
async function settledRssKiB(pid: number, samples = 5, everyMs = 200): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(everyMs);
    const v = statusKiB(pid, 'VmRSS');
    if (v === null) throw new Error(`siplb (pid ${pid}) is gone`);
    values.push(v);
  }
  return median(values);
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// ---- setup ------------------------------------------------------------------------------------

/** A self-signed certificate for 127.0.0.1 / ::1 / localhost, as the contract's tests make one. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost', '-days', '2',
    '-keyout', key, '-out', cert,
  ], { encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`openssl could not make a certificate (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}` +
      '\ninstall it as root with: apt-get install -y openssl');
  }
  return { cert, key };
}

interface Listeners {
  udp: number;
  tcp: number | null;
  tls: number | null;
  ws: number | null;
  wss: number | null;
}

const PORT_KEYS: Record<Transport, string> = {
  udp: 'externalUdpPort', tcp: 'externalTcpPort', tls: 'externalTlsPort', ws: 'externalWsPort', wss: 'externalWssPort',
};

function siplbProperties(listeners: Listeners, nodePorts: number[], heartbeatPort: number, certs: { cert: string; key: string } | null): Record<string, string> {
  const props: Record<string, string> = {
    host: '127.0.0.1',
    nodes: nodePorts.map((p) => `127.0.0.1:${p};transport=udp`).join(','),
    // As sipp-load.ts: sipp's uas sends no 100, so siplb's own would be a send only the
    // benchmark pays for.
    isSendTrying: 'false',
    // sipp's uas does not answer OPTIONS probes: a probe would take a node out between rounds.
    healthCheckInterval: '0',
    heartbeatPort: String(heartbeatPort),
  };
  for (const t of ALL_TRANSPORTS) {
    const port = listeners[t];
    if (port !== null) props[PORT_KEYS[t]] = String(port);
  }
  if (certs !== null) {
    props['tlsCertFile'] = certs.cert;
    props['tlsKeyFile'] = certs.key;
  }
  return props;
}

async function startBalancer(props: Record<string, string>, listeners: Listeners, logLevel: SiplbLogLevel): Promise<SiplbHandle> {
  const handle = await startSiplb(props, { logLevel });
  // "siplb ready" comes once its sockets are bound; a tree without a TLS or WS listener yet only
  // warns about the key, so look at what it really listens on before sending anything.
  const missing: string[] = [];
  for (const t of ALL_TRANSPORTS) {
    const port = listeners[t];
    if (port === null) continue;
    if (!allBound(handle.pid, [{ proto: t === 'udp' ? 'udp' : 'tcp', port }])) missing.push(`${t.toUpperCase()} on 127.0.0.1:${port}`);
  }
  if (missing.length > 0) {
    const warnings = handle.logs().filter((l) => l.includes('"level":40') || !l.startsWith('{')).slice(-10).join('\n');
    await handle.stop();
    throw new Error(`siplb did not open ${missing.join(', ')} (${missing.map((m) => PORT_KEYS[m.split(' ')[0].toLowerCase() as Transport]).join(', ')});` +
      ` this tree may not have that transport yet: --transports chooses what to measure (e.g. udp,tcp).\nsiplb said:\n${warnings}`);
  }
  return handle;
}

// ---- one load ---------------------------------------------------------------------------------

interface RunResult {
  /** 0 for the unmeasured warm-up. */
  round: number;
  transport: Transport;
  calls: number;
  rate: number;
  successful: number;
  failed: number;
  failureReasons: string;
  /** UDP: sipp UAC retransmissions. Streams: 2xx the UAS sent again because the ACK was late. */
  retransmissions: number;
  wallSeconds: number;
  achievedCps: number;
  siplbCpuMs: number;
  cpuMsPerCall: number | null;
  /** siplb's CPU over the load as % of one core. */
  siplbCpuPercent: number;
  siplbRssKiB: number | null;
  /** The load generator's own CPU (sipp UAC, or the stream client) and its % of one core. */
  loadgenCpuMs: number;
  loadgenCpuPercent: number;
  machineBusyPercent: number;
  /** Streams: INVITE to 200 at the client; null for UDP (sipp's figures are not read). */
  setupP50Ms: number | null;
  setupP99Ms: number | null;
  /** Streams: siplb's CPU while the client opened its connections (TCP + TLS handshake + upgrade), per connection. */
  connectCpuMsPerConnection: number | null;
}

interface Context {
  o: Options;
  siplb: SiplbHandle;
  listeners: Listeners;
  uacPort: number;
}

function loadSeconds(o: Options, calls: number): number {
  return Math.ceil(calls / o.rate) * 2 + 30;
}

async function runUdp(ctx: Context, round: number, calls: number): Promise<RunResult> {
  const { o, siplb } = ctx;
  const ticksBefore = mustTicks(siplb.pid);
  const busyBefore = machineTicks();
  const started = process.hrtime.bigint();
  const uac = await startSippUac({
    scenario: SCENARIOS.uacRr,
    transport: 'u1',
    localPort: ctx.uacPort,
    remote: `127.0.0.1:${ctx.listeners.udp}`,
    rate: o.rate,
    ratePeriodMs: 1000,
    calls,
    // As sipp-load.ts: calls last milliseconds, so sipp's default limit would throttle the rate
    // whenever the path queues; 5 s worth only bounds sipp's memory.
    maxConcurrent: o.rate * 5,
    timeoutS: loadSeconds(o, calls),
    buffSize: SIPP_BUFF_SIZE,
  });
  // A reaped process has no /proc entry: the UAC's CPU is sampled while it runs (good to 200 ms).
  let uacTicks = 0;
  const sampler = setInterval(() => {
    uacTicks = cpuTicks(uac.pid) ?? uacTicks;
  }, 200);
  const result = await uac.done.finally(() => clearInterval(sampler));
  const ended = process.hrtime.bigint();
  const ticksAfter = mustTicks(siplb.pid);
  const busyAfter = machineTicks();
  const wallSeconds = Number(ended - started) / 1e9;
  const siplbCpuMs = ticksToMs(ticksAfter - ticksBefore);
  const successful = result.stats.successful;
  return {
    round, transport: 'udp', calls, rate: o.rate, successful,
    failed: calls - successful,
    failureReasons: result.stats.failed > 0 || successful < calls ? failureBreakdown(result.stats) : '',
    retransmissions: result.stats.retransmissions,
    wallSeconds,
    achievedCps: successful / wallSeconds,
    siplbCpuMs,
    cpuMsPerCall: successful === 0 ? null : siplbCpuMs / successful,
    siplbCpuPercent: (siplbCpuMs / (wallSeconds * 1000)) * 100,
    siplbRssKiB: statusKiB(siplb.pid, 'VmRSS'),
    loadgenCpuMs: ticksToMs(uacTicks),
    loadgenCpuPercent: (ticksToMs(uacTicks) / (wallSeconds * 1000)) * 100,
    machineBusyPercent: busyPercent(busyBefore, busyAfter),
    setupP50Ms: null,
    setupP99Ms: null,
    connectCpuMsPerConnection: null,
  };
}

/** Waits for the client's next IPC message, its exit, or the timeout, whichever comes first. */
function nextMessage(child: OwnedChild, timeoutMs: number, what: string, stderr: LineBuffer): Promise<ClientToParent> {
  return new Promise<ClientToParent>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`stream client: no ${what} within ${timeoutMs} ms\n${stderr.snapshot().slice(-20).join('\n')}`));
    }, timeoutMs);
    const onMessage = (m: ClientToParent): void => {
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      reject(new Error(`stream client exited (code ${code}, signal ${signal}) before ${what}\n${stderr.snapshot().slice(-20).join('\n')}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.process.off('message', onMessage);
      child.process.off('exit', onExit);
    };
    child.process.on('message', onMessage);
    child.process.on('exit', onExit);
  });
}

async function runStream(ctx: Context, round: number, transport: StreamTransport, calls: number): Promise<RunResult> {
  const { o, siplb } = ctx;
  const port = ctx.listeners[transport];
  if (port === null) throw new Error(`no ${transport} listener configured`);
  const maxSeconds = loadSeconds(o, calls);
  const args = [
    CLIENT_SCRIPT, '--transport', transport, '--target', `127.0.0.1:${port}`,
    '--connections', String(o.connections), '--rate', String(o.rate), '--calls', String(calls),
    '--call-timeout', String(o.callTimeoutMs), '--max-seconds', String(maxSeconds),
  ];
  const connectTicksBefore = mustTicks(siplb.pid);
  // Its own process: the client's CPU must not be this process's, which only reads /proc.
  const child = spawnOwned(nodeBinary(), args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const stderr = new LineBuffer(200);
  child.process.stderr?.setEncoding('utf8');
  child.process.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  child.process.stdout?.resume();
  try {
    const ready = await nextMessage(child, 60_000, 'ready', stderr);
    if (ready.type === 'error') throw new Error(`stream client (${transport}) could not connect: ${ready.message}`);
    if (ready.type !== 'ready') throw new Error(`stream client sent ${ready.type} before ready`);
    const connectCpuMs = ticksToMs(mustTicks(siplb.pid) - connectTicksBefore);

    const ticksBefore = mustTicks(siplb.pid);
    const busyBefore = machineTicks();
    const done = nextMessage(child, (maxSeconds + 30) * 1000, 'result', stderr);
    child.process.send({ type: 'go' } satisfies ParentToClient);
    const message = await done;
    const ticksAfter = mustTicks(siplb.pid);
    const busyAfter = machineTicks();
    if (message.type !== 'done') throw new Error(`stream client: ${message.type === 'error' ? message.message : 'unexpected message'}`);
    const r: LoadResult = message.result;
    const siplbCpuMs = ticksToMs(ticksAfter - ticksBefore);
    const reasons = Object.entries(r.failures).map(([k, v]) => `${k}=${v}`);
    if (r.connectionsLost > 0) reasons.push(`connections lost=${r.connectionsLost}`);
    if (r.strayResponses > 0) reasons.push(`stray responses=${r.strayResponses}`);
    return {
      round, transport, calls, rate: o.rate,
      successful: r.successful,
      failed: calls - r.successful,
      failureReasons: r.failed > 0 || r.successful < calls ? reasons.join(', ') : '',
      retransmissions: r.retransmitted2xx,
      wallSeconds: r.wallSeconds,
      achievedCps: r.achievedCps,
      siplbCpuMs,
      cpuMsPerCall: r.successful === 0 ? null : siplbCpuMs / r.successful,
      siplbCpuPercent: (siplbCpuMs / (r.wallSeconds * 1000)) * 100,
      siplbRssKiB: statusKiB(siplb.pid, 'VmRSS'),
      loadgenCpuMs: r.clientCpuMs,
      loadgenCpuPercent: r.clientCpuPercent,
      machineBusyPercent: busyPercent(busyBefore, busyAfter),
      setupP50Ms: r.setupMs.p50,
      setupP99Ms: r.setupMs.p99,
      connectCpuMsPerConnection: connectCpuMs / r.connections,
    };
  } finally {
    // After 'done' the client closes its connections and exits by itself; one that has not
    // within 10 s (or failed before) is stopped.
    await Promise.race([child.exited, sleep(10_000)]);
    await terminate(child, 'SIGTERM', 5_000);
  }
}

function runLoad(ctx: Context, round: number, transport: Transport, calls: number): Promise<RunResult> {
  return transport === 'udp' ? runUdp(ctx, round, calls) : runStream(ctx, round, transport, calls);
}

// ---- connection hold --------------------------------------------------------------------------

interface HoldResult {
  transport: StreamTransport;
  requested: number;
  opened: number;
  answered: number;
  statuses: Record<string, number>;
  failures: Record<string, number>;
  lost: number;
  rampSeconds: number;
  /** siplb's CPU while the connections were opened (accept, handshake, upgrade, one OPTIONS), per connection. */
  cpuMsPerConnection: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssAfterCloseKiB: number;
  bytesPerConnection: number | null;
  connectionsPerGiB: number | null;
  sources: number;
}

async function holdConnections(o: Options, transport: StreamTransport, props: Record<string, string>, listeners: Listeners): Promise<HoldResult> {
  const port = listeners[transport];
  if (port === null) throw new Error(`no ${transport} listener configured`);
  const siplb = await startBalancer(props, listeners, o.logLevel);
  // Spread over 127.0.1.x (all of 127/8 is loopback) so no source reaches siplb's per-source cap.
  const sourceCount = Math.max(1, Math.ceil((o.hold + HOLD_WARMUP) / HOLD_PER_SOURCE));
  const sources = Array.from({ length: sourceCount }, (_, i) => `127.0.1.${i + 1}`);
  const base = { transport, host: '127.0.0.1', port, sources, perSource: HOLD_PER_SOURCE, parallel: 50, timeoutMs: 10_000 };
  let held: IdleFlows | null = null;
  try {
    // Once through the path before the baseline: the code compiled and the pools sized for the
    // first connections are a one-time cost, not a per-connection one.
    const warm = await openIdleFlows({ ...base, count: HOLD_WARMUP, deadlineMs: 60_000 });
    await closeFlows(warm.flows);
    if (warm.answered < HOLD_WARMUP) {
      throw new Error(`${transport}: only ${warm.answered} of ${HOLD_WARMUP} warm-up connections were answered (${JSON.stringify(warm.failures)})`);
    }
    await sleep(1_000);
    const rssBeforeKiB = await settledRssKiB(siplb.pid);
    const ticksBefore = mustTicks(siplb.pid);
    // 50 handshakes in flight at a time; bounded at 1 s per 20 connections plus a minute.
    held = await openIdleFlows({ ...base, count: o.hold, deadlineMs: 60_000 + o.hold * 50 });
    const cpuMs = ticksToMs(mustTicks(siplb.pid) - ticksBefore);
    // Let whatever the ramp allocated transiently (handshake buffers, parser garbage) settle.
    await sleep(2_000);
    const rssAfterKiB = await settledRssKiB(siplb.pid);
    const lost = held.lost;
    const stillOpen = await closeFlows(held.flows);
    if (stillOpen > 0) console.log(`  ${transport}: ${stillOpen} held connection(s) did not close within 10 s`);
    await sleep(1_000);
    const rssAfterCloseKiB = await settledRssKiB(siplb.pid);
    const grownBytes = (rssAfterKiB - rssBeforeKiB) * 1024;
    const bytesPerConnection = held.opened === 0 || grownBytes <= 0 ? null : grownBytes / held.opened;
    return {
      transport, requested: o.hold, opened: held.opened, answered: held.answered, statuses: held.statuses,
      failures: held.failures, lost, rampSeconds: held.seconds,
      cpuMsPerConnection: held.opened === 0 ? 0 : cpuMs / held.opened,
      rssBeforeKiB, rssAfterKiB, rssAfterCloseKiB, bytesPerConnection,
      connectionsPerGiB: bytesPerConnection === null ? null : 2 ** 30 / bytesPerConnection,
      sources: sourceCount,
    };
  } finally {
    if (held !== null) await closeFlows(held.flows, 2_000);
    await siplb.stop();
  }
}

// ---- report -----------------------------------------------------------------------------------

const COLUMNS = ['round', 'transport', 'calls ok', 'failed', 'calls/s', 'siplb ms/call', 'siplb CPU %', 'RSS MiB',
  'loadgen CPU %', 'machine %', 'setup p50/p99 ms', 'conn ms', 'notes'];
const WIDTHS = [5, 9, 8, 6, 8, 13, 11, 7, 13, 9, 16, 7, 0];

function row(cells: string[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(WIDTHS[i]) : c.padStart(WIDTHS[i]))).join('  ');
}

function fmt(v: number | null, digits: number): string {
  return v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
}

function printRun(r: RunResult): void {
  const notes: string[] = [];
  if (r.failureReasons !== '') notes.push(r.failureReasons);
  if (r.retransmissions > 0) notes.push(`${r.transport === 'udp' ? 'UAC retransmissions' : '2xx resent'} ${r.retransmissions}`);
  console.log(row([
    r.round === 0 ? 'warm' : String(r.round), r.transport, String(r.successful), String(r.failed), r.achievedCps.toFixed(0),
    fmt(r.cpuMsPerCall, 4), r.siplbCpuPercent.toFixed(0), fmt(r.siplbRssKiB === null ? null : r.siplbRssKiB / 1024, 0),
    r.loadgenCpuPercent.toFixed(0), r.machineBusyPercent.toFixed(0),
    r.setupP50Ms === null ? '-' : `${r.setupP50Ms.toFixed(2)}/${fmt(r.setupP99Ms, 2)}`,
    r.connectCpuMsPerConnection === null ? '-' : r.connectCpuMsPerConnection.toFixed(2),
    notes.join('; '),
  ]));
}

function printHold(h: HoldResult): void {
  const mib = (kib: number): string => (kib / 1024).toFixed(1);
  console.log(`  ${h.transport.toUpperCase().padEnd(4)} ${h.opened}/${h.requested} open (${h.answered} answered ${JSON.stringify(h.statuses)}, ` +
    `${h.sources} source address(es), ${h.rampSeconds.toFixed(1)} s ramp, siplb ${h.cpuMsPerConnection.toFixed(2)} CPU ms/connection)`);
  console.log(`       VmRSS ${mib(h.rssBeforeKiB)} -> ${mib(h.rssAfterKiB)} MiB (${mib(h.rssAfterCloseKiB)} after closing them): ` +
    `${h.bytesPerConnection === null ? 'n/a' : `${(h.bytesPerConnection / 1024).toFixed(1)} KiB`} per connection, ` +
    `${h.connectionsPerGiB === null ? 'n/a' : Math.round(h.connectionsPerGiB).toLocaleString('en-US')} connections per GiB`);
  const problems = [...Object.entries(h.failures).map(([k, v]) => `${k}: ${v}`), ...(h.lost > 0 ? [`closed while held: ${h.lost}`] : [])];
  if (problems.length > 0) console.log(`       problems: ${problems.join('; ')}`);
}

interface Summary {
  transport: Transport;
  cpuMsPerCall: number;
  perRound: number[];
  /** Median of this transport's CPU per call / UDP's median. */
  ratioToUdp: number | null;
  /** This transport / UDP, round by round. */
  perRoundRatioToUdp: number[];
  setupP99Ms: number | null;
}

function summarize(o: Options, results: RunResult[]): Summary[] {
  const measured = results.filter((r) => r.round > 0);
  const cpu = (t: Transport): number[] => measured.filter((r) => r.transport === t && r.cpuMsPerCall !== null).map((r) => r.cpuMsPerCall as number);
  const udpMedian = o.transports.includes('udp') ? median(cpu('udp')) : NaN;
  return o.transports.map((t) => {
    const perRound = cpu(t);
    const m = median(perRound);
    const perRoundRatioToUdp: number[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const mine = measured.find((r) => r.round === round && r.transport === t);
      const udp = measured.find((r) => r.round === round && r.transport === 'udp');
      if (mine?.cpuMsPerCall != null && udp?.cpuMsPerCall != null && udp.cpuMsPerCall > 0) perRoundRatioToUdp.push(mine.cpuMsPerCall / udp.cpuMsPerCall);
    }
    const p99 = measured.filter((r) => r.transport === t && r.setupP99Ms !== null).map((r) => r.setupP99Ms as number);
    return {
      transport: t,
      cpuMsPerCall: m,
      perRound,
      ratioToUdp: Number.isFinite(udpMedian) && udpMedian > 0 && Number.isFinite(m) ? m / udpMedian : null,
      perRoundRatioToUdp,
      setupP99Ms: p99.length === 0 ? null : median(p99),
    };
  });
}

// ---- main -------------------------------------------------------------------------------------

export async function runStreamBench(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  const streamTransports = o.transports.filter((t): t is StreamTransport => t !== 'udp');
  console.log(`stream-load: ${o.transports.join(', ')}; ${o.calls} calls at ${o.rate}/s per load, ${o.rounds} round(s), ` +
    `${o.connections} connections per stream load, ${o.warmupCalls} warm-up calls each, hold ${o.hold} per stream transport, CLK_TCK ${CLK_TCK}`);

  // siplb: one port per transport, a heartbeat port; two UAS; the UDP UAC.
  const ports = await allocatePorts(ALL_TRANSPORTS.length + 4);
  const [heartbeatPort, uasA, uasB, uacPort, ...listenerPorts] = ports;
  const listeners: Listeners = { udp: listenerPorts[0], tcp: null, tls: null, ws: null, wss: null };
  STREAM_TRANSPORTS.forEach((t, i) => {
    if (streamTransports.includes(t)) listeners[t] = listenerPorts[i + 1];
  });
  const dir = mkdtempSync(join(tmpdir(), 'siplb-bench-streams-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  // Also when the benchmark is interrupted: children.ts runs this beside its kills.
  const unregisterDir = registerCleanup(removeDir);
  const needsCert = streamTransports.some((t) => t === 'tls' || t === 'wss');
  const certs = needsCert ? makeCertificate(dir) : null;
  const props = siplbProperties(listeners, [uasA, uasB], heartbeatPort, certs);

  const results: RunResult[] = [];
  const holds: HoldResult[] = [];
  const uases: SippUas[] = [];
  let siplb: SiplbHandle | null = null;
  let peakRssKiB: number | null = null;
  let nodeTotals: { incoming: number[]; failed: number; retransmissions: number } | null = null;
  try {
    // The UASes live through every load and the hold phase; -timeout bounds them regardless.
    const perLoad = loadSeconds(o, o.calls) + 10;
    const uasTimeoutS = (o.rounds + 1) * o.transports.length * perLoad + streamTransports.length * (180 + Math.ceil(o.hold / 10)) + 120;
    for (const port of [uasA, uasB]) {
      uases.push(await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: port, timeoutS: uasTimeoutS, buffSize: SIPP_BUFF_SIZE }));
    }
    siplb = await startBalancer(props, listeners, o.logLevel);
    const ctx: Context = { o, siplb, listeners, uacPort };
    console.log(`siplb pid ${siplb.pid}: ${o.transports.map((t) => `${t.toUpperCase()} 127.0.0.1:${listeners[t]}`).join(', ')}; nodes UDP ${uasA}, ${uasB}\n`);
    console.log(row(COLUMNS));
    if (o.warmupCalls > 0) {
      // Not measured: V8 compiles each transport's path, pools and tables reach their size.
      for (const t of o.transports) {
        const r = await runLoad(ctx, 0, t, o.warmupCalls);
        printRun(r);
        results.push(r);
      }
    }
    for (let round = 1; round <= o.rounds; round++) {
      // Alternate the order, so a drift of the machine over the run hits every transport alike.
      const order = round % 2 === 1 ? o.transports : [...o.transports].reverse();
      for (const t of order) {
        const r = await runLoad(ctx, round, t, o.calls);
        printRun(r);
        results.push(r);
      }
    }
    peakRssKiB = statusKiB(siplb.pid, 'VmHWM');
    await siplb.stop();
    siplb = null;

    if (o.hold > 0 && streamTransports.length > 0) {
      console.log(`\nconnection hold: ${o.hold} idle connections per transport on a fresh siplb, each after one OPTIONS (Max-Forwards: 0)`);
      for (const t of streamTransports) {
        const h = await holdConnections(o, t, props, listeners);
        printHold(h);
        holds.push(h);
      }
    }
    const finals = await Promise.all(uases.map((u) => u.stop()));
    nodeTotals = {
      incoming: finals.map((f) => f.stats.incoming),
      failed: finals.reduce((a, f) => a + f.stats.failed, 0),
      retransmissions: finals.reduce((a, f) => a + f.stats.retransmissions, 0),
    };
  } finally {
    await siplb?.stop();
    await Promise.allSettled(uases.map((u) => u.stop(2_000)));
    removeDir();
    unregisterDir();
    releasePorts(ports);
  }

  const summaries = summarize(o, results);
  console.log(`\nmedians over ${o.rounds} round(s), siplb CPU per successful call (peak RSS ${fmt(peakRssKiB === null ? null : peakRssKiB / 1024, 0)} MiB):`);
  for (const s of summaries) {
    console.log(`  ${s.transport.toUpperCase().padEnd(4)} ${fmt(s.cpuMsPerCall, 4)} ms/call` +
      (s.transport === 'udp' || s.ratioToUdp === null ? '' : `  = ${s.ratioToUdp.toFixed(2)} x UDP (per round: ${s.perRoundRatioToUdp.map((v) => v.toFixed(2)).join(', ')})`) +
      (s.setupP99Ms === null ? '' : `  setup p99 ${s.setupP99Ms.toFixed(2)} ms`));
  }
  if (nodeTotals !== null) {
    console.log(`nodes: ${nodeTotals.incoming.join(' / ')} calls, ${nodeTotals.failed} failed, ${nodeTotals.retransmissions} retransmissions (whole run)`);
  }
  const badRuns = results.filter((r) => r.round > 0 && (r.failed > 0 || r.successful !== r.calls));
  const badHolds = holds.filter((h) => h.opened !== h.requested || h.answered !== h.requested || h.lost > 0);
  console.log(JSON.stringify({
    bench: 'stream-load', clkTck: CLK_TCK,
    options: {
      rate: o.rate, calls: o.calls, rounds: o.rounds, hold: o.hold, connections: o.connections,
      transports: o.transports, warmupCalls: o.warmupCalls, callTimeoutMs: o.callTimeoutMs,
    },
    results, summaries, peakRssKiB, hold: holds, nodes: nodeTotals,
  }));
  // Any failed call or connection makes the run a failed measurement, for scripts that check the exit code.
  return badRuns.length === 0 && badHolds.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  runStreamBench(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      process.stderr.write(`stream-load: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
