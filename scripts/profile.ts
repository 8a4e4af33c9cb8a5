// Where siplb spends its CPU under a call load: a V8 CPU profile of one siplb process while sipp
// places calls through it, and the functions with the most self time, as a share of siplb's busy
// time (idle left out). The .cpuprofile file it names opens in Chrome DevTools (Performance tab,
// "Load profile") or in VS Code for the call tree.
//
//   npm run profile -- [--rate 1000] [--calls 20000] [--top 30] [--out DIR] [--perf]
//
// --perf: Linux perf instead (perf record -g over the middle half of the run, siplb started with
// --perf-basic-prof so that JavaScript frames have names): the kernel and Node's C++ are seen
// too, so it tells what a call costs in sends, receives, parsing and the request and response
// paths (perf-stacks.ts), in CPU ms per call. Needs `perf` (Debian linux-perf) and root or
// kernel.perf_event_paranoid <= 2.
//
// sipp UAC -> siplb (in-memory state, Call-ID affinity, isSendTrying=false as in the benchmarks)
// -> two sipp UAS, UDP, on loopback; the same bed as `npm run bench`. siplb is stopped with
// SIGTERM after the UAC ends, which is when Node writes the profile.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jsShares, layerShares, parsePerfScript, type Share } from './perf-stacks.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { startSiplb } from '../test/e2e/harness/siplb.ts';
import { describeResult, startSippUac, startSippUas, type SippUas } from '../test/e2e/harness/sipp.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function usage(message: string): never {
  process.stderr.write(`profile: ${message}\nusage: npm run profile -- [--rate 1000] [--calls 20000] [--top 30] [--out DIR] [--perf]\n`);
  process.exit(2);
}

function intFlag(raw: string | undefined, fallback: number, name: string, max: number): number {
  const value = Number(raw ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > max) usage(`--${name} must be an integer 1..${max}, got ${raw}`);
  return value;
}

