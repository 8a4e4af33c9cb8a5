// Passive health: what the data path sees nodes send, and what it sends them.
//
// Error responses. A response whose status is in responsesStatusCodeNodeRemoval (and, when
// responseReasonNodeRemoval is set, whose reason phrase is that text) is an error of the node
// that sent it; more than maxNumberResponsesWithError of them within maxErrorTime take the node
// out of new-call selection until a probe succeeds or it registers with a new session.
//
// Requests left unanswered (Restcomm's maxRequestNumberWithoutResponse with maxResponseTime). A
// node whose SIP stack hangs with its port open still looks alive to an OPTIONS probe that it
// never answered anyway (active-health.ts judges such nodes by their port), so the requests the
// proxy forwards are the evidence: once more than maxRequestNumberWithoutResponse of them are
// unanswered and the oldest of them is older than maxResponseTime, the node is taken out, and it
// comes back when it answers anything again, when a probe gets an answer, or when it registers
// with a new session. Restcomm measures the time from the node's last response instead of from
// the first unanswered request; that takes out a healthy node that was idle and then receives a
// burst faster than it answers, which this does not.
//
// Everything else (requests from the node, other responses) is proof of life for the active
// checker. Both directions are called per message: the good path is one Map lookup and a few
// field writes on a per-node record allocated once.

import type { NodeRegistry } from './node-registry.ts';

export interface PassiveHealthOptions {
  errorStatuses: readonly number[];
  maxErrors: number;
  windowMs: number;
  /** Reason phrase an error status must also carry (case-insensitive, trimmed); null: any. */
  errorReason?: string | null;
  /** Unanswered-request detection is on when both are set. */
  maxUnanswered?: number | null;
  maxResponseTimeMs?: number | null;
}

/**
 * The status line a response came in, read only when a reason phrase has to be compared: a
 * SipMessage is one (head is latin1 over buf, so offsets in one are offsets in the other).
 */
export interface StatusLineSource {
  readonly buf: Buffer;
  readonly head: string;
  readonly startLineEnd: number;
}

interface NodeHealth {
  /** Last good traffic; -1: none yet. */
  lastGood: number;
  /** Times of recent error responses, oldest first; null until the first one. */
  errors: number[] | null;
  /** Requests forwarded to the node since its last response. */
  unanswered: number;
  /** When the first of those was forwarded. */
  unansweredSince: number;
  /** This took the node out for silence (the registry may have let it back in since). */
  silent: boolean;
  /** This took the node out for ICMP port unreachable; until it sends something or its trial comes. */
  unreachable: boolean;
  /** The timer that lets an unreachable node back in on trial; null when none runs. */
  trial: NodeJS.Timeout | null;
}

/**
 * A node taken out for ICMP port unreachable is let back in on trial after this long: with no
 * probes configured and heartbeats still coming (the process lives, its SIP stack stopped),
 * nothing else would tell that its port opened again. If it is still closed, the next request
 * sent there brings the ICMP error back and the node goes out again, at the cost of one client
 * retransmission.
 */
export const UNREACHABLE_TRIAL_MS = 10_000;

export class PassiveHealth {
  private readonly nodes = new Map<string, NodeHealth>();
  // Not readonly: reconfigure() replaces them (a reload); the per-message paths read them as fields.
  private errorStatuses: Set<number> = new Set();
  private errorReason: string | null = null;
  /** 0: unanswered-request detection is off. */
  private maxUnanswered = 0;
  private maxResponseTimeMs = 0;
  private readonly registry: NodeRegistry;
  private opts: PassiveHealthOptions;

  constructor(registry: NodeRegistry, opts: PassiveHealthOptions) {
    this.registry = registry;
    this.opts = opts;
    this.configure(opts);
  }

  /**
   * New settings (a reload). Error responses counted so far stay in their window; a node already
   * taken out stays out until its usual way back. Turning unanswered-request detection off lets
   * the nodes it took out back in: nothing else would.
   */
  reconfigure(opts: PassiveHealthOptions): void {
    this.opts = opts;
    this.configure(opts);
    if (this.maxUnanswered !== 0) return;
    for (const [id, h] of this.nodes) {
      h.unanswered = 0;
      if (!h.silent) continue;
      h.silent = false;
      this.registry.clearPassiveDown(id, 'silence', 'unanswered-request detection turned off');
    }
  }

  private configure(opts: PassiveHealthOptions): void {
    this.errorStatuses = new Set(opts.errorStatuses);
    const reason = opts.errorReason?.trim().toLowerCase() ?? '';
    this.errorReason = reason === '' ? null : reason;
    const on = opts.maxUnanswered != null && opts.maxResponseTimeMs != null;
    this.maxUnanswered = on ? Math.max(1, opts.maxUnanswered as number) : 0;
    this.maxResponseTimeMs = on ? (opts.maxResponseTimeMs as number) : 0;
  }

