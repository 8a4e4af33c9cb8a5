// Load benchmark: sipp UAC -> balancer -> two sipp UAS, all on loopback.
//
//   npm run bench -- [--rate 4000[,R2...]] [--rounds 1] [--calls N] [--transport udp|tcp]
//                    [--scenario basic|rr] [--compare kamailio | --compare redis | --kamailio-only | --sipp-only]
//                    [--log-level warn] [--set key=value ...] [--node-flags='--a-v8-flag ...']
//   npm run bench -- --compare kamailio --rate 1000,2000 --rounds 3
//                    each rate, three rounds, siplb and Kamailio taking turns at going first;
//                    prints every round and the median ratio per rate
//                    [--kamailio-memory qm|tlsf|fm]: Kamailio's memory manager (-x), qm by default
//   npm run bench -- --relay-only   the floor: bench/udp-relay.ts, a Node process that relays the
//                    same datagrams to one UAS with no SIP work (Node's receive and send alone)
//   npm run bench -- --http [--compare nginx] ...   HTTP instead: bench/http-load.ts (wrk, nginx)
//   npm run bench -- --streams [--rate 500] ...      TLS / WS next to UDP: bench/stream-load.ts
//   npm run bench -- --sprayer [--rate 100] ...      three balancers behind siplb-advisor: bench/sprayer.ts
//   npm run bench -- --soak 30m [--rate 500]         a long steady run: failures, RSS growth, lag (bench/soak.ts)
//   npm run bench -- --overload [--compare kamailio] goodput from 0.5x to 3x of capacity (bench/overload.ts)
//
// Measures, for siplb (and Kamailio with --compare kamailio, same load, same sipp flags):
// successful and failed calls, retransmissions, achieved calls/s, balancer CPU ms per successful
// call (utime+stime from /proc/PID/stat over the UAC's run) and peak RSS (VmHWM). --sipp-only
// runs the UAC straight into one UAS, to show what sipp itself sustains on this machine;
// --kamailio-only measures the reference alone. --compare redis runs siplb twice in one go, with
// the in-memory store and with stateStore=redis on a fresh local redis-server, and reports the
// redis-server's own CPU per call beside siplb's.
// Ends with one JSON line (prefix-free, starts with {"bench":"sipp-load") for scripts.

import { parseArgs } from 'node:util';
import { CLK_TCK, cpuTicks, sumTicks, ticksToMs } from './proc.ts';
import { nodeFlagsOption, settingsOption } from './options.ts';
import { KAMAILIO_MEMORY_MANAGERS, perCall, startKamailio, startSiplbTarget, startUdpRelay, type KamailioMemoryManager, type RunningTarget } from './targets.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { SCENARIOS, describeResult, failureBreakdown, startSippUac, startSippUas } from '../test/e2e/harness/sipp.ts';
import type { SippResult, SippScenario, SippTransport, SippUas } from '../test/e2e/harness/sipp.ts';

// The kernel caps SO_RCVBUF/SO_SNDBUF at net.core.[rw]mem_max (4 MiB here); asking for more is
// harmless. Bigger buffers absorb the bursts of a 10 ms scheduler tick without drops.
const SIPP_BUFF_SIZE = 4 * 1024 * 1024;

type Target = 'siplb' | 'siplb-redis' | 'kamailio' | 'sipp-only' | 'udp-relay';

interface Options {
  /** Offered rates, each measured in turn (--rate 1000,2000). */
  rates: number[];
  /** Calls per run; null: ten seconds' worth at each rate. */
  calls: number | null;
  /** Rounds per rate; the targets take turns going first, the ratio reported is the median. */
  rounds: number;
  transport: 'udp' | 'tcp';
  scenario: 'basic' | 'rr';
  compareKamailio: boolean;
  compareRedis: boolean;
  kamailioOnly: boolean;
  /** Kamailio's memory manager (-x). */
  kamailioMemory: KamailioMemoryManager;
  sippOnly: boolean;
  /** bench/udp-relay.ts alone (--relay-only). */
  relayOnly: boolean;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** siplb's overloadControl (off by default, as in siplb; on to see what it changes past saturation). */
  overloadControl: boolean;
  /** More lb.properties keys for siplb (--set key=value, repeatable), to compare a setting's cost. */
  siplbSettings: Record<string, string>;
  /** --node-flags: Node/V8 flags for siplb after its own. */
  nodeFlags: string[];
}

