// The UDP receive-queue reader behind overload control: the kernel's address notation (table),
// summing the lines of /proc/net/udp that are ours, and, on Linux, a real socket whose queue
// fills while its process cannot read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { procAddress, sumBacklog, UdpBacklogReader } from '../../src/transport/udp-backlog.ts';

const ADDRESSES: [string, string | null][] = [
  ['127.0.0.1', '0100007F'],
  ['0.0.0.0', '00000000'],
  ['192.0.2.10', '0A0200C0'],
  ['::', '00000000000000000000000000000000'],
  ['::1', '00000000000000000000000001000000'],
  ['2001:db8::1', 'B80D0120000000000000000001000000'],
  ['::ffff:127.0.0.1', '0000000000000000FFFF00000100007F'],
  ['256.0.0.1', null],
  ['not-an-ip', null],
];

for (const [address, hex] of ADDRESSES) {
  test(`procAddress(${address}) is ${hex}`, () => assert.equal(procAddress(address), hex));
}

const SAMPLE = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
  '  100: 0100007F:13C4 00000000:0000 07 00000000:00004000 00:00000000 00000000     0        0 11111 2 0000000000000000 3',
  '  101: 0100007F:13C5 00000000:0000 07 00000000:00100000 00:00000000 00000000     0        0 22222 2 0000000000000000 9',
  '  102: 00000000:13C4 00000000:0000 07 00000000:00000800 00:00000000 00000000     0        0 33333 2 0000000000000000 0',
  '',
].join('\n');

test('sumBacklog adds rx_queue and drops of the wanted sockets only', () => {
  const sum = { queuedBytes: 0, drops: 0 };
  sumBacklog(SAMPLE, new Set(['0100007F:13C4', '00000000:13C4']), sum);
  assert.deepEqual(sum, { queuedBytes: 0x4000 + 0x800, drops: 3 });
});

test('the reader answers null without sockets', () => {
  assert.equal(new UdpBacklogReader(() => []).read(), null);
});

test('a real socket: bytes queue up while the process cannot read, and the reader sees them', { skip: !existsSync('/proc/net/udp') && 'needs Linux /proc/net/udp' }, async () => {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    const { port } = socket.address();
    const reader = new UdpBacklogReader(() => [{ ...socket.address(), receiveBufferBytes: socket.getRecvBufferSize() }]);
    // A child sends 50 datagrams while this process is blocked in spawnSync: nothing reads them.
    const sender = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>{if(n++<50)s.send(Buffer.alloc(400),${port},'127.0.0.1',go);else s.close();};go();`;
    const backlog = ((): ReturnType<UdpBacklogReader['read']> => {
      const r = spawnSync(process.execPath, ['-e', sender], { timeout: 10_000 });
      assert.equal(r.status, 0, r.stderr?.toString());
      return reader.read();
    })();
    assert.ok(backlog !== null);
    assert.ok(backlog.queuedBytes >= 50 * 400, `${backlog.queuedBytes} bytes queued`);
    assert.equal(backlog.drops, 0);
    assert.equal(backlog.bufferBytes, socket.getRecvBufferSize());
  } finally {
    socket.close();
  }
});
