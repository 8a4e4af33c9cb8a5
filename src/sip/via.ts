// Via values: the parts that decide where a response goes (RFC 3261 §18.2.2, RFC 3581) and
// that identify a transaction (branch).

import { parseHostPort } from './uri.ts';

export interface Via {
  transport: string;      // uppercase: UDP, TCP, TLS, WS, WSS, SCTP...
  host: string;           // sent-by host, lowercase, IPv6 without brackets
  port: number | null;    // sent-by port
  branch: string | null;
  received: string | null;
  /** undefined: no rport; null: rport without value (a request asking for it); else the value. */
  rport: number | null | undefined;
}

const VIA_RE = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z0-9-]+)\s+([^;\s]+(?:\s*:\s*\d+)?)\s*(;.*)?$/i;

/** Parse one Via value (already split at commas and unfolded). Null when malformed. */
export function parseVia(v: string): Via | null {
  const m = VIA_RE.exec(v);
  if (m === null) return null;
  const hp = parseHostPort(m[2].replace(/\s+/g, ''));
  if (hp === null) return null;
  let branch: string | null = null;
  let received: string | null = null;
  let rport: number | null | undefined;
  if (m[3] !== undefined) {
    for (const raw of m[3].split(';')) {
      if (raw.length === 0) continue;
      const eq = raw.indexOf('=');
      const name = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
      const value = eq === -1 ? null : raw.slice(eq + 1).trim();
      if (name === 'branch') branch = value;
      else if (name === 'received') received = value;
      else if (name === 'rport') {
        if (value === null || value === '') rport = null;
        else if (/^\d{1,5}$/.test(value) && Number(value) <= 65535) rport = Number(value);
        else return null;
      }
    }
  }
  return { transport: m[1].toUpperCase(), host: hp.host, port: hp.port, branch, received, rport };
}

export function defaultPort(transport: string): number {
  return transport === 'TLS' || transport === 'WSS' ? 5061 : 5060;
}

/** Where a response to this Via goes: received/rport win over sent-by (RFC 3581 §4). */
export function responseTarget(via: Via): { host: string; port: number } {
  return {
    host: via.received ?? via.host,
    port: typeof via.rport === 'number' ? via.rport : (via.port ?? defaultPort(via.transport)),
  };
}