interface RunResult {
  target: Target;
  rate: number;
  calls: number;
  transport: 'udp' | 'tcp';
  scenario: 'basic' | 'rr';
  successful: number;
  failed: number;
  failureReasons: string;
  retransmissions: number;       // UAC + both UAS: every resend is a message the path lost or delayed
  uacRetransmissions: number;
  wallSeconds: number;           // UAC start to UAC exit
  achievedCps: number;           // successful / wallSeconds
  /** Mean INVITE→200 time at the UAC (sipp's ResponseTime1, the rtd of its 200), ms; null when sipp gave none. */
  inviteTo200Ms: number | null;
  nodeCalls: number[];           // calls each UAS received
  targetCpuMs: number | null;    // balancer utime+stime over the UAC run (all its processes)
  cpuMsPerCall: number | null;
  /** siplb-redis: the redis-server's CPU over the same run. */
  storeCpuMsPerCall: number | null;
  /** siplb-redis: Redis commands per successful call, by command, and in all. */
  storeCommandsPerCall: Record<string, number> | null;
  targetPeakRssKiB: number | null;
  targetProcesses: number | null;
  sippCpuMs: { uac: number; uas: number[] };
}

function usage(message: string): never {
  process.stderr.write(`sipp-load: ${message}\n` +
    'usage: node bench/sipp-load.ts [--rate 4000[,R2...]] [--rounds 1..15] [--calls N (default rate*10)] [--transport udp|tcp] [--overload-control on|off]\n' +
    '                               [--scenario basic|rr] [--compare kamailio|redis | --kamailio-only | --sipp-only | --relay-only] [--kamailio-memory qm|tlsf|fm]\n' +
    '                               [--log-level warn] [--set key=value (an lb.properties key for siplb; repeatable)]\n' +
    '                               [--node-flags="--a-node-or-v8-flag ..." (after the CLI flags)]\n' +
    '       npm run bench -- --streams [--rate 500] [--calls N] [--rounds 3] [--hold 5000]   (bench/stream-load.ts)\n');
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rate: { type: 'string' },
      calls: { type: 'string' },
      rounds: { type: 'string' },
      transport: { type: 'string' },
      scenario: { type: 'string' },
      compare: { type: 'string' },
      'sipp-only': { type: 'boolean' },
      'relay-only': { type: 'boolean' },
      'kamailio-only': { type: 'boolean' },
      'kamailio-memory': { type: 'string' },
      'log-level': { type: 'string' },
      'overload-control': { type: 'string' },
      set: { type: 'string', multiple: true },
      'node-flags': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const rates = (values.rate ?? '4000').split(',').map(Number);
  if (rates.some((rate) => !Number.isInteger(rate) || rate < 1 || rate > 50_000)) usage(`--rate must be integers 1..50000, comma-separated, got ${values.rate}`);
  const calls = values.calls === undefined ? null : Number(values.calls);
  if (calls !== null && (!Number.isInteger(calls) || calls < 1 || calls > 5_000_000)) usage(`--calls must be an integer 1..5000000, got ${values.calls}`);
  const rounds = Number(values.rounds ?? '1');
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 15) usage(`--rounds must be an integer 1..15, got ${values.rounds}`);
  const transport = values.transport ?? 'udp';
  if (transport !== 'udp' && transport !== 'tcp') usage(`--transport must be udp or tcp, got ${transport}`);
  const scenario = values.scenario ?? 'basic';
  if (scenario !== 'basic' && scenario !== 'rr') usage(`--scenario must be basic or rr, got ${scenario}`);
  if (values.compare !== undefined && values.compare !== 'kamailio' && values.compare !== 'redis') usage(`--compare knows kamailio and redis, got ${values.compare}`);
  const logLevel = values['log-level'] ?? 'warn';
  if (logLevel !== 'error' && logLevel !== 'warn' && logLevel !== 'info' && logLevel !== 'debug') usage(`bad --log-level ${logLevel}`);
  const oc = values['overload-control'] ?? 'off';
  if (oc !== 'on' && oc !== 'off') usage(`--overload-control must be on or off, got ${oc}`);
  const siplbSettings = settingsOption(values.set, usage);
  const kamailioMemory = values['kamailio-memory'] ?? 'qm';
  if (!(KAMAILIO_MEMORY_MANAGERS as readonly string[]).includes(kamailioMemory)) usage(`--kamailio-memory must be one of ${KAMAILIO_MEMORY_MANAGERS.join(', ')}, got ${kamailioMemory}`);
  return {
    rates, calls, rounds, siplbSettings, nodeFlags: nodeFlagsOption(values['node-flags'], usage), transport, scenario, logLevel, overloadControl: oc === 'on',
    compareKamailio: values.compare === 'kamailio',
    compareRedis: values.compare === 'redis',
    kamailioOnly: values['kamailio-only'] === true,
    kamailioMemory: kamailioMemory as KamailioMemoryManager,
    sippOnly: values['sipp-only'] === true,
    relayOnly: values['relay-only'] === true,
  };
}

