// A WebSocket (RFC 6455) upgrade tunnelled to one node as raw bytes. The handshake is not
// interpreted: the node's answer, 101 or not, reaches the client exactly as the node wrote it, so
// subprotocols, extensions (permessage-deflate) and the node's own refusals work unchanged. The
// balancer only answers when the node never did (502), and it bounds how long a silent or
// half-closed tunnel may hold two sockets.

import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { rateLimit } from '../core/log.ts';
import { HTTP_TOKEN } from './forward-headers.ts';

export interface TunnelTarget { host: string; port: number }

export interface TunnelOptions {
  idleTimeoutMs: number;
  headers: Record<string, string | string[]>;
  log: Logger;
  onOpen?(): void;
  onClose?(): void;
}

/** A node that accepts neither a connection nor a refusal within this is treated as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * Probes start after this much silence: a peer that vanished without a FIN or RST (power loss, a
 * NAT that dropped the mapping) frees its tunnel long before Linux's two-hour default would tell.
 */
const KEEPALIVE_DELAY_MS = 30_000;
/**
 * Once one side has closed, the other gets this long to take our last bytes and close in turn; a
 * peer that keeps its half open beyond it is cut.
 */
const LINGER_MS = 5_000;

/** The characters node:http itself refuses in an outgoing header value (CR and LF among them). */
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/** Unreachable nodes are reported at warn, but a dead node hit by every upgrade leaves one line per 10 s. */
const unreachableGate = rateLimit(10_000);

/**
 * Forwards the upgrade request (req.method, req.url, `headers` as given — already rewritten by the
 * caller with X-Forwarded-* and hop-by-hop handling appropriate for an Upgrade) to target, then
 * pipes both ways; answers 502 on the client socket if the node cannot be reached. Never throws.
 */
