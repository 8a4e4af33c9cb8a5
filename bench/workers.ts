// Every core used: the highest call rate siplb carries with 0 failed calls at workers=1 and at
// workers=2 (or --counts), alternating the settings over rounds, with CPU per call and who was
// busy at the first rate that failed.
//
//   npm run bench -- --workers [--rounds 3] [--counts 1,2] [--start 1000] [--step 1.2]
//                    [--seconds 5] [--max-rate 20000] [--scenario rr|basic] [--cpu-quota none|0.5]
//
// Bed: sipp's UAC → siplb → two sipp UAS, UDP on loopback, isSendTrying=false (as
// bench/sipp-load.ts, like for like with Kamailio). The UAC opens a socket per call (-t un): the
// kernel spreads a port's datagrams over SO_REUSEPORT sockets by the hash of the source address
// and port, so one UAC socket would put every call on one worker (real clients come from many
// addresses and ports; one trunk from one port does pin to one worker).
//
// Each setting gets a fresh siplb and UASes per round, a 3 s warm-up at --start, then probes of
// --seconds from --start up by --step while every call of a probe completes (0 failed calls, all
// calls done); the last passing rate is the setting's figure for the round. Printed per probe:
// CPU ms per call of siplb (supervisor and workers, over the whole run), and over the offering
// itself each worker's CPU in cores, sipp's UAC and UAS CPU in cores and the machine's busy
// share; for the first failing probe the same tells what
// limited (a process near 1.00 core is saturated: sipp is single-threaded, so is each worker's
// event loop). --cpu-quota caps each worker at that share of a core in a cgroup of its own
// (bench/cpu-quota.ts), to see the workers scale where sipp would otherwise saturate first.

import { parseArgs } from 'node:util';
import { makeCpuQuota, type CpuQuota } from './cpu-quota.ts';
import { busyPercent, cpuTicks, machineTicks, ticksToMs } from './proc.ts';
import { processesBy, startSiplbTarget, type RunningTarget } from './targets.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { SCENARIOS, startSippUac, startSippUas, type SippScenario, type SippUas } from '../test/e2e/harness/sipp.ts';

const SIPP_BUFF_SIZE = 4 * 1024 * 1024;
const SETTLE_MS = 3000;
const WARM_UP_SECONDS = 3;
const MAX_PROBES = 25;

interface Options {
  rounds: number;
  counts: number[];
  start: number;
  step: number;
  seconds: number;
  maxRate: number;
  scenario: 'rr' | 'basic';
  cpuQuota: number | null;
}

const USAGE =
  'usage: npm run bench -- --workers [--rounds 3] [--counts 1,2] [--start 1000] [--step 1.2] [--seconds 5]\n' +
  '                       [--max-rate 20000] [--scenario rr|basic] [--cpu-quota none|0.5]\n';

function usage(message: string): never {
  process.stderr.write(`workers: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        rounds: { type: 'string' }, counts: { type: 'string' }, start: { type: 'string' }, step: { type: 'string' },
        seconds: { type: 'string' }, 'max-rate': { type: 'string' }, scenario: { type: 'string' }, 'cpu-quota': { type: 'string' },
      },
    }));
  } catch (err) {
    usage((err as Error).message.split('\n')[0]);
  }
  const int = (raw: string | undefined, fallback: number, min: number, max: number, name: string): number => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} must be an integer ${min}..${max}, got ${raw}`);
    return n;
  };
  const counts = (values.counts ?? '1,2').split(',').map(Number);
  if (counts.length < 2 || counts.some((c) => !Number.isInteger(c) || c < 1 || c > 64)) usage(`--counts must be two or more worker counts 1..64, got ${values.counts}`);
  const step = Number(values.step ?? '1.2');
  if (!(step >= 1.02 && step <= 3)) usage(`--step must be a factor 1.02..3, got ${values.step}`);
  const scenario = values.scenario ?? 'rr';
  if (scenario !== 'rr' && scenario !== 'basic') usage(`--scenario must be rr or basic, got ${scenario}`);
  const rawQuota = values['cpu-quota'] ?? 'none';
  const cpuQuota = rawQuota === 'none' ? null : Number(rawQuota);
  if (cpuQuota !== null && !(cpuQuota >= 0.05 && cpuQuota <= 1)) usage(`--cpu-quota must be a share of one core 0.05..1 per worker, or none, got ${rawQuota}`);
  return {
    rounds: int(values.rounds, 3, 1, 20, 'rounds'), counts, start: int(values.start, 1000, 10, 100_000, 'start'), step,
    seconds: int(values.seconds, 5, 2, 60, 'seconds'), maxRate: int(values['max-rate'], 20_000, 10, 200_000, 'max-rate'), scenario, cpuQuota,
  };
}

/** Children of `pid` (the supervisor's workers), in pid order. */
function childrenOf(pid: number): number[] {
  return processesBy('ppid', pid).sort((a, b) => a - b);
}

interface Bed {
  lbPort: number;
  uacPort: number;
  uases: SippUas[];
  balancer: RunningTarget;
  /** The supervisor (workers > 1) or the only process. */
  mainPid: number;
  /** The processes that run the SIP path: the workers, or the only process. */
  workerPids: number[];
  stop(): Promise<void>;
}