// ---- one measured run -------------------------------------------------------------------------

async function runOnce(target: Target, o: Options, rate: number, calls: number): Promise<RunResult> {
  const sippTransport: SippTransport = o.transport === 'udp' ? 'u1' : 't1';
  const uasScenario: SippScenario = o.scenario === 'rr' ? SCENARIOS.uasRr : 'uas';
  const uacScenario: SippScenario = o.scenario === 'rr' ? SCENARIOS.uacRr : 'uac';
  const expectedSeconds = Math.ceil(calls / rate);
  // Hard limits: the UAC gets twice the nominal duration plus 30 s of retransmission timers,
  // the UASes outlive it by their 4 s timewait and the harness's grace.
  const uacTimeoutS = expectedSeconds * 2 + 30;
  const uasTimeoutS = uacTimeoutS + 30;

  const ports = await allocatePorts(4);
  const [lbPort, uasPortA, uasPortB, uacPort] = ports;
  const uasPorts = target === 'sipp-only' || target === 'udp-relay' ? [uasPortA] : [uasPortA, uasPortB];
  const uases: SippUas[] = [];
  let running: RunningTarget | null = null;
  try {
    for (const port of uasPorts) {
      uases.push(await startSippUas({
        scenario: uasScenario, transport: sippTransport, localPort: port,
        timeoutS: uasTimeoutS, buffSize: SIPP_BUFF_SIZE,
      }));
    }
    if (target === 'siplb' || target === 'siplb-redis') {
      const nodes = uasPorts.map((p) => `127.0.0.1:${p};transport=${o.transport}`).join(',');
      running = await startSiplbTarget(lbPort, nodes, o.logLevel, target === 'siplb-redis', o.overloadControl, o.siplbSettings, o.nodeFlags);
    } else if (target === 'kamailio') {
      running = await startKamailio(lbPort, uasPorts.map((p) => `sip:127.0.0.1:${p};transport=${o.transport}`), o.kamailioMemory);
    } else if (target === 'udp-relay') {
      if (o.transport !== 'udp') throw new Error('--relay-only relays UDP only');
      running = await startUdpRelay(lbPort, uasPortA);
    }
    const remotePort = target === 'sipp-only' ? uasPortA : lbPort;

    const pidsBefore = running?.pids() ?? [];
    const ticksBefore = sumTicks(pidsBefore);
    const storeTicksBefore = running?.storePid === undefined ? null : cpuTicks(running.storePid);
    const commandsBefore = running?.storeCommands?.() ?? null;
    const started = process.hrtime.bigint();
    const uac = await startSippUac({
      scenario: uacScenario,
      transport: sippTransport,
      localPort: uacPort,
      remote: `127.0.0.1:${remotePort}`,
      rate,
      ratePeriodMs: 1000,
      calls,
      // Calls last a few ms, so the default limit (3 x duration x rate) would be tiny and would
      // throttle the rate whenever the path queues; 5 s worth of calls only bounds memory.
      maxConcurrent: rate * 5,
      timeoutS: uacTimeoutS,
      buffSize: SIPP_BUFF_SIZE,
    });
    // A reaped process has no /proc entry, so the UAC's own CPU is sampled while it runs
    // (good to 200 ms); it only shows whether sipp was near a full core.
    let uacTicks = 0;
    const sampler = setInterval(() => {
      uacTicks = cpuTicks(uac.pid) ?? uacTicks;
    }, 200);
    let uacResult: SippResult;
    try {
      uacResult = await uac.done;
    } finally {
      clearInterval(sampler);
    }
    const ended = process.hrtime.bigint();
    const pidsAfter = running?.pids() ?? [];
    const ticksAfter = sumTicks(pidsAfter);
    const storeTicksAfter = running?.storePid === undefined ? null : cpuTicks(running.storePid);
    const commandsAfter = running?.storeCommands?.() ?? null;
    const peakRss = running?.peakRssKiB() ?? null;
    const targetProcesses = running === null ? null : new Set([...pidsBefore, ...pidsAfter]).size;
    const uasTicks = uases.map((u) => cpuTicks(u.pid) ?? 0);

    const uasResults = await Promise.all(uases.map((u) => u.stop()));
    const wallSeconds = Number(ended - started) / 1e9;
    const successful = uacResult.stats.successful;
    const cpuMs = running === null ? null : ticksToMs(ticksAfter - ticksBefore);
    const result: RunResult = {
      target,
      rate,
      calls,
      transport: o.transport,
      scenario: o.scenario,
      successful,
      failed: uacResult.stats.failed,
      failureReasons: failureBreakdown(uacResult.stats),
      retransmissions: uacResult.stats.retransmissions + uasResults.reduce((a, r) => a + r.stats.retransmissions, 0),
      uacRetransmissions: uacResult.stats.retransmissions,
      wallSeconds,
      achievedCps: successful / wallSeconds,
      inviteTo200Ms: responseTimeMs(uacResult.stats.raw['ResponseTime1(C)']),
      nodeCalls: uasResults.map((r) => r.stats.incoming),
      targetCpuMs: cpuMs,
      cpuMsPerCall: cpuMs === null || successful === 0 ? null : cpuMs / successful,
      storeCpuMsPerCall: storeTicksBefore === null || storeTicksAfter === null || successful === 0
        ? null : ticksToMs(storeTicksAfter - storeTicksBefore) / successful,
      storeCommandsPerCall: commandsBefore === null || commandsAfter === null || successful === 0 ? null : perCall(commandsBefore, commandsAfter, successful),
      targetPeakRssKiB: peakRss,
      targetProcesses,
      sippCpuMs: { uac: ticksToMs(uacTicks), uas: uasTicks.map(ticksToMs) },
    };
    if (result.failed > 0 || successful < calls) {
      // One line per sipp: the counters that say where calls were lost, not sipp's screens.
      console.log(firstLine(describeResult(`UAC (${target})`, uacResult)));
      uasResults.forEach((r, i) => console.log(firstLine(describeResult(`UAS ${i}`, r))));
    }
    return result;
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(2_000)));
    await running?.stop();
    releasePorts(ports);
  }
}

