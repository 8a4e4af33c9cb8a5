// Building test messages and reading parsed messages in assertions.

import { splitCommaRanges } from '../../src/sip/lists.ts';
import { isParseFailure, parseSipMessage, type SipMessage } from '../../src/sip/message.ts';

/** What an initial INVITE of the tests carries besides its Call-ID. */
export interface InviteParts {
  /** User of the Request-URI (sip:user@10.0.0.1). */
  requestUser?: string;
  /** The From and To values (name-addr with parameters). */
  from?: string;
  to?: string;
  extra?: readonly string[];
}

/** A parsed initial INVITE from a client; throws on a message the test got wrong. */
export function inviteWith(callId: string, parts: InviteParts = {}): SipMessage {
  const m = parseSipMessage(Buffer.from([
    `INVITE sip:${parts.requestUser ?? 'service'}@10.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-${callId}`,
    `From: ${parts.from ?? '<sip:caller@example.org>;tag=1'}`,
    `To: ${parts.to ?? '<sip:service@example.com>'}`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    ...(parts.extra ?? []),
    'Content-Length: 0',
  ].join('\r\n') + '\r\n\r\n', 'latin1'), true);
  if (isParseFailure(m) || m.error !== null) throw new Error(`bad test message for ${callId}`);
  return m;
}

/** An initial INVITE for `toUser` (Request-URI and To), with extra header lines. */
export function invite(callId: string, toUser = 'service', extra: readonly string[] = []): SipMessage {
  return inviteWith(callId, { requestUser: toUser, to: `<sip:${toUser}@example.com>`, extra });
}

/** Comma-separated elements of every header line with this name, in order. */
export function elements(m: SipMessage, name: string): string[] {
  const out: string[] = [];
  for (const v of m.getAll(name)) {
    const r = splitCommaRanges(v, 0, v.length);
    for (let k = 0; k < r.length; k += 2) out.push(v.slice(r[k], r[k + 1]));
  }
  return out;
}
