// Sprayer tier under a balancer failure: sipp calls to a virtual IP that siplb-advisor sprays over
// three siplb balancers in network namespaces (test/e2e/harness/sprayer-bed.ts), one balancer
// SIGKILLed mid-run, then (after it is back) one stopped gracefully. Prints how the calls spread,
// how long the advisor took to take each balancer out, and how many calls failed: those
// established before the failure, and new ones during it.
//
//   npm run bench -- --sprayer [--rate 100] [--seconds 30] [--interval 7000] [--fall 3] [--rise 2] [--timeout 2000]
//
// The advisor defaults are WebSphere's (advisorInterval 7 s); a new call can then fail only if it
// starts within interval × fall + timeout after the kill and its INVITE retransmissions (sipp's
// UDP timers, up to 32 s) all land on the dead balancer. Needs root and nftables.

import { parseArgs } from 'node:util';
import { CLIENT_IP, SIP_PORT, SprayerBed, VIP } from '../test/e2e/harness/sprayer-bed.ts';
import { startSippUac, type SippResult } from '../test/e2e/harness/sipp.ts';

interface Options {
  rate: number;
  seconds: number;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

function usage(message: string): never {
  process.stderr.write(`sprayer: ${message}\nusage: npm run bench -- --sprayer [--rate 100] [--seconds 30] [--interval 7000] [--fall 3] [--rise 2] [--timeout 2000]\n`);
  process.exit(2);
}

function positive(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) usage(`--${name} must be a positive integer, got ${raw}`);
  return n;
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      rate: { type: 'string' }, seconds: { type: 'string' }, interval: { type: 'string' },
      timeout: { type: 'string' }, rise: { type: 'string' }, fall: { type: 'string' },
    },
  });
  const o = {
    rate: positive('rate', values.rate, 100), seconds: positive('seconds', values.seconds, 30),
    intervalMs: positive('interval', values.interval, 7000), timeoutMs: positive('timeout', values.timeout, 2000),
    rise: positive('rise', values.rise, 2), fall: positive('fall', values.fall, 3),
  };
  if (o.timeoutMs >= o.intervalMs) usage('--timeout must be below --interval');
  return o;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function uac(bed: SprayerBed, port: number, rate: number, calls: number, holdMs: number) {
  return startSippUac({
    scenario: 'uac', transport: 'un', localIp: CLIENT_IP, localPort: port, remote: `${VIP}:${SIP_PORT}`,
    rate, calls, timeoutS: Math.ceil(calls / rate + holdMs / 1000) + 60, netns: bed.net.ns('c'), extraArgs: ['-d', String(holdMs)],
  });
}

async function started(bed: SprayerBed): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) out.push((await bed.callsStarted(i)) ?? 0);
  return out;
}

function line(label: string, r: SippResult): string {
  return `${label}: ${r.stats.successful} completed, ${r.stats.failed} failed, ${r.stats.retransmissions} retransmissions`;
}

export async function runSprayerBench(argv: string[]): Promise<number> {
  const o = parse(argv);
  const detection = o.intervalMs * o.fall + o.timeoutMs;
  const bed = await SprayerBed.start({ intervalMs: o.intervalMs, timeoutMs: o.timeoutMs, rise: o.rise, fall: o.fall },
    { viaVip: true, announceMs: detection + 1000 });
  let failed = 0;
  try {
    await bed.waitForNodes();
    // Kill: calls held across the failure (established before it), and new calls all along.
    // Held so that their BYEs start soon after the kill, while the dead balancer still has its
    // buckets: those BYEs are retransmitted until the advisor has moved them.
    const holdMs = Math.max(5000, 4800 + detection / 2 - 2000);
    const heldCalls = o.rate * 4;
    const before = await started(bed);
    const held = await uac(bed, 5071, o.rate, heldCalls, holdMs);
    const fresh = await uac(bed, 5072, o.rate, o.rate * o.seconds, 1000);
    await sleep(4000 + 800);
    const victim = bed.balancers[1];
    if (victim === null) throw new Error('b2 is not running');
    const victimStarted = (await bed.callsStarted(1)) ?? 0;
    process.kill(victim.pid, 'SIGKILL');
    const detectedMs = await bed.waitForAdvisor('b2 out', detection + 10_000, (s) => s.some((b) => b.address.startsWith('10.241.2.12') && b.state !== 'up'));
    const [h, f] = await Promise.all([held.done, fresh.done]);
    const after = await started(bed);
    after[1] = victimStarted;
    const spread = after.map((n, i) => n - before[i]);
    console.log(`sprayer bench: 3 balancers, advisor interval ${o.intervalMs} ms, timeout ${o.timeoutMs} ms, fall ${o.fall}, rise ${o.rise}; ${o.rate} calls/s`);
    console.log(`SIGKILL of b2: taken out after ${detectedMs} ms (bound interval × fall + timeout: ${detection} ms)`);
    console.log(line('  calls established before the kill', h));
    console.log(line('  new calls during and after the kill', f));
    console.log(`  calls started per balancer (b1/b2/b3; b2 until the kill): ${spread.join('/')}`);
    failed += h.stats.failed + f.stats.failed;
    await victim.stop();
    bed.balancers[1] = null;
    await bed.startBalancer(1);
    await bed.waitForNodes();
    await bed.waitForAdvisor('b2 back', detection + 10_000, (s) => s.every((b) => b.state === 'up'));

    // Graceful stop under load.
    const load = await uac(bed, 5073, o.rate, o.rate * Math.max(10, Math.ceil((detection * 3) / 1000)), 2000);
    await sleep(3000);
    const leaving = bed.balancers[2];
    if (leaving === null) throw new Error('b3 is not running');
    const stopAt = Date.now();
    process.kill(leaving.pid, 'SIGTERM');
    const outMs = await bed.waitForAdvisor('b3 out', detection + 10_000, (s) => s.some((b) => b.address.startsWith('10.241.2.13') && b.state !== 'up'));
    const code = await leaving.exitCode;
    const exitMs = Date.now() - stopAt;
    const g = await load.done;
    console.log(`graceful stop of b3: taken out after ${outMs} ms, exited ${code} after ${exitMs} ms`);
    console.log(line('  calls through the stop', g));
    failed += g.stats.failed;
    console.log(JSON.stringify({
      bench: 'sprayer', rate: o.rate, intervalMs: o.intervalMs, fall: o.fall, detectedMs, spread,
      heldFailed: h.stats.failed, newFailed: f.stats.failed, gracefulFailed: g.stats.failed, gracefulExitMs: exitMs,
    }));
  } finally {
    await bed.close();
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  process.exitCode = await runSprayerBench(process.argv.slice(2));
}
