// The headers a stateless proxy writes and reads about itself (RFC 3261 §16.4, §16.6, §18.2.1,
// RFC 3581): its own Route entries popped from a request, its Record-Route with the node of the
// dialog, and received/rport on the sender's Via.

import type { Transport } from '../config/types.ts';
import { splitCommaRanges, unfold } from '../sip/lists.ts';
import { formatHost, nameAddrUri, parseSipUri } from '../sip/uri.ts';
import type { Side } from '../transport/types.ts';
import type { LocalAddresses } from './local-addresses.ts';
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

/**
 * Our Record-Route for one side: the address that side's peers reach us on (or `hostPort`: the
 * public address a client behind NAT is given), and the dialog's node.
 */
export function recordRoute(addresses: LocalAddresses, side: Side, transport: Transport, nodeId: string | null, hostPort: string | null = null): string {
  const t = transport === 'udp' ? '' : `;transport=${transport}`;
  const h = nodeId === null ? '' : `;${NODE_HINT_PARAM}=${nodeId}`;
  return `Record-Route: <sip:${hostPort ?? addresses.recordRoute(side, transport)}${t};lr${h}>`;
}

/** The Via value with received (and rport, when given) set, replacing any the sender put there. */
export function withReceived(via: string, ip: string, rport: number | null): string {
  let v = via.replace(/;\s*received\s*=\s*[^;,\s]*/gi, '');
  if (rport !== null) v = v.replace(/;\s*rport(\s*=\s*[^;,\s]*)?/gi, '');
  v = v.replace(/\s+$/, '');
  return `${v};received=${formatHost(ip).replace(/^\[|\]$/g, '')}${rport !== null ? `;rport=${rport}` : ''}`;
}
