// The headers a stateless proxy writes and reads about itself (RFC 3261 §16.4, §16.6, §18.2.1,
// RFC 3581): its own Route entries popped from a request, its Record-Route with the node of the
// dialog, and received/rport on the sender's Via.

import type { Transport } from '../config/types.ts';
import { splitCommaRanges, unfold } from '../sip/lists.ts';
import { formatHost, nameAddrUri, parseSipUri } from '../sip/uri.ts';
import type { Via } from '../sip/via.ts';
import type { Side } from '../transport/types.ts';
import { FLOW_TOKEN_PREFIX } from './flow-token.ts';
import type { Family, LocalAddresses } from './local-addresses.ts';
import type { OwnTargets } from './policy.ts';
import type { RequestContext } from './request-context.ts';

/** Record-Route URI parameter that carries the node of the dialog. */
export const NODE_HINT_PARAM = 'lbnode';

/**
 * Removes the leading Route entries that name this balancer (its addresses, and the names
 * OwnTargets adds: matchingHostnameForRoute, the public addresses) and records, on the context,
 * the node hint they carry and the entries left (as text).
 */
export function popOwnRoutes(ctx: RequestContext, ours: Pick<OwnTargets, 'isOurs'>): void {
  const { msg, edit } = ctx;
  const head = msg.head;
  let popping = true;
  for (let i = msg.indexOf('route'); i !== -1; i = msg.indexOf('route', i + 1)) {
    const r = splitCommaRanges(head, msg.valueStarts[i], msg.lineEnds[i]);
    let popped = 0;
    for (let k = 0; k < r.length; k += 2) {
      const text = unfold(head.slice(r[k], r[k + 1]));
      if (popping) {
        const uriText = nameAddrUri(text);
        const uri = uriText === null ? null : parseSipUri(uriText);
        if (uri !== null && ours.isOurs(uri.host, uri.port)) {
          popped++;
          ctx.hint = uri.params.get(NODE_HINT_PARAM) ?? ctx.hint;
          // Our entries carry no user part but a flow token; any other is nobody's token.
          if (uri.user.startsWith(FLOW_TOKEN_PREFIX)) ctx.flowToken = uri.user;
          continue;
        }
        popping = false;
      }
      ctx.routes.push(text);
    }
    if (popped === 0) continue;
    if (popped * 2 === r.length) edit.removeHeader(i);
    else edit.replace(r[0], r[popped * 2], '');
  }
}

/** The transport URI parameter for a transport: WSS is `ws` too (RFC 7118 §5.2), UDP the default. */
export function transportParam(transport: Transport): string {
  return transport === 'udp' ? '' : `;transport=${transport === 'wss' ? 'ws' : transport}`;
}

/** What one of our Record-Route entries says besides the side, transport and family. */
export interface RecordRouteParts {
  /** The dialog's node (lbnode), or null. */
  readonly nodeId: string | null;
  /** In place of our own address: the public one a client behind NAT is given. */
  readonly hostPort?: string | null;
  /** Flow token naming the client's connection (flow-token.ts), for the entry that faces it. */
  readonly flowToken?: string | null;
}

/**
 * Our Record-Route for one side: the address that side's peers reach us on, over `transport`,
 * in their address family, and what the entry carries (RecordRouteParts).
 */
export function recordRoute(addresses: LocalAddresses, side: Side, transport: Transport, family: Family, parts: RecordRouteParts): string {
  const h = parts.nodeId === null ? '' : `;${NODE_HINT_PARAM}=${parts.nodeId}`;
  const user = parts.flowToken == null ? '' : `${parts.flowToken}@`;
  return `Record-Route: <sip:${user}${parts.hostPort ?? addresses.recordRoute(side, transport, family)}${transportParam(transport)};lr${h}>`;
}

/**
 * The rport a top Via gets from where its request came (RFC 3581 §4: when the sender asked for
 * it; over a stream always, so the response finds the connection it came on), or null.
 */
export function rportFor(via: Via, port: number, stream: boolean): number | null {
  return stream || via.rport === null ? port : null;
}

/** A top Via gets received with rport, or when its sent-by host is not the source address (RFC 3261 §18.2.1). */
export function needsReceived(via: Via, ip: string, rport: number | null): boolean {
  return rport !== null || via.host !== ip;
}

/** The Via value with received (and rport, when given) set, replacing any the sender put there. */
export function withReceived(via: string, ip: string, rport: number | null): string {
  let v = via.replace(/;\s*received\s*=\s*[^;,\s]*/gi, '');
  if (rport !== null) v = v.replace(/;\s*rport(\s*=\s*[^;,\s]*)?/gi, '');
  // Not /\s+$/: V8 tries it at every run of blanks, so a Via with a long one inside took
  // quadratic time (the fuzzer's 15 kB of tabs: 58 ms a message).
  v = v.trimEnd();
  return `${v};received=${formatHost(ip).replace(/^\[|\]$/g, '')}${rport !== null ? `;rport=${rport}` : ''}`;
}
