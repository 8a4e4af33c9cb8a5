// parseVia: one Via value, as the request and response paths read the top two. A table over the
// canonical spelling (the fast path) and the spellings only the general reading takes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVia, responseTarget } from '../../src/sip/via.ts';

type Want = [transport: string, host: string, port: number | null, branch: string | null, received: string | null, rport: number | null | undefined] | null;

const CASES: [string, Want][] = [
  ['SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1', ['UDP', '10.0.0.1', 5060, 'z9hG4bK1', null, undefined]],
  ['SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport', ['UDP', '10.0.0.1', null, 'z9hG4bK1', null, null]],
  ['SIP/2.0/UDP 10.0.0.1:5070;rport=5071;received=192.0.2.9;branch=b', ['UDP', '10.0.0.1', 5070, 'b', '192.0.2.9', 5071]],
  ['SIP/2.0/TCP Host.Example.COM;branch=b', ['TCP', 'host.example.com', null, 'b', null, undefined]],
  ['sip/2.0/udp 10.0.0.1;branch=b', ['UDP', '10.0.0.1', null, 'b', null, undefined]],
  ['SIP / 2.0 / UDP 10.0.0.1 ; branch = b', ['UDP', '10.0.0.1', null, 'b', null, undefined]],
  // COLON is SWS ":" SWS (RFC 3261 §25.1): blanks around the port's colon are legal.
  ['SIP/2.0/UDP host :5060;branch=b', ['UDP', 'host', 5060, 'b', null, undefined]],
  ['SIP/2.0/UDP 10.0.0.1 : 5060 ;branch=b', ['UDP', '10.0.0.1', 5060, 'b', null, undefined]],
  ['SIP/2.0/WSS [2001:db8::1]:443;branch=b', ['WSS', '2001:db8::1', 443, 'b', null, undefined]],
  ['SIP/2.0/UDP 10.0.0.1', ['UDP', '10.0.0.1', null, null, null, undefined]],
  ['SIP/2.0/udp 10.0.0.1; BRANCH = z9 ;Received=192.0.2.4;RPORT=5;x;y=1', ['UDP', '10.0.0.1', null, 'z9', '192.0.2.4', 5]],
  ['SIP/2.0/Ws abc.invalid;branch=b', ['WS', 'abc.invalid', null, 'b', null, undefined]],
  ['SIP/2.0/SCTP 10.0.0.1;branch=b', ['SCTP', '10.0.0.1', null, 'b', null, undefined]],
  ['SIP/2.0/UDP 10.0.0.1;branchx=1;xbranch=2', ['UDP', '10.0.0.1', null, null, null, undefined]],
  ['SIP/2.0/UDP ho st;branch=b', null],
  ['SIP/2.0/UDP 10.0.0.1:0;branch=b', null],
  ['SIP/2.0/UDP 10.0.0.1:70000;branch=b', null],
  ['SIP/2.0/UDP 10.0.0.1;;branch=b', null],
  ['SIP/2.0/UDP 10.0.0.1;branch=b;', null],
  ['SIP/2.0/UDP 10.0.0.1;rport=x', null],
  ['SIP/2.0/UDP 10.0.0.1;rport=65536', null],
  ['SIP/2.0/UDP', null],
  ['SIP/2.0 10.0.0.1', null],
  ['', null],
];

for (const [value, want] of CASES) {
  test(`parseVia(${JSON.stringify(value)})`, () => {
    const v = parseVia(value);
    assert.deepEqual(v === null ? null : [v.transport, v.host, v.port, v.branch, v.received, v.rport], want);
  });
}

test('a response goes to received and rport before sent-by (RFC 3581 §4)', () => {
  const at = (value: string) => {
    const v = parseVia(value);
    assert.ok(v !== null);
    return responseTarget(v);
  };
  assert.deepEqual(at('SIP/2.0/UDP 10.0.0.1:5070;received=192.0.2.9;rport=6000'), { host: '192.0.2.9', port: 6000 });
  assert.deepEqual(at('SIP/2.0/UDP 10.0.0.1:5070;rport'), { host: '10.0.0.1', port: 5070 });
  assert.deepEqual(at('SIP/2.0/TLS 10.0.0.1'), { host: '10.0.0.1', port: 5061 });
});
