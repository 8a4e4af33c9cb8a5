// RFC 3261 §17.1.1.1 and §17.1.2.2 transaction timers, as the balancer and the demo node use them.

/** T1: round-trip time estimate. */
export const T1_MS = 500;
/** T2: the longest retransmit interval of non-INVITE requests and INVITE responses. */
export const T2_MS = 4000;
/**
 * 64*T1 (Timers B, F and H): the longest a transaction is retransmitted. A call's last
 * transaction may still be retransmitted for this long after it ended.
 */
export const TRANSACTION_TIMEOUT_MS = 64 * T1_MS;
