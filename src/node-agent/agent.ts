// The node side of the heartbeat protocol (docs/heartbeat-protocol.md): registers an application
// server with one or more balancers, keeps it alive with heartbeats, re-registers when a balancer
// lost it, and drains then removes it on the way out. It knows nothing about SIP, so it can run
// beside an application server written in any language (see the siplb-node command).
//
// Each balancer is handled on its own: a balancer that is down or restarting never delays the
// heartbeats to the others. Per balancer there is never more than one request in flight: the
// next one is scheduled when the previous one has settled (answered, failed or timed out), at
// most one interval after the previous one was sent.

import type { ClientRequest } from 'node:http';
import { http } from '../core/node-http.ts';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ConfigError } from '../core/errors.ts';
import {
  authorization, DEFAULT_HEARTBEAT_PORT, MAX_MESSAGE_BYTES, nodeInfoProblem, readAnswer, requestBody, tokenProblem,
  type AnswerOutcome, type NodeInfo, type RequestKind,
} from '../heartbeat/protocol.ts';
import { formatHost, parseHostPort } from '../sip/uri.ts';

export type { NodeInfo, RequestKind } from '../heartbeat/protocol.ts';
export const DEFAULT_INTERVAL_MS = 1000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;
/** Consecutive unanswered requests after which a balancer counts as lost and gets `start` again. */
export const MISSES_BEFORE_LOST = 3;

export interface HeartbeatAgentOptions {
  /** `host:port;host:port` (port = the balancer's heartbeatPort, default 2610; IPv6 as [::1]:2610). */
  balancers: string;
  node: NodeInfo;
  intervalMs?: number;
  requestTimeoutMs?: number;
  shutdownGraceMs?: number;
  /**
   * The balancers' heartbeatToken, sent as `Authorization: Bearer` on every request; absent: none.
   * A function is read at construction and again whenever a balancer answers 401, so a token
   * file rewritten for a rotation is picked up without a restart.
   */
  token?: string | (() => string);
  logger: Logger;
}

export type BalancerState = 'starting' | 'registered' | 'lost';
/** idle: before start(); running; draining: after shutdown(), until stop; stopping: stop requests in flight; stopped. */
export type AgentPhase = 'idle' | 'running' | 'draining' | 'stopping' | 'stopped';

export interface BalancerAddress {
  host: string;
  port: number;
}

export interface BalancerCounters {
  /** Requests sent, by kind. */
  sent: Record<RequestKind, number>;
  ok: number;
  unknownSession: number;
  /** Requests without a usable answer: timeout, connection error, non-200, unreadable body. */
  missed: number;
  /** Successful `start` answers (the first registration and every re-registration). */
  registrations: number;
}

export interface BalancerStatus {
  /** host:port as used in events and logs. */
  balancer: string;
  state: BalancerState;
  consecutiveMisses: number;
  counters: BalancerCounters;
}

export interface StateChange {
  balancer: string;
  state: BalancerState;
  previous: BalancerState;
  /** Why: the answer or failure that caused the change. */
  reason: string;
}

export interface AnswerEvent {
  balancer: string;
  request: RequestKind;
  outcome: 'ok' | 'unknown-session' | 'miss';
  /** For a miss: what went wrong. */
  reason: string | null;
}

export interface RequestEvent {
  balancer: string;
  request: RequestKind;
}

export type HeartbeatAgentEvents = {
  /** A request is being sent (before its answer). */
  request: [RequestEvent];
  state: [StateChange];
  answer: [AnswerEvent];
  phase: [AgentPhase];
};

interface Link {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  state: BalancerState;
  misses: number;
  timer: NodeJS.Timeout | null;
  inFlight: Promise<void> | null;
  /** Draining: the balancer acknowledged `shutdown`, so only heartbeats are left to send. */
  shutdownAcked: boolean;
  /** Draining: the balancer does not know the session; nothing more to send until stop. */
  drainDone: boolean;
  /** The token sent to this balancer: each keeps its own, as they take a rotation one by one. */
  token: string | null;
  /** The balancer answered 401 and has accepted nothing since (its error is logged once). */
  tokenRefused: boolean;
  counters: BalancerCounters;
}

