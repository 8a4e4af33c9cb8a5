// One HTTP request forwarded to a node and its response forwarded back: the request's routing
// view for the chooser, and the handler of its node request (node-client.ts), in one object, so a
// request allocates this and its header list and little else (no closures: the client-side
// events reach the exchange through a symbol on the response).
//
// Bodies stream both ways with backpressure: the client's request stream is the node request's
// body (the node client reads it as it writes), and each response chunk is written to the client
// as it comes, pausing the node connection while the client's socket is full. Nothing is
// buffered whole.
//
// Failures, before the response head went to the client:
//   - body over maxContentLength: 413 (a Content-Length over it before anything is sent; a
//     chunked body when its count passes it, which aborts the node request);
//   - the node cannot be reached, or the connection broke before a byte of the request was
//     written: for an idempotent method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) whose body has
//     not begun to be read, sent once more to another node; else 502. A POST is never replayed;
//   - no response head within httpResponseTimeout: 504;
//   - any other failure (a reset after the request was written, a response siplb cannot frame):
//     502.
// After the head went out, a failure cuts the client connection: that is how HTTP/1.1 tells a
// client its response is incomplete.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import { BodyLimit, BodyTooLargeError } from './body-limit.ts';
import { upstreamHeaders, type ClientSide, downstreamHeaders } from './forward-headers.ts';
import { isNodeFailureStatus, type HttpHealth } from './http-health.ts';
import { answer, answerUnavailable, unavailableLocation } from './local-answer.ts';
import type { HttpNodeChooser, RoutedRequest } from './node-choice.ts';
import { NODE_HTTP_ERRORS, type BodyFraming, type NodeRequestController, type NodeResponseHandler } from './node-client.ts';
import type { NodePools } from './node-pools.ts';
import type { HttpStats, NodeHttpCounters } from './stats.ts';

/** What every exchange shares: built once by the balancer. */
export interface ExchangeContext {
  readonly chooser: HttpNodeChooser;
  readonly pools: NodePools;
  readonly stats: HttpStats;
  readonly health: HttpHealth;
  readonly maxContentLength: number;
  /** unavailableHost, or null for 503. */
  readonly unavailableHost: string | null;
  /** requestCheckPattern: an error answer to a request whose target it finds takes the node out. */
  readonly requestCheck: RegExp | null;
  readonly log: Logger;
  cluster(): ClusterSnapshot;
}

/** Methods that may be sent again after a failed connection (RFC 9110 §9.2.2), QUERY aside. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Error codes of a connection that could not be made or broke (the node client's and the socket's). */
const CONNECTION_FAILURES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL', 'ETIMEDOUT',
  NODE_HTTP_ERRORS.connectTimeout, NODE_HTTP_ERRORS.closed, NODE_HTTP_ERRORS.clientClosed,
]);

const kExchange = Symbol('siplb.http.exchange');
type ResponseWithExchange = ServerResponse & { [kExchange]?: Exchange };

/** The client went away: whatever the node request is doing stops. */
class ClientGoneError extends Error {
  readonly code = 'SIPLB_HTTP_CLIENT_GONE';
}
const CLIENT_GONE = new ClientGoneError('client closed the connection');

function onClientClose(this: ResponseWithExchange): void {
  this[kExchange]?.clientClosed();
}

