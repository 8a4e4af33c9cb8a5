// Memory the kernel counts against siplb although siplb no longer uses it, given back on a timer:
//
// - The `node` executable's pages. Linux maps a page of a program into the process (and counts
//   it in RSS) the first time it is touched, and 64 KiB around it; nothing unmaps it afterwards
//   while memory is plentiful. Start-up alone touches about 45 MiB of the 126 MB binary (V8's
//   compilers, the snapshot, code run once), which was half of an idle balancer's RSS. Every
//   `memoryTrimInterval` seconds the executable's read-only mappings lose their page-table
//   entries (madvise MADV_DONTNEED); what the next seconds run is mapped again from the page
//   cache by a minor fault, so RSS counts the code siplb really runs. The file's pages stay in
//   the page cache, shared with every other Node.js process: this changes what is counted
//   against siplb and what the kernel must unmap before it can reclaim them, not the page cache.
// - malloc's free pages. glibc keeps memory freed by Node and V8's threads in its arenas;
//   malloc_trim(0) hands the free pages back.
//
// While the event loop is busy the code it runs comes back within a second of a trim, so trims
// then wait for a quieter interval (at most a minute): RSS under steady load stays put instead of
// dipping at every trim, and the trim's few milliseconds are not spent for nothing.
//
// MADV_DONTNEED discards the content of anonymous or written memory, so a mapping qualifies only
// if /proc/self/smaps, read just before, shows it private, without write permission, of the
// executable's file, and with no page of its own ("Anonymous: 0 kB": the relocated read-only
// data, written once at load, has such pages and is left alone). Such a mapping cannot gain a
// page of its own without first becoming writable, which its permissions would show. Only the
// executable is trimmed, never a shared library: a library could be unmapped, and its range
// reused, between reading smaps and the madvise; the executable's mappings live as long as the
// process (V8's copy of its builtins, mapped from the executable too, as long as the process's
// one isolate: siplb runs no worker_threads, whose isolates would end earlier). A binary overwritten
// in place (package managers replace it by a rename) would be mapped back from the new file; the
// kernel's own reclaim of clean pages does the same, trimming only makes it sooner.
// madvise is not in Node.js: native/memory.c, built at install (native/build.cjs). Without it
// (no C compiler, not Linux), siplb runs the same and says at start that it cannot trim.

import { readFileSync, realpathSync } from 'node:fs';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { rateLimit } from './log.ts';
import { loadNativeAddon, type AddonResult } from './native-addon.ts';

/** native/build/memory.node. */
export interface MemoryAddon {
  /** madvise(MADV_DONTNEED): 0, or the errno. */
  dropPages(start: number, length: number): number;
  /** malloc_trim(0): 1 if memory was returned, 0 if none, -1 when not glibc. */
  mallocTrim(): number;
}

