// Held calls: the memory a balancer needs for N calls open at once (issue 15: RSS at most 80 MB
// with 100,000 calls in the affinity table).
//
//   npm run bench -- --held 100000 [--rate 1000] [--margin 15] [--compare kamailio]
//                    [--node-flags='--max-semi-space-size=8'] [--set key=value]...
//
// sipp UAC (bench/scenarios/uac-held.xml: INVITE / 200 / ACK, a pause of N/rate + margin
// seconds, BYE / 200) -> the balancer -> two sipp UAS, UDP, on loopback. Every call is still
// open when the last one starts, so N calls are held at once. Prints the balancer's RSS (VmRSS)
// idle before the load, with the N calls held (and the count held: the UASes' open calls, and
// siplb's own calls_tracked from /metrics), after all calls ended, and after the affinity
// table's linger (32 s after BYE) has expired; then its peak (VmHWM). --compare kamailio runs the
// same for Kamailio's dispatcher (RSS summed over its processes, which counts the shared memory
// segment once per process: an upper bound). --node-flags adds Node flags after the CLI's own
// (a later --max-semi-space-size wins), to try heap settings without editing the CLI; --set
// adds lb.properties keys (--set memoryTrimInterval=0: without the memory trim).
// Ends with one JSON line (starts with {"bench":"held-calls"). Bounded: sipp has a hard timeout
// of ramp + hold + 60 s, and every process started here is stopped by pid.

import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { statusKiB } from './proc.ts';
import { nodeFlagsOption, settingsOption } from './options.ts';
import { startKamailio, type RunningTarget } from './targets.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { startSiplb } from '../test/e2e/harness/siplb.ts';
import { describeResult, startSippUac, startSippUas, type SippUas } from '../test/e2e/harness/sipp.ts';

const SCENARIO = { file: fileURLToPath(new URL('./scenarios/uac-held.xml', import.meta.url)) };
const SIPP_BUFF_SIZE = 4 * 1024 * 1024;
/** siplb keeps an ended call's entry for TRANSACTION_TIMEOUT_MS (32 s), swept every second. */
const EXPIRY_WAIT_MS = 36_000;

interface Options {
  held: number;
  rate: number;
  marginS: number;
  compareKamailio: boolean;
  nodeFlags: string[];
  /** lb.properties keys set on siplb (--set key=value, repeatable). */
  settings: Record<string, string>;
}

interface Sample {
  rssKiB: number | null;
  /** Of rssKiB: private memory (RssAnon) and mapped files (RssFile: Node's own binary, mostly, clean pages shared with every process running it). */
  anonKiB: number | null;
  fileKiB: number | null;
  /** Calls the two UASes have open (their CurrentCall). */
  uasOpen: number;
  /** siplb's calls_tracked gauge; null for Kamailio. */
  tracked: number | null;
}

interface HeldResult {
  target: 'siplb' | 'kamailio';
  held: number;
  rate: number;
  holdS: number;
  idle: Sample;
  /** The sample with the most calls open during the plateau. */
  loaded: Sample;
  /** Highest RSS sampled from the start of the load to the first BYE (GC timing moves the one sample). */
  loadedMaxRssKiB: number | null;
  ended: Sample;
  expired: Sample;
  peakRssKiB: number | null;
  successful: number;
  failed: number;
  /** (RSS held - RSS idle) / calls held, bytes. */
  bytesPerCall: number | null;
  nodeFlags: string[];
  settings: Record<string, string>;
}

