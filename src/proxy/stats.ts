// Counters of the SIP data path. Plain numbers: incremented on the hot path, read by the admin
// surface and the logs.

export class ProxyStats {
  requestsIn = 0;
  responsesIn = 0;
  requestsForwarded = 0;
  responsesForwarded = 0;
  unparseable = 0;
  /** INVITEs placed again because their node went down before answering (isSendTrying). */
  invitesReplaced = 0;
  readonly localReplies = new Map<number, number>();
  readonly dropped = new Map<string, number>();

  countReply(status: number): void {
    this.localReplies.set(status, (this.localReplies.get(status) ?? 0) + 1);
  }

  countDrop(reason: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  toJSON(): Record<string, unknown> {
    return {
      requestsIn: this.requestsIn, responsesIn: this.responsesIn,
      requestsForwarded: this.requestsForwarded, responsesForwarded: this.responsesForwarded,
      unparseable: this.unparseable, invitesReplaced: this.invitesReplaced,
      localReplies: Object.fromEntries(this.localReplies), dropped: Object.fromEntries(this.dropped),
    };
  }
}
