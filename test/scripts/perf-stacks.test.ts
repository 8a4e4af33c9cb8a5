// Reading perf's stacks of a siplb process: parsing `perf script`, and which layer and which
// JavaScript function each sample is charged to.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsShares, layerShares, parsePerfScript, shortJsName } from '../../scripts/perf-stacks.ts';

const NODE = '(/usr/bin/node)';
const KERNEL = '([kernel.kallsyms])';
const MAP = '(/tmp/perf-42.map)';

/** A `perf script` sample: thread name, then frames leaf first. */
function sample(thread: string, frames: string[]): string {
  return `${thread} 42 100.000001:     1001001 cpu-clock: \n${frames.map((f, i) => `\t    ${(0x1000 + i).toString(16)} ${f}`).join('\n')}\n\n`;
}

const ENTRY = [`Builtins_JSEntry+0xa7 ${NODE}`, `node::InternalMakeCallback+0x2d7 ${NODE}`, `node::UDPWrap::OnRecv+0x2b2 ${NODE}`, `uv__udp_io+0x6c ${NODE}`, `uv_run+0x137 ${NODE}`];
const DGRAM = `JS:*'onMessage node:dgram:1099:19+0x227 ${MAP}`;
const ON_REQUEST = `JS:*'onRequest file:///repo/src/proxy/proxy.ts:203:20+0x18 ${MAP}`;
const SEND = `JS:*'Socket.send node:dgram:733:33+0x40 ${MAP}`;

const TEXT = [
  // A send: the kernel's sendmsg under dgram's send under the request path.
  sample('MainThread', [`udp_sendmsg+0x10 ${KERNEL}`, `__libc_sendmsg+0x5 (/usr/lib/libc.so.6)`, SEND, ON_REQUEST, DGRAM, ...ENTRY]),
  // Parsing a builtin's time is charged to the JS function that called it.
  sample('MainThread', [`Builtins_StringIndexOf+0x1 ${NODE}`, `JS:*'indexHeaders file:///repo/src/sip/message.ts:245:22+0x9 ${MAP}`, `JS:*'parseSipMessage file:///repo/src/sip/message.ts:144:32+0x5 ${MAP}`, DGRAM, ...ENTRY]),
  // The request path without a send.
  sample('MainThread', [`Builtins_MapPrototypeSet+0x2 ${NODE}`, ON_REQUEST, DGRAM, ...ENTRY]),
  sample('MainThread', [ON_REQUEST, DGRAM, ...ENTRY]),
  // Node's receive work outside JavaScript: the rinfo object.
  sample('MainThread', [`node::AddressToJS+0x3 ${NODE}`, ...ENTRY.slice(2)]),
  // The kernel's receive.
  sample('MainThread', [`udp_recvmsg+0x1 ${KERNEL}`, `__libc_recvmsg+0x1 (/usr/lib/libc.so.6)`, `uv__udp_io+0x6c ${NODE}`]),
  // JIT code the map does not name still counts as JavaScript.
  sample('MainThread', [`[unknown] ${MAP}`, ...ENTRY]),
  // A GC helper thread.
  sample('V8Worker', [`v8::internal::Scavenger::Process+0x1 ${NODE}`]),
  // A sample without a walked stack.
  sample('MainThread', [`_int_malloc+0xb0d (/usr/lib/libc.so.6)`]),
].join('');

test('parsePerfScript reads each sample\'s thread and frames, offsets and module apart', () => {
  const stacks = parsePerfScript(TEXT);
  assert.equal(stacks.length, 9);
  assert.equal(stacks[0].thread, 'MainThread');
  assert.deepEqual(stacks[0].frames[0], { symbol: 'udp_sendmsg', module: '[kernel.kallsyms]' });
  assert.deepEqual(stacks[1].frames[1], { symbol: "JS:*'indexHeaders file:///repo/src/sip/message.ts:245:22", module: '/tmp/perf-42.map' });
  assert.equal(stacks[7].thread, 'V8Worker');
});

test('layerShares puts each sample in the first layer it belongs to, helper threads apart', () => {
  const shares = Object.fromEntries(layerShares(parsePerfScript(TEXT)).map((s) => [s.name.split(' (')[0], s.samples]));
  assert.deepEqual(shares, {
    'send: kernel': 1,
    parse: 1,
    'request path': 2,
    'receive: Node and libuv': 1,
    'receive: kernel': 1,
    'other JavaScript': 1,
    'helper threads': 1,
    'other native': 1,
  });
});

test('jsShares charges builtins to their nearest JavaScript caller and groups sends', () => {
  const shares = jsShares(parsePerfScript(TEXT));
  assert.deepEqual(shares.map((s) => [s.name, s.samples]), [
    ['onRequest proxy/proxy.ts:203', 2],
    ['(dgram send, kernel included)', 1],
    ['indexHeaders sip/message.ts:245', 1],
    ['(JavaScript not named in the perf map)', 1],
  ]);
});

test('shortJsName keeps the function and the file under src/ or the module', () => {
  const cases: [string, string][] = [
    ["JS:*'onRequest file:///work/main/src/proxy/proxy.ts:203:20", 'onRequest proxy/proxy.ts:203'],
    ['JS:* file:///work/main/src/transport/udp-peers.ts:188:26', '(anonymous) transport/udp-peers.ts:188'],
    ["JS:*'onMessage node:dgram:1099:19", 'onMessage node:dgram:1099'],
    ["JS:+'set file:///work/main/src/state/affinity-table.ts:127:6", 'set state/affinity-table.ts:127'],
  ];
  for (const [symbol, expected] of cases) assert.equal(shortJsName(symbol), expected, symbol);
});
