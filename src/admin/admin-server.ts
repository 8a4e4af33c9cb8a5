// The admin port (apiPort, Restcomm's statisticPort): Restcomm's endpoints with Restcomm's
// shapes (/lbstat, /lbinfo, /lbloglevel, /lbnoderegex, /lbstop), siplb's REST API under
// /api/v1/, /metrics, /healthz and /readyz, and the dashboard. One small node:http server.
//
// Safety first, because this port can stop the balancer and take nodes out:
// - without apiToken it binds loopback only; with it, every request but the two probes must
//   carry `Authorization: Bearer <token>` (compared in constant time);
// - Restcomm's securityRequired/login/password guard Restcomm's mutating endpoints as Restcomm
//   did (query parameters), so existing scripts keep working;
// - /api/v1 mutations are POST only (405 otherwise), bad input gets a 4xx with a JSON reason and
//   changes nothing; the request body is bounded.
//
// What the API changes goes through the registry (drain, activate, weight) or the balancer's
// reload (the configuration file read again, wiring/reload.ts); it never edits the configuration.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../core/node-http.ts';
import type net from 'node:net';
import { BindError } from '../core/errors.ts';
import { isLogLevel, type LogLevel } from '../core/log.ts';
import { isNodeWeight, MAX_NODE_WEIGHT, MIN_NODE_WEIGHT } from '../config/types.ts';
import { DASHBOARD_PUBLIC_PATHS, type Dashboard } from './dashboard.ts';
import type { Metrics } from './metrics.ts';
import { NodeViews } from './node-views.ts';
import { restcommInfo, restcommStat, RESTCOMM_BYE_PAGE } from './restcomm-shapes.ts';
import type { AdminTarget } from './target.ts';
import { maskedConfig } from './masked-config.ts';

const MAX_BODY_BYTES = 64 * 1024;

/** Restcomm (log4j) level names and ours. */
const LOG4J_LEVELS: Readonly<Record<string, LogLevel>> = {
  TRACE: 'debug', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error', FATAL: 'error',
};

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  /** apiToken: required as a Bearer token on every request but /healthz and /readyz. */
  readonly token: string | null;
  readonly metrics?: Metrics;
  /** The node views to answer with (shared with the dashboard); made here when absent. */
  readonly nodes?: NodeViews;
  readonly dashboard?: Dashboard;
  /** Restcomm's pins (/lbnoderegex). */
  readonly pins?: {
    set(regex: string, nodeId: string): string | null;
    remove(regex: string): boolean;
  };
}

interface RequestCtx {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Path segments after the route's prefix (for /api/v1/nodes/{id}/...). */
  readonly params: readonly string[];
}

export class AdminServer {
  private readonly target: AdminTarget;
  private readonly opts: AdminServerOptions;
  private readonly server: Server;
  private readonly tokenHash: Buffer | null;
  private readonly nodes: NodeViews;

  constructor(target: AdminTarget, opts: AdminServerOptions) {
    this.target = target;
    this.opts = opts;
    this.nodes = opts.nodes ?? new NodeViews(target);
    this.tokenHash = opts.token === null ? null : digest(opts.token);
    this.server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        target.log.error({ err }, 'admin API: internal error');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.server.on('clientError', (_err, socket: net.Socket) => socket.destroy());
  }

  listen(): Promise<void> {
    const { host, port } = this.opts;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new BindError(`cannot bind the admin API on ${host}:${port}: ${err.message}`));
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  close(): Promise<void> {
    this.opts.dashboard?.close();
    this.opts.metrics?.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      return json(res, 400, { error: 'malformed request target' });
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // The probes answer anyone who can reach the port: an orchestrator has no token.
    if (path === '/healthz') return this.only(method, res, ['GET', 'HEAD'], () => json(res, 200, { status: 'up' }));
    if (path === '/readyz') return this.only(method, res, ['GET', 'HEAD'], () => this.readyz(res));
    // The page and its scripts hold no balancer data, and a browser cannot send the token before
    // the page that asks for it has loaded; what they show comes from /api/v1, which needs it.
    if ((method === 'GET' || method === 'HEAD') && DASHBOARD_PUBLIC_PATHS.has(path) && this.opts.dashboard?.handle(req, res, path) === true) return;
    const restcomm = RESTCOMM_ROUTES.has(path.toLowerCase());
    if (!this.authorised(req, url, restcomm)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="siplb"');
      return json(res, 401, { error: 'this admin API needs Authorization: Bearer <apiToken>' });
    }
    if (restcomm) return this.restcomm(path.toLowerCase(), { req, res, url, params: [] });
    if (path === '/metrics') {
      return this.only(method, res, ['GET'], async () => {
        if (this.opts.metrics === undefined) return json(res, 404, { error: 'metrics are off' });
        const body = await this.opts.metrics.render();
        res.writeHead(200, { 'Content-Type': this.opts.metrics.contentType });
        res.end(body);
      });
    }
    if (path.startsWith('/api/v1/') && path !== '/api/v1/events') return this.api(method, path.slice('/api/v1/'.length), { req, res, url, params: [] });
    if ((method === 'GET' || method === 'HEAD') && this.opts.dashboard?.handle(req, res, path) === true) return;
    json(res, 404, { error: `no such endpoint: ${method} ${path}` });
  }

