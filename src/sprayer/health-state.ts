// Whether one balancer is up, from the results of its probe rounds. A round passes only when
// every probed transport passed (a balancer that answers on UDP but not TCP would lose the TCP
// clients hashed to it, so it is out).
//
// The first round decides at once, whatever rise and fall say: at start-up the advisor has no
// earlier evidence to weigh, and waiting rise × interval before spraying anything would keep the
// VIP dark for no reason. After that a balancer goes down after `fall` failed rounds in a row and
// comes back after `rise` passed rounds in a row.

export type BalancerState = 'unknown' | 'up' | 'down';

export interface Transition {
  from: BalancerState;
  to: BalancerState;
  reason: string;
}

export class HealthState {
  private readonly rise: number;
  private readonly fall: number;
  state: BalancerState = 'unknown';
  /** Why it is in its state: the passing answer, or the failure that took it out. */
  reason = 'not probed yet';
  /** When it entered its state (ms since the epoch). */
  since: number;
  consecutivePass = 0;
  consecutiveFail = 0;

  constructor(rise: number, fall: number, now = Date.now()) {
    if (!Number.isInteger(rise) || rise < 1 || !Number.isInteger(fall) || fall < 1) throw new RangeError('HealthState: rise and fall must be integers >= 1');
    this.rise = rise;
    this.fall = fall;
    this.since = now;
  }

  /** One round's verdict; the transition it causes, if any. */
  record(ok: boolean, reason: string, now = Date.now()): Transition | null {
    if (ok) {
      this.consecutivePass++;
      this.consecutiveFail = 0;
    } else {
      this.consecutiveFail++;
      this.consecutivePass = 0;
    }
    const next = this.next(ok);
    if (next === this.state) {
      // While up, the reason is the latest answer; while down, the failure that took it out stays.
      if (ok && this.state === 'up') this.reason = reason;
      return null;
    }
    const t = { from: this.state, to: next, reason };
    this.state = next;
    this.reason = reason;
    this.since = now;
    return t;
  }

  private next(ok: boolean): BalancerState {
    switch (this.state) {
      case 'unknown': return ok ? 'up' : 'down';
      case 'up': return !ok && this.consecutiveFail >= this.fall ? 'down' : 'up';
      case 'down': return ok && this.consecutivePass >= this.rise ? 'up' : 'down';
    }
  }
}
