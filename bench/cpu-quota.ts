// A CPU quota for the process under test, so that the balancer saturates before the load
// generator does: on a 2-core machine sipp's UAC and UAS need most of a core themselves at the
// rates where a balancer with a whole core would saturate, and a benchmark in which the load
// generator is the bottleneck says nothing about the balancer.
//
// A cgroup with the cpu controller (v2 cpu.max, or v1 cpu.cfs_quota_us) caps the processes moved
// into it at `share` of one core. The period is short (10 ms) so that the cap spreads evenly over
// time instead of letting the process run for 100 ms and then stalling it for the rest.

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PERIOD_US = 10_000;

export interface CpuQuota {
  /** Moves a process (all its threads) into the group. Forks made after that stay in it. */
  add(pid: number): void;
  /** Periods in which the group hit its cap, and all periods since it was made. */
  throttling(): { throttled: number; periods: number };
  /** Removes the group; its processes must have exited (or be moved out) first. */
  remove(): void;
  readonly share: number;
  readonly path: string;
}

interface Layout {
  dir: string;
  setQuota(dir: string, quotaUs: number): void;
  stat(dir: string): Record<string, number>;
}

function readStat(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [key, value] = line.split(' ');
    if (key !== undefined && value !== undefined) out[key] = Number(value);
  }
  return out;
}

/** Where a cpu-controlled cgroup can be made on this machine, or why not. */
function findLayout(): Layout | string {
  const v2 = '/sys/fs/cgroup';
  if (existsSync(join(v2, 'cgroup.controllers'))) {
    const controllers = readFileSync(join(v2, 'cgroup.controllers'), 'utf8');
    if (!/\bcpu\b/.test(controllers)) return 'cgroup v2 without the cpu controller';
    try {
      // Children of the root get the cpu controller only if the root hands it down.
      const subtree = readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8');
      if (!/\bcpu\b/.test(subtree)) writeFileSync(join(v2, 'cgroup.subtree_control'), '+cpu');
    } catch (err) {
      return `cannot enable the cpu controller in ${v2}: ${(err as Error).message}`;
    }
    return {
      dir: v2,
      setQuota: (dir, quotaUs) => writeFileSync(join(dir, 'cpu.max'), `${quotaUs} ${PERIOD_US}`),
      stat: (dir) => {
        const s = readStat(join(dir, 'cpu.stat'));
        return { nr_periods: s['nr_periods'] ?? 0, nr_throttled: s['nr_throttled'] ?? 0 };
      },
    };
  }
  const v1 = '/sys/fs/cgroup/cpu';
  if (existsSync(join(v1, 'cpu.cfs_quota_us'))) {
    return {
      dir: v1,
      setQuota: (dir, quotaUs) => {
        writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
        writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
      },
      stat: (dir) => readStat(join(dir, 'cpu.stat')),
    };
  }
  return 'no cgroup cpu controller under /sys/fs/cgroup';
}

/**
 * Makes a cgroup capped at `share` of one core (0.05..2). Throws with one line saying why when
 * the machine has no usable cpu controller or this is not root.
 */
export function makeCpuQuota(name: string, share: number): CpuQuota {
  if (!(share >= 0.05 && share <= 2)) throw new Error(`CPU share must be 0.05..2 cores, got ${share}`);
  if (process.getuid?.() !== 0) throw new Error('a CPU quota needs root (cgroup); run as root or pass --cpu-quota none');
  const layout = findLayout();
  if (typeof layout === 'string') throw new Error(`cannot cap the balancer's CPU: ${layout}; pass --cpu-quota none`);
  const dir = join(layout.dir, `siplb-bench-${process.pid}-${name}`);
  mkdirSync(dir);
  layout.setQuota(dir, Math.round(share * PERIOD_US));
  const startStat = layout.stat(dir);
  return {
    share,
    path: dir,
    add(pid) {
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    },
    throttling() {
      const s = layout.stat(dir);
      return { throttled: (s['nr_throttled'] ?? 0) - (startStat['nr_throttled'] ?? 0), periods: (s['nr_periods'] ?? 0) - (startStat['nr_periods'] ?? 0) };
    },
    remove() {
      // A group with processes cannot be removed; they are the caller's to stop first.
      try {
        rmdirSync(dir);
      } catch {
        // Still busy (a process not yet reaped): left for the next run to find by its name.
      }
    },
  };
}
