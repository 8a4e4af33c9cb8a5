// Which ports a process has bound, from /proc (Linux only). Used to know that a child's sockets
// exist before traffic is sent to it when it prints no usable "ready" line: sipp never does,
// and siplb logs its ready line at info level, which --log-level warn suppresses.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export type SocketProto = 'udp' | 'tcp';

/** Socket inodes held open by `pid` (from the /proc/PID/fd links "socket:[INODE]"). */
export function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m !== null) inodes.add(m[1]);
    } catch {
      // fd closed while we were listing.
    }
  }
  return inodes;
}

/**
 * Local ports in /proc/net/{udp,tcp}{,6}: UDP sockets that are bound, TCP sockets that are in
 * LISTEN state. When `inodes` is given, only sockets with one of those inodes count.
 */
export function boundPorts(proto: SocketProto, inodes?: Set<string>, netOf?: number): Set<number> {
  const ports = new Set<number>();
  // /proc/net shows the reader's network namespace; /proc/PID/net the one PID runs in (a child
  // started with `ip netns exec`).
  const dir = netOf === undefined ? '/proc/net' : `/proc/${netOf}/net`;
  for (const file of [`${dir}/${proto}`, `${dir}/${proto}6`]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      if (cols.length < 10) continue;
      if (proto === 'tcp' && cols[3] !== '0A') continue;
      if (inodes !== undefined && !inodes.has(cols[9])) continue;
      const colon = cols[1].lastIndexOf(':');
      ports.add(parseInt(cols[1].slice(colon + 1), 16));
    }
  }
  return ports;
}

/**
 * True when every wanted (proto, port) is bound by `pids` (one pid or several, e.g. a process
 * and the workers it forked, where one worker may hold the TCP listener alone), or by anyone
 * when `pids` is null.
 */
export function allBound(
  pids: number | readonly number[] | null,
  wanted: ReadonlyArray<{ proto: SocketProto; port: number }>,
): boolean {
  let inodes: Set<string> | undefined;
  if (pids !== null) {
    inodes = new Set<string>();
    for (const pid of typeof pids === 'number' ? [pids] : pids) {
      for (const inode of socketInodes(pid)) inodes.add(inode);
    }
  }
  const byProto = new Map<SocketProto, Set<number>>();
  for (const { proto, port } of wanted) {
    let ports = byProto.get(proto);
    if (ports === undefined) {
      ports = boundPorts(proto, inodes, pids === null ? undefined : typeof pids === 'number' ? pids : pids[0]);
      byProto.set(proto, ports);
    }
    if (!ports.has(port)) return false;
  }
  return true;
}
