// Per-source rate limit of new requests (pikeRequests / pikeWindow / pikeBlockTime / pikeAllow),
// with Kamailio's pike module as the model: an address that sends more new requests than the
// limit is blocked, and its new requests are dropped without an answer (an answer costs CPU and
// tells a scanner that something listens) until it calms down.
//
// What is counted, and dropped while blocked, is decided by the proxy: requests without a To tag
// other than ACK and CANCEL, from an address that is not the cluster's. In-dialog requests of a
// blocked address still pass (Kamailio drops everything): a balancer in front of an office behind
// one NAT address that bursts (phones re-registering after an outage) must not cut the BYEs and
// re-INVITEs of the calls it already carries.
//
// The rate is a sliding window approximated with two buckets per address (this window's count
// and the previous window's, weighted by how much of it still overlaps), so a burst that
// straddles a window boundary is seen whole. Once blocked, an address stays blocked for
// pikeBlockTime after the last request that found it over the limit: its dropped requests are
// counted too, so an address that keeps flooding never gets out, and one that falls back under
// the limit (as pike unblocks when the density falls) is let in again pikeBlockTime later.
//
// IPv6 sources are counted per /64, not per address: a host is usually given a whole /64 (SLAAC,
// RFC 7421) and can send from any of its 2^64 addresses for free, so a per-address limit would
// limit nothing. A /64 key reads like 2001:db8:1:2::/64 in the log. An allow-list entry longer
// than /64 (one host) is honoured for that host's own address before the /64 is counted.
// IPv4-mapped addresses (::ffff:a.b.c.d, a dual-stack socket's IPv4 clients) stay per address.
//
// Under a flood from forged source addresses every packet may name a new address, so the table is
// fixed-size (MAX_SOURCES entries in typed arrays, allocated once) and replaces entries by CLOCK
// (second chance): an address seen again since the hand last passed keeps its entry, one seen
// once goes first. A forged one-off address therefore evicts other one-offs, not the flooder
// being blocked (every dropped request marks it). The hand looks at no more than EVICTION_SCAN
// entries, so an insertion costs O(1) even when every entry was marked. A known address costs one
// Map lookup and a few typed-array reads, with no allocation; the allow-list is asked once per
// entry, when the address is inserted. There is no timer per address: one timer runs while any
// address is blocked, to unblock the ones that went quiet (the gauge and the log line).

import { BlockList } from 'node:net';
import type { Logger } from 'pino';
import { ipBytes } from '../core/ip.ts';
import { rateLimit } from '../core/log.ts';
import type { ProxyStats } from './stats.ts';

export interface SourceLimitSettings {
  /** New requests an address may send per window (> 0). */
  readonly requests: number;
  readonly windowMs: number;
  /** How long a blocked address must stay at or under the limit to be unblocked. */
  readonly blockMs: number;
  /** Canonical CIDRs (address/prefix) never limited. */
  readonly allow: readonly string[];
}

/** Addresses tracked at once: about 4 MB of typed arrays plus the Map's entries. */
export const MAX_SOURCES = 100_000;

/** Entries the eviction hand inspects before it takes one whatever its mark. */
const EVICTION_SCAN = 8;

/** While addresses are blocked: how often the ones that went quiet are looked for. */
const SWEEP_MS = 1000;

/** At most one block line and one unblock line per this long, however many addresses change. */
const LOG_INTERVAL_MS = 1000;

const REFERENCED = 1;
const ALLOWED = 2;

/** windowOf of a fresh entry: no window, so neither "this one" nor "the previous one". */
const NO_WINDOW = -2;

export interface SourceRateLimitDeps {
  readonly stats: ProxyStats;
  readonly log: Logger;
  /** Tests use a small table; MAX_SOURCES otherwise. */
  readonly capacity?: number;
  /** Tests drive the sweep themselves. */
  readonly sweepTimer?: boolean;
}

export class SourceRateLimit {
  private readonly stats: ProxyStats;
  private readonly log: Logger;
  private readonly capacity: number;
  private readonly sweepTimer: boolean;
  private limit: number;
  private windowMs: number;
  private blockMs: number;
  private allowText: readonly string[];
  private allow: BlockList | null;

  private readonly index = new Map<string, number>();
  private readonly keys: string[];
  private readonly current: Uint32Array;
  private readonly previous: Uint32Array;
  /** Window number (time / windowMs) that `current` counts. */
  private readonly windowOf: Float64Array;
  /** 0: not blocked; else the time the block ends unless the address goes over the limit again. */
  private readonly blockedUntil: Float64Array;
  private readonly blockedSince: Float64Array;
  private readonly droppedOf: Uint32Array;
  private readonly flags: Uint8Array;
  /** Slots of the blocked addresses, [0, blockedCount); blockedAt[slot] is the position, -1 if none. */
  private readonly blockedSlots: Int32Array;
  private readonly blockedAt: Int32Array;
  private blockedCount = 0;
  private used = 0;
  private hand = 0;
  private timer: NodeJS.Timeout | null = null;

