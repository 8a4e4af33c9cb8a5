// Several worker processes on one host (workers > 1): the started process becomes a supervisor
// that forks `workers` copies of the siplb command, each one a balancer (balancer.ts) whose SIP
// listeners share their ports with SO_REUSEPORT (transport/port-sharing.ts), so the kernel
// spreads clients over the workers by the hash of their address and port.
//
// The supervisor holds no socket. It
// - gives every worker the same branch secret (a response may come back to any worker),
// - carries worker 0's node view to the others and their passive-health decisions and counters
//   to worker 0 (registry-relay.ts, worker-stats.ts), keeping the last view for a worker that
//   starts later,
// - restarts a worker that dies (after RESTART_DELAY_MS; more than MAX_RESTARTS within
//   RESTART_WINDOW_MS, or a worker that fails before it was ever ready, stops everything),
// - passes SIGTERM/SIGINT (graceful stop; a second one stops at once) and SIGHUP (reload) on to
//   every worker, and exits once all have exited.
//
// Why the workers make the same decision for the same call: docs/architecture.md, "Workers".

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { applyPassiveReport, viewOf, ViewFollower, type PassiveReport, type RegistryView } from '../cluster/registry-relay.ts';
import type { NodeRegistry } from '../cluster/node-registry.ts';
import type { NodePins } from '../proxy/node-pins.ts';
import type { ProxyStats } from '../proxy/stats.ts';
import { sharePorts } from '../transport/port-sharing.ts';
import type { RunningBalancer, WorkerPlace } from './balancer.ts';
import { digestOf, summedStats, type StatsDigest } from './worker-stats.ts';

/** The environment variable that makes a siplb process a worker: "index/count". */
export const WORKER_ENV = 'SIPLB_WORKER';
/** A dead worker is started again after this long. */
export const RESTART_DELAY_MS = 500;
/** More restarts than this within RESTART_WINDOW_MS: something is wrong with every start; stop. */
export const MAX_RESTARTS = 10;
export const RESTART_WINDOW_MS = 60_000;
/** Worker 0 sends its view at least this often (heartbeat times move without a registry event), the others their counters. */
export const RELAY_INTERVAL_MS = 1000;

/** What worker 0 relays: its node view and its pins (/lbnoderegex, in their order: the first match wins). */
interface SharedView {
  readonly registry: RegistryView;
  readonly pins: readonly { readonly pattern: string; readonly nodeId: string }[];
}

/** Supervisor to worker. */
type ToWorker =
  | { readonly t: 'init'; readonly secret: string; readonly view: SharedView | null }
  | { readonly t: 'view'; readonly view: SharedView }
  | { readonly t: 'passive'; readonly from: number; readonly report: PassiveReport }
  | { readonly t: 'stats'; readonly from: number; readonly digest: StatsDigest };

/** Worker to supervisor. */
type FromWorker =
  | { readonly t: 'ready'; readonly summary: Record<string, unknown> }
  | { readonly t: 'view'; readonly view: SharedView }
  | { readonly t: 'reload' }
  | { readonly t: 'passive'; readonly report: PassiveReport }
  | { readonly t: 'stats'; readonly digest: StatsDigest }
  | { readonly t: 'stop'; readonly reason: string };

/** This process's place among the workers, from WORKER_ENV; null when it is not a worker. */
export function workerIndexFromEnv(env: NodeJS.ProcessEnv = process.env): { index: number; count: number } | null {
  const m = /^(\d{1,3})\/(\d{1,3})$/.exec(env[WORKER_ENV] ?? '');
  if (m === null) return null;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return index < count ? { index, count } : null;
}

// ---------------------------------------------------------------------------------------------
// The supervisor.

export interface SupervisorOptions {
  readonly count: number;
  /** The command each worker runs: the script and its arguments, as this process was given them. */
  readonly script: string;
  readonly args: readonly string[];
  readonly execArgv: readonly string[];
  /** A graceful stop of the workers is waited for this long (plus a margin), then they are killed. */
  readonly shutdownTimeoutMs: number;
  /** General log and the lines printed at every level (ready, stopping). */
  readonly log: Logger;
  readonly lifecycle: Logger;
}

interface Slot {
  child: ChildProcess | null;
  pid: number | null;
  ready: boolean;
  everReady: boolean;
  restarts: number[];
  digest: StatsDigest | null;
}

/**
 * Runs the workers until they have all exited after a stop; resolves with the exit code the
 * supervisor should end with (0 after a stop, else the code of the worker that failed at start).
 */
