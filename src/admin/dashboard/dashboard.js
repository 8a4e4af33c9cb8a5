// siplb's live dashboard, served as it is by the admin port (src/admin/dashboard.ts): no build
// step, no framework. uPlot (a classic script loaded before this module) draws the chart.
//
// Data: one Server-Sent Events stream (api/v1/events), each event a full snapshot of the balancer
// with cumulative counters; rates are the difference of two snapshots over their time apart. The
// stream is read with fetch() rather than EventSource, which cannot send the admin token.
//
// Token: kept in sessionStorage, sent as `Authorization: Bearer` on the stream and on every POST.
// A 401 or 403 anywhere brings up the token field. Every piece of balancer data reaches the page
// through textContent, never as HTML.
//
// URLs are relative to the page, so the dashboard also works behind a reverse proxy's path prefix.

/* global uPlot */

const TOKEN_KEY = 'siplb.adminToken';
const EVENTS_URL = 'api/v1/events';
const WINDOW_S = 300;
/** A snapshot further than this from the previous one leaves a gap in the chart, not an average. */
const GAP_MS = 10_000;
/** The figures above the chart are rates over this long; the chart plots each tick's. */
const FIGURES_MS = 5_000;
/** No byte for this long (the server sends a keep-alive comment every 15 s): the stream is dead. */
const WATCHDOG_MS = 40_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const CHART_HEIGHT = 260;

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error('dashboard page has no #' + id);
  return el;
};

// ---------------------------------------------------------------------------------------------
// The token

function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

function setToken(token) {
  try {
    if (token === '') sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage refused (privacy mode): the token lasts as long as this page does.
  }
  memoryToken = token;
  $('token-forget').hidden = token === '';
}

let memoryToken = getToken();

function authHeaders() {
  const token = getToken() || memoryToken;
  return token === '' ? {} : { Authorization: 'Bearer ' + token };
}

function askForToken(message) {
  const form = $('token-form');
  $('token-message').textContent = message;
  if (form.hidden) {
    form.hidden = false;
    $('token-input').focus();
  }
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('token-input');
  const token = input.value.trim();
  if (token === '') {
    $('token-message').textContent = 'Enter the token first.';
    return;
  }
  setToken(token);
  input.value = '';
  $('token-form').hidden = true;
  clearAuthErrors();
  connect();
});

$('token-forget').addEventListener('click', () => {
  setToken('');
  connect();
});

$('token-forget').hidden = (getToken() || memoryToken) === '';

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

