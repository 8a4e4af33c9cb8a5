// Branch computation (src/proxy/branch.ts): deterministic, sensitive to every input it covers,
// insensitive to what it must not cover (method: CANCEL/ACK share the INVITE's branch), and
// keyed (another secret, another MAC).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BRANCH_PREFIX, branchMacFallbackReason, loopOf, loopPart, macOf, macPart, macPartInJavaScript, makeBranch, viaKey } from '../../src/proxy/branch.ts';
import { parseVia } from '../../src/sip/via.ts';

const SECRET = 'branch-test-secret-0001';
// macPart(SECRET, viaKey of the Via in 'MAC part and branch format', 'c1@h', 1), from the
// JavaScript SipHash that the reference vectors check (test/core/siphash.test.ts).
const PINNED_MAC = 'CI3fVkAi5AfRhK8J';
const LOOP_INPUT = { ruri: 'sip:bob@example.com', fromTag: 'f1', callId: 'c1@h', cseq: 1, routes: ['<sip:p1;lr>'], outbound: false };

function loopOfInput(o: typeof LOOP_INPUT): string {
  return loopPart([o.ruri, o.fromTag, o.callId, ...o.routes], o.cseq, o.outbound);
}

describe('loop part (RFC 3261 16.3 step 4)', () => {
  test('deterministic, 8 base64url characters', () => {
    const a = loopOfInput(LOOP_INPUT);
    assert.equal(a, loopOfInput({ ...LOOP_INPUT }));
    assert.match(a, /^[A-Za-z0-9_-]{8}$/);
  });
  const CHANGES: { name: string; change: Partial<typeof LOOP_INPUT> }[] = [
    { name: 'Request-URI', change: { ruri: 'sip:carol@example.com' } },
    { name: 'From tag', change: { fromTag: 'f2' } },
    { name: 'Call-ID', change: { callId: 'c2@h' } },
    { name: 'CSeq number', change: { cseq: 2 } },
    { name: 'remaining Route set', change: { routes: ['<sip:p2;lr>'] } },
    { name: 'no remaining Route', change: { routes: [] } },
    { name: 'direction', change: { outbound: true } },
  ];
  for (const c of CHANGES) {
    test(`changes with the ${c.name}`, () => {
      assert.notEqual(loopOfInput({ ...LOOP_INPUT, ...c.change }), loopOfInput(LOOP_INPUT));
    });
  }
  test('field boundaries matter: moving text between fields changes it', () => {
    assert.notEqual(loopPart(['ab', 'c', 'x'], 1, false), loopPart(['a', 'bc', 'x'], 1, false));
  });
});

