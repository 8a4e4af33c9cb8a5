// The message transports siplb can listen on, by name. Adding a transport means a file beside
// this one that implements MessageTransport, and its line here.

import type { Transport } from '../config/types.ts';
import { TcpEndpoint } from './tcp.ts';
import { TlsEndpoint } from './tls.ts';
import type { EndpointFactory } from './types.ts';
import { UdpEndpoint } from './udp.ts';
import { WebSocketEndpoint } from './websocket.ts';

export const ENDPOINT_FACTORIES: Readonly<Record<Transport, EndpointFactory>> = {
  udp: (opts) => new UdpEndpoint(opts),
  tcp: (opts) => new TcpEndpoint(opts),
  tls: (opts) => new TlsEndpoint(opts),
  ws: (opts) => new WebSocketEndpoint(opts, 'ws'),
  wss: (opts) => new WebSocketEndpoint(opts, 'wss'),
};
