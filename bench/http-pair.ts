// `npm run bench -- --http --against DIR`: this checkout's siplb and DIR's siplb side by side,
// in front of the same two nginx backends, each under its own wrk at the same time, so whatever
// the machine does during a round (another tenant, frequency, cache pressure) it does to both.
// Single alternating runs of one tree move by a third on a shared machine; the paired ratio of
// two trees moved by under a tenth in 2026-12-01's runs (bench/README.md). Which wrk starts first
// alternates between rounds. Prints each round's CPU µs per request of both and their ratio
// (DIR / this), then the medians; exits 1 if wrk counted an error.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCleanup } from '../test/e2e/harness/children.ts';
import { allocatePorts, releasePorts } from '../test/e2e/harness/ports.ts';
import { CLK_TCK, sumTicks } from './proc.ts';
import {
  backendConfig, median, parseWrk, runWrk, sanityCheck, startNginx, startSiplbHttp,
  type Options, type Running,
} from './http-load.ts';

interface Side {
  label: string;
  running: Running;
  port: number;
}

interface PairRound {
  round: number;
  here: { requests: number; cpuUsPerRequest: number; requestsPerSec: number; errors: number };
  there: { requests: number; cpuUsPerRequest: number; requestsPerSec: number; errors: number };
  ratio: number;
}

/** One round: both wrk runs at once, each balancer's CPU over the same seconds. */
async function pairRound(round: number, here: Side, there: Side, wrk: string, o: Options): Promise<PairRound> {
  const before = [sumTicks(here.running.pids()), sumTicks(there.running.pids())];
  const first = round % 2 === 1 ? here : there;
  const second = first === here ? there : here;
  const runs = new Map<Side, ReturnType<typeof runWrk>>();
  runs.set(first, runWrk(wrk, first.port, o, o.durationS));
  runs.set(second, runWrk(wrk, second.port, o, o.durationS));
  const [hereRun, thereRun] = await Promise.all([runs.get(here)!, runs.get(there)!]);
  const after = [sumTicks(here.running.pids()), sumTicks(there.running.pids())];
  const one = (output: string, ticks: number) => {
    const w = parseWrk(output);
    return {
      requests: w.requests,
      cpuUsPerRequest: w.requests === 0 ? Number.NaN : (ticks / CLK_TCK / w.requests) * 1e6,
      requestsPerSec: w.requestsPerSec,
      errors: w.errors,
    };
  };
  const h = one(hereRun.output, after[0] - before[0]);
  const t = one(thereRun.output, after[1] - before[1]);
  return { round, here: h, there: t, ratio: t.cpuUsPerRequest / h.cpuUsPerRequest };
}

export async function runPaired(o: Options, wrk: string): Promise<number> {
  const againstDir = o.against as string;
  console.log(`http-load, side by side: this checkout against ${againstDir}, ${o.rounds} round(s) of two wrk -t${o.threads} -c${o.connections}` +
    ` -d${o.durationS}s at once, ${o.warmupS} s warm-up each, CLK_TCK ${CLK_TCK}`);
  const ports = await allocatePorts(8);
  const [hereHttp, hereSip, thereHttp, thereSip, fakeSipA, fakeSipB, backendA, backendB] = ports;
  const backendPorts = [backendA, backendB];
  const dir = mkdtempSync(join(tmpdir(), 'siplb-bench-pair-'));
  const unregister = registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const running: Running[] = [];
  const rounds: PairRound[] = [];
  try {
    const backend = await startNginx('backends', dir, backendConfig(dir, backendPorts), backendPorts);
    running.push(backend);
    const here: Side = {
      label: 'this', port: hereHttp,
      running: await startSiplbHttp(hereHttp, hereSip, [fakeSipA, fakeSipB], backendPorts, o.logLevel, o.nodeFlags),
    };
    running.push(here.running);
    const there: Side = {
      label: 'against', port: thereHttp,
      running: await startSiplbHttp(thereHttp, thereSip, [fakeSipA, fakeSipB], backendPorts, o.logLevel, [], join(againstDir, 'bin', 'siplb.cjs')),
    };
    running.push(there.running);
    for (const side of [here, there]) {
      console.log(`${side.label} on 127.0.0.1:${side.port}, 20 GETs reach backends: ${await sanityCheck('siplb', side.port)}`);
    }
    if (o.warmupS > 0) {
      // Not measured: lets V8 compile both hot paths and both fill their pools.
      await Promise.all([runWrk(wrk, here.port, o, o.warmupS), runWrk(wrk, there.port, o, o.warmupS)]);
    }
    console.log('\nround   this µs/req    req/s   against µs/req    req/s   against / this');
    for (let round = 1; round <= o.rounds; round++) {
      const r = await pairRound(round, here, there, wrk, o);
      rounds.push(r);
      console.log(`${String(round).padEnd(5)} ${r.here.cpuUsPerRequest.toFixed(2).padStart(12)} ${r.here.requestsPerSec.toFixed(0).padStart(8)}` +
        ` ${r.there.cpuUsPerRequest.toFixed(2).padStart(16)} ${r.there.requestsPerSec.toFixed(0).padStart(8)} ${r.ratio.toFixed(3).padStart(16)}` +
        `${r.here.errors + r.there.errors > 0 ? `   errors: this ${r.here.errors}, against ${r.there.errors}` : ''}`);
    }
  } finally {
    for (const r of running.reverse()) await r.stop();
    rmSync(dir, { recursive: true, force: true });
    unregister();
    releasePorts(ports);
  }
  const medians = {
    here: median(rounds.map((r) => r.here.cpuUsPerRequest)),
    there: median(rounds.map((r) => r.there.cpuUsPerRequest)),
    ratio: median(rounds.map((r) => r.ratio)),
  };
  console.log(`\nmedians: this ${medians.here.toFixed(2)} µs/req, against ${medians.there.toFixed(2)} µs/req, against / this ${medians.ratio.toFixed(3)} (median of the rounds' ratios)`);
  console.log(JSON.stringify({
    bench: 'http-pair', clkTck: CLK_TCK, against: againstDir,
    options: { rounds: o.rounds, durationS: o.durationS, connections: o.connections, threads: o.threads, warmupS: o.warmupS },
    rounds, medians,
  }));
  return rounds.some((r) => r.here.errors + r.there.errors > 0 || r.here.requests === 0 || r.there.requests === 0) ? 1 : 0;
}