function usage(message: string): never {
  process.stderr.write(`held-calls: ${message}\n` +
    "usage: npm run bench -- --held 100000 [--rate 1000] [--margin 15] [--compare kamailio] [--node-flags='--max-semi-space-size=8'] [--set key=value]...\n");
  process.exit(2);
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      held: { type: 'string' }, rate: { type: 'string' }, margin: { type: 'string' },
      compare: { type: 'string' }, 'node-flags': { type: 'string' }, set: { type: 'string', multiple: true },
    },
  });
  const held = Number(values.held ?? 100_000);
  if (!Number.isInteger(held) || held < 1 || held > 1_000_000) usage(`--held must be an integer 1..1000000, got ${values.held}`);
  const rate = Number(values.rate ?? 1000);
  if (!Number.isInteger(rate) || rate < 1 || rate > 10_000) usage(`--rate must be an integer 1..10000, got ${values.rate}`);
  const marginS = Number(values.margin ?? 15);
  if (!Number.isInteger(marginS) || marginS < 5 || marginS > 600) usage(`--margin must be 5..600 seconds, got ${values.margin}`);
  if (values.compare !== undefined && values.compare !== 'kamailio') usage(`--compare knows kamailio, got ${values.compare}`);
  const nodeFlags = nodeFlagsOption(values['node-flags'], usage);
  return { held, rate, marginS, compareKamailio: values.compare === 'kamailio', nodeFlags, settings: settingsOption(values.set, usage) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A /proc/PID/status figure in KiB summed over the target's processes, or null if all are gone. */
function statusSum(t: RunningTarget, key: 'VmRSS' | 'RssAnon' | 'RssFile'): number | null {
  let sum: number | null = null;
  for (const pid of t.pids()) {
    const kib = statusKiB(pid, key);
    if (kib !== null) sum = (sum ?? 0) + kib;
  }
  return sum;
}

async function tracked(apiPort: number | null): Promise<number | null> {
  if (apiPort === null) return null;
  const text = await fetch(`http://127.0.0.1:${apiPort}/metrics`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text()).catch(() => '');
  const m = /^siplb_calls_tracked ([0-9.eE+-]+)$/m.exec(text);
  return m === null ? null : Number(m[1]);
}

async function sample(t: RunningTarget, uases: SippUas[], apiPort: number | null): Promise<Sample> {
  const uasOpen = uases.reduce((a, u) => a + (u.currentStats()?.current ?? 0), 0);
  return { rssKiB: statusSum(t, 'VmRSS'), anonKiB: statusSum(t, 'RssAnon'), fileKiB: statusSum(t, 'RssFile'), uasOpen, tracked: await tracked(apiPort) };
}

/** siplb as bench/targets.ts starts it (in-memory state, no 100 Trying), plus its admin API and extra Node flags. */
async function startSiplbHeld(lbPort: number, apiPort: number, uasPorts: number[], nodeFlags: string[], settings: Record<string, string>): Promise<RunningTarget> {
  const handle = await startSiplb({
    host: '127.0.0.1', externalPort: String(lbPort), externalTransport: 'udp,tcp', apiPort: String(apiPort),
    nodes: uasPorts.map((p) => `127.0.0.1:${p};transport=udp`).join(','),
    isSendTrying: 'false', overloadControl: 'false', ...settings,
  }, { logLevel: 'warn', nodeFlags });
  return { pids: () => [handle.pid], peakRssKiB: () => statusKiB(handle.pid, 'VmHWM'), stop: () => handle.stop() };
}

async function runTarget(target: 'siplb' | 'kamailio', o: Options): Promise<HeldResult> {
  const rampS = Math.ceil(o.held / o.rate);
  const holdS = rampS + o.marginS;
  const uacTimeoutS = rampS + holdS + 60;
  const ports = await allocatePorts(5);
  const [lbPort, uasA, uasB, uacPort, apiPort] = ports;
  const uases: SippUas[] = [];
  let running: RunningTarget | null = null;
  try {
    for (const port of [uasA, uasB]) {
      uases.push(await startSippUas({
        scenario: 'uas', transport: 'u1', localPort: port, timeoutS: uacTimeoutS + 30, buffSize: SIPP_BUFF_SIZE,
      }));
    }
    running = target === 'siplb'
      ? await startSiplbHeld(lbPort, apiPort, [uasA, uasB], o.nodeFlags, o.settings)
      : await startKamailio(lbPort, [`sip:127.0.0.1:${uasA};transport=udp`, `sip:127.0.0.1:${uasB};transport=udp`]);
    const api = target === 'siplb' ? apiPort : null;
    await sleep(2000);
    const idle = await sample(running, uases, api);
    console.log(`  ${target}: idle RSS ${mib(idle.rssKiB)}; ${o.held} calls at ${o.rate}/s, each held ${holdS} s`);
    const uac = await startSippUac({
      scenario: SCENARIO, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
      rate: o.rate, calls: o.held, maxConcurrent: o.held + 1000, timeoutS: uacTimeoutS, buffSize: SIPP_BUFF_SIZE,
      extraArgs: ['-d', String(holdS * 1000)],
    });
    let done = false;
    void uac.done.then(() => { done = true; }, () => { done = true; });
    // The plateau: from the end of the ramp until the first BYE (holdS after the start). The
    // sample kept is the one with the most calls open (RSS then too).
    const started = Date.now();
    let loaded: Sample = { rssKiB: null, anonKiB: null, fileKiB: null, uasOpen: -1, tracked: null };
    let loadedMaxRssKiB: number | null = null;
    let nextLog = 10;
    while (!done && Date.now() - started < (holdS - 2) * 1000) {
      await sleep(1000);
      // siplb's own count (/metrics) only at the 10 s log lines: rendering /metrics runs code
      // that a memory trim would otherwise have unmapped, and a scrape every second kept
      // 10-15 MiB of the node binary mapped (bench/README.md, "The memory trim").
      const elapsed = Math.floor((Date.now() - started) / 1000);
      const s = await sample(running, uases, elapsed >= nextLog ? api : null);
      if (s.uasOpen >= loaded.uasOpen) loaded = s;
      if (s.rssKiB !== null && s.rssKiB > (loadedMaxRssKiB ?? 0)) loadedMaxRssKiB = s.rssKiB;
      if (elapsed >= nextLog) {
        nextLog += 10;
        console.log(`    ${elapsed}s: ${s.uasOpen} calls open at the UASes${s.tracked === null ? '' : `, ${s.tracked} tracked by siplb`}, RSS ${mib(s.rssKiB)}`);
      }
    }
    // Read after the RSS sample, as in every sample.
    if (loaded.tracked === null) loaded = { ...loaded, tracked: await tracked(api) };
    console.log(`  ${target}: ${loaded.uasOpen} calls held${loaded.tracked === null ? '' : ` (siplb tracks ${loaded.tracked})`}, RSS ${mib(loaded.rssKiB)}`);
    const result = await uac.done;
    const ended = await sample(running, uases, api);
    console.log(`  ${target}: all calls ended (${result.stats.successful} successful, ${result.stats.failed} failed), RSS ${mib(ended.rssKiB)}`);
    if (result.stats.failed > 0 || result.stats.successful < o.held) console.log(`  ${describeResult(`UAC (${target})`, result).split('\n')[0]}`);
    await sleep(EXPIRY_WAIT_MS);
    const expired = await sample(running, uases, api);
    const peakRssKiB = running.peakRssKiB();
    console.log(`  ${target}: after the table's expiry${expired.tracked === null ? '' : ` (${expired.tracked} tracked)`}, RSS ${mib(expired.rssKiB)}; peak (VmHWM) ${mib(peakRssKiB)}`);
    const heldCalls = loaded.tracked ?? loaded.uasOpen;
    return {
      target, held: o.held, rate: o.rate, holdS, idle, loaded, loadedMaxRssKiB, ended, expired, peakRssKiB,
      successful: result.stats.successful, failed: result.stats.failed,
      bytesPerCall: loaded.rssKiB === null || idle.rssKiB === null || heldCalls <= 0 ? null : ((loaded.rssKiB - idle.rssKiB) * 1024) / heldCalls,
      nodeFlags: target === 'siplb' ? o.nodeFlags : [],
      settings: target === 'siplb' ? o.settings : {},
    };
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(2000)));
    await running?.stop();
    releasePorts(ports);
  }
}

