// The balancers the load benchmarks measure, started and accounted for the same way everywhere:
// siplb (in-memory or with a fresh redis-server) and Kamailio's dispatcher (bench/kamailio/), each
// with the pids whose CPU counts as the balancer's and its peak RSS.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statusKiB } from './proc.ts';
import { captureOutput, LineBuffer, registerCleanup, spawnOwned, terminate } from '../test/e2e/harness/children.ts';
import { allBound } from '../test/e2e/harness/procnet.ts';
import { cliNodeFlags, startSiplb } from '../test/e2e/harness/siplb.ts';
import { startRedis } from '../test/helpers/redis.ts';

const KAMAILIO_CFG = fileURLToPath(new URL('./kamailio/kamailio.cfg', import.meta.url));
const UDP_RELAY = fileURLToPath(new URL('./udp-relay.ts', import.meta.url));

// ---- /proc accounting -------------------------------------------------------------------------

/** Live processes (zombies hold no CPU or sockets any more) whose parent (`ppid`) or process group (`pgrp`) is `id`, from /proc. */
export function processesBy(field: 'ppid' | 'pgrp', id: number): number[] {
  const at = field === 'ppid' ? 1 : 2;
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // rest[0] state, rest[1] ppid, rest[2] pgrp.
      if (Number(rest[at]) === id && rest[0] !== 'Z') out.push(Number(name));
    } catch {
      // Exited while we scanned.
    }
  }
  return out;
}

/**
 * Pids of the processes in process group `pgid`. Kamailio is started as the leader of its own
 * group, and its workers stay in that group even when the main process dies and they are
 * re-parented, so the group finds all of them, and only them.
 */
export function processGroup(pgid: number): number[] {
  return processesBy('pgrp', pgid);
}

