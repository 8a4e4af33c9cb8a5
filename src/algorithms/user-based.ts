// Restcomm's UserBasedAlgorithm: every call of a user goes to that user's node. The user is read
// with sipHeaderAffinityKey (To, i.e. the To URI's user, in Restcomm's examples; the key's
// default, Call-ID, makes this per call). A user that matches sipHeaderAffinityExclusionPattern
// (e.g. anonymous) is no user at all, so its calls are keyed by sipHeaderAffinityFallbackKey
// instead; the pattern applies to that key too, so that anonymous callers calling anonymous
// callees do not all share one node. Without either, the Call-ID is the key.
//
// Assignments are kept (namespace 'user') with idle expiry userAffinityMaxTimeInCache and fail
// over by userAffinityGroupFailover; unset, they follow callIdAffinityMaxTimeInCache and
// callIdAffinityGroupFailover (Restcomm's sample file names the user keys, its algorithm reads
// only the Call-ID ones). A user registers once and calls for hours, so its table often wants a
// longer life than a call's. A new user is placed by bounded-load rendezvous hashing rather than
// Restcomm's round robin: two balancers that see the same user before the shared store has the
// assignment pick the same node.

import type { Config } from '../config/types.ts';
import type { AlgorithmContext, PickRequest } from './algorithm.ts';
import { affinityKeyReader, isCallIdSpec, type SipKeyReader } from './affinity-key.ts';
import { AssignedHash } from './assigned-hash.ts';

export class UserBased extends AssignedHash {
  readonly name = 'user';
  private readonly key: SipKeyReader;
  private readonly fallback: SipKeyReader;
  private readonly exclude: RegExp | null;

  constructor(ctx: AlgorithmContext) {
    const cfg = ctx.config;
    super(ctx, 'user', isCallIdSpec(cfg.sipHeaderAffinityKey), {
      idleSeconds: cfg.userAffinityMaxTimeInCache ?? cfg.callIdAffinityMaxTimeInCache,
      groupFailover: cfg.userAffinityGroupFailover ?? cfg.callIdAffinityGroupFailover,
    });
    this.key = affinityKeyReader(cfg.sipHeaderAffinityKey);
    this.fallback = affinityKeyReader(cfg.sipHeaderAffinityFallbackKey);
    this.exclude = cfg.sipHeaderAffinityExclusionPattern;
  }

  /** userAffinityGroupFailover, else callIdAffinityGroupFailover. */
  protected override groupFailoverOf(config: Config): boolean {
    return config.userAffinityGroupFailover ?? config.callIdAffinityGroupFailover;
  }

  protected keyOf(req: PickRequest): string {
    const user = this.key(req.msg);
    if (user !== null && !this.excluded(user)) return user;
    const other = this.fallback(req.msg);
    if (other !== null && !this.excluded(other)) return other;
    return req.callId;
  }

  private excluded(key: string): boolean {
    // The pattern is anchored by the configuration loader and has no g/y flag, so test() keeps no state.
    return this.exclude !== null && this.exclude.test(key);
  }
}
