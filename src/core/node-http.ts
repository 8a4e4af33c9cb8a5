// node:http, loaded with require() instead of an ES import. Node builds the ES module face of a
// built-in by reading every one of its exports, and node:http's exports include getters for
// WebSocket, CloseEvent and MessageEvent that load Node's own bundled undici (with http2, zlib
// and the web streams) the moment they are read. An ES import of node:http therefore costs every
// siplb process that copy of undici, which it never uses (the HTTP balancer has its own client,
// http/node-client.ts): a few MB of RSS. require() reads nothing until asked.

import { createRequire } from 'node:module';
import type * as NodeHttp from 'node:http';

export const http = createRequire(import.meta.url)('node:http') as typeof NodeHttp;