function mib(kib: number | null): string {
  return kib === null ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`;
}

/** RSS and, beside it, its private (anon) and file-backed parts. */
function rssText(s: Sample): string {
  return `${mib(s.rssKiB)}`.padEnd(11) + ` (anon ${mib(s.anonKiB)}, file ${mib(s.fileKiB)})`;
}

function printResult(r: HeldResult): void {
  const label = r.target === 'kamailio' ? 'kamailio (sum over processes)' : `siplb${r.nodeFlags.length > 0 ? ` ${r.nodeFlags.join(' ')}` : ''}${Object.entries(r.settings).map(([k, v]) => ` ${k}=${v}`).join('')}`;
  console.log(`\n== ${label}: ${r.held} calls held (${r.rate}/s, hold ${r.holdS} s)`);
  console.log(`  calls held             ${r.loaded.uasOpen} at the UASes${r.loaded.tracked === null ? '' : `, ${r.loaded.tracked} tracked by siplb`}`);
  console.log(`  RSS idle               ${rssText(r.idle)}`);
  console.log(`  RSS calls held         ${rssText(r.loaded)}; highest while loading ${mib(r.loadedMaxRssKiB)}`);
  console.log(`  RSS all ended          ${rssText(r.ended)}`);
  console.log(`  RSS after expiry       ${rssText(r.expired)}${r.expired.tracked === null ? '' : `, ${r.expired.tracked} tracked`}`);
  console.log(`  peak RSS (VmHWM)       ${mib(r.peakRssKiB)}`);
  console.log(`  RSS per held call      ${r.bytesPerCall === null ? 'n/a' : `${r.bytesPerCall.toFixed(0)} bytes`}`);
  console.log(`  calls                  ${r.successful} successful, ${r.failed} failed`);
}

export async function runHeldBench(argv: string[]): Promise<number> {
  const o = parse(argv);
  console.log(`held-calls: ${o.held} calls at ${o.rate}/s held open together, UDP`);
  const results: HeldResult[] = [];
  for (const target of o.compareKamailio ? ['siplb', 'kamailio'] as const : ['siplb'] as const) {
    results.push(await runTarget(target, o));
  }
  results.forEach(printResult);
  console.log(JSON.stringify({ bench: 'held-calls', held: o.held, rate: o.rate, results }));
  return results.every((r) => r.failed === 0 && r.successful === r.held) ? 0 : 1;
}

if (import.meta.main) {
  process.exitCode = await runHeldBench(process.argv.slice(2));
}
