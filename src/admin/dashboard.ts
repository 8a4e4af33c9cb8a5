// The live dashboard of the admin port: one HTML page, its script and style (real files under
// dashboard/, served as they are: no build step), uPlot for the chart (from node_modules), and
// the Server-Sent Events stream the page reads its data from.
//
// The admin server authenticates a request before it hands it here, and answers whatever path
// `handle` declines. The page reads the stream with fetch() rather than EventSource so that it can
// send the admin token; every event is one full snapshot (cumulative counters, not deltas), so a
// client that misses events (slow, reconnecting) loses nothing but resolution: the page computes
// rates from any two snapshots it has.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface DashboardNode {
  id: string;
  ip: string;
  /** Port by transport (udp, tcp, tls, ws, wss, http, https). */
  ports: Record<string, number>;
  state: 'active' | 'draining' | 'down';
  /** Why it is in that state (empty when active for no particular reason). */
  why: string;
  /** Calls it holds now. */
  calls: number;
  weight: number;
  version: string;
  /** Where the balancer learnt of it (static, heartbeat, shared...). */
  source: string;
  /** When it was last heard from (ms since the epoch); null for a node never heard (static). */
  lastHeard: number | null;
}

export interface DashboardSnapshot {
  /** When the snapshot was taken (ms since the epoch, the balancer's clock). */
  at: number;
  balancer: {
    id: string;
    version: string;
    startedAt: number;
    stopping: boolean;
    config: Record<string, unknown>;
  };
  nodes: DashboardNode[];
  /** Cumulative counters since start, except `calls` (calls held now). */
  totals: { requestsIn: number; responsesIn: number; callsStarted: number; failures: number; calls: number };
}

export interface DashboardSource {
  snapshot(): DashboardSnapshot;
}

export interface DashboardOptions {
  /** How often each stream gets a snapshot; default 1000 ms. */
  intervalMs?: number;
}

export const DEFAULT_INTERVAL_MS = 1_000;
/** Streams open at once; one more is answered 503. */
export const MAX_SSE_CLIENTS = 100;
/** A comment line this often keeps proxies and the page's watchdog (40 s) from closing the stream. */
const KEEP_ALIVE_MS = 15_000;
/** What the page waits before reconnecting after the stream ends (it backs off from there). */
const RETRY_MS = 2_000;
/** A client that has not drained its socket for this long is dropped (it has stopped reading). */
const STALLED_CLIENT_MS = 30_000;

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

interface SseClient {
  readonly res: http.ServerResponse;
  /** Since when writes have been skipped because the socket does not drain; 0 when it drains. */
  stalledSince: number;
}

// The page and its assets come from this origin only; uPlot sizes its elements through the CSSOM
// (element.style), which style-src does not govern, so no inline style is needed.
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

