// npm run demo: siplb on 127.0.0.1:5060 (UDP and TCP) plus two demo SIP nodes that register with
// it by heartbeats (127.0.0.1:2610), a gentle call generator (two calls a second, held four
// seconds), and the dashboard on http://127.0.0.1:2006/ to watch them. Every child's log line is shown
// with its name in front. Ctrl-C (or SIGTERM) drains the nodes, stops them, then stops siplb; a
// second Ctrl-C kills everything at once. Exits 1 when a child fails to start or dies early.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DemoCaller } from './demo-calls.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const HOST = '127.0.0.1';
const SIP_PORT = 5060;
const HEARTBEAT_PORT = 2610;
const API_PORT = 2006;
const NODES = [
  { name: 'node-a', port: 5081, statsPort: 5091 },
  { name: 'node-b', port: 5082, statsPort: 5092 },
] as const;
/** How long a node drains on Ctrl-C before it sends stop (short: this is a demo). */
const NODE_GRACE_MS = 2000;
const READY_TIMEOUT_MS = 15_000;
const NODE_EXIT_TIMEOUT_MS = NODE_GRACE_MS + 8000;
const SIPLB_EXIT_TIMEOUT_MS = 5000;

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
  ready: Promise<void>;
  hasExited: () => boolean;
}

const children: Child[] = [];
let stopping = false;

/** Runs a TypeScript entry point of this repository with the Node running this script. */
function start(name: string, script: string, args: string[], readyMessage: string): Child {
  const proc = spawn(process.execPath, [join(ROOT, script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let exited = false;
  let markReady: () => void = () => undefined;
  let failReady: (err: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  ready.catch(() => undefined);
  const timer = setTimeout(() => failReady(new Error(`${name} not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
  const exitedPromise = new Promise<void>((resolve) => {
    proc.once('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      failReady(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready`));
      if (!stopping) {
        process.stdout.write(`[demo] ${name} exited unexpectedly (code ${code}, signal ${signal}); stopping the others\n`);
        void shutdown(1);
      }
      resolve();
    });
  });
  for (const stream of [proc.stdout, proc.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(`[${name}] ${line}\n`);
      if (line.includes(`"msg":"${readyMessage}"`)) {
        clearTimeout(timer);
        markReady();
      }
    });
  }
  const child = { name, process: proc, exited: exitedPromise, ready, hasExited: () => exited };
  children.push(child);
  return child;
}

/** Signals a child and waits for its exit; SIGKILL when it has not exited within timeoutMs. */
async function end(child: Child, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.hasExited()) return;
  child.process.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  if ((await Promise.race([child.exited, late])) === 'late' && !child.hasExited()) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
  clearTimeout(timer);
}

let tempDir: string | null = null;
let caller: DemoCaller | null = null;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    process.stdout.write('[demo] stopping: nodes drain and leave the cluster, then siplb stops\n');
    caller?.stop();
    const nodes = children.filter((c) => c.name !== 'siplb');
    await Promise.all(nodes.map((c) => end(c, 'SIGTERM', NODE_EXIT_TIMEOUT_MS)));
    await Promise.all(children.filter((c) => c.name === 'siplb').map((c) => end(c, 'SIGTERM', SIPLB_EXIT_TIMEOUT_MS)));
    if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true });
  }
  process.exit(code);
}

function killAllNow(): void {
  for (const c of children) if (!c.hasExited()) c.process.kill('SIGKILL');
  if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (signals === 1) void shutdown(0);
    else {
      killAllNow();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Whatever ends this process, no child outlives it.
  process.on('exit', () => {
    for (const c of children) if (!c.hasExited()) c.process.kill('SIGKILL');
  });

  tempDir = mkdtempSync(join(tmpdir(), 'siplb-demo-'));
  const props = join(tempDir, 'lb.properties');
  writeFileSync(props, [`host=${HOST}`, `externalPort=${SIP_PORT}`, `heartbeatPort=${HEARTBEAT_PORT}`, `apiPort=${API_PORT}`, ''].join('\n'));

  const siplb = start('siplb', 'src/cli/siplb.ts', [props, '--log-level', 'info'], 'siplb ready');
  try {
    await siplb.ready;
    await Promise.all(NODES.map((n) => start(n.name, 'src/cli/siplb-demo-node.ts', [
      '--ip', HOST, '--port', String(n.port), '--transport', 'udp,tcp', '--stats-port', String(n.statsPort),
      '--balancers', `${HOST}:${HEARTBEAT_PORT}`, '--grace', String(NODE_GRACE_MS), '--host-name', n.name, '--log-level', 'info',
    ], 'siplb-demo-node ready').ready));
  } catch (err) {
    process.stdout.write(`[demo] ${(err as Error).message}\n`);
    return shutdown(1);
  }

  caller = new DemoCaller({ balancer: { host: HOST, port: SIP_PORT }, callsPerSecond: 2, holdMs: 4000, report: (line) => process.stdout.write(`[demo] ${line}\n`) });
  await caller.start();

  process.stdout.write([
    '',
    `[demo] dashboard: http://${HOST}:${API_PORT}/   (calls are being placed: two a second, held four seconds)`,
    `[demo] siplb: SIP on ${HOST}:${SIP_PORT} (UDP, TCP), node heartbeats on ${HOST}:${HEARTBEAT_PORT}, admin API and /metrics on ${HOST}:${API_PORT}`,
    ...NODES.map((n) => `[demo] ${n.name}: SIP on ${HOST}:${n.port} (UDP, TCP), counters at http://${HOST}:${n.statsPort}/`),
    '[demo] place more calls through siplb with sipp (Debian package sip-tester), from another terminal:',
    `[demo]   sipp -sn uac ${HOST}:${SIP_PORT} -i ${HOST} -p 5070 -m 100 -r 10            # UDP, 100 calls`,
    `[demo]   sipp -sn uac ${HOST}:${SIP_PORT} -i ${HOST} -p 5070 -m 100 -r 10 -t t1      # TCP`,
    `[demo]   curl -s http://${HOST}:${NODES[0].statsPort}/ ; curl -s http://${HOST}:${NODES[1].statsPort}/   # calls per node`,
    '[demo] Ctrl-C stops everything.',
    '',
  ].join('\n'));
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  killAllNow();
  process.exit(1);
});
