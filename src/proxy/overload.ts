// Overload control: when the balancer cannot keep up, refuse part of the new calls early and
// cheaply, so that the calls taken stay fast instead of every call slowing down until all of
// them time out and their retransmissions add to the load.
//
// Two signals, every 100 ms. The event loop's utilisation (the share of wall time it spent
// running callbacks) says the loop is busy; the UDP sockets' kernel receive queues (bytes waiting,
// datagrams dropped for a full queue: src/transport/udp-backlog.ts) say whether it is also falling
// behind. Busy alone is not overload: a loop at 100 % that empties its queues is carrying its load,
// and under a CPU quota (a container's limit) the utilisation reads high at a fraction of the
// load the process can carry. Where the queues cannot be read (not Linux, no UDP listener) the
// utilisation decides alone. Picks waiting for the shared store count as overload too.
//
// The answer is a rejection fraction p: up once the balancer has been behind for SUSTAIN windows
// (STEP_UP_QUEUED while a queue grows, STEP_UP when it is deep or unread), held while the queues
// drain, down by STEP_DOWN while it has room again (utilisation under LOW, or queues under a
// quarter full), never above MAX_FRACTION (some calls always go through, which is how the controller
// sees that the load has fallen). A new call is refused when the hash of its Call-ID falls below
// p, so an INVITE and its retransmissions get the same verdict. Refused calls get 503 with a
// jittered Retry-After (and RFC 7339 overload parameters when the client's Via asks for them).
// Past the hard limit (behind for HARD_WINDOWS in a row at the highest fraction) new requests
// that came over a stream are dropped unanswered, since even the 503 costs a send; a datagram is
// still answered, because a UDP client resends an unanswered INVITE up to ten times.
//
// Requests of calls in progress, responses, ACK, CANCEL and everything from the nodes always pass:
// they finish work already admitted.

import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { rateLimit } from '../core/log.ts';
import { hashKey } from '../algorithms/hashing.ts';
import type { UdpBacklog } from '../transport/udp-backlog.ts';

/** How often the controller looks, ms. */
export const OVERLOAD_WINDOW_MS = 100;
/** Utilisation at or above which the loop counts as saturated. */
const HIGH = 0.95;
/** Utilisation below which the fraction comes down again. */
const LOW = 0.85;
const STEP_UP = 0.1;
/** The step up when the queues say the backlog grows: smaller, since that signal comes every window it lasts. */
const STEP_UP_QUEUED = 0.05;
const STEP_DOWN = 0.05;
const MAX_FRACTION = 0.95;
/**
 * Windows in a row the loop must be saturated before the fraction rises: a garbage collection, a
 * burst of retransmissions or a neighbour taking the core for 100 ms is not overload.
 */
const SUSTAIN = 3;
/** No shedding while the process warms up (module loading, the first compilations). */
const WARM_UP_MS = 3000;
/** Windows in a row saturated at MAX_FRACTION before new requests are dropped rather than answered. */
const HARD_WINDOWS = 5;
/**
 * How full the UDP receive queues (their share of SO_RCVBUF) may get. A deep queue alone is not
 * overload: a balancer working through a burst, or carrying twice its usual load at 300 ms of
 * queueing, loses nothing. What hurts is a queue that overflows (the kernel drops, and every drop
 * is a retransmission to come) or that waits so long that the clients' 500 ms timers fire. So:
 * behind when the kernel dropped, or above HIGH and still growing; deep (the big step) when it
 * dropped or is above DEEP; clear (the fraction comes down) below LOW.
 */
const QUEUE_HIGH = 0.5;
const QUEUE_DEEP = 0.75;
const QUEUE_LOW = 0.25;
/** Used when the buffer size is unknown. */
const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;
/** Picks waiting for the shared store beyond which the balancer counts as overloaded too. */
const PENDING_HIGH = 2000;
/** Retry-After of a 503: BASE plus up to SPREAD seconds, so refused clients do not all come back at once. */
const RETRY_AFTER_BASE_S = 2;
const RETRY_AFTER_SPREAD_S = 4;
/** RFC 7339 oc-validity, ms: how long a client applies the reduction without a newer one. */
const OC_VALIDITY_MS = 1000;

export type OverloadVerdict = 'admit' | 'reject' | 'drop';
export type OverloadState = 'normal' | 'shedding' | 'dropping';
/**
 * What the receive queues said in a window: deep (overflowing, or three quarters full and
 * growing), behind (more than half full and growing), draining, clear, or not read.
 */
export type QueueSignal = 'deep' | 'behind' | 'draining' | 'clear' | 'unknown';

/** What the controller shows (kept in ProxyStats, read by /metrics and the stats JSON). */
export interface OverloadCounters {
  /** 0 normal, 1 shedding (503), 2 dropping. */
  state: number;
  /** The rejection fraction now. */
  fraction: number;
  /** New requests answered 503 for overload. */
  rejected: number;
  /** New requests dropped unanswered for overload. */
  dropped: number;
  /** Times the state changed from normal to shedding. */
  episodes: number;
}

export function overloadCounters(): OverloadCounters {
  return { state: 0, fraction: 0, rejected: 0, dropped: 0, episodes: 0 };
}

const STATE_NUMBER: Record<OverloadState, number> = { normal: 0, shedding: 1, dropping: 2 };