/** Parses `host:port;host:port` (port optional, default 2610). Throws ConfigError('balancers', ...). */
export function parseBalancers(list: string): BalancerAddress[] {
  const out: BalancerAddress[] = [];
  const seen = new Set<string>();
  for (const raw of list.split(';')) {
    const item = raw.trim();
    if (item.length === 0) continue;
    const hp = parseHostPort(item);
    if (hp === null) throw new ConfigError('balancers', list, `${JSON.stringify(item)} is not host[:port] (IPv6 as [addr]:port)`);
    const address = { host: hp.host, port: hp.port ?? DEFAULT_HEARTBEAT_PORT };
    const key = `${formatHost(address.host)}:${address.port}`;
    if (seen.has(key)) throw new ConfigError('balancers', list, `${key} is listed twice`);
    seen.add(key);
    out.push(address);
  }
  if (out.length === 0) throw new ConfigError('balancers', list, 'at least one balancer host:port is required');
  return out;
}

/** Checks what the balancers will reject anyway, so a bad node description fails at construction. */
function validateNode(node: NodeInfo): void {
  const problem = nodeInfoProblem(node);
  if (problem !== null) throw new ConfigError(problem.field, problem.value, problem.reason);
}

/** A usable token, or a ConfigError on `token` that does not quote it. */
function checkedToken(token: string): string {
  const problem = tokenProblem(token);
  if (problem !== null) throw new ConfigError('token', `(${token.length} characters, hidden)`, problem);
  return token;
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(name, String(value), 'must be a positive integer number of milliseconds');
  return value;
}

export class HeartbeatAgent extends EventEmitter<HeartbeatAgentEvents> {
  readonly intervalMs: number;
  readonly requestTimeoutMs: number;
  readonly shutdownGraceMs: number;
  private readonly node: NodeInfo;
  private readonly log: Logger;
  private readonly links: Link[];
  private readonly readToken: (() => string) | null;
  // maxSockets 1: one connection per balancer, reused (keep-alive) for every request.
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private currentPhase: AgentPhase = 'idle';
  private session: string | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private endGrace: (() => void) | null = null;
  private shutdownPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;