  /** apiToken as a Bearer token; on Restcomm's endpoints also Restcomm's login/password. */
  private authorised(req: IncomingMessage, url: URL, restcomm: boolean): boolean {
    const cfg = this.target.config;
    if (restcomm && cfg.securityRequired && this.restcommCredentials(url)) return true;
    if (this.tokenHash === null) return !(restcomm && cfg.securityRequired && RESTCOMM_GUARDED.has(url.pathname.toLowerCase()));
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m !== null && timingSafeEqual(digest(m[1]), this.tokenHash);
  }

  private restcommCredentials(url: URL): boolean {
    const { login, password } = this.target.config;
    if (login === null || password === null) return false;
    const l = url.searchParams.get('login');
    const p = url.searchParams.get('password');
    return l !== null && p !== null && timingSafeEqual(digest(l), digest(login)) && timingSafeEqual(digest(p), digest(password));
  }

  private only(method: string, res: ServerResponse, allowed: readonly string[], fn: () => unknown): void {
    if (!allowed.includes(method)) {
      res.setHeader('Allow', allowed.join(', '));
      return json(res, 405, { error: `${method} not allowed here; use ${allowed.join(' or ')}` });
    }
    const done = fn();
    // An async handler (one that reads a body, a reload) fails like a synchronous one: a 500, not
    // an unhandled rejection (a client that hangs up mid-body makes the body read throw).
    if (done instanceof Promise) {
      done.catch((err: unknown) => {
        this.target.log.error({ err }, 'admin API: internal error');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    }
  }

  private readyz(res: ServerResponse): void {
    const active = this.target.registry.snapshot().selectable.length;
    if (this.target.isStopping()) return json(res, 503, { ready: false, reason: 'stopping' });
    if (active === 0) return json(res, 503, { ready: false, reason: 'no active node' });
    json(res, 200, { ready: true, activeNodes: active });
  }

  // ------------------------------------------------------------------ Restcomm's endpoints

  private restcomm(path: string, ctx: RequestCtx): void {
    const { res, url } = ctx;
    switch (path) {
      case '/lbstat':
        return json(res, 200, restcommStat(this.target));
      case '/lbinfo':
        return json(res, 200, restcommInfo(this.target));
      case '/lbloglevel': {
        const raw = url.searchParams.get('logLevel') ?? '';
        const level = LOG4J_LEVELS[raw.toUpperCase()] ?? (isLogLevel(raw.toLowerCase()) ? raw.toLowerCase() as LogLevel : null);
        if (level === null) return text(res, 400, `Log level NOT changed: unknown logLevel '${raw}' (TRACE, DEBUG, INFO, WARN, ERROR)`);
        this.target.setLogLevel(level);
        return text(res, 200, 'Log level changed');
      }
      case '/lbnoderegex': {
        const regex = url.searchParams.get('regex');
        const ip = url.searchParams.get('ip');
        const port = url.searchParams.get('port');
        const usage = 'Regex NOT set, use : 127.0.0.1:2006/lbnoderegex?regex=(.*)(\\d+)(.*)&ip=127.0.0.1&port=5060';
        if (this.opts.pins === undefined || regex === null || regex === '') return text(res, 400, usage);
        if (ip === null && port === null) {
          return this.opts.pins.remove(regex) ? text(res, 200, 'Regex removed') : text(res, 400, `Regex NOT removed: no pin for ${regex}`);
        }
        if (ip === null || port === null || !/^\d{1,5}$/.test(port)) return text(res, 400, usage);
        const node = this.nodes.byAddress(ip, Number(port));
        if (node === null) return text(res, 400, `Regex NOT set: no node at ${ip}:${port}`);
        const problem = this.opts.pins.set(regex, node);
        return problem === null ? text(res, 200, 'Regex set') : text(res, 400, `Regex NOT set: ${problem}`);
      }
      case '/lbstop':
        // After the answer is out: a stop with no call to wait for closes this server at once.
        res.once('finish', () => this.target.stop('/lbstop'));
        res.writeHead(423, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(RESTCOMM_BYE_PAGE);
        return;
    }
  }

  // ------------------------------------------------------------------ /api/v1

  private async api(method: string, path: string, ctx: RequestCtx): Promise<void> {
    const { res } = ctx;
    const parts = path.split('/').filter((p) => p !== '');
    const target = this.target;
    if (parts.length === 1 && parts[0] === 'nodes') return this.only(method, res, ['GET'], () => json(res, 200, { nodes: this.nodes.all() }));
    if (parts.length === 3 && parts[0] === 'nodes') {
      let id: string;
      try {
        id = decodeURIComponent(parts[1]);
      } catch {
        return json(res, 400, { error: 'malformed node id' });
      }
      const action = parts[2];
      if (action !== 'drain' && action !== 'activate' && action !== 'weight') return json(res, 404, { error: `no such action: ${action} (drain, activate, weight)` });
      const unknown = (): void => json(res, 404, { error: `no node '${id}'`, nodes: target.registry.list().map((e) => e.node.id) });
      if (action === 'weight') {
        return this.only(method, res, ['POST'], async () => {
          if (target.registry.get(id) === undefined) return unknown();
          const body = await readJson(ctx.req);
          if (!body.ok) return json(res, 400, { error: body.error });
          const weight = (body.value as { weight?: unknown }).weight;
          // null withdraws the operator's weight: the node goes back to the one nodes= gives it.
          if (weight !== null && !isNodeWeight(weight)) {
            return json(res, 400, { error: `body must be {"weight": N}, N an integer from ${MIN_NODE_WEIGHT} to ${MAX_NODE_WEIGHT}, or {"weight": null} for the configured weight` });
          }
          // The node may have left while the body was read.
          if (!target.registry.adminSetWeight(id, weight)) return unknown();
          target.log.warn({ node: id, weight, by: 'admin API' }, weight === null ? 'operator node weight withdrawn through the admin API' : 'node weight changed through the admin API');
          json(res, 200, { node: this.nodes.one(id), ...(target.weightsIgnored === undefined ? {} : { note: target.weightsIgnored }) });
        });
      }
      return this.only(method, res, ['POST'], () => {
        if (target.registry.get(id) === undefined) return unknown();
        // An operator's drain: sticky (heartbeats do not undo it) and shared with the balancers
        // of the same store; only activate ends it.
        target.registry.adminDrain(id, action === 'drain');
        target.log.warn({ node: id, action, by: 'admin API' }, `node ${action === 'drain' ? 'drained' : 'activated'} through the admin API`);
        json(res, 200, { node: this.nodes.one(id) });
      });
    }
    if (parts.length === 1) {
      switch (parts[0]) {
        case 'config':
          return this.only(method, res, ['GET'], () => json(res, 200, { configPath: target.configPath, config: maskedConfig(target.config) }));
        case 'stats':
          return this.only(method, res, ['GET'], () => json(res, 200, this.stats()));
        case 'log-level':
          if (method === 'GET') return json(res, 200, { level: target.logLevel() });
          return this.only(method, res, ['POST'], async () => {
            const body = await readJson(ctx.req);
            if (!body.ok) return json(res, 400, { error: body.error });
            const level = (body.value as { level?: unknown }).level;
            if (typeof level !== 'string' || !isLogLevel(level)) return json(res, 400, { error: 'body must be {"level": "error" | "warn" | "info" | "debug"}' });
            target.setLogLevel(level);
            json(res, 200, { level });
          });
        case 'reload':
          return this.only(method, res, ['POST'], async () => {
            if (target.reload === undefined) return json(res, 404, { error: 'this balancer cannot reload its configuration' });
            const result = await target.reload();
            if (result.ok) {
              target.log.warn({ applied: result.applied, tlsListeners: result.tlsListeners, notes: result.notes, by: 'admin API' }, 'configuration reloaded through the admin API');
              return json(res, 200, { applied: result.applied, tlsListeners: result.tlsListeners, warnings: result.warnings, notes: result.notes });
            }
            target.log.warn({ refused: result.refused, by: 'admin API' }, 'configuration not reloaded: nothing was changed');
            // 400: the file (or one it names) is bad; 409: a valid file asking for what needs a restart.
            json(res, result.status === 'invalid' ? 400 : 409, { error: result.error, refused: result.refused });
          });
        case 'stop':
          return this.only(method, res, ['POST'], () => {
            res.once('finish', () => target.stop('admin API'));
            json(res, 202, { stopping: true, calls: target.calls.size, shutdownTimeoutMs: target.config.shutdownTimeout });
          });
      }
    }
    json(res, 404, { error: `no such endpoint: ${method} /api/v1/${path}` });
  }

  private stats(): Record<string, unknown> {
    const t = this.target;
    return {
      balancer: { id: t.balancerId, version: t.version, startedAt: t.startedAt, uptimeSeconds: Math.round((Date.now() - t.startedAt) / 1000), stopping: t.isStopping() },
      sip: t.stats.toJSON(),
      calls: t.calls.size,
      connections: t.transports.connections.size,
      store: { kind: t.store.kind, available: t.store.available, ...(t.store.health === undefined ? {} : { health: t.store.health }) },
      http: t.http === null ? null : t.http.stats.toJSON(),
    };
  }
}

/** Restcomm's endpoints, as Restcomm matches them (lower case). */
const RESTCOMM_ROUTES = new Set(['/lbstat', '/lbinfo', '/lbloglevel', '/lbnoderegex', '/lbstop']);
/** The ones securityRequired guards without an apiToken: those that change something. */
const RESTCOMM_GUARDED = new Set(['/lbloglevel', '/lbnoderegex', '/lbstop']);

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), 'Cache-Control': 'no-store' });
  res.end(data);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { ok: false, error: `body larger than ${MAX_BODY_BYTES} bytes` };
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof value !== 'object' || value === null) return { ok: false, error: 'body must be a JSON object' };
    return { ok: true, value };
  } catch (err) {
    return { ok: false, error: `body is not JSON: ${(err as Error).message}` };
  }
}