function killGroupMembers(pgid: number): void {
  for (const pid of processGroup(pgid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}


// ---- balancers under test ---------------------------------------------------------------------

export interface RunningTarget {
  /** Every process whose CPU counts as the balancer's. */
  pids(): number[];
  /** redis-server's command counts so far, by command (INFO commandstats); only with --compare redis. */
  storeCommands?: () => Map<string, number>;
  /** A process the balancer depends on whose CPU is reported apart (redis-server). */
  storePid?: number;
  peakRssKiB(): number | null;
  stop(): Promise<void>;
}

function kamailioBinary(): string | null {
  for (const candidate of ['/usr/sbin/kamailio', '/usr/local/sbin/kamailio']) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v kamailio'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : null;
}

/** Installs Debian's kamailio if it is missing (apt-get update only if the first try fails). */
function ensureKamailio(): string {
  const found = kamailioBinary();
  if (found !== null) return found;
  if (process.getuid?.() !== 0) throw new Error('kamailio is not installed and this is not root: apt-get install -y kamailio');
  console.log('kamailio not found: apt-get install -y kamailio');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let install = spawnSync('apt-get', ['install', '-y', 'kamailio'], { stdio: 'inherit', env });
  if (install.status !== 0) {
    console.log('install failed: apt-get update, then retry');
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    install = spawnSync('apt-get', ['install', '-y', 'kamailio'], { stdio: 'inherit', env });
  }
  const installed = kamailioBinary();
  if (install.status !== 0 || installed === null) throw new Error('could not install kamailio with apt-get');
  return installed;
}

/**
 * Kamailio's memory managers (its -x flag). qm, the default of Debian's build, is what an operator
 * gets without tuning, and the reference the benchmarks compare with; tlsf costs Kamailio about
 * half the CPU per call on this bed (bench/README.md, "Where a call's CPU goes").
 */
export const KAMAILIO_MEMORY_MANAGERS = ['qm', 'tlsf', 'fm'] as const;
export type KamailioMemoryManager = typeof KAMAILIO_MEMORY_MANAGERS[number];

export async function startKamailio(lbPort: number, nodeUris: string[], memoryManager: KamailioMemoryManager = 'qm'): Promise<RunningTarget> {
  const binary = ensureKamailio();
  const dir = mkdtempSync(join(tmpdir(), 'siplb-bench-kamailio-'));
  const listFile = join(dir, 'dispatcher.list');
  writeFileSync(listFile, nodeUris.map((uri) => `1 ${uri}`).join('\n') + '\n');
  const args = [
    '-DD', '-E', '-f', KAMAILIO_CFG,
    '-A', `LB_PORT=${lbPort}`,
    '-A', `DS_LIST="${listFile}"`,
    // Shared/private memory (MB): ample for a stateless proxy, small enough not to matter.
    '-m', '256', '-M', '16',
    '-x', memoryManager,
    // Runtime dir of this run (control sockets), not the system's /run/kamailio.
    '-Y', dir,
  ];
  // detached: leader of a new process group (see processGroup), so the workers can be found
  // and killed by pid even after the main process is gone.
  const owned = spawnOwned(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = owned.pid;
  // The workers are the main process's children, not ours: spawnOwned's kill-on-exit only
  // reaches the main process.
  const killAll = (): void => killGroupMembers(pgid);
  const unregister = registerCleanup(killAll);
  const output = new LineBuffer(200);
  captureOutput(owned, output);
  const cleanup = async (): Promise<void> => {
    // Kamailio's main process takes its workers down on SIGTERM; any left are killed.
    await terminate(owned, 'SIGTERM', 5_000);
    killAll();
    unregister();
    rmSync(dir, { recursive: true, force: true });
  };
  const wanted = [{ proto: 'udp', port: lbPort }, { proto: 'tcp', port: lbPort }] as const;
  const deadline = Date.now() + 10_000;
  // The main process binds UDP before forking, the TCP listener lives in the TCP main process;
  // the workers (children=1, tcp_children=1, timers) exist once the group stops growing.
  let lastSize = 0;
  let stableSince = Date.now();
  while (true) {
    if (owned.hasExited()) {
      await cleanup();
      throw new Error(`kamailio exited at start:\n${output.snapshot().join('\n')}`);
    }
    if (Date.now() > deadline) {
      await cleanup();
      throw new Error(`kamailio not ready within 10 s:\n${output.snapshot().join('\n')}`);
    }
    const members = processGroup(pgid);
    if (members.length !== lastSize) {
      lastSize = members.length;
      stableSince = Date.now();
    }
    if (members.length > 1 && Date.now() - stableSince > 500 && allBound(members, wanted)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    pids: () => processGroup(pgid),
    peakRssKiB: () => {
      // Summed VmHWM overcounts the shared memory segment every worker maps; it is an upper bound.
      const values = processGroup(pgid).map((pid) => statusKiB(pid, 'VmHWM') ?? 0);
      return values.reduce((a, b) => a + b, 0);
    },
    stop: cleanup,
  };
}

/**
 * bench/udp-relay.ts on lbPort in front of one node: Node's cost of receiving and sending a
 * call's datagrams with no SIP work, under siplb's own Node flags (the floor under siplb's figure).
 */
export async function startUdpRelay(lbPort: number, nodePort: number): Promise<RunningTarget> {
  const owned = spawnOwned(process.execPath, [...cliNodeFlags(), UDP_RELAY, String(lbPort), String(nodePort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new LineBuffer(50);
  captureOutput(owned, output);
  const deadline = Date.now() + 10_000;
  while (!output.snapshot().includes('relay ready')) {
    if (owned.hasExited() || Date.now() > deadline) {
      await terminate(owned, 'SIGKILL', 1_000);
      throw new Error(`udp-relay did not start:\n${output.snapshot().join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pids: () => (owned.hasExited() ? [] : [owned.pid]),
    peakRssKiB: () => statusKiB(owned.pid, 'VmHWM'),
    stop: async () => { await terminate(owned, 'SIGTERM', 5_000); },
  };
}

/** Commands per call between two INFO commandstats readings, and their total. */
export function perCall(before: Map<string, number>, after: Map<string, number>, calls: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0);
    if (d <= 0) continue;
    out[name] = d / calls;
    total += d;
  }
  out['total'] = total / calls;
  return out;
}

/**
 * Commands redis-server has run, by name (INFO commandstats), read with redis-cli. The INFO
 * itself and the health PINGs are left out: they are the measurement's and the timer's, not the
 * calls'.
 */
function redisCommandCounts(port: number): Map<string, number> {
  const out = new Map<string, number>();
  const r = spawnSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats'], { encoding: 'utf8', timeout: 5000 });
  for (const m of (r.stdout ?? '').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== 'info' && m[1] !== 'ping') out.set(m[1], Number(m[2]));
  }
  return out;
}

/**
 * siplb on lbPort in front of `nodes`, as the benchmarks run it. `extra`: more settings (--set);
 * `nodeFlags`: Node/V8 flags after the CLI's own (--node-flags, an A/B of a V8 flag without a worktree).
 */
export async function startSiplbTarget(lbPort: number, nodes: string, logLevel: 'error' | 'warn' | 'info' | 'debug', withRedis: boolean, overloadControl: boolean, extra: Record<string, string> = {}, nodeFlags: string[] = []): Promise<RunningTarget> {
  const redis = withRedis ? await startRedis() : null;
  try {
    const handle = await startSiplb({
      host: '127.0.0.1',
      externalPort: String(lbPort),
      externalTransport: 'udp,tcp',
      nodes,
      // Like for like with Kamailio's stateless forward(), which sends no 100 either. Real nodes
      // send their own 100, which siplb then absorbs, so isSendTrying costs no send there; sipp's
      // uas sends none, so here it would add one send per call that Kamailio does not make.
      isSendTrying: 'false',
      overloadControl: String(overloadControl),
      ...(redis === null ? {} : { stateStore: 'redis', redisUrl: redis.url }),
      ...extra,
    }, { logLevel, nodeFlags });
    return {
      pids: () => [handle.pid],
      storePid: redis?.pid,
      ...(redis === null ? {} : { storeCommands: () => redisCommandCounts(redis.port) }),
      peakRssKiB: () => statusKiB(handle.pid, 'VmHWM'),
      stop: async () => {
        await handle.stop();
        await redis?.stop();
      },
    };
  } catch (err) {
    await redis?.stop();
    throw err;
  }
}
