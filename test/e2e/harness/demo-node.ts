// Starts real siplb-demo-node processes (SIP application servers that register with siplb by
// heartbeats) and reads their counters over their --stats-port.

import { terminate, type OwnedChild } from './children.ts';
import { curlIn } from './netns.ts';
import { runRepoScript } from './repo-script.ts';
import { allocatePort, releasePorts } from './ports.ts';
import type { DemoNodeStats } from '../../../src/demo-node/demo-node.ts';

export interface DemoNodeOptions {
  port: number;
  /** host:heartbeatPort of the balancer(s), `;` separated; '' for a node that does not register. */
  balancers: string;
  version?: string;
  /** Heartbeat interval, ms. */
  intervalMs?: number;
  /** Drain time after SIGTERM before the node sends stop, ms. */
  graceMs?: number;
  transport?: string;
  /** Address to listen on and announce; default 127.0.0.1. */
  ip?: string;
  /** File holding the balancers' heartbeatToken (--token-file). */
  tokenFile?: string;
  /**
   * Network namespace to run in (`ip netns exec`). Its statistics port is then reached with curl
   * inside that namespace, since this process cannot reach into it.
   */
  netns?: string;
}

export interface DemoNodeHandle {
  readonly pid: number;
  readonly port: number;
  readonly child: OwnedChild;
  stats(): Promise<DemoNodeStats>;
  /** SIGTERM: the node drains (shutdown), then stops after graceMs and exits. */
  drain(): void;
  kill(): Promise<void>;
  stop(): Promise<void>;
  logs(): string[];
}

export async function startDemoNode(opts: DemoNodeOptions): Promise<DemoNodeHandle> {
  const statsPort = opts.netns === undefined ? await allocatePort() : 9090;
  const args = ['--ip', opts.ip ?? '127.0.0.1', '--port', String(opts.port), '--transport', opts.transport ?? 'udp',
    '--stats-port', String(statsPort), '--interval', String(opts.intervalMs ?? 200),
    '--grace', String(opts.graceMs ?? 3000), '--log-level', 'warn'];
  // No balancers: a node siplb knows only from its static `nodes=` list.
  if (opts.balancers !== '') args.push('--balancers', opts.balancers);
  if (opts.version !== undefined) args.push('--version', opts.version);
  if (opts.tokenFile !== undefined) args.push('--token-file', opts.tokenFile);
  const { child, lines } = runRepoScript('src/cli/siplb-demo-node.ts', args, opts.netns);
  const end = Date.now() + 10_000;
  while (!lines.snapshot().some((l) => l.includes('"siplb-demo-node ready"'))) {
    if (child.hasExited() || Date.now() > end) {
      await terminate(child, 'SIGKILL', 500);
      throw new Error(`demo node on ${opts.port} did not start:\n${lines.snapshot().slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  let released = false;
  const release = (): void => {
    if (!released && opts.netns === undefined) releasePorts([statsPort]);
    released = true;
  };
  return {
    pid: child.pid,
    port: opts.port,
    child,
    async stats() {
      if (opts.netns !== undefined) return JSON.parse(await curlIn(opts.netns, `http://127.0.0.1:${statsPort}/`)) as DemoNodeStats;
      const res = await fetch(`http://127.0.0.1:${statsPort}/`);
      return (await res.json()) as DemoNodeStats;
    },
    drain() {
      child.process.kill('SIGTERM');
    },
    async kill() {
      await terminate(child, 'SIGKILL', 1000);
      release();
    },
    async stop() {
      await terminate(child, 'SIGKILL', 500);
      release();
    },
    logs: () => lines.snapshot(),
  };
}
