// The heartbeat protocol (docs/heartbeat-protocol.md) as both ends speak it: the node agent
// builds requests and reads answers with these functions, the balancer's heartbeat endpoint
// reads requests and builds answers with them. One module, so the two ends cannot drift apart.
// Nothing here does I/O, and nothing throws on what a peer sent: a bad message is a reason (a
// string), never an exception.

import { isIP } from 'node:net';
import type { Transport } from '../config/types.ts';

/** Where balancers listen for heartbeats unless `heartbeatPort` says otherwise (Restcomm's port). */
export const DEFAULT_HEARTBEAT_PORT = 2610;

/** Bound on a request body and on an answer: both are a few hundred bytes at most. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

export const MAX_SESSION_ID_LENGTH = 256;

/** Shortest heartbeat token either end accepts (the balancer's heartbeatToken key says the same). */
export const MIN_TOKEN_LENGTH = 16;

/** Why a heartbeat token cannot be used; null when it can. Never quotes the token. */
export function tokenProblem(token: string): string | null {
  if (token.length < MIN_TOKEN_LENGTH) return `must be at least ${MIN_TOKEN_LENGTH} characters long (got ${token.length})`;
  // It travels in an HTTP header: anything else is refused by HTTP clients or split by the Bearer syntax.
  if (!/^[\x21-\x7e]+$/.test(token)) return 'must be visible ASCII characters without spaces';
  return null;
}

/** The Authorization header value that carries a heartbeat token. */
export function authorization(token: string): string {
  return `Bearer ${token}`;
}

/** The token an Authorization header carries, or null when it carries none (absent, another scheme). */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m === null ? null : m[1];
}

export const REQUEST_KINDS = ['start', 'heartbeat', 'shutdown', 'stop'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** Port fields of the NODE object: SIP ports by transport, HTTP ports, the node's own heartbeat port. */
export const PORT_FIELDS = ['udpPort', 'tcpPort', 'tlsPort', 'wsPort', 'wssPort', 'httpPort', 'sslPort', 'heartbeatPort'] as const;
export type PortField = (typeof PORT_FIELDS)[number];

/** The NODE object a node announces in `start`, minus its sessionId. Absent and 0 ports are not offered. */
export interface NodeInfo {
  ip: string;
  hostName?: string;
  udpPort?: number;
  tcpPort?: number;
  tlsPort?: number;
  wsPort?: number;
  wssPort?: number;
  httpPort?: number;
  sslPort?: number;
  version?: string;
  jvmRoute?: string;
  heartbeatPort?: number;
}

/** A validated `start` as a balancer keeps it (and shares it with other balancers through the store). */
export interface NodeRegistration {
  ip: string;
  /** SIP ports by transport; at least one. */
  ports: Partial<Record<Transport, number>>;
  sessionId: string;
  version: string;
  hostName?: string;
  httpPort?: number;
  sslPort?: number;
  /** SIP over WebSocket port. */
  wsPort?: number;
  jvmRoute?: string;
  /** Other fields the node sent, kept for the admin surface. */
  extra?: Record<string, unknown>;
}

/** The SIP port a registration is known by: its id is `ip:port` of this port. */
export function registrationPort(reg: Pick<NodeRegistration, 'ports'>): number | undefined {
  const p = reg.ports;
  return p.udp ?? p.tcp ?? p.tls ?? p.ws ?? p.wss;
}

// ------------------------------------------------------------------------------- node side

/** The body of a request: `start` carries the NODE object, the others the session alone. */
export function requestBody(kind: RequestKind, node: NodeInfo, sessionId: string): string {
  return JSON.stringify({ [kind]: kind === 'start' ? startFields(node, sessionId) : { sessionId } });
}

/** The NODE object of `start`: absent and 0 ports are left out, as the protocol reads them alike. */
function startFields(node: NodeInfo, sessionId: string): Record<string, string | number> {
  const out: Record<string, string | number> = { ip: node.ip };
  if (node.hostName !== undefined) out.hostName = node.hostName;
  for (const field of PORT_FIELDS) {
    const port = node[field];
    if (port !== undefined && port !== 0) out[field] = port;
  }
  if (node.version !== undefined) out.version = node.version;
  if (node.jvmRoute !== undefined) out.jvmRoute = node.jvmRoute;
  out.sessionId = sessionId;
  return out;
}

/** What a balancer's answer means for the node. */
export type AnswerOutcome =
  | { kind: 'ok' }
  | { kind: 'unknown-session' }
  /** unauthorized: the balancer answered 401, it wants another heartbeat token (or one at all). */
  | { kind: 'miss'; reason: string; unauthorized?: true };

/** Reads a balancer's answer to a `kind` request (HTTP status and body). */
export function readAnswer(kind: RequestKind, status: number | undefined, body: Buffer): AnswerOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const obj = isObject(parsed) ? parsed : null;
  if (status !== 200) {
    const why = obj !== null && typeof obj.error === 'string' ? `: ${obj.error}` : '';
    const reason = `HTTP ${status ?? '?'}${why}`;
    return status === 401 ? { kind: 'miss', reason, unauthorized: true } : { kind: 'miss', reason };
  }
  if (obj === null) return { kind: 'miss', reason: 'answer is not a JSON object' };
  const answer = obj[kind];
  if (answer === 'OK') return { kind: 'ok' };
  if (answer === 'UNKNOWN_SESSION') return { kind: 'unknown-session' };
  return { kind: 'miss', reason: `unexpected answer ${JSON.stringify(parsed).slice(0, 200)}` };
}