/** sipp's response time column, HH:MM:SS:microseconds, in ms; null when absent or malformed. */
function responseTimeMs(text: string | undefined): number | null {
  const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(text?.trim() ?? '');
  if (m === null) return null;
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]) / 1000;
}

function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end === -1 ? text : text.slice(0, end);
}

// ---- report -----------------------------------------------------------------------------------

function fmt(value: number | null, digits: number): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

function printRun(r: RunResult): void {
  const label = r.target === 'sipp-only' ? 'sipp UAC -> sipp UAS (no balancer)' : `${r.target}`;
  console.log(`\n== ${label}: ${r.calls} calls at ${r.rate}/s, ${r.transport.toUpperCase()}, scenario ${r.scenario}`);
  console.log(`  successful calls      ${r.successful}`);
  console.log(`  failed calls          ${r.failed}${r.failed > 0 ? ` (${r.failureReasons})` : ''}`);
  console.log(`  retransmissions       ${r.retransmissions} (UAC ${r.uacRetransmissions})`);
  console.log(`  achieved calls/s      ${r.achievedCps.toFixed(1)} over ${r.wallSeconds.toFixed(2)} s`);
  console.log(`  calls per node        ${r.nodeCalls.join(' / ')}`);
  console.log(`  INVITE to 200, mean   ${r.inviteTo200Ms === null ? 'n/a' : `${r.inviteTo200Ms.toFixed(2)} ms`} (sipp's response time at the UAC)`);
  if (r.target !== 'sipp-only') {
    const label = (what: string): string => `${r.target} ${what}`.padEnd(26);
    console.log(`  ${label('CPU')}${fmt(r.targetCpuMs, 0)} ms over ${r.targetProcesses} process(es)`);
    console.log(`  ${label('CPU ms/call')}${fmt(r.cpuMsPerCall, 4)}`);
    if (r.storeCpuMsPerCall !== null) console.log(`  ${'redis-server ms/call'.padEnd(26)}${fmt(r.storeCpuMsPerCall, 4)}`);
    if (r.storeCommandsPerCall !== null) {
      const parts = Object.entries(r.storeCommandsPerCall).filter(([k]) => k !== 'total').map(([k, v]) => `${k} ${v.toFixed(2)}`);
      console.log(`  ${'redis commands/call'.padEnd(26)}${(r.storeCommandsPerCall['total'] ?? 0).toFixed(2)} (${parts.join(', ')})`);
    }
    console.log(`  ${label('peak RSS')}${r.targetPeakRssKiB === null ? 'n/a' : `${(r.targetPeakRssKiB / 1024).toFixed(1)} MiB`}` +
      (r.target === 'kamailio' ? ' (sum of VmHWM over processes; counts shared memory once per process)' : ' (VmHWM)'));
  }
  console.log(`  sipp CPU ms           UAC ${r.sippCpuMs.uac.toFixed(0)}, UAS ${r.sippCpuMs.uas.map((v) => v.toFixed(0)).join(' / ')}`);
}