function fmtRate(value) {
  if (value === null || !Number.isFinite(value)) return '–';
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

function fmtValue(value) {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return JSON.stringify(value);
}

function fmtPorts(ports) {
  return Object.entries(ports ?? {})
    .map(([transport, port]) => `${transport}:${port}`)
    .join(' ');
}

/** The message of a failed response: the JSON body's `error`, else the status line. */
async function errorText(res) {
  let detail = '';
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      if (body !== null && typeof body.error === 'string') detail = body.error;
    } catch {
      detail = text.trim().slice(0, 200);
    }
  } catch {
    // The body could not be read; the status says enough.
  }
  return `${res.status}${res.statusText ? ' ' + res.statusText : ''}${detail ? ': ' + detail : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The chart

const xs = [];
const callRates = [];
const failureRates = [];

const chartEl = $('chart');
const plot = new uPlot(
  {
    width: Math.max(300, chartEl.clientWidth),
    height: CHART_HEIGHT,
    scales: {
      // Always the whole window, ending at the newest snapshot.
      x: { time: true, range: (_u, _min, max) => (max === null ? [Date.now() / 1000 - WINDOW_S, Date.now() / 1000] : [max - WINDOW_S, max]) },
      y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.15)] },
    },
    series: [
      {},
      { label: 'calls/s', stroke: '#2563eb', fill: 'rgba(37, 99, 235, 0.10)', width: 2, value: (_u, v) => fmtRate(v) },
      { label: 'failures/s', stroke: '#dc2626', fill: 'rgba(220, 38, 38, 0.10)', width: 2, value: (_u, v) => fmtRate(v) },
    ],
    axes: [{}, { label: 'per second', size: 60 }],
    legend: { live: true },
  },
  [xs, callRates, failureRates],
  chartEl,
);

new ResizeObserver(() => {
  const width = Math.max(300, chartEl.clientWidth);
  if (width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
}).observe(chartEl);

function pushPoint(atMs, calls, failures) {
  const x = atMs / 1000;
  xs.push(x);
  callRates.push(calls);
  failureRates.push(failures);
  let drop = 0;
  while (drop < xs.length && xs[drop] < x - WINDOW_S) drop++;
  if (drop > 0) {
    xs.splice(0, drop);
    callRates.splice(0, drop);
    failureRates.splice(0, drop);
  }
  plot.setData([xs, callRates, failureRates]);
}

// ---------------------------------------------------------------------------------------------
// Rendering a snapshot

let previous = null;
/** Snapshots of the last FIGURES_MS (and the one before), oldest first, for the figures' rates. */
const recent = [];
let lastConfig = '';

function render(snap) {
  const b = snap.balancer;
  $('balancer-id').textContent = b.id;
  document.title = `siplb ${b.id}`;
  $('balancer-version').textContent = b.version;
  $('balancer-uptime').textContent = fmtDuration(snap.at - b.startedAt);
  const status = $('balancer-status');
  status.textContent = b.stopping ? 'stopping' : 'running';
  status.dataset.state = b.stopping ? 'stopping' : 'running';

  renderTotals(snap);
  renderNodes(snap.nodes, snap.at);
  renderConfig(b.config);
  previous = snap;
}

function renderTotals(snap) {
  const t = snap.totals;
  $('total-calls').textContent = String(t.calls);
  const counts = { active: 0, draining: 0, down: 0 };
  for (const n of snap.nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
  const nodes = $('node-counts');
  nodes.textContent = `${counts.active} / ${snap.nodes.length} active`;
  nodes.title = `${counts.active} active, ${counts.draining} draining, ${counts.down} down`;

  const p = previous;
  // A first snapshot, or another balancer run (it restarted: counters from zero), has no rate.
  if (p === null || p.balancer.startedAt !== snap.balancer.startedAt || snap.at <= p.at) {
    recent.length = 0;
    recent.push(snap);
    for (const id of ['rate-calls', 'rate-failures', 'rate-requests', 'rate-responses']) $(id).textContent = '–';
    if (p !== null) pushPoint(snap.at, null, null);
    return;
  }
  // The chart: one point per snapshot, from the one before.
  const gap = snap.at - p.at > GAP_MS;
  if (gap) pushPoint(snap.at, null, null);
  else pushPoint(snap.at, rate(p, snap, 'callsStarted'), rate(p, snap, 'failures'));
  // The figures: over the last few seconds, so that they do not flicker from one tick to the next.
  if (gap) recent.length = 0;
  recent.push(snap);
  while (recent.length > 2 && snap.at - recent[1].at >= FIGURES_MS) recent.shift();
  const from = recent[0];
  $('rate-calls').textContent = fmtRate(rate(from, snap, 'callsStarted'));
  $('rate-failures').textContent = fmtRate(rate(from, snap, 'failures'));
  $('rate-requests').textContent = fmtRate(rate(from, snap, 'requestsIn'));
  $('rate-responses').textContent = fmtRate(rate(from, snap, 'responsesIn'));
}

/** Per second between two snapshots of one run; null when the counter went back. */
function rate(from, to, key) {
  if (to.at <= from.at) return null;
  const delta = to.totals[key] - from.totals[key];
  return delta >= 0 ? delta / ((to.at - from.at) / 1000) : null;
}

// One row per node, kept across snapshots (a button being pressed is not replaced under the
// pointer), in node id order.
const rows = new Map();

function cell(tr, className) {
  const td = document.createElement('td');
  if (className) td.className = className;
  tr.append(td);
  return td;
}

function createRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.node = id;
  const row = {
    tr,
    id: cell(tr, 'id'),
    address: cell(tr, 'address'),
    state: document.createElement('span'),
    why: null,
    calls: null,
    weight: null,
    version: null,
    source: null,
    lastHeard: null,
    drain: document.createElement('button'),
    activate: document.createElement('button'),
    message: document.createElement('span'),
    busy: false,
  };
  row.state.className = 'state';
  cell(tr, 'state-cell').append(row.state);
  row.why = cell(tr, 'why');
  row.calls = cell(tr, 'num');
  row.weight = cell(tr, 'num');
  row.version = cell(tr, 'version');
  row.source = cell(tr, 'source');
  row.lastHeard = cell(tr, 'last-heard');
  const actions = cell(tr, 'actions');
  for (const [button, action, label] of [[row.drain, 'drain', 'Drain'], [row.activate, 'activate', 'Activate']]) {
    button.type = 'button';
    button.dataset.action = action;
    button.textContent = label;
    button.addEventListener('click', () => act(row, id, action));
    actions.append(button);
  }
  row.message.className = 'row-message';
  row.message.setAttribute('role', 'alert');
  actions.append(row.message);
  row.id.textContent = id;
  rows.set(id, row);
  return row;
}

function renderNodes(nodes, at) {
  const tbody = $('nodes').tBodies[0];
  const sorted = [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const seen = new Set();
  let before = tbody.firstChild;
  for (const n of sorted) {
    seen.add(n.id);
    const row = rows.get(n.id) ?? createRow(n.id);
    row.address.textContent = `${n.ip} ${fmtPorts(n.ports)}`.trim();
    row.state.textContent = n.state;
    row.state.dataset.state = n.state;
    row.why.textContent = n.why;
    row.calls.textContent = String(n.calls);
    row.weight.textContent = String(n.weight);
    row.version.textContent = n.version;
    row.source.textContent = n.source;
    row.lastHeard.textContent = n.lastHeard === null ? '–' : `${fmtDuration(at - n.lastHeard)} ago`;
    // Draining: Activate puts it back. Active: Drain. Down: either (what it is once it is back).
    row.drain.hidden = n.state === 'draining';
    row.activate.hidden = n.state === 'active';
    if (row.tr !== before) tbody.insertBefore(row.tr, before);
    before = row.tr.nextSibling;
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  $('no-nodes').hidden = nodes.length > 0;
}

function renderConfig(config) {
  const entries = Object.entries(config ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = JSON.stringify(entries);
  if (text === lastConfig) return;
  lastConfig = text;
  const tbody = $('config').querySelector('tbody');
  tbody.replaceChildren(
    ...entries.map(([key, value]) => {
      const tr = document.createElement('tr');
      tr.dataset.key = key;
      const k = document.createElement('th');
      k.scope = 'row';
      k.textContent = key;
      const v = document.createElement('td');
      v.textContent = fmtValue(value);
      tr.append(k, v);
      return tr;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Drain and activate

function clearAuthErrors() {
  for (const row of rows.values()) {
    if (row.message.dataset.auth === 'true') {
      row.message.textContent = '';
      delete row.message.dataset.auth;
    }
  }
}

async function act(row, id, action) {
  if (row.busy) return;
  row.busy = true;
  row.drain.disabled = true;
  row.activate.disabled = true;
  row.message.textContent = '';
  delete row.message.dataset.auth;
  try {
    const res = await fetch(`api/v1/nodes/${encodeURIComponent(id)}/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...authHeaders() },
      body: '{}',
      cache: 'no-store',
    });
    if (res.ok) return; // The new state arrives with the next snapshot.
    const text = await errorText(res);
    if (res.status === 401 || res.status === 403) {
      row.message.dataset.auth = 'true';
      row.message.textContent = `${action} refused (${text}): enter the token, then try again`;
      askForToken(text);
      return;
    }
    row.message.textContent = `${action} failed: ${text}`;
  } catch (err) {
    row.message.textContent = `${action} failed: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    row.busy = false;
    row.drain.disabled = false;
    row.activate.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The event stream

let generation = 0;
let controller = null;
let retryTimer = null;
let backoffMs = BACKOFF_MIN_MS;

function setConnection(state, text) {
  const el = $('connection');
  el.dataset.state = state;
  el.textContent = text;
  document.body.classList.toggle('stale', state !== 'live');
}

/** (Re)opens the stream now, dropping any open or pending one. */
function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  controller?.abort();
  const gen = ++generation;
  const ac = new AbortController();
  controller = ac;
  setConnection('connecting', 'connecting');
  readStream(ac).then(
    (outcome) => {
      if (gen !== generation) return;
      if (outcome.auth !== undefined) {
        setConnection('auth', 'token needed');
        askForToken((getToken() || memoryToken) === '' ? outcome.auth : `The token was refused (${outcome.auth}).`);
        return; // Until a token is entered.
      }
      retry('the stream ended');
    },
    (err) => {
      if (gen !== generation) return;
      retry(err instanceof Error ? err.message : String(err));
    },
  );
}

function retry(why) {
  const delay = backoffMs * (0.8 + Math.random() * 0.4);
  backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
  setConnection('retrying', `reconnecting in ${Math.round(delay / 1000)} s`);
  $('connection').title = why;
  retryTimer = setTimeout(connect, delay);
}

/** Reads the stream until it ends; resolves { auth: message } on 401/403, else { ended: true }. */
async function readStream(ac) {
  const res = await fetch(EVENTS_URL, {
    headers: { Accept: 'text/event-stream', ...authHeaders() },
    cache: 'no-store',
    signal: ac.signal,
  });
  if (res.status === 401 || res.status === 403) return { auth: await errorText(res) };
  if (!res.ok || res.body === null) throw new Error(await errorText(res));
  setConnection('live', 'live');
  $('connection').title = '';

  let watchdog = setTimeout(() => ac.abort(), WATCHDOG_MS);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let data = [];
  const onLine = (line) => {
    if (line === '') {
      if (data.length > 0) onEvent(data.join('\n'));
      data = [];
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { ended: true };
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ac.abort(), WATCHDOG_MS);
      let text = pending + value;
      // A CR at the end may be the first half of a CRLF: wait for the next chunk to tell.
      let carry = '';
      if (text.endsWith('\r')) {
        carry = '\r';
        text = text.slice(0, -1);
      }
      const lines = text.split(/\r\n|\r|\n/);
      pending = lines.pop() + carry;
      for (const line of lines) onLine(line);
    }
  } finally {
    clearTimeout(watchdog);
    reader.cancel().catch(() => undefined);
  }
}

function onEvent(text) {
  let snap;
  try {
    snap = JSON.parse(text);
  } catch {
    return; // Not a snapshot: nothing the page knows how to show.
  }
  backoffMs = BACKOFF_MIN_MS;
  try {
    render(snap);
  } catch (err) {
    console.error('dashboard: could not render a snapshot', err);
  }
}

connect();