/** Self time per function (name, file:line), in ms, and the idle and total time of the profile. */
export function selfTimes(profile: CpuProfile): { rows: { where: string; ms: number }[]; idleMs: number; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    if (node === undefined) continue;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const file = f.url === '' ? '' : ` ${f.url.slice(f.url.lastIndexOf('/') + 1)}:${f.lineNumber + 1}`;
    const where = `${f.functionName === '' ? '(anonymous)' : f.functionName}${file}`;
    totals.set(where, (totals.get(where) ?? 0) + us);
  }
  const rows = [...totals].map(([where, us]) => ({ where, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { rows, idleMs: idle / 1000, totalMs: total / 1000 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true, allowPositionals: false,
    options: { rate: { type: 'string' }, calls: { type: 'string' }, top: { type: 'string' }, out: { type: 'string' }, perf: { type: 'boolean' } },
  });
  const usePerf = values.perf === true;
  if (usePerf && spawnSync('perf', ['--version']).status !== 0) usage('--perf needs Linux perf: apt-get install linux-perf');
  const rate = intFlag(values.rate, 1000, 'rate', 20_000);
  const calls = intFlag(values.calls, rate * 20, 'calls', 2_000_000);
  const top = intFlag(values.top, 30, 'top', 500);
  const out = values.out ?? mkdtempSync(join(tmpdir(), 'siplb-profile-'));
  mkdirSync(out, { recursive: true });
  const ports = await allocatePorts(4);
  const [lbPort, uasA, uasB, uacPort] = ports;
  const uases: SippUas[] = [];
  let recorded: PerfWindow | null = null;
  let mapFile: string | null = null;
  try {
    for (const port of [uasA, uasB]) uases.push(await startSippUas({ scenario: 'uas', transport: 'u1', localPort: port, timeoutS: 3600, buffSize: 4 << 20 }));
    const siplb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), externalTransport: 'udp',
      nodes: `127.0.0.1:${uasA};transport=udp,127.0.0.1:${uasB};transport=udp`, isSendTrying: 'false',
    }, {
      logLevel: 'warn',
      // --perf-basic-prof also starts V8's log, which would land in the working directory as
      // isolate-*.log: it goes with the profile's other files instead.
      nodeFlags: usePerf ? ['--perf-basic-prof', `--logfile=${join(out, 'v8.log')}`, '--no-logfile-per-isolate'] : ['--cpu-prof', `--cpu-prof-dir=${out}`],
    });
    if (usePerf) mapFile = `/tmp/perf-${siplb.pid}.map`;
    try {
      console.log(`profile: ${calls} calls at ${rate}/s through siplb pid ${siplb.pid}`);
      const uac = await startSippUac({
        scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
        rate, calls, maxConcurrent: rate * 5, timeoutS: Math.ceil(calls / rate) * 2 + 30, buffSize: 4 << 20,
      });
      // The middle half of the run: past the start (JIT warm-up), before the last calls drain.
      const seconds = calls / rate;
      // Settled at once (never an unhandled rejection while the calls run), thrown after.
      const recording = usePerf
        ? recordPerf(siplb.pid, join(out, 'perf.data'), seconds / 4, seconds / 2).then((w) => w, (err: unknown) => err as Error)
        : null;
      const result = await uac.done;
      if (recording !== null) {
        const r = await recording;
        if (r instanceof Error) throw r;
        recorded = r;
      }
      console.log(describeResult('UAC', result).split('\n')[0]);
    } finally {
      // SIGTERM: siplb exits normally, and Node writes the profile on the way out.
      await siplb.stop();
    }
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(2_000)));
    releasePorts(ports);
    // Node writes the symbol map of its JIT code there and never removes it; perf reads it
    // by the pid, so it stays as long as the data it names JavaScript frames in.
    if (mapFile !== null && recorded === null) rmSync(mapFile, { force: true });
  }
  if (usePerf) {
    if (recorded === null) throw new Error('perf recorded nothing');
    reportPerf(recorded, rate, top);
    console.log(`JavaScript symbols: ${mapFile} (perf report reads it; remove it with the data)`);
    return;
  }
  const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile written in ${out} (did siplb exit normally?)`);
  const { rows, idleMs, totalMs } = selfTimes(JSON.parse(readFileSync(join(out, file), 'utf8')) as CpuProfile);
  const busy = totalMs - idleMs;
  console.log(`\nsiplb busy ${busy.toFixed(0)} ms of ${totalMs.toFixed(0)} ms profiled; self time, share of busy time:`);
  for (const r of rows.slice(0, top)) console.log(`  ${r.ms.toFixed(1).padStart(9)} ms ${((r.ms / busy) * 100).toFixed(1).padStart(5)} %  ${r.where}`);
  console.log(`\nprofile: ${join(out, file)}`);
}

interface PerfWindow {
  dataFile: string;
  seconds: number;
  frequency: number;
}

const PERF_FREQUENCY = 999;

/** perf record of one process from `delayS` on, for `seconds`; resolves when perf has written its file. */
async function recordPerf(pid: number, dataFile: string, delayS: number, seconds: number): Promise<PerfWindow> {
  await new Promise((r) => setTimeout(r, delayS * 1000));
  const perf = spawn('perf', ['record', '-g', '-e', 'cpu-clock', '-F', String(PERF_FREQUENCY), '-o', dataFile, '-p', String(pid), '--', 'sleep', String(seconds)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  perf.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((r) => perf.on('close', r));
  if (code !== 0) throw new Error(`perf record exited ${code}: ${stderr.trim().split('\n').pop() ?? ''}`);
  return { dataFile, seconds, frequency: PERF_FREQUENCY };
}

function reportPerf(w: PerfWindow, rate: number, top: number): void {
  const script = spawnSync('perf', ['script', '-i', w.dataFile], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`);
  const stacks = parsePerfScript(script.stdout);
  // One sample is 1/frequency s of CPU; the window carried `rate` calls a second.
  const msPerCall = (samples: number) => (samples * 1000) / w.frequency / (rate * w.seconds);
  const print = (title: string, shares: readonly Share[], rows: number) => {
    const total = shares.reduce((a, s) => a + s.samples, 0);
    console.log(`\n${title}: ${msPerCall(total).toFixed(4)} ms CPU per call in all`);
    for (const s of shares.slice(0, rows)) {
      console.log(`  ${msPerCall(s.samples).toFixed(4).padStart(8)} ms ${((s.samples / stacks.length) * 100).toFixed(1).padStart(5)} %  ${s.name}`);
    }
  };
  console.log(`\nperf: ${stacks.length} samples over ${w.seconds.toFixed(1)} s (${rate} calls/s offered); shares of all of siplb's samples`);
  print('by layer', layerShares(stacks), 20);
  print('main thread, by JavaScript function (with the builtins and native code it called)', jsShares(stacks), top);
  console.log(`\nperf data: ${w.dataFile} (perf report -i ${w.dataFile} --children)`);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`profile: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
