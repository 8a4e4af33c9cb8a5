// HeartbeatAgent with a heartbeat token, against a real HeartbeatServer on loopback: the token is
// sent and accepted; a refused token is logged once per balancer while the agent keeps retrying
// at its interval; a token file rewritten for a rotation is read again after a 401.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { HeartbeatServer } from '../../src/cluster/heartbeat-server.ts';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { HeartbeatAgent } from '../../src/node-agent/agent.ts';
import { eventually, sleep } from '../helpers/wait.ts';
import { capturingLogger } from '../helpers/log.ts';

const TOKEN = 'node-agent-token-0123456789';
const INTERVAL = 100;
const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function balancer(token: string | null): Promise<{ server: HeartbeatServer; registry: NodeRegistry; address: string }> {
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log: silent });
  const server = new HeartbeatServer(registry, silent, { token });
  await server.listen('127.0.0.1', 0);
  cleanups.push(() => server.close());
  return { server, registry, address: `127.0.0.1:${server.address().port}` };
}

function agent(balancers: string, token: string | (() => string) | undefined, log: Logger = silent): HeartbeatAgent {
  const a = new HeartbeatAgent({
    balancers, node: { ip: '127.0.0.1', udpPort: 5090 }, intervalMs: INTERVAL, requestTimeoutMs: 1000, shutdownGraceMs: 0, token, logger: log,
  });
  cleanups.push(() => a.stop());
  return a;
}

const refusedLines = (lines: Record<string, unknown>[]): Record<string, unknown>[] =>
  lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('heartbeat token refused by'));

test('the agent sends the token: it registers, heartbeats and is stopped on a balancer that requires it; the token is not logged', async () => {
  const { server, registry, address } = await balancer(TOKEN);
  const { log, lines } = capturingLogger('debug');
  const a = agent(address, TOKEN, log);
  a.start();
  await eventually('the node registered', 3000, () => registry.get('127.0.0.1:5090') !== undefined);
  await eventually('a heartbeat answered OK', 3000, () => a.status()[0].counters.ok >= 3);
  await a.stop();
  assert.equal(registry.get('127.0.0.1:5090'), undefined, 'stop was accepted');
  assert.equal(server.rejected.token, 0);
  assert.equal(refusedLines(lines).length, 0);
  assert.ok(!JSON.stringify(lines).includes(TOKEN));
});

const refusals: { name: string; token: string | undefined }[] = [
  { name: 'no token', token: undefined },
  { name: 'a wrong token', token: 'not-the-balancers-token-0000' },
];
for (const c of refusals) {
  test(`${c.name}: one error "heartbeat token refused by <balancer>", retries at the interval, never registered`, async () => {
    const { server, registry, address } = await balancer(TOKEN);
    const { log, lines } = capturingLogger('debug');
    const a = agent(address, c.token, log);
    a.start();
    await sleep(10 * INTERVAL + 50);
    const sent = a.status()[0].counters.sent.start;
    // At the interval, not in a loop: about ten in a second (a spinning agent would send hundreds).
    assert.ok(sent >= 3 && sent <= 12, `start sent ${sent} times in ~${10 * INTERVAL} ms`);
    assert.equal(server.rejected.token, sent);
    assert.equal(registry.list().length, 0);
    const shown = refusedLines(lines);
    assert.equal(shown.length, 1, 'logged once');
    assert.equal(shown[0].msg, `heartbeat token refused by ${address}`);
    assert.equal(shown[0].level, 50, 'error');
    assert.equal(shown[0].balancer, address);
  });
}

test('a token file rewritten for a rotation: read again after the 401, the node registers; each balancer keeps its own token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-token-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  const oldToken = 'the-old-token-before-rotation';
  writeFileSync(file, `${oldToken}\n`);
  const read = (): string => readFileSync(file, 'utf8').trim();
  const rotated = await balancer(oldToken);
  const steady = await balancer(oldToken);
  const { log, lines } = capturingLogger('debug');
  const a = agent(`${rotated.address};${steady.address}`, read, log);
  a.start();
  await eventually('registered with both', 3000, () => rotated.registry.list().length === 1 && steady.registry.list().length === 1);

  // The operator writes the new token on the node, then reloads one balancer.
  writeFileSync(file, `${TOKEN}\n`);
  rotated.server.setToken(TOKEN);
  await eventually('a 401 from the rotated balancer', 3000, () => rotated.server.rejected.token >= 1);
  const okBefore = a.status()[1].counters.ok;
  await eventually('heartbeats accepted by the rotated balancer again', 3000, () => a.status()[0].counters.ok >= 3 && a.status()[0].state === 'registered');
  assert.equal(rotated.server.rejected.token, 1, 'one refusal, then the token read again');
  assert.equal(refusedLines(lines).length, 1);
  assert.ok(lines.some((l) => l.msg === `heartbeat token accepted by ${rotated.address}`));
  // The other balancer still has the old token and still accepts the agent's heartbeats.
  await eventually('heartbeats to the other balancer go on', 3000, () => a.status()[1].counters.ok > okBefore + 2);
  assert.equal(steady.server.rejected.token, 0);
  assert.ok(rotated.registry.get('127.0.0.1:5090'), 'the node never left the rotated balancer');
});

const badTokens: { name: string; token: string | (() => string); reason: RegExp }[] = [
  { name: 'too short', token: 'short', reason: /at least 16 characters/ },
  { name: 'with a space', token: 'sixteen chars or more', reason: /visible ASCII/ },
  { name: 'from a source that returns a short one', token: () => 'x', reason: /at least 16 characters/ },
];
for (const c of badTokens) {
  test(`a token ${c.name}: ConfigError on "token" that does not quote it`, () => {
    assert.throws(() => new HeartbeatAgent({ balancers: '127.0.0.1:1', node: { ip: '127.0.0.1', udpPort: 5090 }, token: c.token, logger: silent }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.key, 'token');
        assert.match(err.reason, c.reason);
        assert.match(err.value, /characters, hidden/);
        return true;
      });
  });
}