async function startBed(workers: number, o: Options): Promise<Bed> {
  const ports = await allocatePorts(4);
  const [lbPort, uasA, uasB, uacPort] = ports;
  const uases: SippUas[] = [];
  const quotas: CpuQuota[] = [];
  let balancer: RunningTarget | null = null;
  const uasScenario: SippScenario = o.scenario === 'rr' ? SCENARIOS.uasRr : 'uas';
  try {
    for (const port of [uasA, uasB]) {
      uases.push(await startSippUas({ scenario: uasScenario, transport: 'u1', localPort: port, timeoutS: 3600, buffSize: SIPP_BUFF_SIZE }));
    }
    balancer = await startSiplbTarget(lbPort, `127.0.0.1:${uasA};transport=udp,127.0.0.1:${uasB};transport=udp`, 'warn', false, false, { workers: String(workers) });
    const mainPid = balancer.pids()[0];
    const workerPids = workers === 1 ? [mainPid] : childrenOf(mainPid);
    if (workerPids.length !== workers) throw new Error(`expected ${workers} worker processes under ${mainPid}, found ${workerPids.length}`);
    if (o.cpuQuota !== null) {
      for (const [i, pid] of workerPids.entries()) {
        const q = makeCpuQuota(`siplb-workers-${process.pid}-${workers}-${i}`, o.cpuQuota);
        q.add(pid);
        quotas.push(q);
      }
    }
    const running = balancer;
    return {
      lbPort, uacPort, uases, balancer: running, mainPid, workerPids,
      async stop() {
        await running.stop();
        await Promise.allSettled(uases.map((u) => u.stop(2_000)));
        for (const q of quotas) q.remove();
        releasePorts(ports);
      },
    };
  } catch (err) {
    await balancer?.stop();
    await Promise.allSettled(uases.map((u) => u.stop(2_000)));
    for (const q of quotas) q.remove();
    releasePorts(ports);
    throw err;
  }
}

interface Probe {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  retransmissions: number;
  passed: boolean;
  /** siplb's CPU (supervisor and workers) per successful call, ms. */
  cpuMsPerCall: number;
  /** Each worker's CPU over the probe, in cores. */
  workerCores: number[];
  uacCores: number;
  uasCores: number[];
  machineBusy: number;
}

async function probe(bed: Bed, rate: number, seconds: number, o: Options): Promise<Probe> {
  const calls = rate * seconds;
  const siplbPids = [...new Set([bed.mainPid, ...bed.workerPids])];
  const before = new Map(siplbPids.map((p) => [p, cpuTicks(p) ?? 0]));
  const uasBefore = bed.uases.map((u) => cpuTicks(u.pid) ?? 0);
  const machineBefore = machineTicks();
  const started = Date.now();
  const uac = await startSippUac({
    scenario: o.scenario === 'rr' ? SCENARIOS.uacRr : 'uac', transport: 'un', localPort: bed.uacPort,
    remote: `127.0.0.1:${bed.lbPort}`, rate, ratePeriodMs: 1000, calls, maxConcurrent: rate * 5,
    // The harness gives -t un its own -max_socket (within the open-files limit); calls last milliseconds.
    timeoutS: seconds * 2 + 30, buffSize: SIPP_BUFF_SIZE,
  });
  // Who is busy is read over the offering itself (`seconds`): a probe that fails waits on for its
  // calls' timeouts, and averaging over that wait would hide what was saturated. A reaped process
  // has no /proc entry, so the UAC is read while it runs.
  const read = (): { at: number; uac: number; siplb: Map<number, number>; uas: number[]; machine: ReturnType<typeof machineTicks> } => ({
    at: Date.now(), uac: cpuTicks(uac.pid) ?? 0, siplb: new Map(siplbPids.map((p) => [p, cpuTicks(p) ?? 0])),
    uas: bed.uases.map((u) => cpuTicks(u.pid) ?? 0), machine: machineTicks(),
  });
  let offered: ReturnType<typeof read> | null = null;
  const offerTimer = setTimeout(() => { offered = read(); }, seconds * 1000);
  const result = await uac.done.finally(() => clearTimeout(offerTimer));
  const end = read();
  const busy: ReturnType<typeof read> = offered ?? end;
  const wallMs = busy.at - started;
  const cores = (ticks: number): number => ticksToMs(ticks) / wallMs;
  // CPU per call over the whole run: every call's work, retransmissions included.
  const siplbTicks = siplbPids.reduce((a, p) => a + (end.siplb.get(p)! - before.get(p)!), 0);
  const s = result.stats;
  const passed = s.failed === 0 && s.successful === calls && !result.forced;
  // Retransmission timers and the UASes' timewait of this probe must not reach into the next.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return {
    rate, calls, successful: s.successful, failed: s.failed, retransmissions: s.retransmissions, passed,
    cpuMsPerCall: ticksToMs(siplbTicks) / Math.max(1, s.successful),
    workerCores: bed.workerPids.map((p) => cores(busy.siplb.get(p)! - before.get(p)!)),
    uacCores: cores(busy.uac), uasCores: busy.uas.map((t, i) => cores(t - uasBefore[i])),
    machineBusy: busyPercent(machineBefore, busy.machine),
  };
}

