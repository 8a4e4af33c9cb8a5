// Static nodes: `nodes=` entries and, with performanceTestingMode, extraServerNodes entries (UDP
// and TCP on the entry's port, 5060 without one), resolved and merged into one node per ip:port.
// Then, over a real NodeRegistry: such nodes are active from the start and never expire.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { pino } from 'pino';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';
import { nodeId } from '../../src/cluster/node.ts';
import { performanceTestingNodes, resolveStaticNodes } from '../../src/cluster/static-nodes.ts';
import type { HostPort, StaticNodeSpec } from '../../src/config/types.ts';
import { ConfigError } from '../../src/core/errors.ts';

const log = pino({ level: 'silent' });

describe('performanceTestingNodes', () => {
  const cases: { name: string; extra: HostPort[]; specs: StaticNodeSpec[] }[] = [
    { name: 'none', extra: [], specs: [] },
    {
      name: 'host:port -> UDP and TCP on that port',
      extra: [{ host: '10.0.0.1', port: 5080 }],
      specs: [{ host: '10.0.0.1', port: 5080, transport: 'udp', weight: 1 }, { host: '10.0.0.1', port: 5080, transport: 'tcp', weight: 1 }],
    },
    {
      name: 'host alone -> 5060 (Restcomm)',
      extra: [{ host: 'sip.example', port: null }],
      specs: [{ host: 'sip.example', port: 5060, transport: 'udp', weight: 1 }, { host: 'sip.example', port: 5060, transport: 'tcp', weight: 1 }],
    },
    {
      name: 'IPv6',
      extra: [{ host: '::1', port: 5070 }],
      specs: [{ host: '::1', port: 5070, transport: 'udp', weight: 1 }, { host: '::1', port: 5070, transport: 'tcp', weight: 1 }],
    },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(performanceTestingNodes(c.extra), c.specs));
  }
});

describe('resolveStaticNodes', () => {
  const cases: { name: string; nodes: StaticNodeSpec[]; extra: HostPort[]; want: { id: string; ip: string; ports: object; weight: number }[] }[] = [
    {
      name: 'extraServerNodes are not nodes unless given',
      nodes: [{ host: '127.0.0.1', port: 5080, transport: 'udp', weight: 2 }],
      extra: [],
      want: [{ id: '127.0.0.1:5080', ip: '127.0.0.1', ports: { udp: 5080 }, weight: 2 }],
    },
    {
      name: 'two performance nodes, one without a port',
      nodes: [],
      extra: [{ host: '127.0.0.1', port: 5081 }, { host: '127.0.0.2', port: null }],
      want: [
        { id: '127.0.0.1:5081', ip: '127.0.0.1', ports: { udp: 5081, tcp: 5081 }, weight: 1 },
        { id: '127.0.0.2:5060', ip: '127.0.0.2', ports: { udp: 5060, tcp: 5060 }, weight: 1 },
      ],
    },
    {
      name: 'the same ip:port in both lists is one node, with the weight of nodes=',
      nodes: [{ host: '127.0.0.1', port: 5080, transport: 'udp', weight: 3 }],
      extra: [{ host: '127.0.0.1', port: 5080 }],
      want: [{ id: '127.0.0.1:5080', ip: '127.0.0.1', ports: { udp: 5080, tcp: 5080 }, weight: 3 }],
    },
    {
      name: 'IPv6 literal',
      nodes: [],
      extra: [{ host: '::1', port: 5083 }],
      want: [{ id: '[::1]:5083', ip: '::1', ports: { udp: 5083, tcp: 5083 }, weight: 1 }],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      assert.deepEqual(await resolveStaticNodes(c.nodes, c.extra), c.want);
    });
  }

  test('a host name is resolved once, so its UDP and TCP land on one node', async () => {
    const { address } = await lookup('localhost');
    const id = nodeId(address, 5082);
    assert.deepEqual(await resolveStaticNodes([], [{ host: 'localhost', port: 5082 }]), [{ id, ip: address, ports: { udp: 5082, tcp: 5082 }, weight: 1 }]);
  });

  test('an unresolvable extraServerNodes host names that key', { timeout: 10_000 }, async () => {
    await assert.rejects(resolveStaticNodes([], [{ host: 'no-such-host.invalid', port: 5060 }]), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, 'extraServerNodes');
      assert.equal(err.value, 'no-such-host.invalid:5060');
      return true;
    });
  });
});

describe('performance nodes in the registry', () => {
  test('active at once, never expire, reachable and recognised on their port over UDP and TCP', async () => {
    let t = 1_000_000;
    const registry = new NodeRegistry({
      nodeTimeoutMs: 1000, extraServerNodes: [{ host: '127.0.0.1', port: 5081 }], rampUpPeriodMs: 0, rampUpPercent: 0, log, now: () => t,
    });
    registry.addStatic(await resolveStaticNodes([], [{ host: '127.0.0.1', port: 5081 }, { host: '127.0.0.1', port: 5082 }]));
    assert.deepEqual(registry.snapshot().selectable.map((n) => n.id), ['127.0.0.1:5081', '127.0.0.1:5082']);
    t += 3_600_000;
    assert.deepEqual(registry.expire(), []);
    const snap = registry.snapshot();
    assert.deepEqual(snap.selectable.map((n) => n.id), ['127.0.0.1:5081', '127.0.0.1:5082']);
    assert.equal(snap.nodeAt('127.0.0.1', 5082)?.id, '127.0.0.1:5082');
    assert.equal(snap.isClusterAddress('127.0.0.1', 5082), true);
    assert.deepEqual(snap.get('127.0.0.1:5082')?.ports, { udp: 5082, tcp: 5082 });
  });
});
