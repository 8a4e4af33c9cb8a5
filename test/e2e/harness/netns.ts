// Network namespaces and veth pairs for tests that need several hosts: a sprayer in front of
// several balancers, clients that come from other addresses than the balancers. Everything is
// created by the test, named after its pid, uses addresses only inside the namespaces, and is
// deleted again, also when the test process dies (registerCleanup).
//
// Needs root and iproute2 (`ip netns`); where namespaces cannot be made, the caller fails with the
// one-line reason assertNetnsUsable returns. It never skips.

import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { registerCleanup } from './children.ts';

/** Runs `ip …` (or any command) and throws with its stderr on failure. */
function run(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error !== undefined) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

function aptInstall(pkg: string): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], { encoding: 'utf8', env });
  }
}

/** `bin` from Debian's package `pkg`, installed with apt-get when missing; throws one line when it cannot be. */
export function ensureCommand(bin: string, pkg: string): void {
  if (spawnSync(bin, ['--version'], { encoding: 'utf8' }).error !== undefined) aptInstall(pkg);
  if (spawnSync(bin, ['--version'], { encoding: 'utf8' }).error !== undefined) {
    throw new Error(`${bin} not found and could not be installed: apt-get install -y ${pkg}`);
  }
}

/**
 * Checks that this process can build namespaces (root, `ip`, `nft`, and a kernel that lets it),
 * installing iproute2 and nftables with apt-get when they are missing. Throws one line naming what
 * is missing.
 */
export function assertNetnsUsable(): void {
  if (process.getuid?.() !== 0) throw new Error('network-namespace tests need root (ip netns, nftables): run the suite as root');
  for (const [bin, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['curl', 'curl']] as const) ensureCommand(bin, pkg);
  const probe = `siplbprobe${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`cannot create a network namespace here (ip netns add: ${add.stderr.trim()})`);
}

/** The argv that runs `cmd args` inside namespace `ns` (ip netns exec keeps the pid). */
export function inNetns(ns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, cmd, ...args]];
}

/** `cmd args` in `ns`, to completion; its stdout. */
export function execIn(ns: string, cmd: string, args: readonly string[]): string {
  const [c, a] = inNetns(ns, cmd, args);
  return run(c, a);
}

/** GET (or another method) on a URL reachable only inside `ns`, with curl there; the body. */
export async function curlIn(ns: string, url: string, method = 'GET', headers: readonly string[] = []): Promise<string> {
  const args = ['-sS', '--max-time', '5', '-X', method, ...headers.flatMap((h) => ['-H', h]), url];
  const [c, a] = inNetns(ns, 'curl', args);
  return new Promise((resolve, reject) => {
    execFile(c, a, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`curl ${url} in ${ns}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export interface HostSpec {
  /** Short role name, unique in the topology: part of the namespace and interface names. */
  name: string;
  /** Address on the shared segment, with prefix length (10.241.2.11/24). */
  address: string;
  /** Default gateway inside the namespace, if any. */
  gateway?: string;
}

/**
 * A small network: namespaces joined by veth pairs, point to point (link) or through a switch
 * namespace holding a bridge (bridge, attach, plug). Names carry this process's pid so two runs
 * never collide.
 */
export class Netns {
  readonly tag: string;
  private readonly namespaces: string[] = [];
  private unregister: (() => void) | null = null;
  private links = 0;

  constructor(prefix = 'slb') {
    this.tag = `${prefix}${process.pid % 100_000}`;
  }

  /** The full namespace name of a role. */
  ns(role: string): string {
    return `${this.tag}-${role}`;
  }

  /** Creates the namespace of a role with its loopback up. */
  add(role: string): string {
    const ns = this.ns(role);
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.unregister ??= registerCleanup(() => this.destroySync());
    execIn(ns, 'ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /**
   * A veth pair between two namespaces, with an address on each end (with prefix length); the
   * interface names are short (15 bytes is the kernel's limit).
   */
  link(a: string, aAddress: string | null, b: string, bAddress: string | null): { aIf: string; bIf: string } {
    const n = this.links++;
    const aIf = `v${n}a`;
    const bIf = `v${n}b`;
    run('ip', ['link', 'add', aIf, 'netns', this.ns(a), 'type', 'veth', 'peer', 'name', bIf, 'netns', this.ns(b)]);
    for (const [role, ifName, addr] of [[a, aIf, aAddress], [b, bIf, bAddress]] as const) {
      if (addr !== null) execIn(this.ns(role), 'ip', ['addr', 'add', addr, 'dev', ifName]);
      execIn(this.ns(role), 'ip', ['link', 'set', ifName, 'up']);
    }
    return { aIf, bIf };
  }

  /**
   * A bridge (an Ethernet switch) in `role`'s namespace, without an address: that namespace should
   * do nothing else, since where br_netfilter is loaded (Docker hosts), bridged frames pass the
   * namespace's own IP hooks, and a sprayer's rules there would rewrite traffic between hosts.
   */
  bridge(role: string): string {
    const ns = this.ns(role);
    execIn(ns, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    execIn(ns, 'ip', ['link', 'set', 'br0', 'up']);
    return 'br0';
  }

  /** A new host namespace on `sw`'s bridge. */
  attach(sw: string, host: HostSpec): string {
    const ns = this.add(host.name);
    this.plug(sw, host.name, host.address);
    if (host.gateway !== undefined) execIn(ns, 'ip', ['route', 'add', 'default', 'via', host.gateway]);
    return ns;
  }

  /** An existing namespace (`role`) on `sw`'s bridge, with `address`. */
  plug(sw: string, role: string, address: string): void {
    const { bIf } = this.link(role, address, sw, null);
    execIn(this.ns(sw), 'ip', ['link', 'set', bIf, 'master', 'br0']);
  }

  /** Sets a sysctl inside a namespace. */
  sysctl(role: string, key: string, value: string): void {
    execIn(this.ns(role), 'sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** Deletes every namespace made (their veths go with them). */
  destroy(): void {
    this.destroySync();
    this.unregister?.();
    this.unregister = null;
  }

  private destroySync(): void {
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    }
  }
}