export class OverloadControl {
  /** Rejection fraction in [0, MAX_FRACTION]; 0: every new call is admitted. */
  fraction = 0;
  state: OverloadState = 'normal';
  readonly counters: OverloadCounters;
  private saturatedAtMax = 0;
  /** Saturated windows in a row. */
  private hot = 0;
  private readonly since = Date.now();
  private last: EventLoopUtilization;
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly pending: () => number;
  private readonly backlog: () => UdpBacklog | null;
  /** Kernel drops at the last reading; a rise means a queue overflowed since. */
  private lastDrops = -1;
  /** Bytes queued at the last reading. */
  private lastQueued = 0;
  private readonly logGate = rateLimit(1000);
  /** RFC 7339 oc-seq: increases with every change of the fraction. */
  private seq = 0;

  constructor(log: Logger, pending: () => number, counters: OverloadCounters = overloadCounters(), start = true,
    backlog: () => UdpBacklog | null = () => null) {
    this.log = log;
    this.counters = counters;
    this.pending = pending;
    this.backlog = backlog;
    this.last = performance.eventLoopUtilization();
    if (start) {
      this.timer = setInterval(() => this.sample(), OVERLOAD_WINDOW_MS);
      this.timer.unref();
    }
  }

  /**
   * The verdict for a new request with this Call-ID. `reliable`: it came over a stream (TCP, TLS,
   * WS), whose client does not resend it; only such requests are ever dropped. A UDP client
   * resends an unanswered INVITE up to ten times in 32 s, so a silent drop of a datagram costs
   * more reads than the one 503 that ends the transaction.
   */
  verdict(callId: string, reliable: boolean): OverloadVerdict {
    if (this.state === 'normal') return 'admit';
    if (hashKey(callId) / 4294967296 >= this.fraction) return 'admit';
    if (this.state === 'dropping' && reliable) {
      this.counters.dropped++;
      return 'drop';
    }
    this.counters.rejected++;
    return 'reject';
  }

  /** Seconds for the Retry-After of a refusal. */
  retryAfter(): number {
    return RETRY_AFTER_BASE_S + Math.floor(Math.random() * (RETRY_AFTER_SPREAD_S + 1));
  }

  /** RFC 7339 parameters for the top Via of a refusal to a client that offered `oc`. */
  viaParams(): string {
    return `;oc=${Math.round(this.fraction * 100)};oc-algo="loss";oc-validity=${OC_VALIDITY_MS};oc-seq=${this.seq}`;
  }

  /**
   * One controller step with this window's utilisation and what the receive queues said (tests
   * call it directly, with their clock).
   */
  step(utilisation: number, now = Date.now(), queue: QueueSignal = 'unknown'): void {
    const busy = utilisation >= HIGH;
    // With the queues read, only a growing backlog raises the fraction; one that drains means
    // the fraction is enough (hold it), an empty one that it is too much (lower it). That keeps
    // the fraction near what the load needs instead of swinging to the maximum: every refusal
    // costs a send too, and refusing more than needed wastes what it was meant to save.
    const saturated = (busy && (queue === 'deep' || queue === 'behind' || queue === 'unknown')) || this.pending() >= PENDING_HIGH;
    this.hot = saturated ? this.hot + 1 : queue === 'draining' ? this.hot : 0;
    const overloaded = saturated && this.hot >= SUSTAIN && now - this.since >= WARM_UP_MS;
    const before = this.state;
    const old = this.fraction;
    if (overloaded) this.fraction = Math.min(MAX_FRACTION, this.fraction + (queue === 'behind' ? STEP_UP_QUEUED : STEP_UP));
    else if (!saturated && queue !== 'draining' && (utilisation < LOW || queue === 'clear')) this.fraction = Math.max(0, this.fraction - STEP_DOWN);
    // Floating steps: snap to the grid so that "back to 0" is exact.
    this.fraction = Math.round(this.fraction * 100) / 100;
    this.saturatedAtMax = overloaded && this.fraction >= MAX_FRACTION ? this.saturatedAtMax + 1 : 0;
    this.state = this.fraction === 0 ? 'normal' : this.saturatedAtMax >= HARD_WINDOWS ? 'dropping' : 'shedding';
    if (this.fraction !== old) this.seq++;
    this.counters.fraction = this.fraction;
    this.counters.state = STATE_NUMBER[this.state];
    if (this.state !== before) {
      if (before === 'normal') this.counters.episodes++;
      if (this.logGate()) {
        this.log.warn({ from: before, to: this.state, fraction: this.fraction, utilisation: Math.round(utilisation * 100) / 100, queue, pendingPicks: this.pending() },
          this.state === 'normal' ? 'overload over: every new call admitted again' : `overload: new calls ${this.state === 'dropping' ? 'dropped' : 'refused with 503'} in part`);
      }
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, this.last);
    this.last = now;
    // The queues are read only while the loop is busy: an idle balancer pays nothing for them.
    this.step(delta.utilization, Date.now(), delta.utilization >= HIGH ? this.readQueues() : 'unknown');
  }

  private readQueues(): QueueSignal {
    const b = this.backlog();
    if (b === null) return 'unknown';
    const dropped = this.lastDrops >= 0 && b.drops > this.lastDrops;
    const grew = b.queuedBytes > this.lastQueued;
    this.lastDrops = b.drops;
    this.lastQueued = b.queuedBytes;
    const fill = b.queuedBytes / (b.bufferBytes > 0 ? b.bufferBytes : DEFAULT_BUFFER_BYTES);
    if (dropped) return 'deep';
    if (fill < QUEUE_LOW) return 'clear';
    if (fill < QUEUE_HIGH || !grew) return 'draining';
    return fill >= QUEUE_DEEP ? 'deep' : 'behind';
  }
}
