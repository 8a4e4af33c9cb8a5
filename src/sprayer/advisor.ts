// The advisor: probes every balancer each interval, keeps each one's state (health-state.ts),
// and when the healthy set changes writes the new bucket table (maglev.ts) into its nftables map
// (nft-script.ts, nftables.ts) in one transaction.
//
// Start-up: nft must be usable and the table name free or ours (a crashed predecessor's, which
// is replaced); then one probe round, and the table is created with its map already filled from
// that round, so the VIP never sprays by a table nobody decided. Stop: the table is deleted.

import type { Logger } from 'pino';
import { NftablesError } from '../core/errors.ts';
import { rateLimit } from '../core/log.ts';
import { probeBalancer, type ProbeOutcome, type ProbeTransport } from './balancer-probe.ts';
import { HealthState, type BalancerState } from './health-state.ts';
import { bucketTable } from './maglev.ts';
import { createScript, deleteScript, endpointName, mapUpdateScript, type DataPlane, type Endpoint, type Family } from './nft-script.ts';
import type { TableOwner } from './nftables.ts';

export interface AdvisorSettings {
  readonly dataPlane: DataPlane;
  /** WebSphere's advisorInterval: a probe round starts every interval. */
  readonly intervalMs: number;
  /** Per probe; below the interval, so a round ends before the next starts. */
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly transports: readonly ProbeTransport[];
}

/** What the advisor needs of nftables: Nftables, or a fake in unit tests. */
export interface NftControl {
  check(): Promise<void>;
  owner(family: Family, table: string): Promise<TableOwner>;
  apply(script: string): Promise<void>;
  /** The same, blocking: for the last-resort cleanup of a process that is going down. */
  applySync?(script: string): void;
}

export type Probe = (target: Endpoint, transport: ProbeTransport, timeoutMs: number) => Promise<ProbeOutcome>;

export interface ProbeRecord extends ProbeOutcome {
  /** When the answer (or the failure) came, ms since the epoch. */
  at: number;
}

export interface BalancerView {
  address: string;
  state: BalancerState;
  reason: string;
  since: string;
  lastProbe: Partial<Record<ProbeTransport, { ok: boolean; code: number | null; reason: string; rttMs: number; at: string }>>;
  consecutivePass: number;
  consecutiveFail: number;
  buckets: number;
}

export interface AdvisorView {
  vip: string;
  port: number;
  family: Family;
  table: string;
  buckets: number;
  seed: number;
  interval: number;
  timeout: number;
  rise: number;
  fall: number;
  probeTransports: ProbeTransport[];
  /** No balancer is up: every configured one gets its base buckets. */
  panic: boolean;
  /** The kernel has the table (false before the first round and after stop). */
  installed: boolean;
  mapUpdates: { ok: number; failed: number; lastError: string | null };
  balancers: BalancerView[];
  /** The balancer of each bucket, as last written to the kernel. */
  map: string[];
}

/** Per balancer: what the metrics read (counted here, rendered by advisor-http.ts). */
export interface BalancerCounters {
  probes: Record<ProbeTransport, { success: number; failure: number }>;
  /** Transitions into each state. */
  entered: Record<'up' | 'down', number>;
}

interface Balancer {
  readonly endpoint: Endpoint;
  readonly name: string;
  readonly health: HealthState;
  readonly lastProbe: Partial<Record<ProbeTransport, ProbeRecord>>;
  readonly counters: BalancerCounters;
}

export class Advisor {
  readonly settings: AdvisorSettings;
  private readonly nft: NftControl;
  private readonly probe: Probe;
  private readonly log: Logger;
  private readonly balancers: Balancer[];
  private owners: string[] = [];
  private installed = false;
  private panic = false;
  /** The kernel's map may differ from `owners` (an update failed): write it again next round. */
  private dirty = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  /** nft runs one script at a time, in order: the delete at stop waits for an update in flight. */
  private nftQueue: Promise<unknown> = Promise.resolve();
  private replaceOnInstall = false;
  private readonly panicLogGate = rateLimit(60_000);
  /** Writes of the table; lastError is the failure of the latest write, null once one succeeds. */
  readonly mapUpdates = { ok: 0, failed: 0, lastError: null as string | null };
  /** Called with every probe outcome (the duration histogram). */
  onProbe: ((balancer: string, transport: ProbeTransport, outcome: ProbeOutcome) => void) | null = null;