/** A mapping of /proc/self/smaps, with the fields the trim reads (KiB). */
export interface Mapping {
  start: number;
  end: number;
  perms: string;
  path: string;
  rssKiB: number;
  /** -1 when smaps had no Anonymous line for it. */
  anonymousKiB: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ \S+ \d+ +(.*)$/;

/** Where the line holding `at` ends: its newline, or the end of the text. */
function lineEndAt(text: string, at: number): number {
  const end = text.indexOf('\n', at);
  return end === -1 ? text.length : end;
}

/** The number of a "Name:   123 kB" line of the block, or -1 when the block has none. */
function fieldKiB(text: string, blockStart: number, blockEnd: number, name: string): number {
  const at = text.indexOf(`\n${name}:`, blockStart);
  if (at === -1 || at >= blockEnd) return -1;
  const m = /^ +(\d+) kB/.exec(text.slice(at + name.length + 2, lineEndAt(text, at + 1)));
  return m === null ? -1 : Number(m[1]);
}

/**
 * The mappings of `executable` in an smaps text, found by its path rather than by reading every
 * line: a trim runs every few seconds, and parsing the ~3000 lines of a Node process's smaps in
 * JavaScript would itself run (and map back) code the trim has just unmapped.
 */
export function executableMappings(text: string, executable: string): Mapping[] {
  const out: Mapping[] = [];
  for (let at = text.indexOf(executable); at !== -1; at = text.indexOf(executable, at + executable.length)) {
    const lineStart = text.lastIndexOf('\n', at) + 1;
    const lineEnd = lineEndAt(text, at);
    // The path ends the header line: "/x/node (deleted)" or a longer path is another file.
    if (at + executable.length !== lineEnd) continue;
    const h = HEADER.exec(text.slice(lineStart, lineEnd));
    if (h === null || h[4] !== executable) continue;
    // The mapping's lines run to the next header, i.e. to the next line starting with an address.
    let blockEnd = text.length;
    const next = /\n[0-9a-f]+-[0-9a-f]+ /g;
    next.lastIndex = lineEnd;
    const n = next.exec(text);
    if (n !== null) blockEnd = n.index;
    out.push({
      start: parseInt(h[1], 16), end: parseInt(h[2], 16), perms: h[3], path: h[4],
      rssKiB: Math.max(0, fieldKiB(text, lineEnd, blockEnd, 'Rss')), anonymousKiB: fieldKiB(text, lineEnd, blockEnd, 'Anonymous'),
    });
  }
  return out;
}

/**
 * The mappings whose page-table entries may be dropped: read-only (no 'w'), private, with no page
 * of their own, and something resident to drop.
 */
export function droppableMappings(mappings: readonly Mapping[]): Mapping[] {
  return mappings.filter((m) => m.perms[1] === '-' && m.perms[3] === 'p' && m.anonymousKiB === 0 && m.rssKiB > 0 && m.end > m.start);
}

/** What one trim did. */
export interface TrimResult {
  /** Resident KiB of the executable's mappings whose entries were dropped. */
  droppedKiB: number;
  /** Mappings madvise refused (errno), which are left alone. */
  refused: number;
  /** malloc_trim: 1 returned memory, 0 none, -1 not available. */
  malloc: number;
  /** Time the trim took, ms (reading smaps, the madvise calls and malloc_trim). */
  ms: number;
}

/** native/build/memory.node. */
export function loadMemoryAddon(): AddonResult<MemoryAddon> {
  return loadNativeAddon<MemoryAddon>('memory', ['dropPages', 'mallocTrim']);
}

export interface MemoryTrimOptions {
  addon: MemoryAddon;
  /** Between two trims. */
  intervalMs: number;
  log: Logger;
  /** The executable's path as smaps names it; default realpath(process.execPath). */
  executable?: string;
  /** /proc/self/smaps; replaceable in tests. */
  readSmaps?: () => string;
  /** Share of the time the event loop was busy since the last call, 0..1; replaceable in tests. */
  busyShare?: () => number;
  /** Date.now; replaceable in tests. */
  now?: () => number;
}

/**
 * While the event loop is busier than this, the code siplb runs is mapped back within a second of
 * a trim, so trimming then only makes RSS dip and return (a sample taken in the dip reads 10-15 MiB
 * low): the timer waits for a quieter interval, and trims at least every FORCED_TRIM_MS anyway.
 */
export const BUSY_SHARE = 0.05;
export const FORCED_TRIM_MS = 60_000;

/** The event loop's utilization since the previous call (Node's ELU: busy time / elapsed). */
function loopBusyShare(): () => number {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(now, last);
    last = now;
    return since.utilization;
  };
}

/** The executable as smaps names it: its real path (or execPath itself if that cannot be resolved, e.g. deleted). */
function executablePath(): string {
  try {
    return realpathSync(process.execPath);
  } catch {
    return process.execPath;
  }
}