function probeLine(p: Probe): string {
  const f = (n: number): string => n.toFixed(2);
  return `  ${String(p.rate).padStart(6)}/s ${p.passed ? 'ok  ' : 'FAIL'} ${p.successful}/${p.calls} calls, ${p.failed} failed, ${p.retransmissions} retr; ` +
    `siplb ${p.cpuMsPerCall.toFixed(3)} ms CPU/call, workers ${p.workerCores.map(f).join('+')} cores; ` +
    `sipp UAC ${f(p.uacCores)}, UAS ${p.uasCores.map(f).join('+')} cores; machine ${p.machineBusy.toFixed(0)} % busy`;
}

/** What the first failing probe says limited: the processes at or near a full core, or the machine. */
function limitedBy(p: Probe | undefined, workers: number, quota: number | null): string {
  if (p === undefined) return 'nothing failed up to --max-rate';
  const near = (c: number, cap = 1): boolean => c >= 0.9 * cap;
  const out: string[] = [];
  if (near(p.uacCores)) out.push(`sipp UAC ${p.uacCores.toFixed(2)} cores`);
  p.uasCores.forEach((c, i) => { if (near(c)) out.push(`sipp UAS ${i} ${c.toFixed(2)} cores`); });
  p.workerCores.forEach((c, i) => { if (near(c, quota ?? 1)) out.push(`${workers === 1 ? 'siplb' : `worker ${i}`} ${c.toFixed(2)} cores${quota === null ? '' : ` (cap ${quota})`}`); });
  if (p.machineBusy >= 95) out.push(`machine ${p.machineBusy.toFixed(0)} % busy`);
  return out.length === 0 ? `no process at a full core (machine ${p.machineBusy.toFixed(0)} % busy)` : out.join(', ');
}

interface SettingResult {
  workers: number;
  best: number;
  bestProbe: Probe | undefined;
  failedProbe: Probe | undefined;
}

async function measure(workers: number, o: Options): Promise<SettingResult> {
  const bed = await startBed(workers, o);
  try {
    console.log(`workers=${workers}: siplb pid ${bed.mainPid}${workers > 1 ? `, workers ${bed.workerPids.join(' ')}` : ''}`);
    const warm = await probe(bed, o.start, WARM_UP_SECONDS, o);
    console.log(`  warm-up: ${probeLine(warm).trim()}`);
    let rate = o.start;
    let best = 0;
    let bestProbe: Probe | undefined;
    let failedProbe: Probe | undefined;
    for (let i = 0; i < MAX_PROBES && rate <= o.maxRate; i++) {
      const p = await probe(bed, rate, o.seconds, o);
      console.log(probeLine(p));
      if (!p.passed) {
        failedProbe = p;
        break;
      }
      best = rate;
      bestProbe = p;
      rate = Math.round(rate * o.step);
    }
    return { workers, best, bestProbe, failedProbe };
  } finally {
    await bed.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function runWorkersBench(argv: string[]): Promise<number> {
  const o = parse(argv);
  console.log(`workers bench: counts ${o.counts.join(', ')}, ${o.rounds} round(s), probes of ${o.seconds} s from ${o.start}/s by x${o.step}, ` +
    `scenario ${o.scenario}, UDP, UAC socket per call; ${o.cpuQuota === null ? 'no CPU cap' : `each worker capped at ${o.cpuQuota} core`}; ${(await import('node:os')).availableParallelism()} cores`);
  const results = new Map<number, SettingResult[]>(o.counts.map((c) => [c, []]));
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? o.counts : [...o.counts].reverse();
    console.log(`\n== round ${round + 1} (${order.map((c) => `workers=${c}`).join(', then ')})`);
    for (const c of order) {
      const r = await measure(c, o);
      results.get(c)!.push(r);
      console.log(`  => workers=${c}: ${r.best}/s with 0 failed calls` +
        `${r.bestProbe === undefined ? '' : ` (${r.bestProbe.cpuMsPerCall.toFixed(3)} ms CPU/call)`}; limited at ${r.failedProbe?.rate ?? '-'}/s by: ${limitedBy(r.failedProbe, c, o.cpuQuota)}`);
    }
  }
  console.log('\n== summary (median over rounds)');
  const base = median(results.get(o.counts[0])!.map((r) => r.best));
  for (const c of o.counts) {
    const rs = results.get(c)!;
    const best = median(rs.map((r) => r.best));
    const cpu = median(rs.filter((r) => r.bestProbe !== undefined).map((r) => r.bestProbe!.cpuMsPerCall));
    console.log(`workers=${c}: ${best}/s with 0 failed calls (rounds: ${rs.map((r) => r.best).join(', ')}), ` +
      `${Number.isFinite(cpu) ? cpu.toFixed(3) : '-'} ms siplb CPU/call at that rate, ${(best / base).toFixed(2)}x workers=${o.counts[0]}`);
  }
  return 0;
}
