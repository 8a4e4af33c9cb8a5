// The sample configurations of examples/, each run by a real siplb process with real sipp calls
// through it, so that none of them rots: one port (the README's quick start), two ports
// (clients outside, nodes inside) and two balancers sharing their state in a real redis-server,
// whose calls enter through one balancer and end through the other. Each file runs as written
// except for its port numbers (exampleCopy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startDemoNode, type DemoNodeHandle } from '../e2e/harness/demo-node.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { REPO_ROOT, startSiplbWithFile, type SiplbHandle } from '../e2e/harness/siplb.ts';
import { describeResult, runSippUac, SCENARIOS, type SippUas } from '../e2e/harness/sipp.ts';
import { assertCallsThrough, exampleCopy, startSippNodes, type ExampleCopy } from './example-run.ts';

const EXAMPLES = join(REPO_ROOT, 'examples');

function readyLine(lb: SiplbHandle): Record<string, unknown> {
  const line = lb.jsonLogs().find((l) => l['msg'] === 'siplb ready');
  assert.ok(line !== undefined, 'siplb ready logged');
  return line;
}

test('examples/lb.properties (one port, the README quick start): calls through it reach both nodes', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(6);
  const [lbPort, nodeA, nodeB, uacPort, heartbeatPort, apiPort] = ports;
  let copy: ExampleCopy | undefined;
  let lb: SiplbHandle | undefined;
  let uases: SippUas[] = [];
  try {
    // The file leaves heartbeatPort and apiPort at their defaults (2610, 2006), which other tests
    // of the suite may hold: this copy names ports of its own.
    copy = exampleCopy(join(EXAMPLES, 'lb.properties'), { 5060: lbPort, 5071: nodeA, 5072: nodeB }, { heartbeatPort: String(heartbeatPort), apiPort: String(apiPort) });
    uases = await startSippNodes([nodeA, nodeB]);
    lb = await startSiplbWithFile(copy.path, { logLevel: 'info' });
    const ready = readyLine(lb);
    assert.equal(ready['external'], `127.0.0.1 udp:${lbPort} tcp:${lbPort}`);
    assert.equal(ready['internal'], 'same as external');
    assert.equal((ready['nodes'] as unknown[]).length, 2, JSON.stringify(ready['nodes']));
    const handle = lb;
    await assertCallsThrough(`127.0.0.1:${lbPort}`, uacPort, uases, 10, () => handle.logs());
    await lb.stop();
    assert.equal(await lb.exitCode, 0);
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await lb?.stop();
    copy?.remove();
    releasePorts(ports);
  }
});

test('examples/two-port.properties: clients on the external port, nodes on the internal one', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(7);
  const [extPort, intPort, nodeA, nodeB, uacPort, heartbeatPort, apiPort] = ports;
  let copy: ExampleCopy | undefined;
  let lb: SiplbHandle | undefined;
  let uases: SippUas[] = [];
  try {
    copy = exampleCopy(join(EXAMPLES, 'two-port.properties'), { 5060: extPort, 5065: intPort, 5071: nodeA, 5072: nodeB, 2610: heartbeatPort, 2006: apiPort });
    uases = await startSippNodes([nodeA, nodeB]);
    lb = await startSiplbWithFile(copy.path, { logLevel: 'info' });
    const ready = readyLine(lb);
    assert.equal(ready['external'], `127.0.0.1 udp:${extPort} tcp:${extPort}`);
    assert.equal(ready['internal'], `127.0.0.1 udp:${intPort} tcp:${intPort}`);
    assert.match(String(ready['heartbeat']), new RegExp(`^127\\.0\\.0\\.1:${heartbeatPort} `));
    assert.equal(ready['admin'], `127.0.0.1:${apiPort}`);
    const handle = lb;
    const uac = await assertCallsThrough(`127.0.0.1:${extPort}`, uacPort, uases, 10, () => handle.logs());
    assert.equal(uac.exit.code, 0);
    await lb.stop();
    assert.equal(await lb.exitCode, 0);
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await lb?.stop();
    copy?.remove();
    releasePorts(ports);
  }
});

