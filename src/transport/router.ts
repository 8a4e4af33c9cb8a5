// The one place messages leave through. The proxy names a destination (side, transport, host,
// port, maybe the connection it belongs to); the router sends on that connection while it is
// open, else through the endpoint of that transport on that side (the external one when the
// side has none: with one port, both sides share it), resolving a host name first. It owns the
// endpoints, so the composition root only says which to open.

import type { Logger } from 'pino';
import type { Transport } from '../config/types.ts';
import { ENDPOINT_FACTORIES } from './catalog.ts';
import { ConnectionTable } from './connections.ts';
import { Resolver } from './resolver.ts';
import type { Destination, MessageHandler, MessageTransport, Outbound, Side } from './types.ts';

export interface RouterOptions {
  readonly log: Logger;
  readonly maxMessageSize: number;
  /** Stream endpoints: connections one address may open to each (default 1000). */
  readonly maxConnectionsPerSource?: number;
  /** Every message any endpoint receives. */
  readonly onMessage: MessageHandler;
  /** A message that could not be sent, by reason (no endpoint for its transport, unresolvable host). */
  readonly onDrop: (reason: string) => void;
  readonly resolver?: Resolver;
}

/** One endpoint to open. */
export interface Listener {
  readonly side: Side;
  readonly transport: Transport;
  readonly host: string;
  readonly port: number;
}

export class TransportRouter implements Outbound {
  readonly connections = new ConnectionTable();
  private readonly opts: RouterOptions;
  private readonly resolver: Resolver;
  private readonly endpoints: Record<Side, Partial<Record<Transport, MessageTransport>>> = { external: {}, internal: {} };

  constructor(opts: RouterOptions) {
    this.opts = opts;
    this.resolver = opts.resolver ?? new Resolver();
  }

  /** Opens one endpoint; rejects with BindError (the endpoint is kept, so close() releases it). */
  async listen(l: Listener): Promise<MessageTransport> {
    const ep = ENDPOINT_FACTORIES[l.transport]({
      side: l.side, host: l.host, port: l.port, maxMessageSize: this.opts.maxMessageSize,
      maxConnectionsPerSource: this.opts.maxConnectionsPerSource,
      log: this.opts.log, onMessage: this.opts.onMessage, connections: this.connections,
    });
    this.endpoints[l.side][l.transport] = ep;
    await ep.listen();
    return ep;
  }

  send(dest: Destination, data: Buffer): void {
    if (dest.connectionId !== undefined && dest.connectionId !== 0) {
      const conn = this.connections.get(dest.connectionId);
      if (conn !== undefined) {
        conn.write(data);
        return;
      }
    }
    const ep = this.endpoints[dest.side][dest.transport] ?? this.endpoints.external[dest.transport];
    if (ep === undefined) {
      this.opts.onDrop(`no-${dest.transport}-socket`);
      return;
    }
    const ip = this.resolver.resolve(dest.host);
    if (typeof ip === 'string') {
      ep.send(ip, dest.port, data, dest.fallbackPort);
      return;
    }
    ip.then((resolved) => {
      if (resolved === null) {
        this.opts.onDrop('unresolvable-next-hop');
        this.opts.log.warn({ host: dest.host }, 'next hop does not resolve; message dropped');
      } else ep.send(resolved, dest.port, data, dest.fallbackPort);
    }, () => this.opts.onDrop('unresolvable-next-hop'));
  }

  close(): Promise<unknown> {
    const all: MessageTransport[] = [];
    for (const side of Object.values(this.endpoints)) all.push(...Object.values(side));
    return Promise.all(all.map((e) => e.close().catch(() => undefined)));
  }
}
