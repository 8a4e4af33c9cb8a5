// Passive health of the nodes' HTTP side, counted like SIP's (cluster/passive-health.ts): more
// than maxNumberResponsesWithError failures within maxErrorTime take a node out of new HTTP
// sessions. What counts as a failure of the node:
//   - a connection that could not be made or broke before a response (refused, reset, timed out);
//   - no response head within httpResponseTimeout, and a response that could not be read;
//   - a 5xx response, except 501 and 505, which are about the request (its method, its HTTP
//     version), not about the node.
// With requestCheckPattern set, a 4xx or 5xx answer to a request whose target matches it takes
// the node out at once (Restcomm's rule: those URLs are the ones the operator knows must work).
// A node that is out keeps its sticky sessions, as a draining node does (SIP's passive health
// makes a node draining too): a session lives in that node's memory, and a 5xx on one URL does
// not mean every session there is lost; a GET whose connection is refused is retried elsewhere
// anyway. It takes no new sessions, unless every HTTP node is out: then none is, since refusing
// everybody is worse than trying a node that may have recovered.
//
// It comes back as SIP's passive health lets a node back: on a good probe (an `OPTIONS /` over
// HTTP, as HAProxy's httpchk sends, answered below 500, healthCheckSuccesses times in a row;
// probes go every healthCheckInterval and only to nodes that are out, so 0 turns them off as it
// does SIP's OPTIONS), or when the registry reports the node anew (a new session, or its SIP
// state back to active), which the wiring forwards to recovered().

import type { Logger } from 'pino';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';

export interface HttpHealthOptions {
  maxErrors: number;
  windowMs: number;
  /** Between probe rounds; 0: no probes. */
  probeIntervalMs: number;
  /** Good probes in a row that bring a node back. */
  probeSuccesses: number;
  log: Logger;
  /** One probe of a node's HTTP side; resolves true for an answer below 500, never rejects. */
  probe(node: SipNode): Promise<boolean>;
  cluster(): ClusterSnapshot;
}

interface Outage {
  readonly since: number;
  readonly reason: string;
  goodProbes: number;
  probing: boolean;
}

/** A response status that counts against the node that sent it. */
export function isNodeFailureStatus(status: number): boolean {
  return status >= 500 && status !== 501 && status !== 505;
}

export class HttpHealth {
  private readonly opts: HttpHealthOptions;
  /** Times of recent failures per node, oldest first. */
  private readonly failures = new Map<string, number[]>();
  private readonly outages = new Map<string, Outage>();
  private timer: NodeJS.Timeout | null = null;
  /** Bumped whenever a node goes out or comes back, so choosers can cache their candidate lists. */
  version = 0;

  constructor(opts: HttpHealthOptions) {
    this.opts = opts;
  }

  start(): void {
    if (this.opts.probeIntervalMs <= 0 || this.timer !== null) return;
    this.timer = setInterval(() => this.probeRound(), this.opts.probeIntervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Nodes out of new HTTP sessions now. */
  get outCount(): number {
    return this.outages.size;
  }

  isOut(nodeId: string): boolean {
    return this.outages.size !== 0 && this.outages.has(nodeId);
  }

  /** Ids of the nodes that are out, with why (for the admin surface). */
  outNodes(): { nodeId: string; since: number; reason: string }[] {
    return [...this.outages].map(([nodeId, o]) => ({ nodeId, since: o.since, reason: o.reason }));
  }

  /** A failure of the node (see the header comment for what counts). */
  failure(nodeId: string, what: string, now = Date.now()): void {
    let times = this.failures.get(nodeId);
    if (times === undefined) {
      times = [];
      this.failures.set(nodeId, times);
    }
    times.push(now);
    while (times.length > 0 && now - times[0] > this.opts.windowMs) times.shift();
    if (times.length <= this.opts.maxErrors || this.outages.has(nodeId)) return;
    const reason = `${times.length} HTTP failures within ${this.opts.windowMs} ms, the last: ${what}`;
    times.length = 0;
    this.takeOut(nodeId, reason, now);
  }

  /**
   * Out of new HTTP sessions at once, without counting (requestCheckPattern: Restcomm removes a
   * node on the first error answer to a request that matches it). It comes back as any outage does.
   */
  takeOut(nodeId: string, reason: string, now = Date.now()): void {
    if (this.outages.has(nodeId)) return;
    this.outages.set(nodeId, { since: now, reason, goodProbes: 0, probing: false });
    this.version++;
    this.opts.log.warn({ node: nodeId, reason }, 'node out of new HTTP sessions');
  }

  /** The node proved itself again (registry event, good probes): back in new HTTP sessions. */
  recovered(nodeId: string, why: string): void {
    this.failures.delete(nodeId);
    if (!this.outages.delete(nodeId)) return;
    this.version++;
    this.opts.log.info({ node: nodeId, why }, 'node back in new HTTP sessions');
  }

  /** The node is gone: nothing of it is kept. */
  forget(nodeId: string): void {
    this.failures.delete(nodeId);
    if (this.outages.delete(nodeId)) this.version++;
  }

  private probeRound(): void {
    if (this.outages.size === 0) return;
    const cluster = this.opts.cluster();
    for (const [id, outage] of this.outages) {
      const node = cluster.get(id);
      if (node === undefined || node.http === undefined) {
        this.forget(id);
        continue;
      }
      if (outage.probing) continue;
      outage.probing = true;
      void this.opts.probe(node).then((ok) => {
        outage.probing = false;
        // The outage may have ended (or been replaced) while the probe was out.
        if (this.outages.get(id) !== outage) return;
        outage.goodProbes = ok ? outage.goodProbes + 1 : 0;
        if (outage.goodProbes >= this.opts.probeSuccesses) this.recovered(id, `${outage.goodProbes} good HTTP probes`);
      });
    }
  }
}
