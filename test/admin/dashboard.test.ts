// The admin dashboard (src/admin/dashboard.ts and the page under src/admin/dashboard/): what it
// serves over HTTP, its event stream (one snapshot per tick, keep-alives, the bound on streams,
// streams freed when their client goes), and the page itself in real headless Chromium
// (/usr/bin/chromium, driven by playwright-core): nodes, chart, drain and activate through the
// API, the state coming back over the stream, errors shown, the token asked for and sent.
//
// The test's HTTP server stands in for the admin server: it routes to Dashboard.handle, answers
// the two POST endpoints against a fake source, and, when given a token, answers 401 to requests
// without `Authorization: Bearer <token>` except for DASHBOARD_PUBLIC_PATHS (the page and its
// files, which the browser must load before the page can ask for a token).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { BrowserContext, Page } from 'playwright-core';
import {
  Dashboard, DASHBOARD_PUBLIC_PATHS, MAX_SSE_CLIENTS, type DashboardNode, type DashboardSnapshot, type DashboardSource,
} from '../../src/admin/dashboard.ts';
import { launchChromium, type LaunchedChromium } from '../helpers/chromium.ts';
import { eventually, sleep } from '../helpers/wait.ts';

const WAIT_MS = 5_000;

// The page's globals as the functions run in it use them (the project compiles without the DOM lib).
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  classList: { contains(name: string): boolean };
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
  body: PageElement;
};

// A balancer with two nodes whose counters grow with every snapshot taken.
class FakeSource implements DashboardSource {
  readonly startedAt = Date.now() - 3_723_000;
  readonly nodes: DashboardNode[] = [
    { id: 'node-a', ip: '10.0.0.11', ports: { udp: 5060, tcp: 5060 }, state: 'active', why: '', calls: 7, weight: 1, version: '1.2.0', source: 'heartbeat', lastHeard: Date.now() },
    { id: 'node b/2', ip: '10.0.0.12', ports: { udp: 5070 }, state: 'active', why: '', calls: 3, weight: 2, version: '1.2.0', source: 'static', lastHeard: null },
  ];
  readonly totals = { requestsIn: 0, responsesIn: 0, callsStarted: 0, failures: 0, calls: 10 };
  config: Record<string, unknown> = { algorithmClass: 'CallIDAffinity', externalUdpPort: 5060, nodes: ['10.0.0.12:5070'], isSendTrying: true };
  snapshots = 0;
  failNext = false;

  node(id: string): DashboardNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  snapshot(): DashboardSnapshot {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('registry\nunavailable');
    }
    this.snapshots++;
    this.totals.requestsIn += 20;
    this.totals.responsesIn += 18;
    this.totals.callsStarted += 4;
    this.totals.failures += this.snapshots % 3 === 0 ? 1 : 0;
    const at = Date.now();
    const heard = this.nodes[0];
    if (heard !== undefined) heard.lastHeard = at - 1_500;
    return {
      at,
      balancer: { id: 'lb-test-1', version: '0.1.0', startedAt: this.startedAt, stopping: false, config: this.config },
      nodes: this.nodes.map((n) => ({ ...n, ports: { ...n.ports } })),
      totals: { ...this.totals },
    };
  }
}

interface Post {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
}

