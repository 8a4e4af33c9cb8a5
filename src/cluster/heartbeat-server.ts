// HTTP/JSON endpoint where nodes register (docs/heartbeat-protocol.md): start, heartbeat,
// shutdown, stop. With a heartbeat token, a request that does not carry it is answered 401 before
// its body is read, so an outsider can neither register nor make the balancer parse anything.
// Every other request is validated in full before it touches the registry; a bad one gets 400
// with the reason and changes nothing.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../core/node-http.ts';
import type { Logger } from 'pino';
import { BindError } from '../core/errors.ts';
import { rateLimit, rateLimitPerKey } from '../core/log.ts';
import {
  answerBody, bearerToken, MAX_MESSAGE_BYTES, parseRegistration, parseRequest, parseSessionId,
} from '../heartbeat/protocol.ts';
import type { NodeRegistry } from './node-registry.ts';

/** Why a request was refused: token (401: no heartbeat token, or another), invalid (400). */
export type HeartbeatRejectReason = 'token' | 'invalid';

/** What the admin metrics read of the heartbeat endpoint. */
export interface HeartbeatCounters {
  readonly rejected: Readonly<Record<HeartbeatRejectReason, number>>;
}

export interface HeartbeatServerOptions {
  /** The heartbeat token every request must carry; null or absent: none is asked for. */
  token?: string | null;
}

/** Source addresses whose refusals are remembered for the log's rate limit. */
const REFUSAL_LOG_SOURCES = 1024;
const REFUSAL_LOG_INTERVAL_MS = 60_000;

// Compared as SHA-256 digests: equal lengths whatever was sent, as timingSafeEqual needs, so
// neither the comparison nor a length check tells a guesser anything about the token.
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export class HeartbeatServer implements HeartbeatCounters {
  private readonly server: Server;
  private readonly registry: NodeRegistry;
  private readonly log: Logger;
  private readonly badRequestLogGate = rateLimit(10_000);
  private readonly internalErrorLogGate = rateLimit(10_000);
  // Per source: a node with a stale token retries every second, and one line a minute is enough
  // for it, while each other source still gets its own line.
  private readonly refusalLogGate = rateLimitPerKey(REFUSAL_LOG_INTERVAL_MS, REFUSAL_LOG_SOURCES);
  private tokenHash: Buffer | null = null;
  badRequests = 0;
  internalErrors = 0;
  tokenRefusals = 0;

  constructor(registry: NodeRegistry, log: Logger, opts: HeartbeatServerOptions = {}) {
    this.registry = registry;
    this.log = log;
    this.setToken(opts.token ?? null);
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

  /** Requests must carry `token` from the next one on (null: no token is asked for). */
  setToken(token: string | null): void {
    this.tokenHash = token === null ? null : digest(token);
  }

  /** Whether requests must carry a token. */
  get authenticated(): boolean {
    return this.tokenHash !== null;
  }

  get rejected(): Readonly<Record<HeartbeatRejectReason, number>> {
    return { token: this.tokenRefusals, invalid: this.badRequests };
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url !== '/' && req.url !== '') return this.reply(res, 404, { error: `no such path ${req.url ?? ''}; POST / with a JSON body` });
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return this.reply(res, 405, { error: 'only POST is accepted' });
    }
    const refusal = this.tokenRefusal(req);
    if (refusal !== null) return this.refuse(req, res, refusal);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_MESSAGE_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      // The registry's listeners (algorithms, user modules among them) run inside this handler:
      // whatever they throw is answered with 500 here, never left to take the process down.
      try {
        if (tooLarge) return this.bad(res, `body larger than ${MAX_MESSAGE_BYTES} bytes`);
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (err) {
          return this.bad(res, `body is not JSON: ${(err as Error).message}`);
        }
        this.dispatch(body, res);
      } catch (err) {
        this.internalErrors++;
        if (this.internalErrorLogGate()) this.log.error({ err, internalErrorsSoFar: this.internalErrors }, 'internal error while handling a heartbeat request (logged at most every 10 s)');
        if (!res.headersSent) this.reply(res, 500, { error: 'internal error; see the balancer log' });
      }
    });
  }

  private dispatch(body: unknown, res: ServerResponse): void {
    const request = parseRequest(body);
    if (typeof request === 'string') return this.bad(res, request);
    const { kind, fields } = request;
    if (kind === 'start') {
      const reg = parseRegistration(fields);
      if (typeof reg === 'string') return this.bad(res, reg);
      this.registry.start(reg);
      return this.reply(res, 200, answerBody(kind, true));
    }
    const sessionId = parseSessionId(kind, fields);
    if (typeof sessionId !== 'string') return this.bad(res, sessionId.problem);
    const known = kind === 'heartbeat' ? this.registry.heartbeat(sessionId)
      : kind === 'shutdown' ? this.registry.shutdown(sessionId)
        : this.registry.stop(sessionId);
    return this.reply(res, 200, answerBody(kind, known));
  }

  /** Why the request's token is not accepted; null when it is (or none is asked for). */
  private tokenRefusal(req: IncomingMessage): string | null {
    const expected = this.tokenHash;
    if (expected === null) return null;
    const presented = bearerToken(req.headers.authorization);
    if (presented === null) return 'no heartbeat token (Authorization: Bearer <heartbeatToken>)';
    return timingSafeEqual(digest(presented), expected) ? null : 'wrong heartbeat token';
  }

  private refuse(req: IncomingMessage, res: ServerResponse, reason: string): void {
    this.tokenRefusals++;
    const source = req.socket.remoteAddress ?? 'unknown';
    if (this.refusalLogGate(source)) {
      this.log.warn({ source, reason, refusedSoFar: this.tokenRefusals }, 'heartbeat request refused: it does not carry heartbeatToken (logged at most once a minute per source address)');
    }
    // The body is never read: Node discards it once the answer is written.
    res.setHeader('WWW-Authenticate', 'Bearer realm="siplb-heartbeat"');
    this.reply(res, 401, { error: reason });
  }

  private bad(res: ServerResponse, reason: string): void {
    this.badRequests++;
    if (this.badRequestLogGate()) this.log.warn({ reason, badRequestsSoFar: this.badRequests }, 'bad heartbeat request (logged at most every 10 s)');
    this.reply(res, 400, { error: reason });
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}
