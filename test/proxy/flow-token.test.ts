// Flow tokens (src/proxy/flow-token.ts): a token names one connection of one process, verifies
// under the shared secret only, and says "elsewhere" (a failed flow, 430) rather than "forged"
// (403) when another process with the same secret minted it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_TOKEN_PREFIX, FlowTokens } from '../../src/proxy/flow-token.ts';

const BOOT = Buffer.from('01020304', 'hex');
const tokens = new FlowTokens('a shared secret of the cluster', BOOT);

test('a token names its connection and only its connection, for ids up to 2^48 - 1', () => {
  for (const id of [1, 2, 255, 65_536, 2 ** 32 + 7, 2 ** 48 - 1]) {
    const t = tokens.make(id);
    assert.ok(FlowTokens.isToken(t), t);
    assert.ok(t.startsWith(FLOW_TOKEN_PREFIX));
    assert.match(t, /^[A-Za-z0-9_-]+$/, 'only characters a SIP URI user part takes unescaped');
    assert.deepEqual(tokens.check(t), { kind: 'here', connectionId: id });
  }
  assert.notEqual(tokens.make(1), tokens.make(2));
  assert.equal(tokens.make(9), tokens.make(9), 'deterministic: a retransmitted request carries the same Record-Route');
});

const genuine = tokens.make(4242);
const flip = (t: string, i: number): string => t.slice(0, i) + (t[i] === 'Q' ? 'R' : 'Q') + t.slice(i + 1);

const CASES: { name: string; token: string; kind: 'here' | 'elsewhere' | 'forged' }[] = [
  { name: 'genuine', token: genuine, kind: 'here' },
  { name: 'same secret, another process (another balancer, or this one restarted)', token: new FlowTokens('a shared secret of the cluster', Buffer.from('0a0b0c0d', 'hex')).make(4242), kind: 'elsewhere' },
  { name: 'another secret', token: new FlowTokens('somebody else entirely', BOOT).make(4242), kind: 'forged' },
  { name: 'boot id changed', token: flip(genuine, 4), kind: 'forged' },
  { name: 'connection id changed', token: flip(genuine, 10), kind: 'forged' },
  { name: 'MAC changed', token: flip(genuine, genuine.length - 1), kind: 'forged' },
  { name: 'one character short', token: genuine.slice(0, -1), kind: 'forged' },
  { name: 'one character long', token: `${genuine}A`, kind: 'forged' },
  { name: 'prefix only', token: FLOW_TOKEN_PREFIX, kind: 'forged' },
  { name: 'empty', token: '', kind: 'forged' },
  { name: 'not base64url', token: `${FLOW_TOKEN_PREFIX}${'%'.repeat(genuine.length - 3)}`, kind: 'forged' },
];

for (const c of CASES) {
  test(`check: ${c.name} -> ${c.kind}`, () => {
    assert.equal(tokens.check(c.token).kind, c.kind);
  });
}
