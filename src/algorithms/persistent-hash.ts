// Restcomm's PersistentConsistentHashBalancerAlgorithm: the hash algorithm's key
// (sipHeaderAffinityKey, Call-ID by default), but each key's node is remembered, so nodes joining
// or leaving move no key that is already placed; only a dead node's keys move (see
// assigned-hash.ts). Keys are placed by rendezvous hashing with optional bounded load
// (hashLoadFactor); HTTP requests use the httpAffinityKey query parameter and the same
// assignments, so a converged application's SIP and HTTP sides with the same key meet on one node.

import type { AlgorithmContext, PickRequest } from './algorithm.ts';
import { affinityKeyReader, isCallIdSpec, type SipKeyReader } from './affinity-key.ts';
import { AssignedHash } from './assigned-hash.ts';

export class PersistentConsistentHash extends AssignedHash {
  readonly name = 'persistent-hash';
  private readonly key: SipKeyReader;

  constructor(ctx: AlgorithmContext) {
    super(ctx, 'hash', isCallIdSpec(ctx.config.sipHeaderAffinityKey));
    this.key = affinityKeyReader(ctx.config.sipHeaderAffinityKey);
  }

  protected keyOf(req: PickRequest): string {
    return this.key(req.msg) ?? req.callId;
  }
}