export function superviseWorkers(opts: SupervisorOptions): Promise<number> {
  const { count, log, lifecycle } = opts;
  const secret = randomBytes(24).toString('base64url');
  const slots: Slot[] = Array.from({ length: count }, () => ({ child: null, pid: null, ready: false, everReady: false, restarts: [], digest: null }));
  let lastView: SharedView | null = null;
  let stopping = false;
  let exitCode = 0;
  let announced = false;
  let summary0: Record<string, unknown> = {};
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => { finish = resolve; });

  const send = (i: number, msg: ToWorker): void => {
    const c = slots[i].child;
    if (c === null || !c.connected) return;
    try {
      c.send(msg);
    } catch {
      // The worker is going away; its exit is handled below.
    }
  };

  const start = (i: number): void => {
    const child = fork(opts.script, [...opts.args], {
      execArgv: [...opts.execArgv],
      env: { ...process.env, [WORKER_ENV]: `${i}/${count}` },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const slot = slots[i];
    slot.child = child;
    slot.pid = child.pid ?? null;
    slot.ready = false;
    slot.digest = null;
    child.on('message', (m: FromWorker) => onMessage(i, m));
    child.on('error', (err) => log.error({ worker: i, err: err.message }, 'worker process error'));
    child.on('exit', (code, signal) => onExit(i, child, code, signal));
    send(i, { t: 'init', secret, view: lastView });
  };

  const onMessage = (i: number, m: FromWorker): void => {
    if (typeof m !== 'object' || m === null) return;
    switch (m.t) {
      case 'ready': {
        const slot = slots[i];
        slot.ready = true;
        slot.everReady = true;
        if (i === 0) summary0 = m.summary;
        if (!announced && slots.every((s) => s.ready)) {
          announced = true;
          lifecycle.info({ ...summary0, workers: count, pids: slots.map((s) => s.pid) }, 'siplb ready');
        } else if (announced) {
          lifecycle.info({ worker: i, pid: slots[i].pid }, 'siplb worker restarted and ready');
        }
        return;
      }
      case 'view':
        if (i !== 0) return;
        lastView = m.view;
        for (let k = 1; k < count; k++) send(k, { t: 'view', view: m.view });
        return;
      case 'passive':
        if (i !== 0) send(0, { t: 'passive', from: i, report: m.report });
        return;
      case 'stats':
        if (i !== 0) send(0, { t: 'stats', from: i, digest: m.digest });
        return;
      case 'stop':
        stop(m.reason);
        return;
      case 'reload':
        // Worker 0 reloaded through its admin API: the others read the file as on SIGHUP.
        if (i !== 0 || stopping) return;
        lifecycle.info({ workers: slots.slice(1).map((s) => s.pid) }, 'reload through the admin API of worker 0: the other workers read the file again');
        for (const s of slots.slice(1)) if (s.ready) s.child?.kill('SIGHUP');
        return;
    }
  };

  const onExit = (i: number, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void => {
    const slot = slots[i];
    if (slot.child !== child) return;
    slot.child = null;
    slot.ready = false;
    if (stopping) {
      if (slots.every((s) => s.child === null)) finish(exitCode);
      return;
    }
    if (!slot.everReady) {
      // It never started (bad configuration, a port it cannot bind): the others will not either.
      log.error({ worker: i, code, signal }, 'worker failed at start: stopping every worker');
      exitCode = code !== null && code !== 0 ? code : 1;
      stop('a worker failed at start');
      return;
    }
    const now = Date.now();
    slot.restarts = slot.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (slot.restarts.length >= MAX_RESTARTS) {
      log.error({ worker: i, restarts: slot.restarts.length, windowMs: RESTART_WINDOW_MS }, 'worker keeps dying: stopping every worker');
      exitCode = 1;
      stop('a worker keeps dying');
      return;
    }
    slot.restarts.push(now);
    lifecycle.warn({ worker: i, pid: slot.pid, code, signal, restartInMs: RESTART_DELAY_MS }, 'siplb worker died: restarting it');
    setTimeout(() => { if (!stopping) start(i); }, RESTART_DELAY_MS).unref();
  };

  let killTimer: NodeJS.Timeout | null = null;
  const stop = (why: string): void => {
    if (stopping) {
      // A second request: the workers stop at once on their second signal.
      lifecycle.warn({ signal: why }, 'siplb stopping now: second stop request');
      for (const s of slots) s.child?.kill('SIGTERM');
      return;
    }
    stopping = true;
    lifecycle.info({ signal: why, workers: slots.map((s) => s.pid) }, 'siplb stopping');
    for (const s of slots) s.child?.kill('SIGTERM');
    if (slots.every((s) => s.child === null)) {
      finish(exitCode);
      return;
    }
    // Bounded: a worker that will not stop is killed.
    killTimer = setTimeout(() => {
      for (const s of slots) s.child?.kill('SIGKILL');
      setTimeout(() => finish(exitCode), 1000).unref();
    }, opts.shutdownTimeoutMs + 5000);
    killTimer.unref();
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    // Only to workers that are ready: before that a worker has no SIGHUP handler (the signal
    // would kill it), and it reads the file as it starts anyway.
    const ready = slots.filter((s) => s.ready);
    lifecycle.info({ workers: ready.map((s) => s.pid), starting: slots.filter((s) => !s.ready && s.child !== null).map((s) => s.pid) }, 'SIGHUP passed on to every ready worker');
    for (const s of ready) s.child?.kill('SIGHUP');
  });

  for (let i = 0; i < count; i++) start(i);
  // Keeps the supervisor alive while it has children; nothing else of its own would.
  const alive = setInterval(() => undefined, 60_000);
  return done.then((code) => {
    clearInterval(alive);
    if (killTimer !== null) clearTimeout(killTimer);
    return code;
  });
}

// ---------------------------------------------------------------------------------------------
// A worker.

/** What a worker process needs from the supervisor before it starts its balancer. */
export interface WorkerLink {
  /** For startBalancer: the worker's place, shared secret and the hooks of the relay. */
  readonly place: WorkerPlace;
  /** After startBalancer: tells the supervisor this worker is ready, and starts sending counters. */
  started(balancer: RunningBalancer, summary: Record<string, unknown>): void;
  /** The admin API of worker 0 asked for a stop: every worker stops. */
  requestStop(reason: string): void;
  /** Stops the timers of the link. */
  close(): void;
}

/**
 * Waits for the supervisor's first message and returns the link; rejects when this process has no
 * IPC channel (it was not forked by a supervisor).
 */
export function joinSupervisor(index: number, count: number, log: Logger): Promise<WorkerLink> {
  const send = process.send?.bind(process);
  if (send === undefined) return Promise.reject(new Error(`${WORKER_ENV} is set but this process has no IPC channel to a supervisor`));
  sharePorts(true);
  const post = (m: FromWorker): void => {
    if (!process.connected) return;
    try {
      send(m);
    } catch {
      // The supervisor is gone; 'disconnect' handles it.
    }
  };
  return new Promise((resolve) => {
    let registry: NodeRegistry | null = null;
    let follower: ViewFollower | null = null;
    let pins: NodePins | null = null;
    /** Views that came before the registry (or the pins) existed: the latest is applied when they do. */
    let pendingView: SharedView | null = null;
    const others = new Map<number, StatsDigest>();
    const timers: NodeJS.Timeout[] = [];

    const apply = (view: SharedView): void => {
      if (follower === null || pins === null) {
        pendingView = view;
        return;
      }
      follower.apply(view.registry);
      applyPins(pins, view.pins);
    };

    process.on('message', (m: ToWorker) => {
      if (typeof m !== 'object' || m === null) return;
      switch (m.t) {
        case 'init':
          if (m.view !== null) apply(m.view);
          resolve(link(m.secret));
          return;
        case 'view':
          if (index !== 0) apply(m.view);
          return;
        case 'passive':
          if (index === 0 && registry !== null) applyPassiveReport(registry, m.report, m.from);
          return;
        case 'stats':
          if (index === 0) others.set(m.from, m.digest);
          return;
      }
    });

    const link = (secret: string): WorkerLink => ({
      place: {
        index, count, secret,
        registryReady: (r) => {
          registry = r;
          follower = new ViewFollower(r, log);
          if (index === 0) {
            // Every change at once (coalesced within a turn of the loop), and the whole view
            // every second for the heartbeat times and the pins.
            let queued = false;
            const publish = (): void => {
              queued = false;
              post({ t: 'view', view: { registry: viewOf(r), pins: pins?.list() ?? [] } });
            };
            r.onEvent(() => {
              if (queued) return;
              queued = true;
              setImmediate(publish);
            });
            r.onAdminDrain(() => { if (!queued) { queued = true; setImmediate(publish); } });
            const t = setInterval(publish, RELAY_INTERVAL_MS);
            t.unref();
            timers.push(t);
          } else {
            follower.onPassiveReport((report) => post({ t: 'passive', report }));
          }
        },
        pinsReady: (p) => {
          pins = p;
          // Worker 0 too: a restarted worker 0 starts from the last view the supervisor kept.
          if (pendingView !== null) apply(pendingView);
          pendingView = null;
        },
        ...(index === 0 ? {
          adminStats: (own: ProxyStats) => summedStats(own, () => others.values()),
          reloaded: () => post({ t: 'reload' }),
        } : {}),
      },
      started: (balancer, summary) => {
        if (index !== 0) {
          const t = setInterval(() => post({ t: 'stats', digest: digestOf(balancer.stats) }), RELAY_INTERVAL_MS);
          t.unref();
          timers.push(t);
        }
        post({ t: 'ready', summary });
      },
      requestStop: (reason) => post({ t: 'stop', reason }),
      close: () => { for (const t of timers) clearInterval(t); },
    });
  });
}

/** Makes `pins` hold exactly `wanted`, in its order (the first matching pin wins). */
function applyPins(pins: NodePins, wanted: SharedView['pins']): void {
  const have = pins.list();
  if (have.length === wanted.length && have.every((p, i) => p.pattern === wanted[i].pattern && p.nodeId === wanted[i].nodeId)) return;
  for (const p of have) pins.remove(p.pattern);
  for (const p of wanted) pins.set(p.pattern, p.nodeId);
}
