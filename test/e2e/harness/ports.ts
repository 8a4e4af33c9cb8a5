// Loopback port allocation for end-to-end tests and the benchmark.
//
// A port handed out here is free for BOTH UDP and TCP on the given address, because siplb and
// sipp bind one number for both transports. Binding port 0 and closing again is not enough when
// several test files run in parallel (node --test --test-concurrency): the kernel may hand the
// same ephemeral port to another process, or use it as the source port of an outgoing TCP
// connection (siplb connecting to a TCP node), before sipp or siplb binds it. So:
//   - ports come from a window just below the kernel's ephemeral range, which the kernel never
//     picks for port-0 binds or outgoing connections;
//   - each port is reserved across processes by an exclusive lock file holding the owner's pid;
//     a lock whose owner is dead is taken over, so a crashed run does not leak ports for good.

import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCK_DIR = join(tmpdir(), 'siplb-e2e-ports');
const WINDOW_SIZE = 12000;
const MAX_ATTEMPTS = 500;

const heldByThisProcess = new Set<number>();
let exitHookInstalled = false;

function portWindow(): { low: number; high: number } {
  // The ephemeral range is a per-namespace setting; read it instead of assuming Linux defaults.
  let ephemeralLow = 32768;
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const parsed = Number(low);
    if (Number.isInteger(parsed) && parsed > 1024) ephemeralLow = parsed;
  } catch {
    // Not Linux or /proc not mounted: keep the Linux default.
  }
  const high = ephemeralLow - 1;
  const low = Math.max(1024, high - WINDOW_SIZE);
  return { low, high };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means the pid exists but belongs to another user: still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryLock(port: number): boolean {
  const path = join(LOCK_DIR, String(port));
  for (let round = 0; round < 2; round++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(path, 'utf8').trim());
    } catch {
      // Removed between our open and read: retry the exclusive create once.
      continue;
    }
    if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) return false;
    // Stale lock (owner died without releasing, or a half-written file): reclaim it.
    try {
      unlinkSync(path);
    } catch {
      // Another process reclaimed it first; the exclusive create below decides who wins.
    }
  }
  return false;
}

function unlock(port: number): void {
  try {
    unlinkSync(join(LOCK_DIR, String(port)));
  } catch {
    // Already gone: nothing to release.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const port of heldByThisProcess) unlock(port);
    heldByThisProcess.clear();
  });
}

function canBindTcp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    // exclusive: a port merely shared with a cluster primary must not count as free.
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function canBindUdp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ address: host, port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/**
 * Reserves one port that is currently bindable for both UDP and TCP on `host` and not reserved
 * by any other live process using this module. The reservation lasts until releasePort() or
 * the end of this process.
 */
export async function allocatePort(host = '127.0.0.1'): Promise<number> {
  mkdirSync(LOCK_DIR, { recursive: true });
  installExitHook();
  const { low, high } = portWindow();
  const span = high - low + 1;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = low + Math.floor(Math.random() * span);
    if (heldByThisProcess.has(port)) continue;
    if (!tryLock(port)) continue;
    if ((await canBindTcp(host, port)) && (await canBindUdp(host, port))) {
      heldByThisProcess.add(port);
      return port;
    }
    unlock(port);
  }
  throw new Error(`no free UDP+TCP port on ${host} in ${low}-${high} after ${MAX_ATTEMPTS} attempts`);
}

/** Reserves `count` distinct ports, each free for UDP and TCP. */
export async function allocatePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await allocatePort(host));
  return ports;
}

/** Gives reserved ports back so later allocations (in any process) may use them. */
export function releasePorts(ports: Iterable<number>): void {
  for (const port of ports) {
    if (heldByThisProcess.delete(port)) unlock(port);
  }
}