  constructor(settings: AdvisorSettings, deps: { nft: NftControl; log: Logger; probe?: Probe }) {
    this.settings = settings;
    this.nft = deps.nft;
    this.log = deps.log;
    this.probe = deps.probe ?? probeBalancer;
    this.balancers = [...settings.dataPlane.balancers]
      .map((endpoint) => ({
        endpoint,
        name: endpointName(endpoint),
        health: new HealthState(settings.rise, settings.fall),
        lastProbe: {},
        counters: {
          probes: { udp: { success: 0, failure: 0 }, tcp: { success: 0, failure: 0 } },
          entered: { up: 0, down: 0 },
        },
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Checks nft and the table name, runs the first round, creates the table, and starts the
   * rounds. Throws NftablesError (no nft, no permission, a foreign table, nft refusing the table).
   */
  async start(): Promise<void> {
    const dp = this.settings.dataPlane;
    await this.nft.check();
    const owner = await this.nft.owner(dp.family, dp.table);
    if (owner === 'foreign') {
      throw new NftablesError('foreign-table', `nftables table ${dp.family} ${dp.table} exists and is not siplb-advisor's (no "siplb-advisor" table comment): ` +
        'left untouched; remove it or choose another --table');
    }
    if (owner === 'ours') {
      this.log.warn({ table: `${dp.family} ${dp.table}` }, 'replacing the table a previous siplb-advisor left behind (it did not stop cleanly)');
      this.replaceOnInstall = true;
    }
    await this.round(true);
    if (!this.installed) throw new NftablesError('failed', `the table could not be created: ${this.mapUpdates.lastError ?? 'unknown error'}`);
    this.schedule(Date.now());
  }

  /** Stops probing and deletes the table (once any update in flight is done). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.enqueue(async () => {
      if (!this.installed) return;
      await this.nft.apply(deleteScript(this.settings.dataPlane));
      this.installed = false;
      this.log.info({ table: `${this.settings.dataPlane.family} ${this.settings.dataPlane.table}` }, 'table deleted');
    });
  }

  /** Last resort of a process going down on a bug: delete the table without waiting for anything. */
  emergencyCleanup(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (!this.installed || this.nft.applySync === undefined) return;
    try {
      this.nft.applySync(deleteScript(this.settings.dataPlane));
      this.installed = false;
    } catch {
      // Nothing more can be done from a dying process; the next advisor replaces the table.
    }
  }

  /** Balancer name → counters, for the metrics. */
  counters(): Map<string, BalancerCounters> {
    return new Map(this.balancers.map((b) => [b.name, b.counters]));
  }

  view(): AdvisorView {
    const s = this.settings;
    const dp = s.dataPlane;
    const held = new Map<string, number>();
    for (const o of this.owners) held.set(o, (held.get(o) ?? 0) + 1);
    return {
      vip: dp.vip, port: dp.port, family: dp.family, table: dp.table, buckets: dp.buckets, seed: dp.seed,
      interval: s.intervalMs, timeout: s.timeoutMs, rise: s.rise, fall: s.fall, probeTransports: [...s.transports],
      panic: this.panic,
      installed: this.installed,
      mapUpdates: { ...this.mapUpdates },
      balancers: this.balancers.map((b) => ({
        address: b.name,
        state: b.health.state,
        reason: b.health.reason,
        since: new Date(b.health.since).toISOString(),
        lastProbe: Object.fromEntries(Object.entries(b.lastProbe).map(([t, p]) => [t, {
          ok: p.ok, code: p.code, reason: p.reason, rttMs: p.rttMs, at: new Date(p.at).toISOString(),
        }])),
        consecutivePass: b.health.consecutivePass,
        consecutiveFail: b.health.consecutiveFail,
        buckets: held.get(b.name) ?? 0,
      })),
      map: [...this.owners],
    };
  }

  private schedule(roundStartedAt: number): void {
    if (this.stopped) return;
    const wait = Math.max(0, this.settings.intervalMs - (Date.now() - roundStartedAt));
    this.timer = setTimeout(() => {
      const started = Date.now();
      this.round(false).then(() => this.schedule(started), (err: unknown) => {
        // round() handles what it expects; this is a bug, logged, and the rounds go on.
        this.log.error({ err }, 'probe round failed');
        this.schedule(started);
      });
    }, wait);
  }

  /** Probes every balancer on every transport, records the verdicts, rewrites the map when needed. */
  private async round(first: boolean): Promise<void> {
    const { transports, timeoutMs } = this.settings;
    let changed = first;
    await Promise.all(this.balancers.map(async (b) => {
      const outcomes = await Promise.all(transports.map(async (t) => {
        const o = await this.probe(b.endpoint, t, timeoutMs);
        b.lastProbe[t] = { ...o, at: Date.now() };
        b.counters.probes[t][o.ok ? 'success' : 'failure']++;
        this.onProbe?.(b.name, t, o);
        return [t, o] as const;
      }));
      if (this.stopped) return;
      const failed = outcomes.filter(([, o]) => !o.ok);
      const ok = failed.length === 0;
      const reason = ok ? outcomes.map(([t, o]) => `${t}: ${o.reason}`).join('; ') : failed.map(([t, o]) => `${t}: ${o.reason}`).join('; ');
      const transition = b.health.record(ok, reason);
      if (transition === null) return;
      changed = true;
      if (transition.to !== 'unknown') b.counters.entered[transition.to]++;
      this.log.info({ balancer: b.name, from: transition.from, to: transition.to, reason: transition.reason }, 'balancer state');
    }));
    if (this.stopped) return;
    if (changed || this.dirty) await this.enqueue(() => this.program());
  }

  /** Writes the table for the current healthy set (created on the first call). */
  private async program(): Promise<void> {
    if (this.stopped) return;
    const dp = this.settings.dataPlane;
    const healthy = this.balancers.filter((b) => b.health.state === 'up').map((b) => b.name);
    const { owners, panic } = bucketTable(this.balancers.map((b) => b.name), healthy, dp.buckets);
    if (panic && (!this.panic || this.panicLogGate())) {
      this.log.error({ balancers: this.balancers.map((b) => b.name) },
        'PANIC: every balancer is down: spraying the VIP to all of them, in case some still take calls');
    } else if (!panic && this.panic) {
      this.log.warn({ healthy }, 'panic mode over: a balancer is up again');
    }
    this.panic = panic;
    if (this.installed && !this.dirty && owners.every((o, i) => o === this.owners[i])) return;
    const script = this.installed ? mapUpdateScript(dp, owners) : createScript(dp, owners, this.replaceOnInstall);
    try {
      await this.nft.apply(script);
    } catch (err) {
      this.mapUpdates.failed++;
      this.mapUpdates.lastError = err instanceof Error ? err.message : String(err);
      this.dirty = true;
      this.log.error({ err: this.mapUpdates.lastError, healthy }, this.installed ? 'bucket map update failed: retried next round' : 'table could not be created');
      return;
    }
    const moved = this.installed ? owners.filter((o, i) => o !== this.owners[i]).length : owners.length;
    const created = !this.installed;
    this.owners = owners;
    this.installed = true;
    this.dirty = false;
    this.mapUpdates.ok++;
    this.mapUpdates.lastError = null;
    const per: Record<string, number> = {};
    for (const o of owners) per[o] = (per[o] ?? 0) + 1;
    this.log.info({ table: `${dp.family} ${dp.table}`, healthy, panic, moved, buckets: per }, created ? 'table created' : 'bucket map updated');
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.nftQueue.then(task);
    this.nftQueue = next.catch(() => undefined);
    return next;
  }
}
