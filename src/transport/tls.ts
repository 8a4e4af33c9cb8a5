// TLS for one side (RFC 3261 §26.3.1, the Via transport TLS): TCP's endpoint with a secure server
// and secure dialling. The bounds count the raw connection, so a peer that connects and never
// finishes its handshake holds a slot only until tlsHandshakeTimeout. Certificates are replaced
// on reload (SIGHUP) for handshakes to come; open connections keep theirs.
//
// Towards peers siplb dials (nodes, next hops), it presents its own certificate (for nodes that
// ask for one) and checks theirs against tlsCaFile when one is set; without a CA it encrypts but
// does not authenticate the peer, as a balancer inside one operator's network usually does.

import type net from 'node:net';
import tls from 'node:tls';
import { TcpEndpoint } from './tcp.ts';
import { secureServerOptions, type TlsFiles } from './tls-files.ts';
import type { EndpointOptions, TlsSettings } from './types.ts';

export class TlsEndpoint extends TcpEndpoint {
  /** Certificates given by a reload, replacing those of the options. */
  private reloaded: TlsFiles | null = null;
  /** Handshakes that failed or timed out. */
  handshakeFailures = 0;

  constructor(opts: EndpointOptions) {
    super(opts, 'tls');
  }

  /** New certificate material: handshakes from now on use it. */
  reloadTls(files: TlsFiles): void {
    this.reloaded = files;
    (this.server as tls.Server).setSecureContext(secureServerOptions(files, settingsOf(this.opts).clientAuth));
  }

  // Runs inside the base constructor: only the options are set by then.
  protected override createServer(): net.Server {
    const settings = settingsOf(this.opts);
    const server = tls.createServer({
      ...secureServerOptions(settings.files, settings.clientAuth),
      handshakeTimeout: settings.handshakeTimeoutMs,
    });
    server.on('connection', (raw: net.Socket) => {
      this.admit(raw);
      raw.setNoDelay(true);
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => this.accept(socket));
    // With a listener of ours, closing the socket is ours too (a timed-out handshake stays open otherwise).
    server.on('tlsClientError', (err, socket) => {
      this.handshakeFailures++;
      socket.destroy();
      this.log.debug({ err: err.message, side: this.side }, 'TLS handshake failed');
    });
    return server;
  }

  protected override dial(ip: string, port: number): net.Socket {
    const files = this.reloaded ?? settingsOf(this.opts).files;
    const socket = tls.connect({
      host: ip, port, cert: files.cert, key: files.key,
      // A node is named by its address, not a host name its certificate could carry: with a CA,
      // the chain is what authenticates it.
      ...(files.ca === undefined ? { rejectUnauthorized: false } : { ca: files.ca, rejectUnauthorized: true, checkServerIdentity: () => undefined }),
    });
    socket.setNoDelay(true);
    // The connection's own timer covers the TCP connect only: a peer that accepts and then never
    // answers the handshake must not hold the connection (and what is queued on it).
    const handshake = setTimeout(() => socket.destroy(), settingsOf(this.opts).handshakeTimeoutMs);
    handshake.unref();
    const done = (): void => clearTimeout(handshake);
    socket.once('secureConnect', done);
    socket.once('close', done);
    return socket;
  }
}

function settingsOf(opts: EndpointOptions): TlsSettings {
  if (opts.tls === undefined) throw new Error('a TLS endpoint needs tls settings');
  return opts.tls;
}
