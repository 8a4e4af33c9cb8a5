// Header rewriting towards the node and back: tables of header lists in, header lists out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clientAddress, downstreamHeaders, forwardedElement, forwardedNode, forwardedValue, headerRecord, upstreamHeaders, type ClientSide,
} from '../../src/http/forward-headers.ts';

const V4: ClientSide = { ip: '192.0.2.7', proto: 'http' };
const V6: ClientSide = { ip: '2001:db8::1', proto: 'https' };

/** Pairs of a flat header list, for comparing. */
function pairs(flat: readonly (string | string[])[]): [string, string | string[]][] {
  const out: [string, string | string[]][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1]]);
  return out;
}

const upstream: { name: string; raw: string[]; client?: ClientSide; upgrade?: boolean; expected: [string, string][] }[] = [
  {
    name: 'plain request: Host kept, the forwarding headers added',
    raw: ['Host', 'app.example.com', 'Accept', '*/*'],
    expected: [['Host', 'app.example.com'], ['Accept', '*/*'], ['X-Forwarded-For', '192.0.2.7'], ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'app.example.com'], ['Forwarded', 'for=192.0.2.7;proto=http;host=app.example.com']],
  },
  {
    name: 'no Host (HTTP/1.0): no X-Forwarded-Host, no host= in Forwarded',
    raw: ['Accept', '*/*'],
    expected: [['Accept', '*/*'], ['X-Forwarded-For', '192.0.2.7'], ['X-Forwarded-Proto', 'http'], ['Forwarded', 'for=192.0.2.7;proto=http']],
  },
  {
    name: 'X-Forwarded-For is appended to, over several lines; Forwarded too',
    raw: ['Host', 'h', 'X-Forwarded-For', '203.0.113.1', 'x-forwarded-for', '198.51.100.2, 10.0.0.1', 'Forwarded', 'for=203.0.113.1'],
    expected: [['Host', 'h'], ['X-Forwarded-For', '203.0.113.1, 198.51.100.2, 10.0.0.1, 192.0.2.7'], ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'h'], ['Forwarded', 'for=203.0.113.1, for=192.0.2.7;proto=http;host=h']],
  },
  {
    name: 'the client\'s X-Forwarded-Proto and X-Forwarded-Host are replaced',
    raw: ['Host', 'h', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example'],
    expected: [['Host', 'h'], ['X-Forwarded-For', '192.0.2.7'], ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', 'h'], ['Forwarded', 'for=192.0.2.7;proto=http;host=h']],
  },
  {
    name: 'hop-by-hop fields removed (RFC 9110 §7.6.1), Proxy-Authorization and Expect with them',
    raw: ['Host', 'h', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive', 'TE', 'trailers',
      'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Trailer', 'X-Sum', 'Proxy-Authorization', 'Basic eDp5', 'Expect', '100-continue',
      'Authorization', 'Bearer t'],
    expected: [['Host', 'h'], ['Authorization', 'Bearer t'], ['X-Forwarded-For', '192.0.2.7'], ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'h'], ['Forwarded', 'for=192.0.2.7;proto=http;host=h']],
  },
  {
    name: 'fields named by Connection are removed, in any case and over several Connection lines; Host never',
    raw: ['Host', 'h', 'Connection', 'close, X-Hop', 'connection', 'x-other ,Host', 'x-hop', '1', 'X-Other', '2', 'X-Kept', '3'],
    expected: [['Host', 'h'], ['X-Kept', '3'], ['X-Forwarded-For', '192.0.2.7'], ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'h'], ['Forwarded', 'for=192.0.2.7;proto=http;host=h']],
  },
  {
    name: 'IPv6 client over https: for= quoted with brackets, host with a port quoted',
    raw: ['Host', 'app.example.com:8443'],
    client: V6,
    expected: [['Host', 'app.example.com:8443'], ['X-Forwarded-For', '2001:db8::1'], ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', 'app.example.com:8443'], ['Forwarded', 'for="[2001:db8::1]";proto=https;host="app.example.com:8443"']],
  },
  {
    name: 'WebSocket handshake: Connection: Upgrade and the client\'s Upgrade kept, the rest as for any request',
    raw: ['Host', 'h', 'Connection', 'keep-alive, Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k==', 'Sec-WebSocket-Version', '13',
      'Sec-WebSocket-Protocol', 'sip', 'Keep-Alive', '5'],
    upgrade: true,
    expected: [['Host', 'h'], ['Sec-WebSocket-Key', 'k=='], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Protocol', 'sip'],
      ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['X-Forwarded-For', '192.0.2.7'], ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'h'], ['Forwarded', 'for=192.0.2.7;proto=http;host=h']],
  },
];
for (const c of upstream) {
  test(`towards the node: ${c.name}`, () => {
    assert.deepEqual(pairs(upstreamHeaders(c.raw, c.client ?? V4, c.upgrade ?? false)), c.expected);
  });
}