test('examples/redis/lb1.properties + lb2.properties: INVITE through one balancer, ACK and BYE through the other, on one Redis', { timeout: 60_000 }, async () => {
  const ports = await allocatePorts(9);
  const [lb1Port, lb2Port, hb1, hb2, api1, api2, nodeA, nodeB, uacPort] = ports;
  const copies: ExampleCopy[] = [];
  const lbs: SiplbHandle[] = [];
  const nodes: DemoNodeHandle[] = [];
  let redis: RedisServer | undefined;
  try {
    redis = await startRedis();
    // A read of Redis that outlasts redisReadTimeout (100 ms) is decided without it by design; a
    // loaded test machine can take that long, and that fallback is not what this test is about.
    // shutdownTimeout 1 s instead of the files' default 10: balancer 1 never sees the BYEs (they
    // pass balancer 2), counts its 20 calls as in progress and lets a graceful stop wait the
    // whole shutdownTimeout for them.
    const slow = { redisReadTimeout: '2000', shutdownTimeout: '1000' };
    copies.push(exampleCopy(join(EXAMPLES, 'redis', 'lb1.properties'), { 5060: lb1Port, 2610: hb1, 2006: api1, 5071: nodeA, 5072: nodeB, 6379: redis.port }, slow));
    copies.push(exampleCopy(join(EXAMPLES, 'redis', 'lb2.properties'), { 5070: lb2Port, 2611: hb2, 2007: api2, 5071: nodeA, 5072: nodeB, 6379: redis.port }, slow));
    // Demo nodes, not sipp UASes: they answer by the Via as RFC 3261 says, which a call crossing
    // balancers needs (shared-state.test.ts), and count the BYEs of calls they do not have.
    for (const port of [nodeA, nodeB]) nodes.push(await startDemoNode({ port, balancers: '' }));
    for (const copy of copies) lbs.push(await startSiplbWithFile(copy.path, { logLevel: 'info' }));
    const calls = 20;
    const uac = await runSippUac({
      scenario: SCENARIOS.uacSplit, transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lb1Port}`, rate: 20, calls, timeoutS: 30,
      extraArgs: ['-set', 'lb2host', '127.0.0.1', '-set', 'lb2port', String(lb2Port)],
    });
    const context = (): string => `${describeResult('UAC', uac)}\n${lbs.map((lb, i) => `balancer ${i + 1}:\n${lb.logs().slice(-15).join('\n')}`).join('\n')}`;
    assert.equal(uac.stats.successful, calls, context());
    assert.equal(uac.stats.failed, 0, context());
    const stats = await Promise.all(nodes.map((n) => n.stats()));
    assert.equal(stats.reduce((n, s) => n + s.callsEnded, 0), calls, 'every call ended at the node that answered it');
    assert.equal(stats.reduce((n, s) => n + (s.byes - s.callsEnded), 0), 0, 'no BYE reached a node without the call');
    assert.ok(stats.every((s) => s.callsAnswered > 0), 'both nodes took calls');
    // The state is where the files say: in the Redis server, under their common prefix.
    const keys = execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', 'siplb:example:*'], { encoding: 'utf8' }).split('\n').filter((k) => k !== '');
    assert.ok(keys.length > 0, 'keys under siplb:example: in Redis');
    for (const lb of lbs) {
      await lb.stop();
      assert.equal(await lb.exitCode, 0, JSON.stringify(lb.jsonLogs().filter((l) => String(l['msg']).startsWith('siplb stop'))));
    }
  } finally {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await Promise.allSettled(lbs.map((lb) => lb.stop()));
    await redis?.stop();
    for (const copy of copies) copy.remove();
    releasePorts(ports);
  }
});
