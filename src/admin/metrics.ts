// Prometheus metrics of a running balancer (GET /metrics, text format 0.0.4), on prom-client with
// a registry of its own. Nothing is counted twice: the data path keeps plain numbers (ProxyStats,
// HttpStats, the tracker's and the store's counters) and every metric reads them when it is
// scraped (a collect() callback). The only things counted here are what no lower part counts:
// the registry's events (take-outs and returns, state transitions), diffed from the flags it
// keeps, and the forwarding-time histogram the proxy feeds through ProxyStats.observeHandling.
//
// Base units (seconds, bytes), `_total` counters, and labels from bounded sets only: node ids
// (bounded by the node count: a removed node's series go with it), SIP methods (ProxyStats counts
// a fixed set, the rest as `other`), transports, status classes, local-reply status codes, drop
// reasons (code strings the proxy and the transports choose), causes. Never a Call-ID, user or
// client address.
//
// Process metrics (CPU, RSS, heap, event-loop lag through perf_hooks' monitorEventLoopDelay, GC)
// are prom-client's default metrics, prefixed `siplb_`. They install a GC observer and an enabled
// event-loop delay monitor that prom-client offers no way to stop, so they live in one registry
// per process, shared by every Metrics and appended to each one's output. Three of them are
// gauges with a `_total` name and are left out (core/process-metrics.ts).

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../core/process-metrics.ts';
import { NodeHistogram } from './node-histogram.ts';
import type { PassiveCause } from '../cluster/node-registry.ts';
import type { NodeState } from '../cluster/snapshot.ts';
import { SIP_TRANSPORTS } from '../config/types.ts';
import { rateLimit } from '../core/log.ts';
import type { NodeHttpCounters } from '../http/stats.ts';
import type { SharedTierHealth } from '../state/store.ts';
import type { AdminTarget } from './target.ts';

const PREFIX = 'siplb_';

/** Stream transports: the ones with connections. */
const STREAM_TRANSPORTS = ['tcp', 'tls', 'ws', 'wss'] as const;
const SIDES = ['external', 'internal'] as const;
const NODE_STATES: readonly NodeState[] = ['active', 'draining', 'down'];

/**
 * Buckets of the SIP handling time: parsing, picking and splicing one message takes tens of
 * microseconds on a quiet balancer; milliseconds mean a busy event loop.
 */
