// End to end: the real siplb command with httpPort and static nodes that have an HTTP side
// (`nodes=host:sip;http=port;jvmRoute=name`). Tomcat-like HTTP servers as the nodes' HTTP side,
// silent UDP sockets as their SIP side (an open port passes siplb's OPTIONS probes, a closed one
// fails them). Proves through the real process: the start-up line names the HTTP listener,
// requests stick to their session's node, and a node killed outright loses its sessions to the
// survivor once the probes see it gone (a POST with its old cookie then lands on the survivor,
// where before it would have been refused, since a POST is never replayed). Also: a missing
// tlsCertFile stops start-up with exit code 2 naming the key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { runSiplbExpectingFailure, startSiplb } from './harness/siplb.ts';
import { startTomcatNode, type NodeAnswer } from '../helpers/tomcat-node.ts';
import { eventually } from '../helpers/wait.ts';

async function silentSipPort(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(port, '127.0.0.1', resolve));
  return s;
}

test('siplb with httpPort: sticky sessions, and a killed node\'s sessions move to the survivor', { timeout: 20_000 }, async (t) => {
  const ports = await allocatePorts(7);
  t.after(() => releasePorts(ports));
  const [sipPort, heartbeatPort, httpPort, sipA, sipB, httpA, httpB] = ports;
  const nodeA = await startTomcatNode('node1', httpA);
  const nodeB = await startTomcatNode('node2', httpB);
  t.after(() => nodeA.kill());
  t.after(() => nodeB.kill());
  const udpA = await silentSipPort(sipA);
  const udpB = await silentSipPort(sipB);
  t.after(() => udpB.close());
  const lb = await startSiplb({
    host: '127.0.0.1', externalPort: String(sipPort), heartbeatPort: String(heartbeatPort), httpPort: String(httpPort),
    nodes: `127.0.0.1:${sipA};http=${httpA};jvmRoute=node1,127.0.0.1:${sipB};http=${httpB};jvmRoute=node2`,
    healthCheckInterval: '200', healthCheckTimeout: '150', healthCheckFailures: '1',
  }, { logLevel: 'info' });
  t.after(() => lb.stop());
  const ready = lb.jsonLogs().find((l) => l['msg'] === 'siplb ready');
  assert.equal(ready?.['http'], `127.0.0.1:${httpPort}`);

  const agent = new Agent();
  t.after(() => agent.close());
  const base = `http://127.0.0.1:${httpPort}`;
  const send = async (path: string, cookie?: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; answer: NodeAnswer | null; cookie?: string }> => {
    const res = await request(`${base}${path}`, {
      dispatcher: agent, method, headers: cookie === undefined ? {} : { cookie }, body: method === 'POST' ? 'x=1' : undefined,
      headersTimeout: 3000, bodyTimeout: 3000,
    });
    const text = await res.body.text();
    const sc = res.headers['set-cookie'];
    const set = (Array.isArray(sc) ? sc[0] : sc)?.split(';')[0];
    return { status: res.statusCode, answer: res.statusCode === 200 ? JSON.parse(text) as NodeAnswer : null, ...(set === undefined ? {} : { cookie: set }) };
  };

  // Two sessions, one per node (round robin), each sticking to its node.
  const s1 = await send('/app');
  const s2 = await send('/app');
  assert.deepEqual([s1.answer?.node, s2.answer?.node].sort(), ['node1', 'node2']);
  for (const s of [s1, s2]) {
    for (let i = 0; i < 5; i++) {
      const r = await send(`/app/page${i}`, s.cookie);
      assert.equal(r.answer?.node, s.answer?.node);
      assert.equal(r.answer?.newSession, false);
    }
  }

  // node1 dies: its HTTP server and its SIP port go.
  const onA = s1.answer?.node === 'node1' ? s1 : s2;
  await nodeA.kill();
  udpA.close();
  await eventually('siplb to take node1 down', 5000, () => lb.jsonLogs().some((l) => l['msg'] === 'node state' && l['node'] === `127.0.0.1:${sipA}` && String(l['detail']).startsWith('down')));
  const moved = await send('/app/order', onA.cookie, 'POST');
  assert.equal(moved.status, 200, 'a POST of a dead node\'s session goes to the survivor');
  assert.equal(moved.answer?.node, 'node2');
  assert.equal(moved.answer?.newSession, true);
  const after = await send('/app', moved.cookie);
  assert.equal(after.answer?.node, 'node2');
  assert.equal(after.answer?.newSession, false);
});

test('a tlsCertFile that does not exist stops siplb with exit code 2 naming the key', { timeout: 15_000 }, async (t) => {
  const ports = await allocatePorts(3);
  t.after(() => releasePorts(ports));
  const [sipPort, heartbeatPort, httpsPort] = ports;
  const failure = await runSiplbExpectingFailure([
    'host=127.0.0.1', `externalPort=${sipPort}`, `heartbeatPort=${heartbeatPort}`, `httpsPort=${httpsPort}`,
    'tlsCertFile=/nonexistent/siplb/cert.pem', 'tlsKeyFile=/nonexistent/siplb/key.pem', '',
  ].join('\n'));
  assert.equal(failure.code, 2, failure.stderr);
  assert.match(failure.stderr, /tlsCertFile/);
  assert.match(failure.stderr, /\/nonexistent\/siplb\/cert\.pem/);
});

test('SIGHUP reloads the HTTPS certificate for new connections; a bad file is reported and the old one kept', { timeout: 20_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-e2e-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const make = (cn: string): { cert: string; key: string } => {
    const cert = join(dir, `${cn}.pem`);
    const key = join(dir, `${cn}.key`);
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`], { stdio: 'ignore' });
    } catch {
      assert.fail('openssl is needed to make test certificates: apt-get install openssl');
    }
    return { cert, key };
  };
  const first = make('first');
  const second = make('second');
  const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const ports = await allocatePorts(3);
  t.after(() => releasePorts(ports));
  const [sipPort, heartbeatPort, httpsPort] = ports;
  const lb = await startSiplb({
    host: '127.0.0.1', externalPort: String(sipPort), heartbeatPort: String(heartbeatPort), httpsPort: String(httpsPort),
    tlsCertFile: live.cert, tlsKeyFile: live.key, healthCheckInterval: '0',
  }, { logLevel: 'info' });
  t.after(() => lb.stop());
  const peerName = async (): Promise<string> => {
    const socket = tlsConnect({ host: '127.0.0.1', port: httpsPort, rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
      return String(socket.getPeerCertificate().subject?.CN);
    } finally {
      socket.destroy();
    }
  };
  const logged = (msg: string): number => lb.jsonLogs().filter((l) => l['msg'] === msg).length;
  assert.equal(await peerName(), 'first');

  copyFileSync(second.cert, live.cert);
  copyFileSync(second.key, live.key);
  process.kill(lb.pid, 'SIGHUP');
  await eventually('"TLS certificates reloaded" logged', 5_000, () => logged('TLS certificates reloaded') === 1);
  assert.equal(await peerName(), 'second');

  // A key that does not belong to the certificate: refused, reported, and the listener keeps "second".
  copyFileSync(first.key, live.key);
  process.kill(lb.pid, 'SIGHUP');
  await eventually('"TLS certificates not reloaded" logged', 5_000, () => logged('TLS certificates not reloaded; the listeners keep the old ones') === 1);
  assert.equal(await peerName(), 'second');
  assert.equal(lb.hasExited(), false);
});