const downstream: { name: string; headers: string[]; expected: [string, string][] }[] = [
  {
    name: 'end-to-end fields pass in the node\'s order and spelling, Set-Cookie lines stay separate',
    headers: ['Content-Type', 'text/html', 'Set-Cookie', 'a=1', 'set-cookie', 'JSESSIONID=X.n1', 'Content-Length', '12'],
    expected: [['Content-Type', 'text/html'], ['Set-Cookie', 'a=1'], ['set-cookie', 'JSESSIONID=X.n1'], ['Content-Length', '12']],
  },
  {
    name: 'hop-by-hop fields and Proxy-Authenticate removed, in any case',
    headers: ['Connection', 'keep-alive', 'Keep-Alive', 'timeout=20', 'Transfer-Encoding', 'chunked', 'Trailer', 'x-sum',
      'UPGRADE', 'h2c', 'Proxy-Authenticate', 'Basic', 'ETag', '"1"'],
    expected: [['ETag', '"1"']],
  },
  {
    name: 'fields named by the node\'s Connection removed',
    headers: ['Connection', 'close, X-Internal', 'X-Internal', 'secret', 'x-public', 'ok'],
    expected: [['x-public', 'ok']],
  },
];
for (const c of downstream) {
  test(`towards the client: ${c.name}`, () => assert.deepEqual(pairs(downstreamHeaders(c.headers)), c.expected));
}

const forwarded: [string, string][] = [
  ['192.0.2.7', '192.0.2.7'],
  ['2001:db8::1', '"[2001:db8::1]"'],
  ['::1', '"[::1]"'],
  ['unknown', 'unknown'],
];
for (const [ip, expected] of forwarded) {
  test(`Forwarded for= of ${ip} -> ${expected}`, () => assert.equal(forwardedNode(ip), expected));
}

const values: [string, string][] = [
  ['example.com', 'example.com'],
  ['example.com:8080', '"example.com:8080"'],
  ['a"b\\c', '"a\\"b\\\\c"'],
  ['with space', '"with space"'],
];
for (const [v, expected] of values) {
  test(`Forwarded value ${JSON.stringify(v)} -> ${expected}`, () => assert.equal(forwardedValue(v), expected));
}

test('Forwarded element without a host', () => {
  assert.equal(forwardedElement(V6, undefined), 'for="[2001:db8::1]";proto=https');
});

const addresses: [string | undefined, string][] = [
  ['192.0.2.7', '192.0.2.7'],
  ['::ffff:192.0.2.7', '192.0.2.7'],
  ['2001:db8::1', '2001:db8::1'],
  [undefined, 'unknown'],
  ['', 'unknown'],
];
for (const [remote, expected] of addresses) {
  test(`client address ${JSON.stringify(remote)} -> ${expected}`, () => assert.equal(clientAddress(remote), expected));
}

test('headerRecord: lower-case names, repeated fields as arrays (the tunnel\'s shape)', () => {
  assert.deepEqual(headerRecord(['Host', 'h', 'X-A', '1', 'x-a', '2', 'X-A', '3']), { host: 'h', 'x-a': ['1', '2', '3'] });
});