const HANDLING_BUCKETS = [0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
/** HTTP response heads: a node's application time, from a millisecond to httpResponseTimeout's default. */
const HTTP_RESPONSE_BUCKETS = [0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Labels = Record<string, string | number>;
/** Hands one sample (value, labels) of a metric to prom-client. */
type Emit = (value: number, labels?: Labels) => void;

/** What the Redis store counts beyond the StateStore contract (read when present). */
interface RedisStoreCounters {
  readonly failedWrites: number;
  readonly pendingWrites: number;
  readonly reconcileDropped: number;
}

/** The flags of a registry entry that make its state, as last seen by this module. */
interface NodeFlags {
  healthy: boolean;
  passiveDown: boolean;
  passiveCause: PassiveCause | null;
  state: NodeState | undefined;
}

/** Counts by a tuple of label values, for the counters this module keeps itself. */
class Tally {
  private readonly counts = new Map<string, { labels: Labels; n: number }>();

  add(labels: Labels): void {
    const key = JSON.stringify(labels);
    const c = this.counts.get(key);
    if (c === undefined) this.counts.set(key, { labels, n: 1 });
    else c.n++;
  }

  /** Drops every count whose `node` label is `node`. */
  forgetNode(node: string): void {
    for (const [key, c] of this.counts) if (c.labels.node === node) this.counts.delete(key);
  }

  emit(emit: Emit): void {
    for (const c of this.counts.values()) emit(c.n, c.labels);
  }
}

export class Metrics {
  readonly contentType: string;
  private readonly registry = new Registry();
  private readonly target: AdminTarget;
  private readonly observeHandling: (seconds: number) => void;
  /** The HTTP response-head histogram and its observer, when the HTTP balancer runs. */
  private httpResponses: NodeHistogram | null = null;
  private observeHttpResponse: ((nodeId: string, seconds: number) => void) | null = null;
  private closed = false;
  private readonly bugLogGate = rateLimit(60_000);
  /** Flags of each known node, to tell what an event changed. */
  private readonly flags = new Map<string, NodeFlags>();
  /** {node, cause}: health_check (active checks: down), errors or silence (passive health: draining). */
  private readonly takeouts = new Tally();
  private readonly returns = new Tally();
  /** {node, state}: the state a node entered. */
  private readonly transitions = new Tally();
  /** {change}: added, replaced, removed. */
  private readonly membership = new Tally();

  constructor(target: AdminTarget) {
    this.target = target;
    this.contentType = this.registry.contentType;
    processMetrics(PREFIX);
    this.balancerMetrics();
    this.sipMetrics();
    const handling = new Histogram({
      name: `${PREFIX}sip_handling_seconds`,
      help: 'Time the proxy took over a SIP message, from receipt to the hand-over to the transport (a pick that waits for the shared store not included); one message in 64 is timed.',
      buckets: HANDLING_BUCKETS,
      registers: [this.registry],
    });
    this.observeHandling = (seconds) => handling.observe(seconds);
    target.stats.observeHandling = this.observeHandling;
    this.transportMetrics();
    this.nodeMetrics();
    this.storeMetrics();
    if (target.http !== null) this.httpMetrics();
    for (const e of target.registry.list()) this.flags.set(e.node.id, this.flagsOf(e.node.id) as NodeFlags);
    target.registry.onEvent((e) => {
      if (this.closed) return;
      // An updated node (a new weight) is neither joining nor leaving: only its flags may differ.
      if (e.type === 'state' || e.type === 'updated') this.diffNodes();
      else if (e.type === 'removed') {
        this.membership.add({ change: 'removed' });
        this.flags.delete(e.nodeId);
        this.httpResponses?.remove(e.nodeId);
        for (const t of [this.takeouts, this.returns, this.transitions]) t.forgetNode(e.nodeId);
        this.diffNodes();
      } else {
        this.membership.add({ change: e.type });
        // A new entry (a new session) starts with fresh flags: nothing to compare with.
        const now = this.flagsOf(e.nodeId);
        if (now !== undefined) this.flags.set(e.nodeId, now);
        this.diffNodes();
      }
    });
  }

  /** The exposition: this balancer's metrics, then the process's. */
  async render(): Promise<string> {
    const own = await this.registry.metrics();
    const proc = await processMetrics(PREFIX).metrics();
    return `${own.endsWith('\n') ? own : `${own}\n`}${proc}`;
  }

  /** Stops feeding the histogram and counting registry events (the registry keeps its listener). */
  close(): void {
    this.closed = true;
    if (this.target.stats.observeHandling === this.observeHandling) this.target.stats.observeHandling = null;
    const http = this.target.http;
    if (http !== null && http.stats.observeResponse === this.observeHttpResponse) http.stats.observeResponse = null;
  }

  // ------------------------------------------------------------------ building blocks

  /**
   * A counter whose samples `read` hands over at scrape time, from numbers a lower layer keeps
   * (monotonic there). The metric is emptied first, so a series whose source is gone (a node
   * removed) disappears instead of freezing.
   */
  private counter(name: string, help: string, labelNames: readonly string[], read: (emit: Emit) => void): void {
    const metric: Counter = new Counter({
      name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry],
      collect: () => {
        metric.reset();
        this.guarded(name, () => read((value, labels) => {
          if (labels === undefined) metric.inc(value);
          else metric.inc(labels, value);
        }));
      },
    });
  }

  /** A gauge read at scrape time, emptied first as counter() is. */
  private gauge(name: string, help: string, labelNames: readonly string[], read: (emit: Emit) => void): void {
    const metric: Gauge = new Gauge({
      name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry],
      collect: () => {
        metric.reset();
        this.guarded(name, () => read((value, labels) => {
          if (labels === undefined) metric.set(value);
          else metric.set(labels, value);
        }));
      },
    });
  }

  /** A bug in one reader leaves its metric empty for this scrape; the others still render. */
  private guarded(name: string, read: () => void): void {
    try {
      read();
    } catch (err) {
      if (this.bugLogGate()) this.target.log.error({ err, metric: name }, 'metrics: a metric could not be read');
    }
  }

  // ------------------------------------------------------------------ the metrics

  private balancerMetrics(): void {
    const t = this.target;
    this.gauge('build_info', 'siplb\'s version; always 1.', ['version'], (emit) => emit(1, { version: t.version }));
    this.gauge('start_time_seconds', 'When this balancer started, seconds since the epoch.', [], (emit) => emit(t.startedAt / 1000));
    this.gauge('stopping', '1 while a graceful stop is under way (new calls get 503), else 0.', [], (emit) => emit(t.isStopping() ? 1 : 0));
    this.counter('heartbeat_rejected_total', 'Heartbeat requests refused, by reason: token (401: no heartbeatToken, or another) and invalid (400: not a protocol request); neither changed the registry.',
      ['reason'], (emit) => {
        const hb = t.heartbeat;
        if (hb === null) return;
        for (const [reason, n] of Object.entries(hb.rejected)) emit(n, { reason });
      });
  }

  private sipMetrics(): void {
    const s = this.target.stats;
    this.counter('sip_requests_received_total', 'SIP requests received, by transport and method (methods outside a fixed set count as "other").',
      ['transport', 'method'], (emit) => {
        for (const transport of SIP_TRANSPORTS) for (const [method, n] of s.requestsByMethod[transport]) emit(n, { transport, method });
      });
    this.counter('sip_responses_received_total', 'SIP responses received, by transport and status class.',
      ['transport', 'status_class'], (emit) => {
        for (const transport of SIP_TRANSPORTS) {
          const byClass = s.responsesByClass[transport];
          for (let c = 1; c <= 6; c++) emit(byClass[c], { transport, status_class: `${c}xx` });
        }
      });
    this.counter('sip_requests_forwarded_total', 'SIP requests forwarded (to a node, or from a node towards a client).', [], (emit) => emit(s.requestsForwarded));
    this.counter('sip_responses_forwarded_total', 'SIP responses forwarded.', [], (emit) => emit(s.responsesForwarded));
    this.counter('sip_local_replies_total', 'SIP responses siplb answered itself (100 Trying, 400, 482, 483, 503...), by status code.',
      ['status'], (emit) => {
        for (const [status, n] of s.localReplies) emit(n, { status });
      });
    this.counter('sip_dropped_messages_total', 'SIP messages dropped without an answer, by reason ("unparseable": could not be read as SIP at all).',
      ['reason'], (emit) => {
        emit(s.unparseable, { reason: 'unparseable' });
        for (const [reason, n] of s.dropped) emit(n, { reason });
      });
    this.gauge('sources_blocked', 'Source addresses blocked now by the per-source limit of new requests (pikeRequests); their new requests are dropped and counted as reason "rate-limited".',
      [], (emit) => emit(s.sourcesBlocked));
    this.gauge('overload_state', 'Overload control (overloadControl): 0 every new call admitted, 1 a share of new calls refused with 503, 2 that share dropped unanswered.',
      [], (emit) => emit(s.overload.state));
    this.gauge('overload_fraction', 'Share of new calls from clients overload control refuses now (0 to 0.95).', [], (emit) => emit(s.overload.fraction));
    this.counter('overload_shed_total', 'New requests from clients shed by overload control: answered 503 (reject) or dropped unanswered (drop).',
      ['action'], (emit) => {
        emit(s.overload.rejected, { action: 'reject' });
        emit(s.overload.dropped, { action: 'drop' });
      });
    this.counter('overload_episodes_total', 'Times overload control started shedding.', [], (emit) => emit(s.overload.episodes));
    this.counter('sip_invites_replaced_total', 'INVITEs placed on another node because theirs went down before answering (isSendTrying).', [], (emit) => emit(s.invitesReplaced));
  }

  private transportMetrics(): void {
    const connections = this.target.transports.connections;
    this.gauge('transport_connections', 'Open SIP stream connections (accepted and dialled), by transport and side.',
      ['transport', 'side'], (emit) => {
        for (const transport of STREAM_TRANSPORTS) for (const side of SIDES) emit(connections.of(transport, side).length, { transport, side });
      });
  }

  private nodeMetrics(): void {
    const t = this.target;
    this.gauge('nodes', 'Nodes known, by state.', ['state'], (emit) => {
      const snap = t.registry.snapshot();
      const counts = new Map<NodeState, number>(NODE_STATES.map((st) => [st, 0]));
      for (const e of t.registry.list()) {
        const st = snap.stateOf(e.node.id) ?? 'down';
        counts.set(st, (counts.get(st) ?? 0) + 1);
      }
      for (const [state, n] of counts) emit(n, { state });
    });
    this.gauge('node_state', 'State of each node: 1 for the state it is in (active: takes new calls; draining: keeps its calls; down: takes nothing), 0 for the others.',
      ['node', 'state'], (emit) => {
        const snap = t.registry.snapshot();
        for (const e of t.registry.list()) {
          const now = snap.stateOf(e.node.id) ?? 'down';
          for (const state of NODE_STATES) emit(state === now ? 1 : 0, { node: e.node.id, state });
        }
      });
    this.gauge('node_info', 'Each node\'s source (static: nodes=; registered: heartbeats to this balancer; shared: learned from another balancer) and version; always 1.',
      ['node', 'source', 'version'], (emit) => {
        for (const e of t.registry.list()) {
          const source = e.source === 'static' ? 'static' : e.origin === 'remote' ? 'shared' : 'registered';
          emit(1, { node: e.node.id, source, version: e.version });
        }
      });
    this.gauge('node_weight', 'Configured weight of each node.', ['node'], (emit) => {
      for (const e of t.registry.list()) emit(e.node.weight, { node: e.node.id });
    });
    this.gauge('node_last_heard_timestamp_seconds', 'Last heartbeat from each registered node (this balancer\'s or, shared, another\'s), seconds since the epoch.',
      ['node'], (emit) => {
        for (const e of t.registry.list()) if (e.source !== 'static') emit(e.lastHeard / 1000, { node: e.node.id });
      });
    this.gauge('node_active_calls', 'Calls each node holds, as counted by this balancer (counted_by="this") and by the other balancers sharing the store ("others"); sum the "this" series over balancers for a cluster total.',
      ['node', 'counted_by'], (emit) => {
        const local = t.calls.localCounts();
        for (const e of t.registry.list()) {
          const id = e.node.id;
          const here = local.get(id) ?? 0;
          emit(here, { node: id, counted_by: 'this' });
          emit(Math.max(0, t.calls.activeCalls(id) - here), { node: id, counted_by: 'others' });
        }
      });
    this.counter('calls_started_total', 'Calls started: initial INVITEs forwarded to a node.', [], (emit) => emit(t.stats.callsStarted));
    this.gauge('calls_tracked', 'Calls this balancer tracks (forwarded initial INVITEs not yet ended by BYE, error or idle expiry).', [], (emit) => emit(t.calls.size));
    this.counter('calls_expired_total', 'Tracked calls forgotten because they went idle (a lost BYE) or the table was full.', [], (emit) => emit(t.calls.expired));
    this.counter('health_check_probes_total', 'SIP OPTIONS probes sent by the active health checks (busy nodes are not probed).', [], (emit) => emit(t.health.probesSent));
    this.counter('health_check_results_total', 'Results of the OPTIONS probes, by node: ok (answered with success), failed (timeout, refused, an error status), silent (an open port that never answers OPTIONS, counted as up).',
      ['node', 'result'], (emit) => {
        for (const e of t.registry.list()) {
          const r = t.health.results.get(e.node.id);
          if (r === undefined) continue;
          emit(r.ok, { node: e.node.id, result: 'ok' });
          emit(r.failed, { node: e.node.id, result: 'failed' });
          emit(r.silent, { node: e.node.id, result: 'silent' });
        }
      });
    this.counter('node_sip_messages_sent_total', 'SIP messages (requests and responses) sent to each node.', ['node'], (emit) => {
      for (const e of t.registry.list()) emit(t.stats.sentToNode.get(e.node.id) ?? 0, { node: e.node.id });
    });
    this.counter('node_sip_messages_received_total', 'SIP messages (requests and responses) received from each node.', ['node'], (emit) => {
      for (const e of t.registry.list()) emit(t.stats.receivedFromNode.get(e.node.id) ?? 0, { node: e.node.id });
    });
    this.counter('node_takeouts_total', 'Times each node was taken out, by cause: health_check (active checks failed: down), errors (passive health: error responses) or silence (passive health: requests left unanswered); the last two leave it draining.',
      ['node', 'cause'], (emit) => this.takeouts.emit(emit));
    this.counter('node_returns_total', 'Times each node came back from a take-out, by the cause it had been taken out for.',
      ['node', 'cause'], (emit) => this.returns.emit(emit));
    this.counter('node_state_transitions_total', 'Times each node entered a state (active, draining, down) since it joined.',
      ['node', 'state'], (emit) => this.transitions.emit(emit));
    this.counter('node_membership_changes_total', 'Nodes added, replaced (re-registered with a new session) and removed (stop, heartbeat timeout) since the metrics started (static nodes are added before).',
      ['change'], (emit) => this.membership.emit(emit));
  }

  private storeMetrics(): void {
    const store = this.target.store;
    this.gauge('store_available', 'Whether the state store serves keys right now, all or some of them (1), or siplb runs on local state alone (0), by kind (memory, redis).',
      ['kind'], (emit) => emit(store.available ? 1 : 0, { kind: store.kind }));
    this.counter('store_outages_total', 'Times the whole shared state store became unavailable.', [], (emit) => emit(store.outages));
    if (store.kind === 'redis') {
      this.gauge('store_ping_seconds', 'Round trip of the shared store\'s last health check, in seconds, on its slowest answering server (the latency every shared lookup pays at least).',
        [], (emit) => { if (store.latencyMs !== null) emit(store.latencyMs / 1000); });
    }
    if (store.health !== undefined) {
      const health = (): SharedTierHealth => store.health as SharedTierHealth;
      this.gauge('store_servers', 'Redis servers the shared keys are spread over (a cluster\'s masters; 1 for a single server).', [], (emit) => emit(health().servers));
      this.gauge('store_servers_up', 'Of those, the servers serving keys right now; fewer than store_servers: keys on the others fall back to local state.', [], (emit) => emit(health().serversUp));
      this.gauge('store_state', 'The shared store\'s state: 1 for the current one of up (every server), degraded (some), down (none).', ['state'], (emit) => {
        const now = health().state;
        for (const st of ['up', 'degraded', 'down'] as const) emit(st === now ? 1 : 0, { state: st });
      });
      this.counter('store_server_outages_total', 'Times one server stopped serving keys while others went on (the store degraded, not down).', [], (emit) => emit(health().serverOutages));
    }
    const redis = store as unknown as Partial<RedisStoreCounters>;
    if (typeof redis.failedWrites === 'number') {
      this.counter('store_failed_writes_total', 'Writes the shared store did not take (skipped while unavailable, or failed).', [], (emit) => emit(redis.failedWrites ?? 0));
    }
    if (typeof redis.pendingWrites === 'number') {
      this.gauge('store_pending_writes', 'Assignment writes waiting to be redone when the shared store is back.', [], (emit) => emit(redis.pendingWrites ?? 0));
    }
    if (typeof redis.reconcileDropped === 'number') {
      this.counter('store_reconcile_dropped_total', 'Missed assignment writes forgotten because too many were waiting.', [], (emit) => emit(redis.reconcileDropped ?? 0));
    }
  }

  private httpMetrics(): void {
    const t = this.target;
    const http = t.http;
    if (http === null) return;
    const responses = new NodeHistogram({
      name: `${PREFIX}http_response_head_seconds`,
      help: 'Time from an HTTP request\'s arrival at siplb to its node\'s response head, per node (connecting to the node included, a retry on another node counted on that node; the body not included).',
      labelName: 'node',
      buckets: HTTP_RESPONSE_BUCKETS,
      registers: [this.registry],
    });
    this.httpResponses = responses;
    this.observeHttpResponse = (node, seconds) => responses.observe(node, seconds);
    http.stats.observeResponse = this.observeHttpResponse;
    const perNode = (each: (id: string, c: NodeHttpCounters, emit: Emit) => void) => (emit: Emit): void => {
      for (const e of t.registry.list()) {
        const c = http.stats.peek(e.node.id);
        if (c !== undefined) each(e.node.id, c, emit);
      }
    };
    this.counter('http_node_requests_total', 'HTTP requests forwarded to each node (a retried request counts on each node it was sent to).',
      ['node'], perNode((node, c, emit) => emit(c.requests, { node })));
    this.counter('http_node_error_responses_total', 'HTTP responses of each node with an error status, by status class.',
      ['node', 'status_class'], perNode((node, c, emit) => {
        emit(c.status4xx, { node, status_class: '4xx' });
        emit(c.status5xx, { node, status_class: '5xx' });
      }));
    this.counter('http_node_failures_total', 'HTTP exchanges with each node that failed, by reason: connect (no connection, or it failed before the request was written), timeout (no response head, or a stalled body, within httpResponseTimeout), broken (unreadable or cut short).',
      ['node', 'reason'], perNode((node, c, emit) => {
        emit(c.connect, { node, reason: 'connect' });
        emit(c.timeout, { node, reason: 'timeout' });
        emit(c.broken, { node, reason: 'broken' });
      }));
    this.counter('http_node_sticky_total', 'HTTP requests whose session route named each node, by result: hit (the node was alive) or miss (it was down, or the request left it for a retry).',
      ['node', 'result'], perNode((node, c, emit) => {
        emit(c.stickyHits, { node, result: 'hit' });
        emit(c.stickyMisses, { node, result: 'miss' });
      }));
    this.gauge('http_node_open_tunnels', 'WebSocket tunnels open to each node.', ['node'], perNode((node, c, emit) => emit(c.tunnels, { node })));
    this.counter('http_node_tunnels_opened_total', 'WebSocket tunnels opened to each node.', ['node'], perNode((node, c, emit) => emit(c.tunnelsOpened, { node })));
    this.gauge('http_node_out', '1 while HTTP passive health keeps the node out of new HTTP sessions, else 0.', ['node'], (emit) => {
      for (const e of t.registry.list()) emit(http.health.isOut(e.node.id) ? 1 : 0, { node: e.node.id });
    });
    this.counter('http_local_replies_total', 'HTTP answers siplb gave without a node\'s response, by reason: unavailable (503 or the redirect to unavailableHost), too_large (413), bad_gateway (502), gateway_timeout (504), bad_request (400), internal_error (500).',
      ['reason'], (emit) => {
        const l = http.stats.local;
        emit(l.unavailable, { reason: 'unavailable' });
        emit(l.tooLarge, { reason: 'too_large' });
        emit(l.badGateway, { reason: 'bad_gateway' });
        emit(l.gatewayTimeout, { reason: 'gateway_timeout' });
        emit(l.badRequests, { reason: 'bad_request' });
        emit(l.internalErrors, { reason: 'internal_error' });
      });
    this.counter('http_retries_total', 'HTTP requests sent again to another node after their first node refused the connection.', [], (emit) => emit(http.stats.local.retries));
    this.counter('http_unknown_routes_total', 'HTTP requests whose session route named no node this balancer knows.', [], (emit) => emit(http.stats.local.unknownRoutes));
  }

  // ------------------------------------------------------------------ registry events

  private flagsOf(id: string): NodeFlags | undefined {
    const e = this.target.registry.get(id);
    if (e === undefined) return undefined;
    return { healthy: e.healthy, passiveDown: e.passiveDown, passiveCause: e.passiveCause, state: this.target.registry.snapshot().stateOf(id) };
  }

  /**
   * What changed since the last event, for every node: one event can change the state of others
   * (a newer version registering drains the older ones without an event of their own).
   */
  private diffNodes(): void {
    for (const e of this.target.registry.list()) {
      const id = e.node.id;
      const now = this.flagsOf(id);
      if (now === undefined) continue;
      const before = this.flags.get(id);
      this.flags.set(id, now);
      if (before === undefined) continue;
      if (before.healthy && !now.healthy) this.takeouts.add({ node: id, cause: 'health_check' });
      else if (!before.healthy && now.healthy) this.returns.add({ node: id, cause: 'health_check' });
      if (!before.passiveDown && now.passiveDown) this.takeouts.add({ node: id, cause: now.passiveCause ?? 'errors' });
      else if (before.passiveDown && !now.passiveDown) this.returns.add({ node: id, cause: before.passiveCause ?? 'errors' });
      if (now.state !== undefined && now.state !== before.state) this.transitions.add({ node: id, state: now.state });
    }
  }
}
