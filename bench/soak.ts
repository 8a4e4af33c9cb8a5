// Soak: a steady sipp call load through one siplb for a long time, to show that nothing grows
// and nothing fails. Prints, every minute, the calls so far, siplb's RSS and the event loop's lag
// (p99 and max over the minute, from siplb's own /metrics); at the end the verdict of issue 14's
// bar: 0 failed calls, RSS at the end within 10 % of RSS after the first 5 minutes (or after the
// first third of a shorter run), and the lag p99 seen.
//
//   npm run bench -- --soak 30m [--rate 500] [--hold 2000]
//
// sipp UAC -> siplb (in-memory state, Call-ID affinity) -> two sipp UAS, UDP, on loopback. Bounded:
// the UAC places exactly rate × duration calls and is killed 60 s after its expected end.

import { parseArgs } from 'node:util';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { startSiplb } from '../test/e2e/harness/siplb.ts';
import { describeResult, startSippUac, startSippUas, type SippUas } from '../test/e2e/harness/sipp.ts';
import { statusKiB } from './proc.ts';
import { nodeFlagsOption } from './options.ts';

interface Options {
  seconds: number;
  rate: number;
  holdMs: number;
  /** --node-flags: Node/V8 flags for siplb after its own. */
  nodeFlags: string[];
}

function usage(message: string): never {
  process.stderr.write(`soak: ${message}\nusage: npm run bench -- --soak 30m [--rate 500] [--hold 2000] [--node-flags="--a-v8-flag ..."]   (durations: 90s, 30m, 1h)\n`);
  process.exit(2);
}

/** "30m", "90s", "1h", or plain seconds. */
export function parseDuration(raw: string): number | null {
  const m = /^(\d+)(s|m|h)?$/.exec(raw.trim());
  if (m === null) return null;
  const n = Number(m[1]);
  const seconds = m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : n;
  return seconds > 0 ? seconds : null;
}

function parse(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv, strict: true, allowPositionals: true,
    options: { soak: { type: 'string' }, rate: { type: 'string' }, hold: { type: 'string' }, 'node-flags': { type: 'string' } },
  });
  const rawDuration = values.soak ?? positionals[0] ?? '30m';
  const seconds = parseDuration(rawDuration);
  if (seconds === null) usage(`--soak must be a duration such as 30m, 90s or 1h, got ${rawDuration}`);
  const rate = Number(values.rate ?? 500);
  if (!Number.isInteger(rate) || rate <= 0) usage(`--rate must be a positive integer, got ${values.rate}`);
  const holdMs = Number(values.hold ?? 2000);
  if (!Number.isInteger(holdMs) || holdMs < 0) usage(`--hold must be a whole number of ms, got ${values.hold}`);
  return { seconds, rate, holdMs, nodeFlags: nodeFlagsOption(values['node-flags'], usage) };
}

