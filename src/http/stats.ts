// Counters of the HTTP balancer, per node and for what siplb answered itself. Plain numbers on
// objects allocated once per node: incremented on the hot path, read by the admin surface
// (toJSON) and the logs.

/** What one node's HTTP side did, as seen by this balancer. */
export class NodeHttpCounters {
  /** Requests forwarded to the node (a retried request counts once on each node it was sent to). */
  requests = 0;
  /** Responses the node answered with 4xx. */
  status4xx = 0;
  /** Responses the node answered with 5xx. */
  status5xx = 0;
  /** Connections that could not be made, or that failed before the request was written. */
  connect = 0;
  /** No response head within httpResponseTimeout, or a response body that stalled as long. */
  timeout = 0;
  /** A response that could not be read or was cut short (the client got 502 or a cut response). */
  broken = 0;
  /** Requests whose session route named this node while it was alive. */
  stickyHits = 0;
  /** Requests whose session route named this node while it was down, or that left it for a retry. */
  stickyMisses = 0;
  /** WebSocket tunnels to the node open now. */
  tunnels = 0;
  /** WebSocket tunnels opened to the node since start. */
  tunnelsOpened = 0;

  toJSON(): Record<string, number> {
    return {
      requests: this.requests,
      errors4xx: this.status4xx, errors5xx: this.status5xx, errorsConnect: this.connect, errorsTimeout: this.timeout, errorsBroken: this.broken,
      stickyHits: this.stickyHits, stickyMisses: this.stickyMisses,
      openTunnels: this.tunnels, tunnelsOpened: this.tunnelsOpened,
    };
  }
}

/** Answers siplb gave without a node's response. */
export class LocalHttpCounters {
  /** No node could take the request: 503, or 302 to unavailableHost. */
  unavailable = 0;
  /** Body over maxContentLength: 413. */
  tooLarge = 0;
  /** 502 after a node failed (connection, broken response). */
  badGateway = 0;
  /** 504 after httpResponseTimeout. */
  gatewayTimeout = 0;
  /** Requests sent again to another node after their first node refused the connection. */
  retries = 0;
  /** Session routes that named no node this balancer knows. */
  unknownRoutes = 0;
  /** Requests siplb could not forward as received (e.g. a CONNECT): 400. */
  badRequests = 0;
  /** Bugs caught at the request handler's guard: 500. */
  internalErrors = 0;
}

export class HttpStats {
  private readonly byNode = new Map<string, NodeHttpCounters>();
  readonly local = new LocalHttpCounters();
  /**
   * Set by the metrics (admin surface): each response head from a node, with the seconds since
   * its request reached siplb. Null: nothing is timed.
   */
  observeResponse: ((nodeId: string, seconds: number) => void) | null = null;

  /** The counters of a node, created on first use. */
  node(id: string): NodeHttpCounters {
    let c = this.byNode.get(id);
    if (c === undefined) {
      c = new NodeHttpCounters();
      this.byNode.set(id, c);
    }
    return c;
  }

  /** Counters of a node, if it has any. */
  peek(id: string): NodeHttpCounters | undefined {
    return this.byNode.get(id);
  }

  /** The node is gone from the cluster: its counters go too (registered nodes come and go). */
  forget(id: string): void {
    const c = this.byNode.get(id);
    // Open tunnels still close later and must find their counters.
    if (c !== undefined && c.tunnels === 0) this.byNode.delete(id);
  }

  toJSON(): Record<string, unknown> {
    const nodes: Record<string, Record<string, number>> = {};
    for (const [id, c] of this.byNode) nodes[id] = c.toJSON();
    return { nodes, local: { ...this.local } };
  }
}
