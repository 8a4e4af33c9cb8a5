// HTTP/JSON endpoint where nodes register (docs/heartbeat-protocol.md): start, heartbeat,
// shutdown, stop. Every request is validated in full before it touches the registry; a bad one
// gets 400 with the reason and changes nothing.

import http from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { BindError } from '../core/errors.ts';
import { rateLimit } from '../core/log.ts';
import type { NodeRegistration, NodeRegistry } from './node-registry.ts';

const MAX_BODY_BYTES = 64 * 1024;
const PORT_FIELDS = ['udpPort', 'tcpPort', 'tlsPort', 'wsPort', 'wssPort', 'httpPort', 'sslPort', 'heartbeatPort'] as const;
const KNOWN_FIELDS = new Set<string>(['ip', 'hostName', 'version', 'sessionId', 'jvmRoute', ...PORT_FIELDS]);

export class HeartbeatServer {
  private readonly server: http.Server;
  private readonly registry: NodeRegistry;
  private readonly log: Logger;
  private readonly badRequestLogGate = rateLimit(10_000);
  badRequests = 0;

  constructor(registry: NodeRegistry, log: Logger) {
    this.registry = registry;
    this.log = log;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
    this.server.keepAliveTimeout = 30_000;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new BindError(`cannot bind heartbeat HTTP ${host}:${port}: ${err.message}`));
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log.warn({ err: err.message }, 'heartbeat server error'));
        resolve();
      });
    });
  }

  address(): { port: number } {
    return this.server.address() as { port: number };
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url !== '/' && req.url !== '') return this.reply(res, 404, { error: `no such path ${req.url ?? ''}; POST / with a JSON body` });
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return this.reply(res, 405, { error: 'only POST is accepted' });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (tooLarge) return this.bad(res, `body larger than ${MAX_BODY_BYTES} bytes`);
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        return this.bad(res, `body is not JSON: ${(err as Error).message}`);
      }
      this.dispatch(body, res);
    });
  }

  private dispatch(body: unknown, res: http.ServerResponse): void {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return this.bad(res, 'body must be a JSON object');
    const keys = Object.keys(body);
    if (keys.length !== 1) return this.bad(res, `body must have exactly one key (start, heartbeat, shutdown or stop), got ${keys.length}`);
    const verb = keys[0];
    const arg = (body as Record<string, unknown>)[verb];
    if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return this.bad(res, `"${verb}" must hold a JSON object`);
    const fields = arg as Record<string, unknown>;
    switch (verb) {
      case 'start': {
        const reg = parseRegistration(fields);
        if (typeof reg === 'string') return this.bad(res, reg);
        this.registry.start(reg);
        return this.reply(res, 200, { start: 'OK' });
      }
      case 'heartbeat':
      case 'shutdown':
      case 'stop': {
        const sessionId = fields.sessionId;
        if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 256) {
          return this.bad(res, `"${verb}.sessionId" must be a non-empty string of at most 256 characters`);
        }
        if (verb === 'heartbeat') {
          return this.reply(res, 200, this.registry.heartbeat(sessionId) ? { heartbeat: 'OK' } : { heartbeat: 'UNKNOWN_SESSION', send: 'start' });
        }
        const known = verb === 'shutdown' ? this.registry.shutdown(sessionId) : this.registry.stop(sessionId);
        return this.reply(res, 200, { [verb]: known ? 'OK' : 'UNKNOWN_SESSION' });
      }
      default:
        return this.bad(res, `unknown request "${verb}" (expected start, heartbeat, shutdown or stop)`);
    }
  }

  private bad(res: http.ServerResponse, reason: string): void {
    this.badRequests++;
    if (this.badRequestLogGate()) this.log.warn({ reason, badRequestsSoFar: this.badRequests }, 'bad heartbeat request (logged at most every 10 s)');
    this.reply(res, 400, { error: reason });
  }

  private reply(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}

/** A validated registration, or the reason it is not one. */
export function parseRegistration(f: Record<string, unknown>): NodeRegistration | string {
  const ip = f.ip;
  if (typeof ip !== 'string' || isIP(ip) === 0) return '"start.ip" must be an IP address literal';
  const sessionId = f.sessionId;
  if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 256) return '"start.sessionId" must be a non-empty string of at most 256 characters';
  const ports: Record<string, number> = {};
  for (const name of PORT_FIELDS) {
    const v = f[name];
    if (v === undefined || v === null || v === 0 || v === '0') continue;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) return `"start.${name}" must be a port from 1 to 65535`;
    ports[name] = n;
  }
  if (ports.udpPort === undefined && ports.tcpPort === undefined) return '"start" needs a udpPort or a tcpPort';
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
  return {
    ip: ip.toLowerCase(), ports: sipPorts, sessionId, version: String(version),
    hostName: f.hostName as string | undefined, jvmRoute: f.jvmRoute as string | undefined,
    httpPort: ports.httpPort, sslPort: ports.sslPort, extra,
  };
}