/** Why a NODE description would be refused by the balancers; null when it is acceptable. */
export function nodeInfoProblem(node: NodeInfo): { field: string; value: string; reason: string } | null {
  if (isIP(node.ip) === 0) return { field: 'ip', value: node.ip, reason: 'must be an IP literal (the balancers send SIP to it)' };
  for (const field of PORT_FIELDS) {
    const port = node[field];
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      return { field, value: String(port), reason: 'must be an integer port 1..65535 (0 = not offered)' };
    }
  }
  if (!(node.udpPort ?? 0) && !(node.tcpPort ?? 0) && !(node.tlsPort ?? 0) && !(node.wsPort ?? 0) && !(node.wssPort ?? 0)) {
    return { field: 'udpPort', value: String(node.udpPort ?? ''), reason: 'a node needs a SIP port (udpPort, tcpPort, tlsPort, wsPort or wssPort)' };
  }
  return null;
}

// --------------------------------------------------------------------------- balancer side

/** A request as the balancer dispatches it: its kind and the fields of its object. */
export interface ParsedRequest {
  kind: RequestKind;
  fields: Record<string, unknown>;
}

/** The request in a parsed JSON body, or the reason it is not one. */
export function parseRequest(body: unknown): ParsedRequest | string {
  if (!isObject(body)) return 'body must be a JSON object';
  const keys = Object.keys(body);
  if (keys.length !== 1) return `body must have exactly one key (start, heartbeat, shutdown or stop), got ${keys.length}`;
  const verb = keys[0];
  if (!(REQUEST_KINDS as readonly string[]).includes(verb)) return `unknown request "${verb}" (expected start, heartbeat, shutdown or stop)`;
  const fields = body[verb];
  if (!isObject(fields)) return `"${verb}" must hold a JSON object`;
  return { kind: verb as RequestKind, fields };
}

/** The sessionId of a heartbeat, shutdown or stop, or the reason it has none. */
export function parseSessionId(kind: RequestKind, fields: Record<string, unknown>): string | { problem: string } {
  const sessionId = fields.sessionId;
  if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > MAX_SESSION_ID_LENGTH) {
    return { problem: `"${kind}.sessionId" must be a non-empty string of at most ${MAX_SESSION_ID_LENGTH} characters` };
  }
  return sessionId;
}

const KNOWN_FIELDS = new Set<string>(['ip', 'hostName', 'version', 'sessionId', 'jvmRoute', ...PORT_FIELDS]);

/** A validated registration from the fields of `start`, or the reason it is not one. */
export function parseRegistration(f: Record<string, unknown>): NodeRegistration | string {
  const ip = f.ip;
  if (typeof ip !== 'string' || isIP(ip) === 0) return '"start.ip" must be an IP address literal';
  const sessionId = parseSessionId('start', f);
  if (typeof sessionId !== 'string') return sessionId.problem;
  const ports: Partial<Record<PortField, number>> = {};
  for (const name of PORT_FIELDS) {
    const v = f[name];
    if (v === undefined || v === null || v === 0 || v === '0') continue;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) return `"start.${name}" must be a port from 1 to 65535`;
    ports[name] = n;
  }
  if (ports.udpPort === undefined && ports.tcpPort === undefined && ports.tlsPort === undefined && ports.wsPort === undefined && ports.wssPort === undefined) {
    return '"start" needs a SIP port: udpPort, tcpPort, tlsPort, wsPort or wssPort';
  }
  const version = f.version === undefined ? '0' : f.version;
  if (typeof version !== 'string' && typeof version !== 'number') return '"start.version" must be a string';
  for (const name of ['hostName', 'jvmRoute'] as const) {
    if (f[name] !== undefined && typeof f[name] !== 'string') return `"start.${name}" must be a string`;
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) if (!KNOWN_FIELDS.has(k)) extra[k] = v;
  const sipPorts: NodeRegistration['ports'] = {};
  if (ports.udpPort !== undefined) sipPorts.udp = ports.udpPort;
  if (ports.tcpPort !== undefined) sipPorts.tcp = ports.tcpPort;
  if (ports.tlsPort !== undefined) sipPorts.tls = ports.tlsPort;
  if (ports.wsPort !== undefined) sipPorts.ws = ports.wsPort;
  if (ports.wssPort !== undefined) sipPorts.wss = ports.wssPort;
  return {
    ip: ip.toLowerCase(), ports: sipPorts, sessionId, version: String(version),
    hostName: f.hostName as string | undefined, jvmRoute: f.jvmRoute as string | undefined,
    httpPort: ports.httpPort, sslPort: ports.sslPort, wsPort: ports.wsPort, extra,
  };
}

/**
 * The answer to a request: `OK`, or `UNKNOWN_SESSION` when the balancer does not know the
 * session (a heartbeat's answer then also says to send `start` again).
 */
export function answerBody(kind: RequestKind, known: boolean): Record<string, string> {
  if (known) return { [kind]: 'OK' };
  return kind === 'heartbeat' ? { heartbeat: 'UNKNOWN_SESSION', send: 'start' } : { [kind]: 'UNKNOWN_SESSION' };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
