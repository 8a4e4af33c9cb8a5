// The advisor's HTTP surface: GET /state (JSON: settings, each balancer's state and last probes,
// the bucket map), GET /metrics (Prometheus text, prom-client), GET /healthz. Read-only; other
// methods get 405, other paths 404, both as JSON. It binds loopback by default: /state names
// the balancers and the VIP.
//
// Metrics follow siplb's (src/admin/metrics.ts): `siplb_` names, base units, `_total` counters
// read at scrape time from the numbers the advisor keeps, labels from bounded sets only (the
// configured balancers, two transports, two results).

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../core/node-http.ts';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../core/process-metrics.ts';
import { BindError } from '../core/errors.ts';
import { rateLimit } from '../core/log.ts';
import type { Advisor } from './advisor.ts';

const PREFIX = 'siplb_advisor_';

/** A probe answered by a live siplb takes a millisecond or less; seconds mean a timeout. */
const PROBE_BUCKETS = [0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

type Labels = Record<string, string | number>;
type Emit = (value: number, labels?: Labels) => void;

export class AdvisorMetrics {
  readonly contentType: string;
  private readonly registry = new Registry();
  private readonly log: Logger;
  private readonly bugLogGate = rateLimit(60_000);

  constructor(advisor: Advisor, log: Logger) {
    this.log = log;
    this.contentType = this.registry.contentType;
    processMetrics(PREFIX);
    const view = () => advisor.view();
    this.gauge('balancer_up', 'Whether each balancer is up (passes OPTIONS on every probed transport): 1 up, 0 down or not probed yet.', ['balancer'],
      (emit) => { for (const b of view().balancers) emit(b.state === 'up' ? 1 : 0, { balancer: b.address }); });
    this.gauge('buckets', 'Buckets of the map sending to each balancer, as last written to the kernel.', ['balancer'],
      (emit) => { for (const b of view().balancers) emit(b.buckets, { balancer: b.address }); });
    this.gauge('panic', '1 while no balancer is up and the VIP is sprayed to all of them, else 0.', [], (emit) => emit(view().panic ? 1 : 0));
    this.gauge('table_installed', '1 while the advisor\'s nftables table is in the kernel, else 0.', [], (emit) => emit(view().installed ? 1 : 0));
    this.counter('probe_total', 'SIP OPTIONS probes, by balancer, transport and result (success: a 2xx answer; failure: another status, silence, refusal).',
      ['balancer', 'transport', 'result'], (emit) => {
        for (const [balancer, c] of advisor.counters()) {
          for (const transport of advisor.settings.transports) {
            emit(c.probes[transport].success, { balancer, transport, result: 'success' });
            emit(c.probes[transport].failure, { balancer, transport, result: 'failure' });
          }
        }
      });
    this.counter('transitions_total', 'Balancer state changes, by balancer and the state entered.', ['balancer', 'state'], (emit) => {
      for (const [balancer, c] of advisor.counters()) {
        emit(c.entered.up, { balancer, state: 'up' });
        emit(c.entered.down, { balancer, state: 'down' });
      }
    });
    this.counter('map_updates_total', 'Writes of the nftables table (its creation included), by result.', ['result'], (emit) => {
      emit(advisor.mapUpdates.ok, { result: 'ok' });
      emit(advisor.mapUpdates.failed, { result: 'failed' });
    });
    const duration = new Histogram({
      name: `${PREFIX}probe_duration_seconds`,
      help: 'Time from an OPTIONS probe sent to its answer or its failure, by balancer and transport.',
      labelNames: ['balancer', 'transport'],
      buckets: PROBE_BUCKETS,
      registers: [this.registry],
    });
    advisor.onProbe = (balancer, transport, outcome) => duration.observe({ balancer, transport }, outcome.rttMs / 1000);
  }

  /** The advisor's metrics, then the process's. */
  async render(): Promise<string> {
    const own = await this.registry.metrics();
    return `${own.endsWith('\n') ? own : `${own}\n`}${await processMetrics(PREFIX).metrics()}`;
  }

  private counter(name: string, help: string, labelNames: readonly string[], read: (emit: Emit) => void): void {
    const metric: Counter = new Counter({
      name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry],
      collect: () => {
        metric.reset();
        this.guarded(name, () => read((value, labels) => (labels === undefined ? metric.inc(value) : metric.inc(labels, value))));
      },
    });
  }

  private gauge(name: string, help: string, labelNames: readonly string[], read: (emit: Emit) => void): void {
    const metric: Gauge = new Gauge({
      name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry],
      collect: () => {
        metric.reset();
        this.guarded(name, () => read((value, labels) => (labels === undefined ? metric.set(value) : metric.set(labels, value))));
      },
    });
  }

  private guarded(name: string, read: () => void): void {
    try {
      read();
    } catch (err) {
      if (this.bugLogGate()) this.log.error({ err, metric: name }, 'metrics: a metric could not be read');
    }
  }
}

export class AdvisorHttp {
  private readonly server: Server;
  private readonly advisor: Advisor;
  private readonly metrics: AdvisorMetrics;
  private readonly log: Logger;

  constructor(advisor: Advisor, log: Logger) {
    this.advisor = advisor;
    this.log = log;
    this.metrics = new AdvisorMetrics(advisor, log);
    this.server = http.createServer((req, res) => {
      // The guard where requests enter: a bug is a 500, never a crash of the advisor.
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'state endpoint: internal error');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
  }

  /** Binds host:port (0: any free port); BindError when it cannot. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(new BindError(`cannot bind the state endpoint on ${host}:${port}: ${err.code ?? err.message}`));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0];
    const routes: Record<string, () => Promise<void> | void> = {
      '/state': () => json(res, 200, this.advisor.view()),
      '/healthz': () => {
        const v = this.advisor.view();
        // Up when the kernel has the table and the last write of it went through.
        const ok = v.installed && v.mapUpdates.lastError === null;
        json(res, ok ? 200 : 503, { status: ok ? 'up' : 'degraded', installed: v.installed, lastError: v.mapUpdates.lastError, panic: v.panic });
      },
      '/metrics': async () => {
        const body = await this.metrics.render();
        res.writeHead(200, { 'Content-Type': this.metrics.contentType, 'Cache-Control': 'no-store' });
        res.end(body);
      },
    };
    const route = routes[path];
    if (route === undefined || !Object.hasOwn(routes, path)) return json(res, 404, { error: `no such endpoint: ${path} (/state, /metrics, /healthz)` });
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return json(res, 405, { error: `${method} not allowed here; use GET` });
    }
    await route();
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), 'Cache-Control': 'no-store' });
  res.end(data);
}