/**
 * The benchmarks `npm run bench` hands over to, by flag; each has its own flags. `keepFlag`: the
 * flag is the benchmark's own option too (--soak 30m).
 */
const HAND_OVERS: { flag: string; keepFlag?: boolean; run: () => Promise<(argv: string[]) => Promise<number>> }[] = [
  { flag: '--http', run: async () => (await import('./http-load.ts')).runHttpBench },             // HTTP against nginx
  { flag: '--sprayer', run: async () => (await import('./sprayer.ts')).runSprayerBench },         // the sprayer tier, in network namespaces
  { flag: '--overload', run: async () => (await import('./overload.ts')).runOverloadBench },      // goodput from 0.5x to 3x capacity
  { flag: '--soak', keepFlag: true, run: async () => (await import('./soak.ts')).runSoak },       // the long steady run
  { flag: '--streams', run: async () => (await import('./stream-load.ts')).runStreamBench },      // TLS and WS next to UDP
  { flag: '--held', keepFlag: true, run: async () => (await import('./held-calls.ts')).runHeldBench }, // RSS with N calls open at once
  { flag: '--workers', run: async () => (await import('./workers.ts')).runWorkersBench },      // calls/s at 0 failures, 1 worker vs 2
];

async function main(): Promise<void> {
  for (const h of HAND_OVERS) {
    if (!process.argv.includes(h.flag)) continue;
    const argv = process.argv.slice(2);
    process.exitCode = await (await h.run())(h.keepFlag === true ? argv : argv.filter((arg) => arg !== h.flag));
    return;
  }
  const o = parseOptions(process.argv.slice(2));
  console.log(`sipp-load: rate ${o.rates.join(', ')}/s, ${o.rounds} round(s), ${o.transport}, scenario ${o.scenario}, CLK_TCK ${CLK_TCK}`);
  const targets: Target[] = o.sippOnly
    ? ['sipp-only']
    : o.relayOnly ? ['udp-relay']
    : o.kamailioOnly ? ['kamailio'] : o.compareKamailio ? ['siplb', 'kamailio'] : o.compareRedis ? ['siplb', 'siplb-redis'] : ['siplb'];
  const results: RunResult[] = [];
  const summaries: RateSummary[] = [];
  for (const rate of o.rates) {
    const calls = o.calls ?? rate * 10;
    const rounds: RoundResult[] = [];
    for (let round = 0; round < o.rounds; round++) {
      // Turn about: on a noisy machine a drift (a neighbour, thermal state, the page cache) then
      // falls on both sides instead of on whichever always runs second.
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      const byTarget = new Map<Target, RunResult>();
      if (o.rounds > 1) console.log(`\n-- round ${round + 1} of ${o.rounds} at ${rate}/s: ${order.join(', then ')}`);
      for (const target of order) {
        const r = await runOnce(target, o, rate, calls);
        printRun(r);
        results.push(r);
        byTarget.set(target, r);
      }
      rounds.push(roundResult(byTarget));
    }
    summaries.push(summarise(rate, rounds));
  }
  for (const s of summaries) printSummary(s, o.rounds);
  const first = summaries[0];
  console.log(JSON.stringify({
    bench: 'sipp-load', clkTck: CLK_TCK, results, summaries,
    // The first rate's median, under the key scripts read since before --rounds existed.
    cpuRatioSiplbToKamailio: first?.medianKamailioRatio ?? null,
  }));
  // Any failed call makes the run a failed measurement, for scripts that check the exit code.
  process.exitCode = results.every((r) => r.failed === 0 && r.successful === r.calls) ? 0 : 1;
}

