// One NodeClient per node's HTTP side: keep-alive connections reused across requests, so a
// request costs no TCP handshake. Idle connections are closed after 15 s (sooner when the node's
// Keep-Alive field says it closes sooner), before the usual application servers close theirs
// (Tomcat's keepAliveTimeout defaults to 20 s): a request must never be written on a connection
// the node is closing at that moment.

import type { SipNode } from '../cluster/node.ts';
import { NodeClient } from './node-client.ts';

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
  readonly ip: string;
  readonly port: number;
  readonly client: NodeClient;
}

export class NodePools {
  private readonly entries = new Map<string, Entry>();
  private readonly opts: NodePoolOptions;

  constructor(opts: NodePoolOptions) {
    this.opts = opts;
  }

  /** The client of a node with an HTTP side (the caller has checked). */
  get(node: SipNode): NodeClient {
    const e = this.entries.get(node.id);
    // The same node object: the common case, one Map lookup.
    if (e !== undefined && e.node === node) return e.client;
    const port = (node.http as { port: number }).port;
    if (e !== undefined && e.ip === node.ip && e.port === port) {
      this.entries.set(node.id, { node, ip: e.ip, port, client: e.client });
      return e.client;
    }
    // A node that re-registered with another HTTP port: requests in flight on the old client finish.
    if (e !== undefined) void e.client.close();
    const t = this.opts.responseTimeoutMs;
    const client = new NodeClient({
      host: node.ip, port, responseTimeoutMs: t, connectTimeoutMs: Math.min(MAX_CONNECT_MS, t), keepAliveMs: NODE_KEEP_ALIVE_MS,
    });
    this.entries.set(node.id, { node, ip: node.ip, port, client });
    return client;
  }

  /** The node left the cluster: its idle connections close, requests in flight finish. */
  retire(nodeId: string): void {
    const e = this.entries.get(nodeId);
    if (e === undefined) return;
    this.entries.delete(nodeId);
    void e.client.close();
  }

  /** Shutdown: every connection closes now. */
  async close(): Promise<void> {
    const clients = [...this.entries.values()].map((e) => e.client);
    this.entries.clear();
    await Promise.all(clients.map((c) => c.destroy()));
  }
}