  /**
   * A message from node `nodeId`: status 0 for a request, else the response status. `response`
   * is the response itself (or its reason phrase); its reason is read only for an error status
   * while responseReasonNodeRemoval is set.
   */
  fromNode(nodeId: string, status: number, response?: StatusLineSource | string, now = Date.now()): void {
    const h = this.health(nodeId);
    if (h.unreachable) this.reachable(nodeId, h, status === 0 ? 'sent a request' : `answered ${status}`);
    if (status === 0) {
      h.lastGood = now;
      return;
    }
    if (this.maxUnanswered !== 0) {
      h.unanswered = 0;
      if (h.silent) {
        h.silent = false;
        this.registry.clearPassiveDown(nodeId, 'silence', `answered again with ${status}`);
      }
    }
    if (!this.errorStatuses.has(status) || (this.errorReason !== null && !this.reasonMatches(response))) {
      h.lastGood = now;
      return;
    }
    let times = h.errors;
    if (times === null) {
      times = [];
      h.errors = times;
    }
    times.push(now);
    while (times.length > 0 && now - times[0] > this.opts.windowMs) times.shift();
    if (times.length > this.opts.maxErrors) {
      const count = times.length;
      times.length = 0;
      const what = [...this.errorStatuses].join('/') + (this.errorReason === null ? '' : ` "${this.opts.errorReason?.trim()}"`);
      this.registry.setPassiveDown(nodeId, `${count} responses ${what} within ${this.opts.windowMs} ms`, 'errors');
    }
  }

  /**
   * A request (not an ACK, which is never answered) forwarded to node `nodeId`. Does nothing
   * unless maxRequestNumberWithoutResponse and maxResponseTime are both set.
   */
  requestSent(nodeId: string, now?: number): void {
    if (this.maxUnanswered === 0) return;
    const t = now ?? Date.now();
    const h = this.health(nodeId);
    if (h.silent && this.registry.get(nodeId)?.passiveCause !== 'silence') {
      // Let back in (a probe got an answer): judged on what it does from now on, not on the
      // requests of its old calls it left unanswered while it was out.
      h.silent = false;
      h.unanswered = 0;
    }
    if (h.unanswered === 0) h.unansweredSince = t;
    h.unanswered++;
    if (h.unanswered > this.maxUnanswered && t - h.unansweredSince > this.maxResponseTimeMs) this.silenced(nodeId, h, t);
  }

  /**
   * ICMP port unreachable came back from the node's SIP address: out at once, and down (its calls
   * fail over on their next request), until it sends anything, a probe succeeds, it registers
   * with a new session, or its trial comes (UNREACHABLE_TRIAL_MS).
   */
  unreachable(nodeId: string, detail: string): void {
    const e = this.registry.get(nodeId);
    if (e === undefined) return;
    const h = this.health(nodeId);
    if (!this.registry.setPassiveDown(nodeId, detail, 'unreachable')) return;
    h.unreachable = true;
    if (h.trial !== null) clearTimeout(h.trial);
    h.trial = setTimeout(() => this.reachable(nodeId, h, `no ICMP error for ${UNREACHABLE_TRIAL_MS} ms: back on trial`), UNREACHABLE_TRIAL_MS);
    h.trial.unref();
  }

  private reachable(nodeId: string, h: NodeHealth, detail: string): void {
    h.unreachable = false;
    if (h.trial !== null) {
      clearTimeout(h.trial);
      h.trial = null;
    }
    this.registry.clearPassiveDown(nodeId, 'unreachable', detail);
  }

  /** When the node last sent good traffic, if ever. */
  lastGood(nodeId: string): number | undefined {
    const h = this.nodes.get(nodeId);
    return h === undefined || h.lastGood < 0 ? undefined : h.lastGood;
  }

  /** Requests forwarded to the node since its last response (0 while detection is off). */
  unanswered(nodeId: string): number {
    return this.nodes.get(nodeId)?.unanswered ?? 0;
  }

  forget(nodeId: string): void {
    const h = this.nodes.get(nodeId);
    if (h?.trial != null) clearTimeout(h.trial);
    this.nodes.delete(nodeId);
  }

  /** Stops the trial timers (the balancer stops). */
  close(): void {
    for (const h of this.nodes.values()) {
      if (h.trial !== null) clearTimeout(h.trial);
      h.trial = null;
    }
  }

  private health(nodeId: string): NodeHealth {
    let h = this.nodes.get(nodeId);
    if (h === undefined) {
      h = { lastGood: -1, errors: null, unanswered: 0, unansweredSince: 0, silent: false, unreachable: false, trial: null };
      this.nodes.set(nodeId, h);
    }
    return h;
  }

  /** Past both limits: take the node out, unless it is out already (then only note why). */
  private silenced(nodeId: string, h: NodeHealth, now: number): void {
    const count = h.unanswered;
    h.unanswered = 0;
    const e = this.registry.get(nodeId);
    if (e === undefined) return;
    if (e.passiveDown) {
      h.silent = e.passiveCause === 'silence';
      return;
    }
    h.silent = this.registry.setPassiveDown(nodeId, `${count} requests unanswered for ${now - h.unansweredSince} ms`, 'silence');
  }

  private reasonMatches(response: StatusLineSource | string | undefined): boolean {
    if (response === undefined) return false;
    let reason: string;
    if (typeof response === 'string') reason = response;
    else {
      // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; the parser has checked it, so
      // the reason starts 5 characters after the first space. Decoded as UTF-8 (RFC 3261 §25.1).
      const start = response.head.indexOf(' ') + 5;
      const end = response.startLineEnd;
      reason = start > 4 && start <= end ? response.buf.toString('utf8', start, end) : '';
    }
    return reason.trim().toLowerCase() === this.errorReason;
  }
}