interface TestServer {
  readonly origin: string;
  readonly source: FakeSource;
  readonly dashboard: Dashboard;
  readonly posts: Post[];
  /** Node ids whose drain is refused with 409 and a JSON error. */
  readonly refuseDrain: Set<string>;
  /** Cuts every open connection (the page's event stream with them). */
  cut(): void;
  close(): Promise<void>;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

// What the admin server does around the dashboard: authentication first, the node endpoints,
// then Dashboard.handle, then 404.
async function startServer(opts: { token?: string; intervalMs?: number } = {}): Promise<TestServer> {
  const source = new FakeSource();
  const dashboard = new Dashboard(source, { intervalMs: opts.intervalMs ?? 200 });
  const posts: Post[] = [];
  const refuseDrain = new Set<string>();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (opts.token !== undefined && !DASHBOARD_PUBLIC_PATHS.has(path) && req.headers.authorization !== `Bearer ${opts.token}`) {
      return sendJson(res, 401, { error: 'a valid admin token is required' }, { 'WWW-Authenticate': 'Bearer' });
    }
    const action = /^\/api\/v1\/nodes\/([^/]+)\/(drain|activate)$/.exec(path);
    if (action !== null && req.method === 'POST') {
      posts.push({ path, authorization: req.headers.authorization, contentType: req.headers['content-type'] });
      req.resume();
      const id = decodeURIComponent(action[1] ?? '');
      const node = source.node(id);
      if (node === undefined) return sendJson(res, 404, { error: `no node ${id}` });
      if (action[2] === 'drain' && refuseDrain.has(id)) return sendJson(res, 409, { error: `node ${id} is the last active node` });
      node.state = action[2] === 'drain' ? 'draining' : 'active';
      node.why = action[2] === 'drain' ? 'drained by the operator' : '';
      return sendJson(res, 200, { id, state: node.state });
    }
    // Read whatever body came (a server may do this first): the stream must outlive the request.
    req.resume();
    if (dashboard.handle(req, res, path)) return;
    sendJson(res, 404, { error: `no such path ${path}` });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin, source, dashboard, posts, refuseDrain,
    cut: () => server.closeAllConnections(),
    close: async () => {
      dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One SSE stream read with node:http

interface Stream {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Everything received so far. */
  text(): string;
  /** The JSON of every data: line so far. */
  events(): DashboardSnapshot[];
  /** Resolves once the server has ended the response. */
  readonly ended: Promise<void>;
  destroy(): void;
}

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function openStream(origin: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${origin}/api/v1/events`, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      const ended = new Promise<void>((done) => {
        res.on('end', done);
        res.on('close', done);
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => body,
        events: () => body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as DashboardSnapshot),
        ended,
        destroy: () => req.destroy(),
      });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });
}

describe('Dashboard over HTTP', () => {
  test('serves the page, its script and style, and uPlot from node_modules; declines other paths', async (t) => {
    const s = await startServer();
    t.after(() => s.close());
    const require = createRequire(import.meta.url);

    const page = await fetch(`${s.origin}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const html = await page.text();
    assert.match(html, /<script type="module" src="dashboard.js">/);
    assert.match(html, /<script src="assets\/uplot.js">/);

    const expected: Array<[string, string, string]> = [
      ['/dashboard.js', 'text/javascript; charset=utf-8', new URL('../../src/admin/dashboard/dashboard.js', import.meta.url).pathname],
      ['/dashboard.css', 'text/css; charset=utf-8', new URL('../../src/admin/dashboard/dashboard.css', import.meta.url).pathname],
      ['/assets/uplot.js', 'text/javascript; charset=utf-8', require.resolve('uplot/dist/uPlot.iife.min.js')],
      ['/assets/uplot.css', 'text/css; charset=utf-8', require.resolve('uplot/dist/uPlot.min.css')],
    ];
    for (const [path, type, file] of expected) {
      const res = await fetch(s.origin + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.equal(await res.text(), readFileSync(file, 'utf8'), path);
      const etag = res.headers.get('etag');
      assert.ok(etag !== null, `${path}: ETag`);
      const again = await fetch(s.origin + path, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, `${path}: revalidated`);
    }

    assert.deepEqual([...DASHBOARD_PUBLIC_PATHS].sort(), ['/', ...expected.map(([path]) => path)].sort(), 'the public paths are the page and its files');

    const head = await fetch(`${s.origin}/dashboard.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(readFileSync(expected[0]![2]).length));

    const post = await fetch(`${s.origin}/`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const postEvents = await fetch(`${s.origin}/api/v1/events`, { method: 'POST' });
    assert.equal(postEvents.status, 405);

    for (const path of ['/index.html', '/favicon.ico', '/assets/uPlot.js', '/assets/', '/api/v1/nodes', '/dashboard.js/x']) {
      const res = await fetch(s.origin + path);
      assert.equal(res.status, 404, `${path} is the server's to answer`);
      assert.deepEqual(await res.json(), { error: `no such path ${path}` });
    }
  });

  test('the event stream: a snapshot at once and one per interval, keep-alive comments, a failed snapshot as a comment', async (t) => {
    const s = await startServer({ intervalMs: 50 });
    t.after(() => s.close());
    const stream = await openStream(s.origin);
    t.after(() => stream.destroy());
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(stream.headers['cache-control'], 'no-store');
    await eventually('first snapshot', WAIT_MS, () => stream.events().length >= 1);
    assert.match(stream.text(), /^retry: \d+\n: keep-alive\n\ndata: /);
    const first = stream.events()[0]!;
    assert.equal(first.balancer.id, 'lb-test-1');
    assert.deepEqual(first.nodes.map((n) => n.id), ['node-a', 'node b/2']);

    await eventually('four more snapshots', WAIT_MS, () => stream.events().length >= 5);
    const events = stream.events();
    for (let i = 1; i < events.length; i++) {
      assert.ok(events[i]!.totals.callsStarted > events[i - 1]!.totals.callsStarted, 'counters grow');
      assert.ok(events[i]!.at >= events[i - 1]!.at);
    }

    s.source.failNext = true;
    await eventually('the failure reported', WAIT_MS, () => stream.text().includes(': snapshot failed: registry unavailable\n\n'));
    const after = stream.events().length;
    await eventually('the stream goes on', WAIT_MS, () => stream.events().length > after);
  });

  test(`at most ${MAX_SSE_CLIENTS} streams: one more gets 503; a client that goes frees its place; close() ends them all`, async (t) => {
    const s = await startServer({ intervalMs: 10_000 });
    t.after(() => s.close());
    const streams = await Promise.all(Array.from({ length: MAX_SSE_CLIENTS }, () => openStream(s.origin)));
    t.after(() => {
      for (const st of streams) st.destroy();
    });
    assert.deepEqual(new Set(streams.map((st) => st.status)), new Set([200]));
    assert.equal(s.dashboard.streams, MAX_SSE_CLIENTS);

    const refused = await fetch(`${s.origin}/api/v1/events`);
    assert.equal(refused.status, 503);
    assert.match(((await refused.json()) as { error: string }).error, /too many dashboard streams/);

    streams[0]!.destroy();
    await eventually('the departed client forgotten', WAIT_MS, () => s.dashboard.streams === MAX_SSE_CLIENTS - 1);
    const replacement = await openStream(s.origin);
    streams.push(replacement);
    assert.equal(replacement.status, 200);
    assert.equal(s.dashboard.streams, MAX_SSE_CLIENTS);

    s.dashboard.close();
    await Promise.all(streams.slice(1).map((st) => st.ended));
    assert.equal(s.dashboard.streams, 0);
    const closed = await fetch(`${s.origin}/api/v1/events`);
    assert.equal(closed.status, 503);
  });
});

// ---------------------------------------------------------------------------------------------
// The page in Chromium

describe('Dashboard page in headless Chromium', () => {
  let browser: LaunchedChromium;
  let context: BrowserContext;

  before(async () => {
    browser = await launchChromium({ viewport: { width: 1280, height: 900 } });
    context = browser.context;
  });

  after(() => browser?.close());

  /**
   * A new page on `origin`. Its uncaught errors and console errors (a CSP violation is one) go to
   * `problems`; Chromium's own line for each HTTP error status or cut stream does not, as the
   * tests cause those on purpose.
   */
  async function open(origin: string, problems: string[]): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource:')) problems.push(`console.error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(`${origin}/`, { timeout: WAIT_MS });
    return page;
  }

  const row = (id: string): string => `tr[data-node="${id}"]`;

  async function waitText(page: Page, selector: string, text: string): Promise<void> {
    try {
      await page.waitForFunction(
        ({ sel, want }) => document.querySelector(sel)?.textContent === want,
        { sel: selector, want: text }, { timeout: WAIT_MS },
      );
    } catch (err) {
      const now = await page.evaluate((sel) => document.querySelector(sel)?.textContent ?? '(no such element)', selector);
      assert.fail(`${selector}: wanted "${text}", still "${now}" (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
    }
  }

  const visible = (page: Page, selector: string): Promise<boolean> => page.locator(selector).isVisible();

  test('shows the balancer, the nodes and the chart; drain and activate go through the API and come back over the stream', async (t) => {
    const s = await startServer();
    t.after(() => s.close());
    const problems: string[] = [];
    const page = await open(s.origin, problems);
    t.after(() => page.close());

    await waitText(page, `${row('node-a')} .state`, 'active');
    await waitText(page, `${row('node b/2')} .state`, 'active');
    assert.equal(await page.textContent('#balancer-id'), 'lb-test-1');
    assert.equal(await page.textContent('#balancer-version'), '0.1.0');
    assert.match((await page.textContent('#balancer-uptime')) ?? '', /^1h 2m \d+s$/);
    assert.equal(await page.textContent('#balancer-status'), 'running');
    assert.equal(await page.textContent('#connection'), 'live');
    assert.equal(await page.textContent(`${row('node-a')} td.address`), '10.0.0.11 udp:5060 tcp:5060');
    assert.equal(await page.textContent(`${row('node-a')} td.last-heard`), '1s ago');
    assert.equal(await page.textContent(`${row('node b/2')} td.last-heard`), '–');
    assert.equal(await page.title(), 'siplb lb-test-1');
    assert.equal(await visible(page, '#token-form'), false);

    // The chart: uPlot's canvas with both series, and rates from successive snapshots.
    assert.equal(await page.locator('#chart canvas').count(), 1);
    assert.match((await page.textContent('#chart .u-legend')) ?? '', /calls\/s.*failures\/s/s);
    await page.waitForFunction(() => Number(document.getElementById('rate-calls')?.textContent) > 0, undefined, { timeout: WAIT_MS });
    assert.match((await page.textContent('#rate-calls')) ?? '', /^\d+\.\d$/);

    // The configuration, collapsed until opened.
    assert.equal(await visible(page, '#config tr[data-key="algorithmClass"]'), false);
    await page.click('#config summary');
    assert.equal(await page.textContent('#config tr[data-key="algorithmClass"] td'), 'CallIDAffinity');
    assert.equal(await page.textContent('#config tr[data-key="nodes"] td'), '["10.0.0.12:5070"]');

    // Drain: the POST, then the state from the next snapshot; only Activate is offered then.
    assert.equal(await visible(page, `${row('node b/2')} button[data-action="activate"]`), false);
    await page.click(`${row('node b/2')} button[data-action="drain"]`);
    await waitText(page, `${row('node b/2')} .state`, 'draining');
    await waitText(page, `${row('node b/2')} td.why`, 'drained by the operator');
    assert.deepEqual(s.posts.map((p) => p.path), ['/api/v1/nodes/node%20b%2F2/drain']);
    assert.equal(s.posts[0]!.authorization, undefined, 'no token set, none sent');
    assert.equal(s.posts[0]!.contentType, 'application/json');
    assert.equal(await visible(page, `${row('node b/2')} button[data-action="drain"]`), false);
    assert.equal(await page.textContent(`${row('node-a')} .state`), 'active');
    assert.equal(await page.textContent('#node-counts'), '1 / 2 active');
    // The configuration stays open across updates.
    assert.equal(await visible(page, '#config tr[data-key="algorithmClass"]'), true);

    await page.click(`${row('node b/2')} button[data-action="activate"]`);
    await waitText(page, `${row('node b/2')} .state`, 'active');
    assert.equal(s.posts[1]!.path, '/api/v1/nodes/node%20b%2F2/activate');

    // A refused drain shows the server's error; the state does not change.
    s.refuseDrain.add('node-a');
    await page.click(`${row('node-a')} button[data-action="drain"]`);
    await waitText(page, `${row('node-a')} .row-message`, 'drain failed: 409 Conflict: node node-a is the last active node');
    assert.equal(await page.textContent(`${row('node-a')} .state`), 'active');

    // A node that goes away leaves the table; a new one comes in, in id order.
    s.source.nodes.splice(0, 1);
    s.source.nodes.push({ id: 'node-0', ip: '10.0.0.10', ports: { tcp: 5080 }, state: 'down', why: 'OPTIONS unanswered', calls: 0, weight: 1, version: '1.1.0', source: 'heartbeat', lastHeard: Date.now() - 65_000 });
    await waitText(page, `${row('node-0')} .state`, 'down');
    assert.equal(await page.locator(row('node-a')).count(), 0);
    assert.deepEqual(await page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => (tr as unknown as PageElement).dataset.node)), ['node b/2', 'node-0']);
    // Down: either action is offered.
    assert.equal(await visible(page, `${row('node-0')} button[data-action="drain"]`), true);
    assert.equal(await visible(page, `${row('node-0')} button[data-action="activate"]`), true);

    assert.deepEqual(problems, []);
  });

  test('the stream is cut: the page says so and reconnects by itself', async (t) => {
    const s = await startServer();
    t.after(() => s.close());
    const problems: string[] = [];
    const page = await open(s.origin, problems);
    t.after(() => page.close());
    await waitText(page, '#connection', 'live');
    const before = s.source.snapshots;
    s.cut();
    await page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'retrying', undefined, { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), true);
    await waitText(page, '#connection', 'live');
    await eventually('snapshots again', WAIT_MS, () => s.source.snapshots > before + 2);
    assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), false);
    assert.deepEqual(problems, []);
  });

  test('with a token required: the page asks for it, keeps it for the session and sends it', async (t) => {
    const s = await startServer({ token: 'secret' });
    t.after(() => s.close());
    const problems: string[] = [];
    const page = await open(s.origin, problems);
    t.after(() => page.close());

    await page.locator('#token-input').waitFor({ state: 'visible', timeout: WAIT_MS });
    await waitText(page, '#connection', 'token needed');
    assert.match((await page.textContent('#token-message')) ?? '', /401 Unauthorized: a valid admin token is required/);
    assert.equal(await page.locator('#nodes tbody tr').count(), 0);

    // A wrong token is refused and asked for again.
    await page.fill('#token-input', 'wrong');
    await page.click('#token-submit');
    await page.locator('#token-input').waitFor({ state: 'visible', timeout: WAIT_MS });
    await waitText(page, '#token-message', 'The token was refused (401 Unauthorized: a valid admin token is required).');

    await page.fill('#token-input', 'secret');
    await page.press('#token-input', 'Enter');
    await waitText(page, `${row('node-a')} .state`, 'active');
    assert.equal(await visible(page, '#token-form'), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('siplb.adminToken')), 'secret');

    await page.click(`${row('node-a')} button[data-action="drain"]`);
    await waitText(page, `${row('node-a')} .state`, 'draining');
    assert.deepEqual(s.posts.map((p) => [p.path, p.authorization]), [['/api/v1/nodes/node-a/drain', 'Bearer secret']]);

    // A reload keeps the token (sessionStorage): straight to the nodes.
    await page.reload({ timeout: WAIT_MS });
    await waitText(page, `${row('node-a')} .state`, 'draining');
    assert.equal(await visible(page, '#token-form'), false);

    // A token that stops working (the operator changed it): the POST's 401 brings the field back.
    await page.evaluate(() => sessionStorage.setItem('siplb.adminToken', 'stale'));
    await page.click(`${row('node-a')} button[data-action="activate"]`);
    await page.locator('#token-input').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match((await page.textContent(`${row('node-a')} .row-message`)) ?? '', /^activate refused \(401 Unauthorized: a valid admin token is required\)/);
    await page.fill('#token-input', 'secret');
    await page.press('#token-input', 'Enter');
    await waitText(page, `${row('node-a')} .row-message`, '');
    await page.click(`${row('node-a')} button[data-action="activate"]`);
    await waitText(page, `${row('node-a')} .state`, 'active');
    assert.equal(s.posts.at(-1)!.authorization, 'Bearer secret');

    // Sleep one tick so a late snapshot's console output, if any, is seen.
    await sleep(250);
    assert.deepEqual(problems, []);
  });
});
