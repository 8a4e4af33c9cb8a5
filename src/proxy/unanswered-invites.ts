// INVITEs siplb has answered with its own 100 Trying (isSendTrying) and forwarded to a node that
// has not answered yet. The 100 stops the client's retransmissions (RFC 3261 §17.1.1.2), and
// those retransmissions are what moves an INVITE to a live node when its node dies between
// receiving it and answering: a stateless proxy without the 100 gets that failover for free. So
// siplb keeps each such INVITE as it arrived until the node answers it (any response, the 100
// included), and when the node goes down or is taken out for leaving requests unanswered, hands
// them back to the proxy to be placed again, as the client's retransmission would have been.
//
// Normal traffic keeps this near empty (nodes answer in milliseconds): one Map insert per INVITE
// and one delete per INVITE response. Entries older than Timer B (64*T1, when the client gives
// up anyway) are dropped, and the count is capped so a node that never answers cannot make this
// grow without bound.

import { TRANSACTION_TIMEOUT_MS } from '../sip/timers.ts';
import type { Inbound } from '../transport/types.ts';

export interface UnansweredInvite {
  readonly nodeId: string;
  /** The INVITE as it arrived, so placing it again is the same as receiving it again. */
  readonly data: Buffer;
  readonly src: Inbound;
  readonly at: number;
}

export const MAX_UNANSWERED_INVITES = 20_000;

export class UnansweredInvites {
  /** By the branch siplb sent the INVITE with; Map order is insertion order, so oldest first. */
  private readonly byBranch = new Map<string, UnansweredInvite>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;

  constructor(maxAgeMs = TRANSACTION_TIMEOUT_MS, maxEntries = MAX_UNANSWERED_INVITES) {
    this.maxAgeMs = maxAgeMs;
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.byBranch.size;
  }

  /** The INVITE went to `nodeId` with our branch `branch`; a retransmission replaces its entry. */
  forwarded(branch: string, nodeId: string, data: Buffer, src: Inbound, now: number): void {
    this.byBranch.delete(branch);
    // A stream chunk may hold many messages: keep a copy of this one, not the whole chunk.
    const own = src.transport === 'udp' ? data : Buffer.from(data);
    this.byBranch.set(branch, { nodeId, data: own, src, at: now });
    this.expire(now);
  }

  /** A response came back through our Via with this branch: the node has the INVITE. */
  answered(branch: string): void {
    if (this.byBranch.size !== 0) this.byBranch.delete(branch);
  }

  /** Removes and returns the INVITEs `nodeId` has left unanswered, oldest first. */
  takeFor(nodeId: string, now: number): UnansweredInvite[] {
    this.expire(now);
    const out: UnansweredInvite[] = [];
    for (const [branch, invite] of this.byBranch) {
      if (invite.nodeId !== nodeId) continue;
      this.byBranch.delete(branch);
      out.push(invite);
    }
    return out;
  }

  private expire(now: number): void {
    for (const [branch, invite] of this.byBranch) {
      if (now - invite.at <= this.maxAgeMs && this.byBranch.size <= this.maxEntries) return;
      this.byBranch.delete(branch);
    }
  }
}
