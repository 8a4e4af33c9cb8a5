// One undici Pool per node's HTTP side: keep-alive connections reused across requests, so a
// request costs no TCP handshake. Idle connections are closed after 15 s, before the usual
// application servers close theirs (Tomcat's keepAliveTimeout defaults to 20 s): a request must
// never be written on a connection the node is closing at that moment.

import { Pool } from 'undici';
import type { SipNode } from '../cluster/node.ts';
import { formatHost } from '../sip/uri.ts';

/** Idle keep-alive connections to a node close after this long. */
export const NODE_KEEP_ALIVE_MS = 15_000;
/** Longest connect attempt to a node (shorter when the response timeout is shorter). */
const MAX_CONNECT_MS = 10_000;

export interface NodePoolOptions {
  /** httpResponseTimeout: for the response head, and between body chunks of the response. */
  responseTimeoutMs: number;
}

interface Entry {
  readonly node: SipNode;
  readonly origin: string;
  readonly pool: Pool;
}

export function nodeOrigin(node: SipNode): string | null {
  return node.http === undefined ? null : `http://${formatHost(node.ip)}:${node.http.port}`;
}

export class NodePools {
  private readonly entries = new Map<string, Entry>();
  private readonly opts: NodePoolOptions;

  constructor(opts: NodePoolOptions) {
    this.opts = opts;
  }

  /** The pool of a node with an HTTP side (the caller has checked). */
  get(node: SipNode): Pool {
    const e = this.entries.get(node.id);
    // The same node object: the common case, one Map lookup.
    if (e !== undefined && e.node === node) return e.pool;
    const origin = nodeOrigin(node) as string;
    if (e !== undefined && e.origin === origin) {
      this.entries.set(node.id, { node, origin, pool: e.pool });
      return e.pool;
    }
    // A node that re-registered with another HTTP port: requests in flight on the old pool finish.
    if (e !== undefined) void e.pool.close().catch(() => undefined);
    const t = this.opts.responseTimeoutMs;
    const pool = new Pool(origin, {
      connections: null,
      pipelining: 1,
      keepAliveTimeout: NODE_KEEP_ALIVE_MS,
      keepAliveMaxTimeout: NODE_KEEP_ALIVE_MS,
      headersTimeout: t,
      bodyTimeout: t,
      connect: { timeout: Math.min(MAX_CONNECT_MS, t) },
    });
    // A pool emits 'connectionError' and 'disconnect' for every failed or closed connection; the
    // requests on them fail through their handlers, which is where siplb counts and answers.
    pool.on('connectionError', noop);
    pool.on('disconnect', noop);
    this.entries.set(node.id, { node, origin, pool });
    return pool;
  }

  /** The node left the cluster: its idle connections close, requests in flight finish. */
  retire(nodeId: string): void {
    const e = this.entries.get(nodeId);
    if (e === undefined) return;
    this.entries.delete(nodeId);
    void e.pool.close().catch(() => undefined);
  }

  /** Shutdown: every connection closes now. */
  async close(): Promise<void> {
    const pools = [...this.entries.values()].map((e) => e.pool);
    this.entries.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

function noop(): void {
  // Handled per request.
}