// ---- rounds -----------------------------------------------------------------------------------

interface RoundResult {
  /** siplb / Kamailio CPU per call in this round, when both ran. */
  kamailioRatio: number | null;
  /** siplb with Redis / siplb in memory, when both ran. */
  redisRatio: number | null;
  redisServerMsPerCall: number | null;
}

interface RateSummary {
  rate: number;
  rounds: RoundResult[];
  medianKamailioRatio: number | null;
  medianRedisRatio: number | null;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || b <= 0 ? null : a / b;
}

function roundResult(byTarget: Map<Target, RunResult>): RoundResult {
  const siplb = byTarget.get('siplb');
  const withRedis = byTarget.get('siplb-redis');
  return {
    kamailioRatio: ratio(siplb?.cpuMsPerCall, byTarget.get('kamailio')?.cpuMsPerCall),
    redisRatio: ratio(withRedis?.cpuMsPerCall, siplb?.cpuMsPerCall),
    redisServerMsPerCall: withRedis?.storeCpuMsPerCall ?? null,
  };
}

/** Median of the numbers present; null when none is. */
function median(values: readonly (number | null)[]): number | null {
  const xs = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

function summarise(rate: number, rounds: RoundResult[]): RateSummary {
  return {
    rate, rounds,
    medianKamailioRatio: median(rounds.map((r) => r.kamailioRatio)),
    medianRedisRatio: median(rounds.map((r) => r.redisRatio)),
  };
}

function printSummary(s: RateSummary, roundCount: number): void {
  const rounds = (xs: (number | null)[]): string => roundCount > 1 ? ` (median of ${roundCount} rounds: ${xs.map((x) => fmt(x, 2)).join(', ')})` : '';
  if (s.medianKamailioRatio !== null) {
    console.log(`\nCPU per call at ${s.rate}/s, siplb / kamailio: ${fmt(s.medianKamailioRatio, 2)}${rounds(s.rounds.map((r) => r.kamailioRatio))}`);
  }
  if (s.medianRedisRatio !== null) {
    console.log(`\nCPU per call at ${s.rate}/s, siplb with redis / siplb in memory: ${fmt(s.medianRedisRatio, 2)}${rounds(s.rounds.map((r) => r.redisRatio))}` +
      `; redis-server itself: ${s.rounds.map((r) => fmt(r.redisServerMsPerCall, 4)).join(', ')} ms/call`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`sipp-load: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