function asset(file: string, type: string): Asset {
  const body = readFileSync(file);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

function loadAssets(): Map<string, Asset> {
  const own = (name: string): string => fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url));
  const require = createRequire(import.meta.url);
  return new Map([
    ['/', asset(own('index.html'), 'text/html; charset=utf-8')],
    ['/dashboard.js', asset(own('dashboard.js'), 'text/javascript; charset=utf-8')],
    ['/dashboard.css', asset(own('dashboard.css'), 'text/css; charset=utf-8')],
    ['/assets/uplot.js', asset(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
    ['/assets/uplot.css', asset(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8')],
  ]);
}

export const EVENTS_PATH = '/api/v1/events';

/**
 * The page and its static files: they hold no balancer data (that comes only through the event
 * stream), and the browser must load them before the page can ask for a token, so the admin
 * server serves them without one. The event stream is not among them.
 */
export const DASHBOARD_PUBLIC_PATHS: ReadonlySet<string> = new Set([
  '/', '/dashboard.js', '/dashboard.css', '/assets/uplot.js', '/assets/uplot.css',
]);

export class Dashboard {
  private readonly source: DashboardSource;
  private readonly intervalMs: number;
  private readonly assets: Map<string, Asset>;
  private readonly clients = new Set<SseClient>();
  private tick: NodeJS.Timeout | null = null;
  private keepAlive: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(source: DashboardSource, opts: DashboardOptions = {}) {
    const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 10) throw new RangeError(`dashboard intervalMs must be at least 10 ms, not ${intervalMs}`);
    this.source = source;
    this.intervalMs = intervalMs;
    this.assets = loadAssets();
  }

  /** Streams open now. */
  get streams(): number {
    return this.clients.size;
  }

  /**
   * Answers the dashboard's paths (the page, its assets, the event stream) and returns true;
   * returns false, having touched nothing, for any other path. `path` is the URL's path, without
   * the query. Authentication is the caller's, before this.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
    if (path === EVENTS_PATH) {
      if (req.method !== 'GET') this.refuseMethod(res, 'GET');
      else this.openStream(req, res);
      return true;
    }
    const found = this.assets.get(path);
    if (found === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.refuseMethod(res, 'GET, HEAD');
      return true;
    }
    const headers: Record<string, string | number> = {
      ...SECURITY_HEADERS,
      'Content-Type': found.type,
      // Revalidated each time (the files change when siplb is upgraded); the ETag makes that a 304.
      'Cache-Control': 'no-cache',
      ETag: found.etag,
    };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    headers['Content-Length'] = found.body.length;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else res.end(found.body);
    return true;
  }

  /** Ends every stream and stops the timers; later requests for the stream get 503. Idempotent. */
  close(): void {
    this.closed = true;
    this.stopTimers();
    for (const client of this.clients) client.res.end();
    this.clients.clear();
  }

  private refuseMethod(res: http.ServerResponse, allow: string): void {
    this.json(res, 405, { error: `only ${allow} is accepted here` }, { Allow: allow });
  }

  private json(res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...extra });
    res.end(text);
  }

  private openStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.closed) {
      this.json(res, 503, { error: 'the dashboard is closing' });
      return;
    }
    if (this.clients.size >= MAX_SSE_CLIENTS) {
      this.json(res, 503, { error: `too many dashboard streams open (at most ${MAX_SSE_CLIENTS})` }, { 'Retry-After': '10' });
      return;
    }
    const client: SseClient = { res, stalledSince: 0 };
    this.clients.add(client);
    const drop = (): void => {
      if (!this.clients.delete(client)) return;
      if (this.clients.size === 0) this.stopTimers();
    };
    // The response's close, not the request's: the request closes once it has been read (if the
    // server reads it), while the response closes when it ends or its connection goes.
    res.on('close', drop);
    res.on('error', drop);
    res.on('drain', () => {
      client.stalledSince = 0;
    });
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // Tells a buffering reverse proxy (nginx) to pass each event on at once.
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.write(`retry: ${RETRY_MS}\n: keep-alive\n\n`);
    // The page shows something at once rather than after the first tick.
    res.write(this.event());
    this.startTimers();
  }

  private startTimers(): void {
    this.tick ??= setInterval(() => this.broadcast(this.event()), this.intervalMs);
    this.keepAlive ??= setInterval(() => this.broadcast(': keep-alive\n\n'), KEEP_ALIVE_MS);
    // The admin server's close() (or the process's exit) need not wait for a dashboard tick.
    this.tick.unref();
    this.keepAlive.unref();
  }

  private stopTimers(): void {
    if (this.tick !== null) clearInterval(this.tick);
    if (this.keepAlive !== null) clearInterval(this.keepAlive);
    this.tick = null;
    this.keepAlive = null;
  }

  /** One snapshot as an SSE event; a snapshot that fails becomes a comment saying so. */
  private event(): string {
    try {
      // JSON.stringify leaves no raw line break in its output, so one data: line is enough.
      return `data: ${JSON.stringify(this.source.snapshot())}\n\n`;
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' ');
      return `: snapshot failed: ${message}\n\n`;
    }
  }

  /**
   * Writes to every stream. A client whose socket has not drained skips events (the next full
   * snapshot replaces them) and is dropped once it has not drained for STALLED_CLIENT_MS.
   */
  private broadcast(text: string): void {
    const now = Date.now();
    for (const client of this.clients) {
      const { res } = client;
      if (res.writableNeedDrain) {
        if (client.stalledSince === 0) client.stalledSince = now;
        else if (now - client.stalledSince > STALLED_CLIENT_MS) res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