  private readonly blockLogGate = rateLimit(LOG_INTERVAL_MS);
  private readonly unblockLogGate = rateLimit(LOG_INTERVAL_MS);
  private blocksNotLogged = 0;
  private unblocksNotLogged = 0;

  constructor(settings: SourceLimitSettings, deps: SourceRateLimitDeps) {
    this.stats = deps.stats;
    this.log = deps.log;
    this.sweepTimer = deps.sweepTimer ?? true;
    const n = deps.capacity ?? MAX_SOURCES;
    this.capacity = n;
    this.keys = new Array<string>(n).fill('');
    this.current = new Uint32Array(n);
    this.previous = new Uint32Array(n);
    this.windowOf = new Float64Array(n);
    this.blockedUntil = new Float64Array(n);
    this.blockedSince = new Float64Array(n);
    this.droppedOf = new Uint32Array(n);
    this.flags = new Uint8Array(n);
    this.blockedSlots = new Int32Array(n);
    this.blockedAt = new Int32Array(n).fill(-1);
    this.limit = settings.requests;
    this.windowMs = settings.windowMs;
    this.blockMs = settings.blockMs;
    this.allowText = settings.allow;
    this.allow = allowList(settings.allow);
  }

  /** Addresses blocked now. */
  get blocked(): number {
    return this.blockedCount;
  }

  /** Addresses in the table. */
  get size(): number {
    return this.index.size;
  }

  /** Whether `ip` is blocked now (for tests and diagnostics; counts nothing). */
  isBlocked(ip: string): boolean {
    const slot = this.index.get(sourceKey(ip));
    return slot !== undefined && this.blockedUntil[slot] !== 0;
  }

  /**
   * Counts one new request from `ip` at `now` (ms) and answers whether to drop it: the address
   * is over the limit now, or blocked and not yet back under it for blockMs. Never throws.
   */
  drops(ip: string, now: number): boolean {
    const flags = this.flags;
    let key = ip;
    if (isNativeIpv6(ip)) {
      // One host of the /64 on the allow-list is let through by its own address.
      if (this.allow !== null && this.allow.check(ip, 'ipv6')) return false;
      key = sourceKey(ip);
    }
    let slot = this.index.get(key);
    if (slot === undefined) slot = this.insert(key);
    else flags[slot] |= REFERENCED;
    if ((flags[slot] & ALLOWED) !== 0) return false;
    const w = this.windowMs;
    const win = Math.floor(now / w);
    const last = this.windowOf[slot];
    if (last !== win) {
      this.previous[slot] = last === win - 1 ? this.current[slot] : 0;
      this.current[slot] = 0;
      this.windowOf[slot] = win;
    }
    const count = this.current[slot] + 1;
    this.current[slot] = count;
    // The previous window's share of the last windowMs, in whole requests: its count weighted by
    // the part of it that is still less than windowMs old (a half-open interval, rounded down), so
    // that a client sending evenly at exactly the limit is never taken for one over it.
    const rate = Math.floor(this.previous[slot] * (w - 1 - (now - win * w)) / w) + count;
    const until = this.blockedUntil[slot];
    if (rate > this.limit) {
      if (until === 0) this.block(slot, now, rate);
      this.blockedUntil[slot] = now + this.blockMs;
      this.droppedOf[slot]++;
      return true;
    }
    if (until === 0) return false;
    if (now < until) {
      this.droppedOf[slot]++;
      return true;
    }
    this.unblock(slot, now);
    return false;
  }

  /** New settings (a reload): the table and who is blocked stay; counts restart when the window changes. */
  reconfigure(settings: SourceLimitSettings, now = Date.now()): void {
    this.limit = settings.requests;
    this.blockMs = settings.blockMs;
    if (settings.windowMs !== this.windowMs) {
      this.windowMs = settings.windowMs;
      this.windowOf.fill(NO_WINDOW);
    }
    if (!sameList(settings.allow, this.allowText)) {
      this.allowText = settings.allow;
      this.allow = allowList(settings.allow);
      for (let slot = 0; slot < this.used; slot++) {
        if (this.isAllowed(this.keys[slot])) {
          this.flags[slot] |= ALLOWED;
          if (this.blockedUntil[slot] !== 0) this.unblock(slot, now);
        } else this.flags[slot] &= ~ALLOWED;
      }
    }
  }

  /** Unblocks the addresses whose block has ended; the timer calls it while any is blocked. */
  sweep(now: number): void {
    // Backwards: unblock() moves the last entry into the freed position.
    for (let i = this.blockedCount - 1; i >= 0; i--) {
      const slot = this.blockedSlots[i];
      if (now >= this.blockedUntil[slot]) this.unblock(slot, now);
    }
  }

