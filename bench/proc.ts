// What the benchmarks read from /proc: a process's CPU time in clock ticks, its memory, and how
// busy the whole machine was. Processes that are gone read as null (their last ticks are lost,
// which is why the benchmarks read before they stop anything).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const CLK_TCK = ((): number => {
  const text = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`getconf CLK_TCK gave ${JSON.stringify(text)}`);
  return value;
})();

export const ticksToMs = (ticks: number): number => (ticks * 1000) / CLK_TCK;

/** Fields after comm of /proc/PID/stat (rest[0] is field 3, state), or null if it is gone. */
export function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime+stime (fields 14 and 15) of one process in clock ticks, all its threads; null if gone. */
export function cpuTicks(pid: number): number | null {
  const rest = statFields(pid);
  return rest === null ? null : Number(rest[11]) + Number(rest[12]);
}

/** CPU ticks of several processes together (a gone one counts 0). */
export function sumTicks(pids: readonly number[]): number {
  return pids.reduce((acc, pid) => acc + (cpuTicks(pid) ?? 0), 0);
}

/** A /proc/PID/status memory figure in KiB (VmHWM: peak RSS; RssAnon, RssFile: RSS's private and file-backed parts), or null if gone. */
export function statusKiB(pid: number, key: 'VmHWM' | 'VmRSS' | 'RssAnon' | 'RssFile'): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

export interface MachineTicks {
  busy: number;
  total: number;
}

/** Busy and total jiffies of all CPUs, from the first line of /proc/stat. */
export function machineTicks(): MachineTicks {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is inside user already).
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - fields[3] - (fields[4] ?? 0), total };
}

/** Share of all CPUs in use between two readings, in percent. */
export function busyPercent(before: MachineTicks, after: MachineTicks): number {
  const total = after.total - before.total;
  return total <= 0 ? 0 : ((after.busy - before.busy) / total) * 100;
}
