// Passive health: what the data path sees nodes send. Good traffic (requests, responses whose
// status is not in responsesStatusCodeNodeRemoval) is proof of life for the active checker;
// more than maxNumberResponsesWithError error responses within maxErrorTime take the node out of
// new-call selection until a probe succeeds or it registers with a new session.
//
// Called for every message from a node, so it does a Map update and nothing else on the good path.

import type { NodeRegistry } from './node-registry.ts';

export interface PassiveHealthOptions {
  errorStatuses: readonly number[];
  maxErrors: number;
  windowMs: number;
}

export class PassiveHealth {
  private readonly good = new Map<string, number>();
  private readonly errors = new Map<string, number[]>();
  private readonly errorStatuses: Set<number>;
  private readonly registry: NodeRegistry;
  private readonly opts: PassiveHealthOptions;

  constructor(registry: NodeRegistry, opts: PassiveHealthOptions) {
    this.registry = registry;
    this.opts = opts;
    this.errorStatuses = new Set(opts.errorStatuses);
  }

  /** A message from node `nodeId`: status 0 for a request, else the response status. */
  fromNode(nodeId: string, status: number, now = Date.now()): void {
    if (status === 0 || !this.errorStatuses.has(status)) {
      this.good.set(nodeId, now);
      return;
    }
    let times = this.errors.get(nodeId);
    if (times === undefined) {
      times = [];
      this.errors.set(nodeId, times);
    }
    times.push(now);
    while (times.length > 0 && now - times[0] > this.opts.windowMs) times.shift();
    if (times.length > this.opts.maxErrors) {
      this.errors.delete(nodeId);
      this.registry.setPassiveDown(nodeId, `${times.length} responses ${[...this.errorStatuses].join('/')} within ${this.opts.windowMs} ms`);
    }
  }

  /** When the node last sent good traffic, if ever. */
  lastGood(nodeId: string): number | undefined {
    return this.good.get(nodeId);
  }

  forget(nodeId: string): void {
    this.good.delete(nodeId);
    this.errors.delete(nodeId);
  }
}
