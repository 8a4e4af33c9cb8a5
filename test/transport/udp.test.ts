// UDP endpoint: the receive queue it asks the kernel for (udpReceiveBuffer), on its own and as a
// balancer started on the key opens its listeners.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { loadConfigText } from '../../src/config/load.ts';
import { ConnectionTable } from '../../src/transport/connections.ts';
import { DEFAULT_UDP_RECEIVE_BUFFER, UdpEndpoint } from '../../src/transport/udp.ts';
import { startBalancer } from '../../src/wiring/balancer.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';

const RMEM_MAX = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());

/** What Linux grants for SO_RCVBUF `asked`: twice the value, capped at twice net.core.rmem_max. */
function granted(asked: number): number {
  return 2 * Math.min(asked, RMEM_MAX);
}

const log = pino({ level: 'silent' });

for (const asked of [undefined, 65_536, 131_072]) {
  test(`a UDP endpoint asked for ${asked ?? `the default (${DEFAULT_UDP_RECEIVE_BUFFER})`} bytes of receive queue gets what the kernel grants for it`, async (t) => {
    const ep = new UdpEndpoint({
      side: 'external', host: '127.0.0.1', port: 0, maxMessageSize: 65_535, log, onMessage: () => undefined,
      connections: new ConnectionTable(), ...(asked === undefined ? {} : { receiveBufferBytes: asked }),
    });
    t.after(() => ep.close());
    await ep.listen();
    assert.equal(ep.receiveBufferBytes(), granted(asked ?? DEFAULT_UDP_RECEIVE_BUFFER));
  });
}

test('udpReceiveBuffer reaches every UDP listener of a balancer', async (t) => {
  const ports = await allocatePorts(3);
  t.after(() => releasePorts(ports));
  const [external, internal, heartbeat] = ports;
  const { config } = loadConfigText([
    'host=127.0.0.1', `externalPort=${external}`, `internalPort=${internal}`, `heartbeatPort=${heartbeat}`,
    'udpReceiveBuffer=98304', 'warmUpCalls=0',
  ].join('\n'));
  const lb = await startBalancer(config, log);
  t.after(() => lb.close());
  const sockets = lb.transports.udpSockets();
  assert.deepEqual(sockets.map((s) => s.port).sort(), [external, internal].sort());
  for (const s of sockets) assert.equal(s.receiveBufferBytes, granted(98_304), `port ${s.port}`);
});
