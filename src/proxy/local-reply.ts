// Responses siplb generates itself (400, 416, 420, 482, 483, 503, 505). A stateless proxy answers
// only what it must refuse; everything else is the nodes' business.

import { hash } from 'node:crypto';
import type { SipMessage } from '../sip/message.ts';

export const REASONS: Record<number, string> = {
  400: 'Bad Request', 416: 'Unsupported URI Scheme', 420: 'Bad Extension', 482: 'Loop Detected',
  483: 'Too Many Hops', 503: 'Service Unavailable', 505: 'Version Not Supported', 513: 'Message Too Large',
};

/**
 * Build a response to `req`, or null when the request lacks what a response must echo (then the
 * request is dropped). `detail` goes into the reason phrase so the sender sees why.
 */
export function buildLocalReply(req: SipMessage, status: number, detail: string | null, extraHeaders: readonly string[] = []): Buffer | null {
  const vias: string[] = [];
  for (let i = 0; i < req.headerCount; i++) if (req.names[i] === 'via') vias.push(req.value(i));
  const from = req.get('from');
  const to = req.get('to');
  const callId = req.get('call-id');
  const cseq = req.get('cseq');
  if (vias.length === 0 || from === undefined || to === undefined || callId === undefined || cseq === undefined) return null;
  const base = REASONS[status] ?? 'Error';
  const reason = detail === null ? base : `${base} (${detail.replace(/[^\x20-\x7e]/g, '?')})`;
  // Deterministic To tag: a retransmitted request gets an identical response.
  const toValue = /;\s*tag\s*=/i.test(to) ? to : `${to};tag=lb${hash('sha1', callId + '|' + cseq, 'hex').slice(0, 10)}`;
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of vias) lines.push(`Via: ${v}`);
  lines.push(`From: ${from}`, `To: ${toValue}`, `Call-ID: ${callId}`, `CSeq: ${cseq}`, ...extraHeaders,
    'Server: siplb', 'Content-Length: 0', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}