/** One gauge of siplb's /metrics, or null. */
function gauge(text: string, name: string): number | null {
  const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(text);
  return m === null ? null : Number(m[1]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSoak(argv: string[]): Promise<number> {
  const o = parse(argv);
  const ports = await allocatePorts(5);
  const [lbPort, uasA, uasB, uacPort, apiPort] = ports;
  const uases: SippUas[] = [];
  const calls = o.rate * o.seconds;
  const timeoutS = o.seconds + Math.ceil(o.holdMs / 1000) + 60;
  try {
    for (const port of [uasA, uasB]) {
      uases.push(await startSippUas({ scenario: 'uas', transport: 'u1', localPort: port, timeoutS: timeoutS + 30, buffSize: 4 * 1024 * 1024 }));
    }
    const siplb = await startSiplb({
      host: '127.0.0.1', externalPort: String(lbPort), apiPort: String(apiPort),
      nodes: `127.0.0.1:${uasA};transport=udp,127.0.0.1:${uasB};transport=udp`, isSendTrying: 'false',
    }, { logLevel: 'warn', nodeFlags: o.nodeFlags });
    try {
      console.log(`soak: ${o.rate} calls/s for ${o.seconds} s (${calls} calls held ${o.holdMs} ms each), UDP, siplb pid ${siplb.pid}`);
      const uac = await startSippUac({
        scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`,
        rate: o.rate, calls, timeoutS, buffSize: 4 * 1024 * 1024, extraArgs: ['-d', String(o.holdMs)],
      });
      // The baseline: RSS after 5 minutes, or after the first third of a shorter run.
      const baselineAt = Math.min(300, Math.floor(o.seconds / 3));
      let baselineKiB: number | null = null;
      let baselineAnonKiB: number | null = null;
      let lastKiB: number | null = null;
      let lastAnonKiB: number | null = null;
      let worstP99 = 0;
      let worstMax = 0;
      const start = Date.now();
      let done = false;
      void uac.done.then(() => { done = true; }, () => { done = true; });
      let nextReport = 60;
      while (!done) {
        await sleep(1000);
        const elapsed = Math.floor((Date.now() - start) / 1000);
        lastKiB = statusKiB(siplb.pid, 'VmRSS') ?? lastKiB;
        lastAnonKiB = statusKiB(siplb.pid, 'RssAnon') ?? lastAnonKiB;
        if (baselineKiB === null && elapsed >= baselineAt) {
          baselineKiB = lastKiB;
          baselineAnonKiB = lastAnonKiB;
        }
        if (elapsed >= nextReport || done) {
          nextReport += 60;
          const text = await fetch(`http://127.0.0.1:${apiPort}/metrics`).then((r) => r.text()).catch(() => '');
          const p99 = gauge(text, 'siplb_nodejs_eventloop_lag_p99_seconds');
          const max = gauge(text, 'siplb_nodejs_eventloop_lag_max_seconds');
          if (p99 !== null) worstP99 = Math.max(worstP99, p99);
          if (max !== null) worstMax = Math.max(worstMax, max);
          const started = gauge(text, 'siplb_calls_started_total');
          console.log(`  ${elapsed}s: calls started ${started ?? '?'}, RSS ${((lastKiB ?? 0) / 1024).toFixed(1)} MiB (private ${((lastAnonKiB ?? 0) / 1024).toFixed(1)}), ` +
            `event-loop lag p99 ${p99 === null ? '?' : (p99 * 1000).toFixed(2)} ms, max ${max === null ? '?' : (max * 1000).toFixed(2)} ms`);
        }
      }
      const result = await uac.done;
      const endKiB = statusKiB(siplb.pid, 'VmRSS') ?? lastKiB;
      const endAnonKiB = statusKiB(siplb.pid, 'RssAnon') ?? lastAnonKiB;
      const growth = baselineKiB !== null && endKiB !== null ? (endKiB - baselineKiB) / baselineKiB : null;
      console.log(describeResult('soak UAC', result).split('\n')[0]);
      console.log(`soak: ${result.stats.successful} completed, ${result.stats.failed} failed; RSS ${((baselineKiB ?? 0) / 1024).toFixed(1)} MiB at ${baselineAt} s, ` +
        `${((endKiB ?? 0) / 1024).toFixed(1)} MiB at the end (${growth === null ? '?' : `${(growth * 100).toFixed(1)} %`}; private ` +
        `${((baselineAnonKiB ?? 0) / 1024).toFixed(1)} -> ${((endAnonKiB ?? 0) / 1024).toFixed(1)} MiB); ` +
        `event-loop lag p99 (worst minute) ${(worstP99 * 1000).toFixed(2)} ms, max ${(worstMax * 1000).toFixed(2)} ms`);
      console.log(JSON.stringify({
        bench: 'soak', rate: o.rate, seconds: o.seconds, calls, successful: result.stats.successful, failed: result.stats.failed,
        baselineRssKiB: baselineKiB, endRssKiB: endKiB, rssGrowth: growth, baselineAnonKiB, endAnonKiB, lagP99Ms: worstP99 * 1000, lagMaxMs: worstMax * 1000,
      }));
      const ok = result.stats.failed === 0 && result.stats.successful === calls && growth !== null && growth <= 0.10;
      return ok ? 0 : 1;
    } finally {
      await siplb.stop();
    }
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(2000)));
    releasePorts(ports);
  }
}

if (import.meta.main) {
  process.exitCode = await runSoak(process.argv.slice(2));
}