export function tunnel(req: IncomingMessage, client: Duplex, head: Buffer, target: TunnelTarget, opts: TunnelOptions): void {
  const { log } = opts;
  const nodeName = `${target.host}:${target.port}`;
  // The caller may have chosen the node asynchronously; a client gone meanwhile has nothing to tunnel.
  if (client.destroyed) {
    log.debug({ node: nodeName }, 'WebSocket tunnel: client gone before the node was chosen');
    return;
  }

  let node: net.Socket | undefined;
  let opened = false;
  let finished = false;
  /** Bytes from the node: until the first one, the client has seen nothing and can still get a 502. */
  let nodeBytes = 0;
  let nodeFailure: string | undefined;
  let clientFailed = false;
  let clientClosed = false;
  let nodeClosed = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let lingerTimer: NodeJS.Timeout | undefined;

  const callSafely = (fn: (() => void) | undefined, what: string): void => {
    if (fn === undefined) return;
    // Listener code runs inside socket events: a throw there would be an uncaught exception.
    try {
      fn();
    } catch (err) {
      log.error({ err: (err as Error).message, node: nodeName }, `WebSocket tunnel: ${what} listener threw`);
    }
  };

  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(idleTimer);
    clearTimeout(lingerTimer);
    if (opened) callSafely(opts.onClose, 'onClose');
  };

  /**
   * Ends our side of a socket whose peer has lost its counterpart, then waits for its FIN rather
   * than destroying at once: input left unread when the descriptor closes turns the close into an
   * RST, which can discard the last bytes we sent (a close frame, a 403 body) before they are read.
   */
  const linger = (s: Duplex): void => {
    if (s.destroyed) return;
    s.resume();
    if (!s.writableEnded) s.end();
    lingerTimer ??= setTimeout(() => {
      client.destroy();
      node?.destroy();
    }, LINGER_MS).unref();
  };

  const answer502 = (reason: string): void => {
    if (client.destroyed || client.writableEnded) return;
    const body = `siplb: ${reason}\n`;
    client.write(
      'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    linger(client);
  };

  const unreachable = (reason: string, err: string): void => {
    if (unreachableGate()) {
      log.warn({ node: nodeName, err }, `WebSocket tunnel: ${reason}; answered 502 (logged at most every 10 s)`);
    } else {
      log.debug({ node: nodeName, err }, `WebSocket tunnel: ${reason}; answered 502`);
    }
    answer502(reason);
  };

  try {
    tuneSocket(client);
    client.on('error', (err) => {
      clientFailed = true;
      log.debug({ node: nodeName, err: err.message }, 'WebSocket tunnel: client socket error');
    });
    client.on('close', () => {
      clientClosed = true;
      if (node !== undefined && !node.destroyed) {
        // Before the node answered there is nobody to finish talking to; after a reset, the
        // tunnel is lost both ways. Otherwise the node may still be flushing what the client sent.
        if (!opened || clientFailed) node.destroy();
        else linger(node);
      }
      if (nodeClosed || node === undefined) finish();
    });

    // allowHalfOpen: the node's FIN is handled below, so that the node socket is not ended under
    // a client still writing into it (which would fail the write and reset the client instead of
    // letting it read the node's last bytes).
    const n = net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: KEEPALIVE_DELAY_MS,
    });
    node = n;
    n.setTimeout(CONNECT_TIMEOUT_MS);
    n.on('timeout', () => {
      nodeFailure ??= 'timed out connecting to the node';
      n.destroy();
    });
    n.on('error', (err: NodeJS.ErrnoException) => {
      nodeFailure ??= opened ? 'the node reset the connection without answering' : 'cannot connect to the node';
      log.debug({ node: nodeName, err: err.code ?? err.message }, 'WebSocket tunnel: node socket error');
      if (!opened) unreachable(nodeFailure, err.code ?? err.message);
    });

    n.on('connect', () => {
      opened = true;
      n.setTimeout(0);
      callSafely(opts.onOpen, 'onOpen');
      n.write(requestHead(req, opts.headers, log));
      if (head.length > 0) n.write(head);

      // One timer for the whole tunnel, pushed back by a data event in either direction: traffic
      // costs a refresh, never an allocation.
      idleTimer = setTimeout(() => {
        log.debug({ node: nodeName, idleTimeoutMs: opts.idleTimeoutMs }, 'WebSocket tunnel idle; closing both sides');
        client.destroy();
        n.destroy();
      }, opts.idleTimeoutMs).unref();
      const active = (): void => { idleTimer?.refresh(); };
      n.on('data', (chunk: Buffer) => {
        nodeBytes += chunk.length;
        active();
      });
      client.on('data', active);
      // The node's FIN is ours to relay (end: false) because with nothing relayed yet it must
      // become a 502, not an empty close.
      n.pipe(client, { end: false });
      client.pipe(n);
    });

    n.on('end', () => {
      client.unpipe(n);
      if (!n.writableEnded) n.end();
      if (nodeBytes === 0) answer502('the node closed the connection without answering');
      else linger(client);
    });
    n.on('close', () => {
      nodeClosed = true;
      if (!client.destroyed && !client.writableEnded) {
        if (!opened) {
          // Closed without a connect event and without an error: only a destroy of ours (client
          // gone, connect timeout) gets here, and the timeout's reason is already set.
          if (nodeFailure !== undefined) unreachable(nodeFailure, 'timeout');
        } else if (nodeBytes === 0) {
          answer502(nodeFailure ?? 'the node closed the connection without answering');
        } else {
          // Reset mid-stream: the client cannot be given a clean end of a message it got part of.
          client.destroy();
        }
      }
      if (clientClosed) finish();
    });
  } catch (err) {
    // net.connect throws synchronously on an impossible target (a port out of range).
    log.error({ node: nodeName, err: (err as Error).message }, 'WebSocket tunnel: cannot open the node connection');
    node?.destroy();
    answer502('cannot connect to the node');
  }
}

/** Both options matter for a tunnel: frames are small and latency-bound, and a peer may vanish silently. */
function tuneSocket(s: Duplex): void {
  if (s instanceof net.Socket) {
    s.setNoDelay(true);
    s.setKeepAlive(true, KEEPALIVE_DELAY_MS);
  }
}

/**
 * The request line and header block as the node receives them. Latin-1 both ways: node:http hands
 * header bytes over as latin1 strings, so this puts the client's bytes back unchanged. Method and
 * URL come from node:http's parser, which refuses whitespace and control characters in them; the
 * headers are the caller's composition, so a line that could split the block is dropped.
 */
function requestHead(req: IncomingMessage, headers: Record<string, string | string[]>, log: Logger): Buffer {
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!HTTP_TOKEN.test(name)) {
      log.debug({ header: name }, 'WebSocket tunnel: header with an invalid name dropped');
      continue;
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      if (BAD_VALUE_CHAR.test(v)) {
        log.debug({ header: name }, 'WebSocket tunnel: header value with control characters dropped');
        continue;
      }
      text += `${name}: ${v}\r\n`;
    }
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}