function onClientDrain(this: ResponseWithExchange): void {
  this[kExchange]?.clientDrained();
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

export class Exchange implements RoutedRequest, ClientSide, NodeResponseHandler {
  readonly method: string;
  readonly url: string;
  readonly cookie: string | undefined;
  readonly remoteAddress: string;
  /** ClientSide: the client's address and the scheme it reached siplb on. */
  readonly ip: string;
  readonly proto: 'http' | 'https';
  sticky = false;

  private readonly req: IncomingMessage;
  private readonly res: ResponseWithExchange;
  private readonly ctx: ExchangeContext;
  private node: SipNode | null = null;
  private counters: NodeHttpCounters | null = null;
  private controller: NodeRequestController | null = null;
  private headers: string[] = [];
  private body: Readable | null = null;
  /** Some byte of the request went to the node. */
  private written = false;
  /** The response head went to the client. */
  private responded = false;
  /** Nothing more to do: answered, failed, or the client is gone. */
  private finished = false;
  private retried = false;
  private hasBody = false;
  private chunked = false;
  private expectContinue = false;
  /** performance.now() at arrival, when response times are observed (stats.observeResponse). */
  private readonly arrivedAt: number;

  constructor(ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, ip: string, proto: 'http' | 'https') {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    this.cookie = req.headers.cookie;
    this.remoteAddress = ip;
    this.ip = ip;
    this.proto = proto;
    this.arrivedAt = ctx.stats.observeResponse === null ? 0 : performance.now();
  }

  /** HttpPickRequest: a request header by lower-case name. */
  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  /**
   * Decide and send. `expectContinue`: the client waits for `100 Continue` before its body; it
   * gets it only once the request is accepted (a refused one gets the refusal instead).
   */
  start(expectContinue: boolean): void {
    const { req, ctx } = this;
    const length = req.headers['content-length'];
    let hasBody = false;
    let chunked = false;
    if (length !== undefined) {
      const n = Number(length);
      if (n > ctx.maxContentLength) return this.tooLarge();
      hasBody = n > 0;
    } else if (req.headers['transfer-encoding'] !== undefined) {
      hasBody = true;
      chunked = true;
    }
    this.hasBody = hasBody;
    this.chunked = chunked;
    this.expectContinue = expectContinue;
    this.res[kExchange] = this;
    this.res.on('close', onClientClose);
    const node = ctx.chooser.choose(this, ctx.cluster());
    if (node instanceof Promise) void node.then((n) => this.chosenLater(n), (err: unknown) => this.bug(err));
    else this.chosen(node);
  }

  /** chosen() after a choice that waited: outside the request handler's guard, so with its own. */
  private chosenLater(node: SipNode | null): void {
    try {
      this.chosen(node);
    } catch (err) {
      this.bug(err);
    }
  }

  /** The node is chosen (or none can take the request): forward, or answer for the cluster. */
  private chosen(node: SipNode | null): void {
    if (this.finished) return;
    const { req, ctx } = this;
    if (node === null) {
      ctx.stats.local.unavailable++;
      this.finished = true;
      return answerUnavailable(this.res, ctx.unavailableHost === null ? null : unavailableLocation(ctx.unavailableHost, this.proto, this.url));
    }
    this.headers = upstreamHeaders(req.rawHeaders, this);
    if (this.hasBody) this.body = this.chunked ? req.pipe(new BodyLimit(ctx.maxContentLength)) : req;
    if (this.expectContinue) this.res.writeContinue();
    this.send(node);
  }

  /** A bug after the request handler returned (a choice that waited): 500, never a crash. */
  private bug(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.ctx.stats.local.internalErrors++;
    this.ctx.log.error({ err, method: this.method, url: this.url }, 'internal error in the HTTP balancer');
    try {
      answer(this.res, 500, true);
    } catch {
      this.res.destroy();
    }
  }

  private send(node: SipNode): void {
    this.node = node;
    const counters = this.ctx.stats.node(node.id);
    this.counters = counters;
    counters.requests++;
    this.written = false;
    this.controller = null;
    const framing: BodyFraming = this.body === null ? 'none' : this.chunked ? 'chunked' : 'length';
    this.ctx.pools.get(node).dispatch({
      path: this.url, method: this.method, headers: this.headers, body: this.body, framing, idempotent: IDEMPOTENT.has(this.method),
    }, this);
  }

  // --- the node's side -------------------------------------------------------------------------

  onRequestStart(controller: NodeRequestController): void {
    this.controller = controller;
    if (this.finished) controller.abort(CLIENT_GONE);
  }

  onRequestSent(): void {
    this.written = true;
  }

  onResponseStart(controller: NodeRequestController, status: number, headers: string[], statusMessage: string): void {
    // 1xx interim responses are not passed on: Node's server answered Expect itself.
    if (status < 200 || this.finished) return;
    this.controller = controller;
    const observe = this.ctx.stats.observeResponse;
    if (observe !== null && this.arrivedAt !== 0) observe((this.node as SipNode).id, (performance.now() - this.arrivedAt) / 1000);
    const c = this.counters as NodeHttpCounters;
    if (status >= 400) {
      if (status >= 500) c.status5xx++;
      else c.status4xx++;
      const check = this.ctx.requestCheck;
      if (check !== null && status < 600 && check.test(this.url)) {
        this.ctx.health.takeOut((this.node as SipNode).id, `status ${status} to ${this.method} ${this.url} (requestCheckPattern)`);
      } else if (isNodeFailureStatus(status)) this.ctx.health.failure((this.node as SipNode).id, `status ${status}`);
    }
    try {
      this.res.writeHead(status, statusMessage === '' ? undefined : statusMessage, downstreamHeaders(headers));
    } catch (err) {
      // A header Node will not write (the node sent a field value Node's server refuses).
      c.broken++;
      this.finished = true;
      controller.abort(err as Error);
      this.ctx.stats.local.badGateway++;
      this.ctx.log.debug({ node: this.node?.id, err: (err as Error).message }, 'HTTP response head from the node cannot be forwarded');
      answer(this.res, 502);
      return;
    }
    this.responded = true;
  }

  onResponseData(controller: NodeRequestController, chunk: Buffer): void {
    if (this.finished) return;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', onClientDrain);
    }
  }

  onResponseEnd(): void {
    if (this.finished) return;
    this.finished = true;
    this.res.end();
  }

  onResponseError(_controller: NodeRequestController | null, err: Error): void {
    if (this.finished) return;
    try {
      this.failed(err);
    } catch (bug) {
      // Never let a bug here reach the node client (whose handlers must not throw) or the process.
      this.finished = true;
      this.ctx.stats.local.internalErrors++;
      this.ctx.log.error({ err: bug }, 'HTTP exchange failed while handling a node error');
      this.res.destroy();
    }
  }

  // --- the client's side -----------------------------------------------------------------------

  clientClosed(): void {
    if (this.finished) return;
    this.finished = true;
    this.controller?.abort(CLIENT_GONE);
  }

  clientDrained(): void {
    if (!this.finished) this.controller?.resume();
  }

  // --- failures --------------------------------------------------------------------------------

  private tooLarge(): void {
    this.finished = true;
    this.ctx.stats.local.tooLarge++;
    // The connection closes after the answer: the body siplb refused must not be read as the
    // next request, and reading it all to keep the connection is what the limit is against.
    answer(this.res, 413, true);
  }

  private failed(err: Error): void {
    const node = this.node as SipNode;
    const c = this.counters as NodeHttpCounters;
    const socket = this.res.socket;
    if (socket === null || socket.destroyed) {
      // The client left (its upload broke, or it closed while waiting): nothing to answer.
      this.finished = true;
      return;
    }
    if (err instanceof BodyTooLargeError) {
      this.finished = true;
      this.controller?.abort(err);
      this.req.unpipe();
      if (this.responded) this.res.destroy();
      else this.tooLarge();
      return;
    }
    const code = codeOf(err);
    if (this.responded) {
      // The response was under way: count, and cut the client connection.
      this.finished = true;
      if (code === NODE_HTTP_ERRORS.bodyTimeout) c.timeout++;
      else c.broken++;
      this.ctx.health.failure(node.id, code || err.message);
      this.res.destroy();
      return;
    }
    if (code === NODE_HTTP_ERRORS.badRequest) {
      // The request cannot be written to the node as it is (a CONNECT, a target with blanks).
      this.finished = true;
      this.ctx.stats.local.badRequests++;
      this.ctx.log.debug({ method: this.method, url: this.url, err: err.message }, 'HTTP request cannot be forwarded');
      answer(this.res, 400);
      return;
    }
    if (code === NODE_HTTP_ERRORS.headersTimeout) {
      this.finished = true;
      c.timeout++;
      this.ctx.health.failure(node.id, 'no response head in time');
      this.ctx.stats.local.gatewayTimeout++;
      answer(this.res, 504);
      return;
    }
    if (!this.written && CONNECTION_FAILURES.has(code)) {
      c.connect++;
      this.ctx.health.failure(node.id, `connection ${code}`);
      if (this.mayRetry()) {
        const other = this.ctx.chooser.another(node.id, this.ctx.cluster());
        if (other !== null) {
          this.retried = true;
          this.ctx.stats.local.retries++;
          if (this.sticky) c.stickyMisses++;
          this.ctx.log.debug({ node: node.id, to: other.id, code }, 'HTTP request sent to another node after a connection failure');
          this.send(other);
          return;
        }
      }
    } else {
      c.broken++;
      this.ctx.health.failure(node.id, code || err.message);
    }
    this.finished = true;
    this.ctx.stats.local.badGateway++;
    this.ctx.log.debug({ node: node.id, code, err: err.message }, 'HTTP request to the node failed');
    answer(this.res, 502);
  }

  /** Once only, idempotent methods only, and only while the body (if any) is untouched. */
  private mayRetry(): boolean {
    if (this.retried || !IDEMPOTENT.has(this.method)) return false;
    return this.body === null || (this.body === this.req && !this.req.readableDidRead);
  }
}