  /** Stops the sweep timer; the blocked gauge goes back to 0. */
  close(): void {
    this.stopTimer();
    this.stats.sourcesBlocked = 0;
  }

  private insert(ip: string): number {
    let slot: number;
    if (this.used < this.capacity) slot = this.used++;
    else {
      slot = this.victim();
      if (this.blockedUntil[slot] !== 0) this.forgetBlock(slot);
      this.index.delete(this.keys[slot]);
    }
    this.index.set(ip, slot);
    this.keys[slot] = ip;
    this.current[slot] = 0;
    this.previous[slot] = 0;
    this.windowOf[slot] = NO_WINDOW;
    this.blockedUntil[slot] = 0;
    this.droppedOf[slot] = 0;
    // Unmarked: an address must come back to earn its second chance.
    this.flags[slot] = this.isAllowed(ip) ? ALLOWED : 0;
    return slot;
  }

  /** CLOCK: the first unmarked entry from the hand on (marks are cleared as it passes), bounded. */
  private victim(): number {
    const flags = this.flags;
    for (let i = 0; i < EVICTION_SCAN; i++) {
      const slot = this.advance();
      if ((flags[slot] & REFERENCED) === 0) return slot;
      flags[slot] &= ~REFERENCED;
    }
    return this.advance();
  }

  private advance(): number {
    const slot = this.hand;
    this.hand = slot + 1 === this.capacity ? 0 : slot + 1;
    return slot;
  }

  /** `key`: an address, or an IPv6 /64 (the allow-list is asked about its first address). */
  private isAllowed(key: string): boolean {
    if (this.allow === null) return false;
    const address = key.endsWith('/64') ? key.slice(0, -3) : key;
    return this.allow.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
  }

  private block(slot: number, now: number, rate: number): void {
    this.blockedSince[slot] = now;
    this.droppedOf[slot] = 0;
    this.blockedAt[slot] = this.blockedCount;
    this.blockedSlots[this.blockedCount++] = slot;
    this.stats.sourcesBlocked = this.blockedCount;
    if (this.sweepTimer && this.timer === null) {
      this.timer = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
      this.timer.unref();
    }
    if (this.blockLogGate()) {
      this.log.warn({
        source: this.keys[slot], requests: Math.round(rate), pikeRequests: this.limit, pikeWindow: this.windowMs,
        blocked: this.blockedCount, blocksNotLogged: this.blocksNotLogged,
      }, 'source blocked: too many new requests from one address; its new requests are dropped (at most one such line a second)');
      this.blocksNotLogged = 0;
    } else this.blocksNotLogged++;
  }

  private unblock(slot: number, now: number): void {
    const since = this.blockedSince[slot];
    const dropped = this.droppedOf[slot];
    this.forgetBlock(slot);
    if (this.unblockLogGate()) {
      this.log.info({
        source: this.keys[slot], blockedMs: Math.round(now - since), dropped, blocked: this.blockedCount, unblocksNotLogged: this.unblocksNotLogged,
      }, 'source unblocked: back under the limit (at most one such line a second)');
      this.unblocksNotLogged = 0;
    } else this.unblocksNotLogged++;
  }

  /** Takes the slot off the blocked list (unblocked, or its entry replaced). */
  private forgetBlock(slot: number): void {
    this.blockedUntil[slot] = 0;
    const at = this.blockedAt[slot];
    if (at !== -1) {
      const lastSlot = this.blockedSlots[--this.blockedCount];
      this.blockedSlots[at] = lastSlot;
      this.blockedAt[lastSlot] = at;
      this.blockedAt[slot] = -1;
    }
    this.stats.sourcesBlocked = this.blockedCount;
    if (this.blockedCount === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** An IPv6 address that is not an IPv4 client seen through a dual-stack socket. */
function isNativeIpv6(ip: string): boolean {
  return ip.includes(':') && !(ip.startsWith('::ffff:') && ip.includes('.'));
}

/** What a source is counted under: its /64 for native IPv6 (2001:db8:1:2::/64), else the address itself. */
export function sourceKey(ip: string): string {
  if (!isNativeIpv6(ip)) return ip;
  const b = ipBytes(ip);
  if (b === null) return ip;
  let key = '';
  for (let g = 0; g < 4; g++) key += ((b[2 * g] << 8) | b[2 * g + 1]).toString(16) + ':';
  return `${key}:/64`;
}

/** A BlockList of the canonical CIDRs, or null when there are none. */
function allowList(cidrs: readonly string[]): BlockList | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const slash = cidr.lastIndexOf('/');
    const address = cidr.slice(0, slash);
    list.addSubnet(address, Number(cidr.slice(slash + 1)), address.includes(':') ? 'ipv6' : 'ipv4');
  }
  return list;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