  /** Throws ConfigError for an unusable balancer list, node description or timing. */
  constructor(opts: HeartbeatAgentOptions) {
    super();
    validateNode(opts.node);
    this.node = { ...opts.node };
    this.intervalMs = positiveMs('intervalMs', opts.intervalMs, DEFAULT_INTERVAL_MS);
    this.requestTimeoutMs = positiveMs('requestTimeoutMs', opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
    this.shutdownGraceMs = opts.shutdownGraceMs === 0 ? 0 : positiveMs('shutdownGraceMs', opts.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS);
    this.log = opts.logger;
    this.readToken = typeof opts.token === 'function' ? opts.token : null;
    const token = opts.token === undefined ? null : checkedToken(typeof opts.token === 'function' ? opts.token() : opts.token);
    this.links = parseBalancers(opts.balancers).map((b) => ({
      name: `${formatHost(b.host)}:${b.port}`,
      host: b.host,
      port: b.port,
      state: 'starting',
      misses: 0,
      timer: null,
      inFlight: null,
      shutdownAcked: false,
      drainDone: false,
      token,
      tokenRefused: false,
      counters: { sent: { start: 0, heartbeat: 0, shutdown: 0, stop: 0 }, ok: 0, unknownSession: 0, missed: 0, registrations: 0 },
    }));
  }

  get phase(): AgentPhase {
    return this.currentPhase;
  }

  /** The session of the current run; null before start(). */
  get sessionId(): string | null {
    return this.session;
  }

  status(): BalancerStatus[] {
    return this.links.map((l) => ({
      balancer: l.name,
      state: l.state,
      consecutiveMisses: l.misses,
      counters: { ...l.counters, sent: { ...l.counters.sent } },
    }));
  }

  /** Registers with every balancer and keeps heartbeating. Only the first call does anything. */
  start(): void {
    if (this.currentPhase !== 'idle') return;
    this.session = randomUUID();
    this.setPhase('running');
    this.log.info({ sessionId: this.session, balancers: this.links.map((l) => l.name), node: this.node }, 'registering with balancers');
    for (const link of this.links) this.kick(link);
  }

  /**
   * Graceful shutdown: tells every balancer to send no new calls (`shutdown`) while heartbeats
   * keep the node alive for the calls in progress; after shutdownGraceMs, or as soon as stop() is
   * called, sends `stop`. Resolves when the stop requests have settled. Idempotent.
   */
  shutdown(): Promise<void> {
    if (this.shutdownPromise !== null) return this.shutdownPromise;
    if (this.stopPromise !== null) return this.stopPromise;
    if (this.currentPhase === 'idle') return this.stop();
    this.setPhase('draining');
    this.log.info({ graceMs: this.shutdownGraceMs }, 'draining: no new calls, stop after the grace period');
    for (const link of this.links) this.kick(link);
    const grace = Promise.withResolvers<void>();
    this.endGrace = grace.resolve;
    this.graceTimer = setTimeout(grace.resolve, this.shutdownGraceMs);
    this.shutdownPromise = grace.promise.then(() => this.stop());
    return this.shutdownPromise;
  }

  /** Removes the node from every balancer now (`stop`) and ends all timers. Idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise !== null) return this.stopPromise;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    if (this.currentPhase === 'idle') {
      this.setPhase('stopped');
      this.stopPromise = Promise.resolve();
    } else {
      this.setPhase('stopping');
      this.stopPromise = Promise.all(this.links.map((l) => this.stopLink(l))).then(() => {
        this.httpAgent.destroy();
        this.setPhase('stopped');
        this.log.info({ sessionId: this.session }, 'removed from balancers');
      });
    }
    // A shutdown() waiting out its grace period ends with this stop.
    this.endGrace?.();
    return this.stopPromise;
  }

  private async stopLink(link: Link): Promise<void> {
    if (link.timer !== null) clearTimeout(link.timer);
    link.timer = null;
    // Waiting (at most requestTimeoutMs) rather than racing keeps one request in flight, and a
    // late `start` can never reach the balancer after our `stop`.
    while (link.inFlight !== null) await link.inFlight;
    const outcome = await this.send(link, 'stop');
    this.record(link, 'stop', outcome);
  }

  /** Sends the next request now if nothing is in flight (else it follows the one in flight). */
  private kick(link: Link): void {
    if (link.timer !== null) clearTimeout(link.timer);
    link.timer = null;
    if (link.inFlight === null) this.tick(link);
  }

  private nextRequest(link: Link): RequestKind | null {
    if (this.currentPhase === 'running') return link.state === 'registered' ? 'heartbeat' : 'start';
    if (this.currentPhase === 'draining') {
      if (link.drainDone) return null;
      return link.shutdownAcked ? 'heartbeat' : 'shutdown';
    }
    return null;
  }

  private tick(link: Link): void {
    link.timer = null;
    const kind = this.nextRequest(link);
    if (kind === null) return;
    const sentAt = Date.now();
    const phaseAtSend = this.currentPhase;
    link.inFlight = this.send(link, kind).then((outcome) => {
      link.inFlight = null;
      const immediate = this.handle(link, kind, outcome);
      if (this.currentPhase !== 'running' && this.currentPhase !== 'draining') return;
      // A phase change while this request was out (shutdown()) is acted on at once.
      const delay = immediate || phaseAtSend !== this.currentPhase ? 0 : Math.max(0, this.intervalMs - (Date.now() - sentAt));
      link.timer = setTimeout(() => this.tick(link), delay);
    });
  }

  /** Applies an answer to the link's state; true when the next request should go out at once. */
  private handle(link: Link, kind: RequestKind, outcome: AnswerOutcome): boolean {
    this.record(link, kind, outcome);
    const draining = this.currentPhase === 'draining';
    if (outcome.kind !== 'miss' && link.tokenRefused) {
      link.tokenRefused = false;
      this.log.info({ balancer: link.name }, `heartbeat token accepted by ${link.name}`);
    }
    if (outcome.kind === 'ok') {
      link.misses = 0;
      if (kind === 'start') link.counters.registrations++;
      if (kind === 'shutdown') link.shutdownAcked = true;
      this.setState(link, 'registered', `${kind} OK`);
      return false;
    }
    if (outcome.kind === 'unknown-session') {
      link.misses = 0;
      if (draining) {
        // Registering again would invite new calls to a node that is going away.
        link.drainDone = true;
        this.setState(link, 'lost', `${kind} UNKNOWN_SESSION while draining`);
        return false;
      }
      if (kind === 'heartbeat') {
        this.setState(link, 'starting', 'heartbeat UNKNOWN_SESSION');
        return true;
      }
      return false;
    }
    link.misses++;
    if (outcome.unauthorized === true) this.tokenRefusedBy(link, outcome.reason);
    this.log.debug({ balancer: link.name, request: kind, reason: outcome.reason, consecutiveMisses: link.misses }, 'balancer did not answer');
    if (link.misses >= MISSES_BEFORE_LOST) this.setState(link, 'lost', `${link.misses} requests unanswered, last: ${outcome.reason}`);
    return false;
  }

  /**
   * A 401: logged once until the balancer accepts a request again, and the token read anew for
   * the next attempt, which goes out at the usual interval like any other miss.
   */
  private tokenRefusedBy(link: Link, reason: string): void {
    if (!link.tokenRefused) {
      link.tokenRefused = true;
      const hint = link.token === null ? 'this node sends no token: give it the balancer\'s heartbeatToken' : 'the balancer has another heartbeatToken';
      this.log.error({ balancer: link.name, reason, hint }, `heartbeat token refused by ${link.name}`);
    }
    if (this.readToken === null) return;
    try {
      link.token = checkedToken(this.readToken());
    } catch (err) {
      // The previous token stays: a file caught half-written must not stop the retries.
      this.log.warn({ balancer: link.name, err: err instanceof ConfigError ? err.reason : (err as Error).message }, 'cannot read the heartbeat token again; keeping the previous one');
    }
  }

  private record(link: Link, kind: RequestKind, outcome: AnswerOutcome): void {
    if (outcome.kind === 'ok') link.counters.ok++;
    else if (outcome.kind === 'unknown-session') link.counters.unknownSession++;
    else link.counters.missed++;
    this.emitSafe('answer', {
      balancer: link.name,
      request: kind,
      outcome: outcome.kind,
      reason: outcome.kind === 'miss' ? outcome.reason : null,
    });
  }

  private setState(link: Link, state: BalancerState, reason: string): void {
    const previous = link.state;
    if (previous === state) return;
    link.state = state;
    const fields = { balancer: link.name, state, previous, reason };
    if (state === 'registered') this.log.info(fields, 'balancer knows this node');
    else this.log.warn(fields, state === 'lost' ? 'balancer lost' : 'balancer forgot this node, registering again');
    this.emitSafe('state', fields);
  }

  private setPhase(phase: AgentPhase): void {
    this.currentPhase = phase;
    this.emitSafe('phase', phase);
  }

  /** Listeners are the embedder's code: their exceptions must not break the heartbeat loop. */
  private emitSafe<K extends keyof HeartbeatAgentEvents>(event: K, ...args: HeartbeatAgentEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: HeartbeatAgentEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'heartbeat agent listener threw');
    }
  }

  /** One POST; always resolves (a failure is a miss with its reason). */
  private send(link: Link, kind: RequestKind): Promise<AnswerOutcome> {
    link.counters.sent[kind]++;
    this.emitSafe('request', { balancer: link.name, request: kind });
    const body = Buffer.from(requestBody(kind, this.node, this.session ?? ''), 'utf8');
    return new Promise<AnswerOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: AnswerOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      let req: ClientRequest;
      try {
        req = http.request({
          host: link.host,
          port: link.port,
          method: 'POST',
          path: '/',
          agent: this.httpAgent,
          headers: {
            'content-type': 'application/json', 'content-length': body.length,
            ...(link.token === null ? {} : { authorization: authorization(link.token) }),
          },
        }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_MESSAGE_BYTES) {
              req.destroy();
              finish({ kind: 'miss', reason: `answer larger than ${MAX_MESSAGE_BYTES} bytes` });
            } else chunks.push(chunk);
          });
          res.on('end', () => finish(readAnswer(kind, res.statusCode, Buffer.concat(chunks))));
          res.on('error', (err) => finish({ kind: 'miss', reason: err.message }));
          res.on('close', () => finish({ kind: 'miss', reason: 'connection closed before the answer ended' }));
        });
      } catch (err) {
        // Only invalid options throw synchronously; the host/port were validated, but stay safe.
        resolve({ kind: 'miss', reason: err instanceof Error ? err.message : String(err) });
        return;
      }
      const timer = setTimeout(() => {
        req.destroy();
        finish({ kind: 'miss', reason: `no answer within ${this.requestTimeoutMs} ms` });
      }, this.requestTimeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'miss', reason: err.code ?? err.message }));
      req.end(body);
    });
  }
}
