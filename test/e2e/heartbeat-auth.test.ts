// End to end: a real siplb with heartbeatToken and a real siplb-demo-node given the token in a
// file registers and takes sipp's calls; a forged registration (plain HTTP, no token or a wrong
// one) is refused with 401 and the forged node never appears in the admin API; the refusals are
// counted in /metrics and logged once per source. A demo node without the token is refused, and
// says so once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, sleep } from '../helpers/wait.ts';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb } from './harness/siplb.ts';
import { describeResult, runSippUac } from './harness/sipp.ts';
import { startDemoNode } from './harness/demo-node.ts';

const TOKEN = 'e2e-heartbeat-token-5f2c9a71';

test('heartbeatToken: the node with the token takes calls; forged and tokenless registrations are refused and never listed', { timeout: 90_000 }, async (t) => {
  const ports = await allocatePorts(6);
  const [lbPort, hbPort, apiPort, uacPort, nodePort, strayPort] = ports;
  t.after(() => releasePorts(ports));
  const dir = mkdtempSync(join(tmpdir(), 'siplb-hb-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

  const lb = await startSiplb({
    host: '127.0.0.1', externalPort: String(lbPort), heartbeatPort: String(hbPort), apiPort: String(apiPort),
    heartbeatToken: TOKEN, nodeTimeout: '2000', heartbeatInterval: '100', healthCheckInterval: '0',
  }, { logLevel: 'info' });
  t.after(() => lb.stop());
  const api = `http://127.0.0.1:${apiPort}`;
  const nodeIds = async (): Promise<string[]> => {
    const body = (await (await fetch(`${api}/api/v1/nodes`)).json()) as { nodes: { id: string }[] };
    return body.nodes.map((n) => n.id);
  };

  // Forged registrations, as anyone who reaches the port would send them.
  const forged = { start: { ip: '127.0.0.1', udpPort: 5999, sessionId: 'forged', version: '9' } };
  const attempts: { name: string; headers: Record<string, string> }[] = [
    { name: 'no token', headers: {} },
    { name: 'a wrong token', headers: { authorization: 'Bearer e2e-heartbeat-token-00000000' } },
  ];
  for (const a of attempts) {
    const res = await fetch(`http://127.0.0.1:${hbPort}/`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...a.headers }, body: JSON.stringify(forged),
    });
    assert.equal(res.status, 401, a.name);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, a.name);
    assert.equal(typeof ((await res.json()) as { error?: unknown }).error, 'string', a.name);
  }

  const node = await startDemoNode({ port: nodePort, balancers: `127.0.0.1:${hbPort}`, tokenFile, intervalMs: 200 });
  t.after(() => node.stop());
  // A node given no token: refused at every attempt, and it says so once.
  const stray = await startDemoNode({ port: strayPort, balancers: `127.0.0.1:${hbPort}`, intervalMs: 200 });
  t.after(() => stray.stop());

  await eventually('the node with the token to be listed', 10_000, async () => (await nodeIds()).includes(`127.0.0.1:${nodePort}`));
  const r = await runSippUac({ scenario: 'uac', transport: 'u1', localPort: uacPort, remote: `127.0.0.1:${lbPort}`, rate: 10, calls: 10, timeoutS: 20 });
  assert.equal(r.stats.successful, 10, describeResult('calls through the authenticated node', r));
  assert.ok((await node.stats()).invites >= 10, 'the node took the calls');

  await sleep(1000);
  const ids = await nodeIds();
  assert.deepEqual(ids, [`127.0.0.1:${nodePort}`], 'neither the forged node nor the tokenless one is listed');
  assert.equal((await stray.stats()).invites, 0);
  const strayRefusals = stray.logs().filter((l) => l.includes(`heartbeat token refused by 127.0.0.1:${hbPort}`));
  assert.equal(strayRefusals.length, 1, `one error line from the tokenless node:\n${stray.logs().slice(-10).join('\n')}`);

  // Counted (2 forged + at least 5 from the tokenless node, which retries every 200 ms); logged
  // once per source address: everything here comes from 127.0.0.1.
  const metrics = await (await fetch(`${api}/metrics`)).text();
  const counted = /^siplb_heartbeat_rejected_total\{reason="token"\} (\d+)$/m.exec(metrics);
  assert.ok(counted !== null, 'the metric is exposed');
  assert.ok(Number(counted[1]) >= 7, `rejected token count ${counted[1]}`);
  assert.match(metrics, /^siplb_heartbeat_rejected_total\{reason="invalid"\} 0$/m);
  const refusalLines = lb.jsonLogs().filter((l) => String(l.msg).startsWith('heartbeat request refused'));
  assert.equal(refusalLines.length, 1, 'one line a minute for 127.0.0.1');
  assert.equal(refusalLines[0].source, '127.0.0.1');
  // The token is in none of siplb's lines, and the admin API's config view hides it.
  assert.ok(!lb.logs().some((l) => l.includes(TOKEN)));
  const config = (await (await fetch(`${api}/api/v1/config`)).json()) as { config: Record<string, unknown> };
  assert.equal(config.config.heartbeatToken, '(hidden)');
  assert.ok(lb.jsonLogs().some((l) => String(l.heartbeat ?? '').endsWith('(token required)')), 'the ready line says a token is required');
});
