// Runs nft: scripts on its standard input (`nft -f -`, one transaction each), never through a
// shell, and reads who owns a table. The advisor touches one table, its own: a table of its name
// without its mark (the table comment, nft-script.ts) is someone else's and is left alone.

import { spawn, spawnSync } from 'node:child_process';
import { NftablesError } from '../core/errors.ts';
import { OWNER_MARK, type Family } from './nft-script.ts';

export interface NftResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** How nft is run: a child process here, a fake in unit tests. */
export type NftRunner = (args: readonly string[], stdin?: string) => Promise<NftResult>;

/** What the advisor needs of nftables (a fake stands in for it in unit tests). */
export interface NftApplier {
  apply(script: string): Promise<void>;
}

export type TableOwner = 'absent' | 'ours' | 'foreign';

const RUN_TIMEOUT_MS = 10_000;

/** nft as a child process; an nft that cannot be started rejects with the spawn error (ENOENT: not installed). */
export function spawnNft(bin = 'nft'): NftRunner {
  return (args, stdin) => new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // nft may exit before reading all of its input (a parse error on line 1): not our error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}

const PERMISSION = /Operation not permitted|Permission denied/i;

export class Nftables implements NftApplier {
  private readonly run: NftRunner;
  private readonly bin: string;

  constructor(run: NftRunner = spawnNft(), bin = 'nft') {
    this.run = run;
    this.bin = bin;
  }

  /**
   * nft is installed and this process may program it; NftablesError otherwise. `nft list tables`
   * needs CAP_NET_ADMIN just as changes do, so its refusal is the permission check.
   */
  async check(): Promise<void> {
    let r: NftResult;
    try {
      r = await this.run(['list', 'tables']);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NftablesError('missing', 'nft not found: install nftables (Debian: apt-get install nftables)');
      throw new NftablesError('failed', `nft could not be run: ${(err as Error).message}`);
    }
    if (r.code === 0) return;
    if (PERMISSION.test(r.stderr)) throw new NftablesError('permission', 'siplb-advisor needs root (CAP_NET_ADMIN) to program nftables');
    throw new NftablesError('failed', `nft list tables failed: ${firstLine(r.stderr)}`);
  }

  /** Whether the table exists, and if so whether its comment carries siplb-advisor's mark. */
  async owner(family: Family, table: string): Promise<TableOwner> {
    // Terse: the set elements are not needed to read the comment.
    const r = await this.run(['-t', 'list', 'table', family, table]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return 'absent';
      if (PERMISSION.test(r.stderr)) throw new NftablesError('permission', 'siplb-advisor needs root (CAP_NET_ADMIN) to program nftables');
      throw new NftablesError('failed', `nft list table ${family} ${table} failed: ${firstLine(r.stderr)}`);
    }
    return isOwnedListing(r.stdout) ? 'ours' : 'foreign';
  }

  /** Runs one script as one transaction; NftablesError('failed') with nft's first error line. */
  async apply(script: string): Promise<void> {
    let r: NftResult;
    try {
      r = await this.run(['-f', '-'], script);
    } catch (err) {
      throw new NftablesError('failed', `nft could not be run: ${(err as Error).message}`);
    }
    if (r.code !== 0) throw new NftablesError('failed', `nft refused the script: ${firstLine(r.stderr)}`);
  }

  /** apply, blocking: for a process going down on a bug, whose event loop may never turn again. */
  applySync(script: string): void {
    const r = spawnSync(this.bin, ['-f', '-'], { input: script, encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
    if (r.error !== undefined) throw new NftablesError('failed', `nft could not be run: ${r.error.message}`);
    if (r.status !== 0) throw new NftablesError('failed', `nft refused the script: ${firstLine(r.stderr)}`);
  }
}

/**
 * Whether `nft list table` text is of a table siplb-advisor made: the table's own comment is the
 * line right after `table ... {` (a chain's, a set's or a rule's comment is further down or at
 * the end of a rule line, so a foreign table cannot pass by naming us in one of those).
 */
export function isOwnedListing(listing: string): boolean {
  const lines = listing.split('\n');
  const start = lines.findIndex((l) => /^table (ip|ip6|inet|arp|bridge|netdev) \S+ \{$/.test(l));
  if (start === -1) return false;
  const comment = /^\s*comment "(.*)"$/.exec(lines[start + 1] ?? '');
  return comment !== null && (comment[1] === OWNER_MARK || comment[1].startsWith(`${OWNER_MARK} `));
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0);
  return line === undefined ? '(no message)' : line.trim();
}
