// The heartbeat protocol as both ends use it: what the node agent sends, the balancer reads the
// same way, and what the balancer answers, the agent reads the same way. Table-driven over the
// messages of docs/heartbeat-protocol.md; the HTTP side is tested in cluster/heartbeat-server.test.ts
// and node-agent/agent.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  answerBody, authorization, bearerToken, nodeInfoProblem, parseRegistration, parseRequest, parseSessionId, readAnswer, REQUEST_KINDS, requestBody,
  tokenProblem, type NodeInfo,
} from '../../src/heartbeat/protocol.ts';

describe('what the agent sends, the balancer reads', () => {
  const nodes: { name: string; node: NodeInfo; ports: Record<string, number> }[] = [
    { name: 'UDP only', node: { ip: '10.0.0.11', udpPort: 5080 }, ports: { udp: 5080 } },
    { name: 'UDP and TCP, version, jvmRoute, HTTP ports', node: { ip: '10.0.0.12', udpPort: 5080, tcpPort: 5081, version: '2.1', jvmRoute: 'node2', httpPort: 8080, sslPort: 8443 }, ports: { udp: 5080, tcp: 5081 } },
    { name: 'TCP only, 0 ports left out', node: { ip: '10.0.0.13', udpPort: 0, tcpPort: 5090, wsPort: 0 }, ports: { tcp: 5090 } },
    { name: 'IPv6', node: { ip: 'FD00::1', udpPort: 5060, hostName: 'n6' }, ports: { udp: 5060 } },
  ];
  for (const c of nodes) {
    test(`start: ${c.name}`, () => {
      assert.equal(nodeInfoProblem(c.node), null);
      const req = parseRequest(JSON.parse(requestBody('start', c.node, 'sess-42')));
      assert.ok(typeof req !== 'string', String(req));
      assert.equal(req.kind, 'start');
      const reg = parseRegistration(req.fields);
      assert.ok(typeof reg !== 'string', String(reg));
      assert.equal(reg.ip, c.node.ip.toLowerCase());
      assert.deepEqual(reg.ports, c.ports);
      assert.equal(reg.sessionId, 'sess-42');
      assert.equal(reg.version, c.node.version ?? '0');
      assert.equal(reg.jvmRoute, c.node.jvmRoute);
      assert.equal(reg.httpPort, c.node.httpPort);
      assert.equal(reg.sslPort, c.node.sslPort);
      assert.deepEqual(reg.extra, {});
    });
  }

  for (const kind of REQUEST_KINDS.filter((k) => k !== 'start')) {
    test(`${kind}: carries the session only`, () => {
      const body = JSON.parse(requestBody(kind, { ip: '10.0.0.11', udpPort: 5080 }, 'sess-7'));
      assert.deepEqual(body, { [kind]: { sessionId: 'sess-7' } });
      const req = parseRequest(body);
      assert.ok(typeof req !== 'string');
      assert.equal(parseSessionId(kind, req.fields), 'sess-7');
    });
  }
});

describe('what the balancer answers, the agent reads', () => {
  for (const kind of REQUEST_KINDS) {
    for (const known of [true, false]) {
      test(`${kind}, session ${known ? 'known' : 'unknown'}`, () => {
        const body = Buffer.from(JSON.stringify(answerBody(kind, known)));
        assert.deepEqual(readAnswer(kind, 200, body), { kind: known ? 'ok' : 'unknown-session' });
      });
    }
  }

  test('a heartbeat for an unknown session also says to send start (Restcomm shape)', () => {
    assert.deepEqual(answerBody('heartbeat', false), { heartbeat: 'UNKNOWN_SESSION', send: 'start' });
  });

  const misses: { name: string; status: number | undefined; body: string; reason: RegExp }[] = [
    { name: '400 with the balancer\'s reason', status: 400, body: '{"error":"\\"start.ip\\" must be an IP address literal"}', reason: /^HTTP 400: "start.ip" must be/ },
    { name: '500 without a body', status: 500, body: '', reason: /^HTTP 500$/ },
    { name: 'not JSON', status: 200, body: '<html>', reason: /not a JSON object/ },
    { name: 'answer for another kind', status: 200, body: '{"stop":"OK"}', reason: /^unexpected answer/ },
  ];
  for (const c of misses) {
    test(`a miss: ${c.name}`, () => {
      const r = readAnswer('heartbeat', c.status, Buffer.from(c.body));
      assert.equal(r.kind, 'miss');
      assert.match((r as { reason: string }).reason, c.reason);
    });
  }
});