export class MemoryTrim {
  private readonly opts: MemoryTrimOptions;
  private readonly executable: string;
  private readonly readSmaps: () => string;
  private timer: NodeJS.Timeout | null = null;
  private first: NodeJS.Timeout | null = null;
  private readonly busyShare: () => number;
  private readonly now: () => number;
  private lastTrimAt = 0;
  /** A refusal repeats at every trim: warned about once a minute, logged at debug otherwise. */
  private readonly refusedLogGate = rateLimit(60_000);
  /** Trims done, ticks skipped because the loop was busy, and KiB dropped over all trims. */
  trims = 0;
  skipped = 0;
  droppedKiB = 0;

  constructor(opts: MemoryTrimOptions) {
    this.opts = opts;
    this.executable = opts.executable ?? executablePath();
    this.readSmaps = opts.readSmaps ?? (() => readFileSync('/proc/self/smaps', 'latin1'));
    this.busyShare = opts.busyShare ?? loopBusyShare();
    this.now = opts.now ?? Date.now;
  }

  /**
   * The first trim after `firstMs` (at most the interval), whatever the load: it takes what
   * start-up alone touched. Then a tick every interval (tick()).
   */
  start(firstMs = 1000): void {
    if (this.timer !== null || this.first !== null) return;
    this.first = setTimeout(() => {
      this.first = null;
      this.busyShare();
      this.trimLogged();
      this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
      this.timer.unref();
    }, Math.min(firstMs, this.opts.intervalMs));
    this.first.unref();
  }

  /** Trims unless the loop was busy (BUSY_SHARE) since the last tick and a trim is less than FORCED_TRIM_MS old. */
  tick(): boolean {
    if (this.busyShare() >= BUSY_SHARE && this.now() - this.lastTrimAt < FORCED_TRIM_MS) {
      this.skipped++;
      return false;
    }
    this.trimLogged();
    return true;
  }

  /** One trim now. Never throws: a failure to read smaps is reported as nothing dropped. */
  trim(): TrimResult {
    const t0 = performance.now();
    let droppedKiB = 0;
    let refused = 0;
    let mappings: Mapping[] = [];
    try {
      mappings = droppableMappings(executableMappings(this.readSmaps(), this.executable));
    } catch {
      mappings = [];
    }
    for (const m of mappings) {
      if (this.opts.addon.dropPages(m.start, m.end - m.start) === 0) droppedKiB += m.rssKiB;
      else refused++;
    }
    const malloc = this.opts.addon.mallocTrim();
    this.trims++;
    this.lastTrimAt = this.now();
    this.droppedKiB += droppedKiB;
    return { droppedKiB, refused, malloc, ms: performance.now() - t0 };
  }

  private trimLogged(): void {
    const r = this.trim();
    const fields = { droppedKiB: r.droppedKiB, refused: r.refused, mallocTrim: r.malloc, ms: Math.round(r.ms * 100) / 100, skippedBusy: this.skipped };
    if (r.refused > 0 && this.refusedLogGate()) this.opts.log.warn(fields, 'memory trim: madvise refused some of the executable\'s mappings');
    else this.opts.log.debug(fields, 'memory trim');
  }

  close(): void {
    if (this.first !== null) clearTimeout(this.first);
    if (this.timer !== null) clearInterval(this.timer);
    this.first = null;
    this.timer = null;
  }
}

/**
 * A running trim every `intervalS` seconds (the first a second from now), or null when it is off
 * (0) or cannot run, which is logged with the reason. Every siplb process that lives long calls
 * it: a balancer, and the supervisor of workers.
 */
export function startMemoryTrim(intervalS: number, log: Logger): MemoryTrim | null {
  if (intervalS <= 0) return null;
  const loaded = loadMemoryAddon();
  if (loaded.addon === null) {
    log.info({ memoryTrimInterval: intervalS }, `memory trim off: ${loaded.problem}`);
    return null;
  }
  const trim = new MemoryTrim({ addon: loaded.addon, intervalMs: intervalS * 1000, log });
  trim.start();
  return trim;
}
