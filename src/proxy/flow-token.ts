// Flow tokens (RFC 5626 §5.2, as an edge proxy uses them): the user part siplb writes into the
// Record-Route (and Path) entry that faces a client on a stream connection, naming that very
// connection. A node's later request that carries the entry back in its Route goes out on the
// client's connection, whatever its Request-URI says: a WebSocket client's Contact host is
// `*.invalid` and a client behind NAT listens nowhere. No per-dialog state is kept; the token
// carries the connection's id, and a keyed MAC over it so that a peer cannot aim a request at
// someone else's connection by writing another number.
//
//   "lbf" + base64url( boot (4 bytes) | connection id (6 bytes) | MAC (10 bytes) )
//
// `boot` is random per process: a token minted by another balancer (they share the MAC key) or
// by this one before a restart names a connection that is not here, which is a failed flow
// (430), not a forgery (403).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const FLOW_TOKEN_PREFIX = 'lbf';
const BOOT_LEN = 4;
const ID_LEN = 6;
const MAC_LEN = 10;
const RAW_LEN = BOOT_LEN + ID_LEN + MAC_LEN;
const MAX_CACHED = 20_000;
const TOKEN_LEN = FLOW_TOKEN_PREFIX.length + Math.ceil((RAW_LEN * 4) / 3);

export type FlowTokenCheck =
  | { readonly kind: 'here'; readonly connectionId: number }
  /** Genuine, but minted by another process (another balancer, or this one before a restart). */
  | { readonly kind: 'elsewhere' }
  | { readonly kind: 'forged' };

export class FlowTokens {
  private readonly key: Buffer;
  private readonly boot: Buffer;
  /**
   * Tokens made, by connection id: every dialog a connection starts needs the same token, and a
   * connection id is never reused in a process, so an entry never goes stale. Bounded by
   * starting over, which costs only a recomputation.
   */
  private readonly made = new Map<number, string>();

  constructor(secret: string, boot: Buffer = randomBytes(BOOT_LEN)) {
    this.key = createHmac('sha256', secret).update('siplb flow token').digest();
    this.boot = boot;
  }

  /** A user part naming stream connection `connectionId` of this process. */
  make(connectionId: number): string {
    const cached = this.made.get(connectionId);
    if (cached !== undefined) return cached;
    const raw = Buffer.allocUnsafe(RAW_LEN);
    this.boot.copy(raw, 0);
    raw.writeUIntBE(connectionId, BOOT_LEN, ID_LEN);
    this.mac(raw.subarray(0, BOOT_LEN + ID_LEN)).copy(raw, BOOT_LEN + ID_LEN);
    const token = FLOW_TOKEN_PREFIX + raw.toString('base64url');
    if (this.made.size >= MAX_CACHED) this.made.clear();
    this.made.set(connectionId, token);
    return token;
  }

  /** Whether a user part looks like one of our tokens at all (else it is just a user part). */
  static isToken(user: string): boolean {
    return user.length === TOKEN_LEN && user.startsWith(FLOW_TOKEN_PREFIX);
  }

  check(token: string): FlowTokenCheck {
    if (!FlowTokens.isToken(token)) return { kind: 'forged' };
    const raw = Buffer.from(token.slice(FLOW_TOKEN_PREFIX.length), 'base64url');
    if (raw.length !== RAW_LEN) return { kind: 'forged' };
    const expected = this.mac(raw.subarray(0, BOOT_LEN + ID_LEN));
    if (!timingSafeEqual(expected, raw.subarray(BOOT_LEN + ID_LEN))) return { kind: 'forged' };
    if (!raw.subarray(0, BOOT_LEN).equals(this.boot)) return { kind: 'elsewhere' };
    return { kind: 'here', connectionId: raw.readUIntBE(BOOT_LEN, ID_LEN) };
  }

  private mac(data: Buffer): Buffer {
    return createHmac('sha256', this.key).update(data).digest().subarray(0, MAC_LEN);
  }
}
