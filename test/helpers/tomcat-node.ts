// A real HTTP server on loopback that behaves like a Tomcat node behind mod_jk: the first
// request of a client gets a session `<random>.<jvmRoute>` (Set-Cookie: JSESSIONID), and a later
// request carrying a session of this node keeps it. Every answer says which node answered, which
// session it used, and what it received, as JSON. A few paths make it misbehave on purpose, for
// the balancer's error handling:
//   /status/<code>        answers <code>
//   /slow/<ms>            waits <ms> before the response head
//   /echo                 streams the request body back as it arrives (answers before it ends)
//   /count                reads the body and answers its size (no echo)
//   /big/<bytes>          answers <bytes> bytes, chunked
//   /reset                destroys the connection without answering
//   /garbage              writes bytes that are not HTTP

import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface NodeAnswer {
  node: string;
  session: string;
  newSession: boolean;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
}

export interface TomcatNode {
  readonly jvmRoute: string;
  readonly port: number;
  /** Requests received, by method. */
  readonly received: { method: string; url: string }[];
  readonly sessions: Set<string>;
  /** Stops listening and drops every connection: the node is dead (the port refuses). */
  kill(): Promise<void>;
}

function sessionOf(req: IncomingMessage): string | null {
  const url = req.url ?? '/';
  const p = /;jsessionid=([^;/?#]+)/.exec(url);
  if (p !== null) return p[1];
  const q = /[?&]jsessionid=([^&#]+)/.exec(url);
  if (q !== null) return q[1];
  const c = /(?:^|[;,]\s*)jsessionid=("?)([^";,]+)\1/i.exec(req.headers.cookie ?? '');
  return c === null ? null : c[2];
}

function answerJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startTomcatNode(jvmRoute: string, port = 0): Promise<TomcatNode> {
  const received: { method: string; url: string }[] = [];
  const sessions = new Set<string>();
  const sockets = new Set<Socket>();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    received.push({ method: req.method ?? '', url: req.url ?? '' });
    const path = (req.url ?? '/').split('?')[0].split(';')[0];
    const parts = path.split('/');
    if (path === '/reset') {
      req.socket.destroy();
      return;
    }
    if (path === '/garbage') {
      req.socket.end('this is not HTTP at all\r\n\r\n');
      return;
    }
    if (path === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-node': jvmRoute });
      req.pipe(res);
      return;
    }
    if (parts[1] === 'big') {
      const total = Number(parts[2]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-node': jvmRoute });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => { bodyBytes += c.length; });
    req.on('end', () => {
      const respond = (): void => {
        const status = parts[1] === 'status' ? Number(parts[2]) : 200;
        let session = sessionOf(req);
        let newSession = false;
        if (session === null || !sessions.has(session)) {
          session = `${randomBytes(8).toString('hex').toUpperCase()}.${jvmRoute}`;
          sessions.add(session);
          newSession = true;
        }
        const headers: Record<string, string> = { 'x-node': jvmRoute };
        if (newSession) headers['set-cookie'] = `JSESSIONID=${session}; Path=/; HttpOnly`;
        const body: NodeAnswer = { node: jvmRoute, session, newSession, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes };
        answerJson(res, status, body, headers);
      };
      if (parts[1] === 'slow') setTimeout(respond, Number(parts[2]));
      else respond();
    });
  };

  const server = http.createServer({ keepAliveTimeout: 20_000 }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  let listening = true;
  const kill = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { jvmRoute, port: bound, received, sessions, kill };
}
