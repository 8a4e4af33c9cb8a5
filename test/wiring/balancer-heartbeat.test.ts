// What startBalancer says at start-up about the heartbeat endpoint's authentication: without
// heartbeatToken, one line naming the address registrations are open on (a warning when that is
// every interface); with it, none. The endpoint's counters reach the running balancer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfigText } from '../../src/config/load.ts';
import { startBalancer } from '../../src/wiring/balancer.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';

const CASES: { name: string; lines: string[]; level: number | null; text: RegExp | null }[] = [
  { name: 'no token, internalHost 127.0.0.1: info, on the internal address only', lines: ['host=127.0.0.1'], level: 30, text: /unauthenticated, on the internal address only \(127\.0\.0\.1:\d+\)/ },
  { name: 'no token, internalHost 0.0.0.0: warning, every interface', lines: ['host=127.0.0.1', 'internalHost=0.0.0.0'], level: 40, text: /unauthenticated and reachable on every interface \(0\.0\.0\.0:\d+\)/ },
  { name: 'a token: no such line', lines: ['host=127.0.0.1', 'heartbeatToken=startup-token-0123456789'], level: null, text: null },
];

for (const c of CASES) {
  test(`start-up: ${c.name}`, async (t) => {
    const ports = await allocatePorts(3);
    t.after(() => releasePorts(ports));
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const { config } = loadConfigText([...c.lines, `externalPort=${ports[0]}`, `internalPort=${ports[1]}`, `heartbeatPort=${ports[2]}`, 'healthCheckInterval=0'].join('\n'));
    const lb = await startBalancer(config, pino({ level: 'info' }, sink));
    t.after(() => lb.close());
    const said = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('heartbeat registrations are unauthenticated'));
    if (c.text === null) {
      assert.deepEqual(said, []);
    } else {
      assert.equal(said.length, 1);
      assert.equal(said[0].level, c.level);
      assert.match(String(said[0].msg), c.text);
    }
    assert.deepEqual(lb.heartbeat?.rejected, { token: 0, invalid: 0 });
  });
}
