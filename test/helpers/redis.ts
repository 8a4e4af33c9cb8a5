// Real redis-server processes for tests: a single server (stoppable, restartable on the same port,
// pausable) and a small Redis Cluster whose masters can be killed, restarted as the same node and
// paused one by one. Servers are children of the test process, killed by pid on every exit path
// (children.ts), and keep nothing on disk beyond a temp dir removed at exit (nodes.conf included).

import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostPort } from '../../src/config/types.ts';
import { LineBuffer, registerCleanup, spawnOwned, terminate, type OwnedChild } from '../e2e/harness/children.ts';
import { allocatePort, allocatePorts, releasePorts } from '../e2e/harness/ports.ts';

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const CLUSTER_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5000;

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Pid of the running server process (changes on restart). */
  readonly pid: number;
  /** SIGTERM, wait for the exit. The port stays reserved for restart(). */
  stop(): Promise<void>;
  /** A fresh, empty server on the same port. */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/** One master of a test cluster. */
export interface RedisClusterMaster {
  readonly port: number;
  /** Pid of the running server process (changes on restart). */
  readonly pid: number;
  /** SIGKILL this master's process (by its pid) and wait for the exit: a crash, nothing flushed. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port with the same nodes.conf, so it rejoins as the same node
   * with the same slots (empty: the test servers persist nothing). Resolves once it answers PING,
   * not once the cluster took it back.
   */
  restart(): Promise<void>;
  /** SIGSTOP: its connections stay open, nothing answers (the cluster bus neither). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface RedisClusterOptions {
  /**
   * cluster-require-full-coverage (Redis's default: yes, every node refuses every key while
   * one slot is uncovered). No: the keys of the slots still covered stay usable.
   */
  requireFullCoverage?: boolean;
  /** cluster-node-timeout: how long a silent node takes to be marked failed (default 2000 ms). */
  nodeTimeoutMs?: number;
}

export interface RedisClusterServers {
  readonly seeds: HostPort[];
  readonly masters: readonly RedisClusterMaster[];
  stop(): Promise<void>;
}

let installChecked = false;

function ensureRedisInstalled(): void {
  if (installChecked || existsSync(REDIS_SERVER)) {
    installChecked = true;
    return;
  }
  const r = spawnSync('apt-get', ['install', '-y', 'redis-server'], { stdio: 'ignore', timeout: 300_000 });
  if (r.status !== 0 || !existsSync(REDIS_SERVER)) {
    throw new Error('install redis-server: apt-get install -y redis-server');
  }
  installChecked = true;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-redis-'));
  registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One PING over a raw connection; true on +PONG. */
function pingOnce(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

interface Running {
  child: OwnedChild;
  output: LineBuffer;
}

async function spawnServer(port: number, dir: string, extra: readonly string[]): Promise<Running> {
  ensureRedisInstalled();
  const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, ...extra];
  const child = spawnOwned(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new LineBuffer(40);
  child.process.stdout?.setEncoding('utf8').on('data', (s: string) => output.push(s));
  child.process.stderr?.setEncoding('utf8').on('data', (s: string) => output.push(s));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      throw new Error(`redis-server on port ${port} exited at start:\n${output.snapshot().join('\n')}`);
    }
    if (await pingOnce(port, 500)) return { child, output };
    await sleep(50);
  }
  await terminate(child, 'SIGKILL', STOP_GRACE_MS);
  throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms:\n${output.snapshot().join('\n')}`);
}

async function stopServer(r: Running): Promise<void> {
  if (r.child.hasExited()) return;
  try {
    r.child.process.kill('SIGTERM');
    // A paused server only acts on the SIGTERM once it runs again.
    r.child.process.kill('SIGCONT');
  } catch {
    // Exited in the meantime.
  }
  await terminate(r.child, 'SIGTERM', STOP_GRACE_MS);
}

/** A standalone server on a free loopback port. */
export async function startRedis(): Promise<RedisServer> {
  const port = await allocatePort(HOST);
  const dir = tempDir();
  let running = await spawnServer(port, dir, []);
  const signal = (sig: NodeJS.Signals): void => {
    if (!running.child.hasExited()) running.child.process.kill(sig);
  };
  return {
    port,
    url: `redis://${HOST}:${port}`,
    get pid() {
      return running.child.pid;
    },
    stop: () => stopServer(running),
    async restart() {
      await stopServer(running);
      running = await spawnServer(port, dir, []);
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}

function redisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** `masters` cluster-enabled servers joined into one cluster without replicas. */
export async function startRedisCluster(masters = 3, opts: RedisClusterOptions = {}): Promise<RedisClusterServers> {
  ensureRedisInstalled();
  // Each node needs a second port for the cluster bus; allocating it avoids the default
  // port + 10000, which may fall into the kernel's ephemeral range.
  const ports = await allocatePorts(masters * 2, HOST);
  const dataPorts = ports.slice(0, masters);
  const dir = tempDir();
  const servers: Running[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => stopServer(s)));
    releasePorts(ports);
    rmSync(dir, { recursive: true, force: true });
  };
  // The same arguments on a restart: the nodes.conf written at the first start makes it the same
  // node, owning the same slots.
  const nodeArgs = (i: number): string[] => [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, `nodes-${dataPorts[i]}.conf`),
    '--cluster-port', String(ports[masters + i]),
    '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000),
    '--cluster-require-full-coverage', opts.requireFullCoverage === false ? 'no' : 'yes',
  ];
  try {
    for (let i = 0; i < masters; i++) servers.push(await spawnServer(dataPorts[i], dir, nodeArgs(i)));
    await redisCli(
      ['--cluster', 'create', ...dataPorts.map((p) => `${HOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      CLUSTER_TIMEOUT_MS,
    );
    const deadline = Date.now() + CLUSTER_TIMEOUT_MS;
    for (const port of dataPorts) {
      for (;;) {
        const info = await redisCli(['-p', String(port), 'cluster', 'info'], 2000).catch(() => '');
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${port}: no cluster_state:ok within ${CLUSTER_TIMEOUT_MS} ms:\n${info}`);
        await sleep(100);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const signal = (i: number, sig: NodeJS.Signals): void => {
    if (!servers[i].child.hasExited()) servers[i].child.process.kill(sig);
  };
  const handles = dataPorts.map((port, i): RedisClusterMaster => ({
    port,
    get pid() {
      return servers[i].child.pid;
    },
    async kill() {
      await terminate(servers[i].child, 'SIGKILL', STOP_GRACE_MS);
    },
    async restart() {
      await stopServer(servers[i]);
      servers[i] = await spawnServer(port, dir, nodeArgs(i));
    },
    pause: () => signal(i, 'SIGSTOP'),
    resume: () => signal(i, 'SIGCONT'),
  }));
  return { seeds: dataPorts.map((port) => ({ host: HOST, port })), masters: handles, stop };
}
