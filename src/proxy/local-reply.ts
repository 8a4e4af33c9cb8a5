// Responses siplb generates itself: the 200 to an OPTIONS for the balancer itself, the refusals (400, 403 and 430 for flow tokens, 416, 420, 480,
// 482, 483, 503 or the configured 5xx, 505) and the 100 Trying it sends for an INVITE it forwards (isSendTrying). A stateless
// proxy answers only what it must; everything else is the nodes' business.

import { hash } from 'node:crypto';
import { splitCommaRanges } from '../sip/lists.ts';
import type { SipMessage } from '../sip/message.ts';
import { parseVia } from '../sip/via.ts';
import type { Inbound } from '../transport/types.ts';
import { needsReceived, rportFor, withReceived } from './route-headers.ts';

/** Where the request came from: the top Via of a reply names it as RFC 3261 §18.2.1 and RFC 3581 say. */
export type ReplySource = Pick<Inbound, 'ip' | 'port' | 'transport'>;

export const REASONS: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 403: 'Forbidden', 416: 'Unsupported URI Scheme', 430: 'Flow Failed', 480: 'Temporarily Unavailable', 420: 'Bad Extension', 482: 'Loop Detected',
  483: 'Too Many Hops', 500: 'Server Internal Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Server Time-out', 505: 'Version Not Supported', 513: 'Message Too Large',
};

/**
 * Build a response to `req`, or null when the request lacks what a response must echo (then the
 * request is dropped). `detail` goes into the reason phrase so the sender sees why.
 */
export function buildLocalReply(req: SipMessage, status: number, detail: string | null, extraHeaders: readonly string[] = [], topViaParams = '', source: ReplySource | null = null): Buffer | null {
  const vias: string[] = [];
  for (let i = 0; i < req.headerCount; i++) if (req.names[i] === 'via') vias.push(req.value(i));
  if (source !== null && vias.length > 0) vias[0] = withSource(vias[0], source);
  // RFC 7339: a server's overload parameters replace the client's bare `oc` in the top Via.
  if (topViaParams !== '' && vias.length > 0) vias[0] = replaceFirst(vias[0], (top) => top.replace(/;\s*oc(?=\s*(;|$))/i, '') + topViaParams);
  const from = req.get('from');
  const to = req.get('to');
  const callId = req.get('call-id');
  const cseq = req.get('cseq');
  if (vias.length === 0 || from === undefined || to === undefined || callId === undefined || cseq === undefined) return null;
  const base = REASONS[status] ?? 'Error';
  const reason = detail === null ? base : `${base} (${detail.replace(/[^\x20-\x7e]/g, '?')})`;
  // Deterministic To tag: a retransmitted request gets an identical response.
  const toValue = /;\s*tag\s*=/i.test(to) ? to : `${to};tag=${localReplyTag(callId, cseq)}`;
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of vias) lines.push(`Via: ${v}`);
  lines.push(`From: ${from}`, `To: ${toValue}`, `Call-ID: ${callId}`, `CSeq: ${cseq}`, ...extraHeaders,
    'Server: siplb', 'Content-Length: 0', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/**
 * The first Via value of a header line with received and rport filled in by the rule a request
 * siplb forwards follows (route-headers.ts). A top Via that does not parse is left as it came
 * (the reply is then a 400 about it, or the sender is owed nothing better).
 */
function withSource(line: string, source: ReplySource): string {
  return replaceFirst(line, (top) => {
    const via = parseVia(top);
    if (via === null) return top;
    const rport = rportFor(via, source.port, source.transport !== 'udp');
    return needsReceived(via, source.ip, rport) ? withReceived(top, source.ip, rport) : top;
  });
}

/** `line` with its first comma-separated value replaced by `f` of it. */
function replaceFirst(line: string, f: (value: string) => string): string {
  const r = splitCommaRanges(line, 0, line.length);
  if (r.length === 0) return line;
  return line.slice(0, r[0]) + f(line.slice(r[0], r[1])) + line.slice(r[1]);
}

/** The To tag of a reply siplb makes itself: "lb" and a hash of Call-ID and CSeq, so that it needs no state. */
export function localReplyTag(callId: string, cseq: string): string {
  return `lb${hash('sha1', callId + '|' + cseq, 'hex').slice(0, 10)}`;
}

/**
 * The ACK for a final response siplb made itself (a 503 while overloaded, a 4xx refusal): its To
 * tag is the one that response carried, recomputed from the INVITE's CSeq. Such an ACK ends a
 * transaction that lives only here (RFC 3261 §17.1.1.3); forwarding it would cost a send and send
 * a node an ACK for a call it never saw, so it is absorbed, as Kamailio's sl module does.
 */
export function isAckToLocalReply(toTag: string | null, callId: string, cseq: string | undefined): boolean {
  if (toTag === null || toTag.length !== 12 || !toTag.startsWith('lb') || cseq === undefined) return false;
  const m = /^(\s*\d+\s+)ACK\s*$/i.exec(cseq);
  return m !== null && localReplyTag(callId, `${m[1]}INVITE`) === toTag;
}

/** The top Via value as the request was forwarded (received/rport set), and where it stood in the head. */
export interface TopViaAsForwarded {
  readonly start: number;
  readonly end: number;
  readonly value: string;
}

/**
 * 100 Trying for an INVITE, built on the per-call path: one pass over the header index, the
 * lines it must echo (Via, From, To, Call-ID, CSeq; Timestamp, RFC 3261 §8.2.6.1) copied as
 * they arrived, no value parsing, but for the top Via with the received/rport the forwarded
 * INVITE got (`topVia`, when it got any). No To tag: a 100 establishes nothing (RFC 3261 §8.2.6.2), and
 * a tag of ours would be a second, bogus early dialog to a UAC that records it. The request has
 * passed validation, so every line it needs is there.
 */
export function buildTrying(req: SipMessage, topVia: TopViaAsForwarded | null = null): Buffer {
  const head = req.head;
  const names = req.names;
  let out = 'SIP/2.0 100 Trying\r\n';
  let viaSeen = false;
  for (let i = 0; i < names.length; i++) {
    switch (names[i]) {
      case 'via':
        out += !viaSeen && topVia !== null
          ? head.slice(req.lineStarts[i], topVia.start) + topVia.value + head.slice(topVia.end, req.lineEnds[i]) + '\r\n'
          : head.slice(req.lineStarts[i], req.lineEnds[i]) + '\r\n';
        viaSeen = true;
        break;
      case 'from': case 'to': case 'call-id': case 'cseq': case 'timestamp':
        out += head.slice(req.lineStarts[i], req.lineEnds[i]) + '\r\n';
    }
  }
  return Buffer.from(out + 'Content-Length: 0\r\n\r\n', 'latin1');
}