describe('requests the balancer refuses, with the reason', () => {
  const bad: { name: string; body: unknown; reason: RegExp }[] = [
    { name: 'an array', body: [], reason: /must be a JSON object/ },
    { name: 'two keys', body: { start: {}, stop: {} }, reason: /exactly one key/ },
    { name: 'an unknown verb', body: { reboot: {} }, reason: /unknown request "reboot"/ },
    { name: 'a verb without an object', body: { heartbeat: 'sess-1' }, reason: /"heartbeat" must hold a JSON object/ },
  ];
  for (const c of bad) {
    test(c.name, () => {
      const r = parseRequest(c.body);
      assert.equal(typeof r, 'string');
      assert.match(r as string, c.reason);
    });
  }

  test('a session id that is empty or longer than 256 characters', () => {
    for (const sessionId of ['', 'x'.repeat(257), 7]) {
      const r = parseSessionId('stop', { sessionId });
      assert.equal(typeof r, 'object');
    }
  });

  test('a node description the balancers would refuse is caught on the node side, naming the field', () => {
    assert.deepEqual(nodeInfoProblem({ ip: 'localhost', udpPort: 5080 })?.field, 'ip');
    assert.deepEqual(nodeInfoProblem({ ip: '10.0.0.1', udpPort: 70000 })?.field, 'udpPort');
    assert.deepEqual(nodeInfoProblem({ ip: '10.0.0.1', httpPort: 8080 })?.reason, 'a node needs a SIP port (udpPort, tcpPort, tlsPort, wsPort or wssPort)');
  });
});

describe('heartbeat token: the header both ends use, and a 401 read by the node', () => {
  const headers: { header: string | undefined; token: string | null }[] = [
    { header: undefined, token: null },
    { header: '', token: null },
    { header: 'Bearer abc', token: 'abc' },
    { header: 'bearer abc', token: 'abc' },
    { header: 'Bearer  abc ', token: 'abc' },
    { header: 'Bearer a b', token: null },
    { header: 'Basic abc', token: null },
    { header: 'abc', token: null },
  ];
  for (const c of headers) {
    test(`bearerToken(${JSON.stringify(c.header)}) -> ${JSON.stringify(c.token)}`, () => assert.equal(bearerToken(c.header), c.token));
  }
  test('authorization() is what bearerToken() reads back', () => {
    assert.equal(bearerToken(authorization('0123456789abcdef-+/=')), '0123456789abcdef-+/=');
  });
  const tokens: { token: string; problem: RegExp | null }[] = [
    { token: '0123456789abcdef', problem: null },
    { token: '0123456789abcde', problem: /at least 16/ },
    { token: '0123456789 abcdef', problem: /visible ASCII/ },
    { token: '0123456789abcdeé', problem: /visible ASCII/ },
  ];
  for (const c of tokens) {
    test(`tokenProblem(${JSON.stringify(c.token)})`, () => {
      const p = tokenProblem(c.token);
      if (c.problem === null) assert.equal(p, null);
      else assert.match(p ?? '', c.problem);
    });
  }
  test('readAnswer: a 401 is a miss marked unauthorized, with the balancer\'s reason; a 400 is not marked', () => {
    assert.deepEqual(readAnswer('start', 401, Buffer.from('{"error":"wrong heartbeat token"}')),
      { kind: 'miss', reason: 'HTTP 401: wrong heartbeat token', unauthorized: true });
    assert.deepEqual(readAnswer('start', 400, Buffer.from('{"error":"bad"}')), { kind: 'miss', reason: 'HTTP 400: bad' });
  });
});