describe('MAC part and branch format', () => {
  const via = parseVia('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-abc;received=192.0.2.10;rport=5061');
  assert.ok(via !== null);
  const key = viaKey(via);

  test('viaKey survives re-serialisation by a peer (spacing, case, parameter order)', () => {
    const again = parseVia('SIP / 2.0 / udp 192.0.2.10 : 5060 ;rport=5061 ;received=192.0.2.10; branch=z9hG4bK-abc');
    assert.ok(again !== null);
    assert.equal(viaKey(again), key);
  });
  test('keyed: another secret gives another MAC', () => {
    assert.notEqual(macPart(SECRET, key, 'c1@h', 1), macPart('another-secret-00000', key, 'c1@h', 1));
  });
  const CHANGES: { name: string; via: string }[] = [
    { name: 'sent-by host', via: 'SIP/2.0/UDP 192.0.2.11:5060;branch=z9hG4bK-abc;received=192.0.2.10;rport=5061' },
    { name: 'branch', via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-abd;received=192.0.2.10;rport=5061' },
    { name: 'received', via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-abc;received=198.51.100.1;rport=5061' },
    { name: 'rport', via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-abc;received=192.0.2.10;rport=6000' },
    { name: 'transport', via: 'SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-abc;received=192.0.2.10;rport=5061' },
  ];
  for (const c of CHANGES) {
    test(`MAC changes with the Via below ours: ${c.name}`, () => {
      const other = parseVia(c.via);
      assert.ok(other !== null);
      assert.notEqual(macPart(SECRET, viaKey(other), 'c1@h', 1), macPart(SECRET, key, 'c1@h', 1));
    });
  }
  test('MAC changes with the Call-ID and the CSeq number', () => {
    assert.notEqual(macPart(SECRET, key, 'c2@h', 1), macPart(SECRET, key, 'c1@h', 1));
    assert.notEqual(macPart(SECRET, key, 'c1@h', 2), macPart(SECRET, key, 'c1@h', 1));
  });
  test('field boundaries matter: moving text between Via key and Call-ID changes it', () => {
    assert.notEqual(macPart(SECRET, 'ab', 'c', 1), macPart(SECRET, 'a', 'bc', 1));
  });
  test('the wire format is fixed (balancers of one release and the next accept each other)', () => {
    assert.equal(macPart(SECRET, key, 'c1@h', 1), PINNED_MAC);
  });
  test('branch = prefix + loop + MAC, and both parts read back', () => {
    const loop = loopOfInput(LOOP_INPUT);
    const mac = macPart(SECRET, key, 'c1@h', 1);
    const branch = makeBranch(loop, mac);
    assert.ok(branch.startsWith(BRANCH_PREFIX));
    assert.ok(branch.startsWith('z9hG4bK'), 'RFC 3261 magic cookie');
    assert.equal(loopOf(branch), loop);
    assert.equal(macOf(branch), mac);
  });
  const NOT_OURS = ['z9hG4bK-client-1', 'z9hG4bKLbtooShort', BRANCH_PREFIX + 'x'.repeat(30), 'z9hG4bKLa' + 'x'.repeat(24)];
  for (const b of NOT_OURS) {
    test(`not one of ours: ${b}`, () => assert.equal(loopOf(b), null));
  }
});

describe('MAC in native/mac.c and in JavaScript', () => {
  test('the addon is built and loads (npm ci builds it: node native/build.cjs)', () => {
    assert.equal(branchMacFallbackReason(), null);
  });
  const LONG = 'v'.repeat(5000);
  const INPUTS: { name: string; via: string; callId: string; cseq: number }[] = [
    { name: 'typical', via: 'UDP|10.0.0.1|5060|z9hG4bK-1-2|10.0.0.1|5060', callId: '1-2345@10.0.0.1', cseq: 1 },
    { name: 'empty strings', via: '', callId: '', cseq: 0 },
    { name: 'Latin-1 bytes above 0x7f, 0xff included', via: 'UDP|h\u00e9|\u00ff|', callId: '\u00ff\u0080\u00fe', cseq: 7 },
    { name: 'longest CSeq (2^31 - 1)', via: 'TCP|a|1||', callId: 'x', cseq: 2 ** 31 - 1 },
    { name: 'a CSeq past 2^31 (its low 32 bits)', via: 'TCP|a|1||', callId: 'x', cseq: 2 ** 32 - 1 },
    { name: 'a Via key past the addon\'s first buffer', via: LONG, callId: 'c', cseq: 3 },
    { name: 'a Call-ID past it', via: 'UDP|a|1||', callId: LONG + 'w', cseq: 3 },
  ];
  for (let len = 0; len < 20; len++) INPUTS.push({ name: `${len} bytes of input`, via: 'k'.repeat(len), callId: '', cseq: len });
  for (const i of INPUTS) {
    test(`same MAC: ${i.name}`, () => {
      const native = macPart(SECRET, i.via, i.callId, i.cseq);
      assert.match(native, /^[A-Za-z0-9_-]{16}$/);
      assert.equal(macPartInJavaScript(SECRET, i.via, i.callId, i.cseq), native);
    });
  }
  test('same MAC under another secret, and it differs from the first', () => {
    const a = macPart(SECRET, 'v', 'c', 1);
    const b = macPart('another-secret-00000', 'v', 'c', 1);
    assert.notEqual(a, b);
    assert.equal(macPartInJavaScript('another-secret-00000', 'v', 'c', 1), b);
  });
});
