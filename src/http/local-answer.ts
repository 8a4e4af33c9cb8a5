// Answers siplb gives itself instead of a node's: short text bodies built once at load, so an
// error path allocates no more than a success. On a response already under way nothing can be
// said any more: the connection is cut, which is how a client learns a response is incomplete.

import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { http } from '../core/node-http.ts';

const { STATUS_CODES } = http;

/** Seconds a client is asked to wait before retrying when no node can take its request. */
export const RETRY_AFTER_S = 5;

const TEXT: Record<number, string> = {
  400: 'siplb cannot forward this request as it is',
  413: 'request body larger than the balancer accepts (maxContentLength)',
  500: 'internal error in the balancer',
  502: 'the node failed to answer',
  503: 'no node can take the request now',
  504: 'the node did not answer in time',
};

const BODIES = new Map<number, Buffer>(
  Object.entries(TEXT).map(([status, text]) => [Number(status), Buffer.from(`${status} ${STATUS_CODES[Number(status)]}: ${text}\n`)]),
);

/**
 * Answer `status` with its text body. `close` ends the client connection after it (a request
 * body siplb will not read must not be taken for the next request).
 */
export function answer(res: ServerResponse, status: number, close = false, extra?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = BODIES.get(status) ?? Buffer.from(`${status} ${STATUS_CODES[status] ?? ''}\n`);
  const headers: Record<string, string | number> = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length };
  if (close) headers['Connection'] = 'close';
  if (extra !== undefined) Object.assign(headers, extra);
  res.writeHead(status, headers);
  res.end(body);
}

/** Where a 302 for "no node" points: the same path and query on unavailableHost. */
export function unavailableLocation(host: string, proto: 'http' | 'https', url: string): string {
  const authority = host.includes(':') ? `[${host}]` : host;
  return `${proto}://${authority}${url.startsWith('/') ? url : '/'}`;
}

/** No node can take the request: 302 to unavailableHost when set (Restcomm), else 503. */
export function answerUnavailable(res: ServerResponse, location: string | null): void {
  if (location === null) answer(res, 503, false, { 'Retry-After': String(RETRY_AFTER_S) });
  else answer(res, 302, false, { Location: location });
}

/**
 * The same on a raw socket, for a WebSocket handshake (the server handed the socket over, so
 * there is no ServerResponse); the connection closes after it.
 */
export function answerOnSocket(socket: Duplex, status: number, extra?: Record<string, string>): void {
  if (socket.destroyed) return;
  const body = BODIES.get(status) ?? Buffer.alloc(0);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n`;
  if (extra !== undefined) for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
  socket.end(Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]));
}
