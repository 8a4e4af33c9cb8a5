// An HttpBalancer in this process over a real NodeRegistry of static nodes, as the wiring builds
// it (registry events reach the balancer the same way), listening on an ephemeral loopback port.
// The tests drive membership through the registry (drain, down, remove) and talk to the
// balancer with real clients.

import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { createAlgorithm } from '../../src/algorithms/catalog.ts';
import { CallTracker } from '../../src/cluster/call-tracker.ts';
import { nodeId, type SipNode } from '../../src/cluster/node.ts';
import { NodeRegistry } from '../../src/cluster/node-registry.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { HttpBalancer } from '../../src/http/http-balancer.ts';
import { readTlsFiles } from '../../src/transport/tls-files.ts';
import { MemoryStateStore } from '../../src/state/memory-store.ts';

export interface HttpNodeSpec {
  /** The node's HTTP port. */
  port: number;
  jvmRoute?: string;
  wsPort?: number;
  weight?: number;
}

export interface BalancerUnderTest {
  readonly base: string;
  readonly port: number;
  readonly balancer: HttpBalancer;
  readonly registry: NodeRegistry;
  /** The SIP nodes made of the specs, in order (ids 127.0.0.1:<fake SIP port>). */
  readonly nodes: SipNode[];
}

let nextSipPort = 41000;

/** Starts the balancer; everything is closed when the test ends. */
export async function startHttpBalancer(t: TestContext, specs: HttpNodeSpec[], cfg: Partial<Config> = {}): Promise<BalancerUnderTest> {
  const log = pino({ level: process.env['TEST_LOG'] === '1' ? 'debug' : 'silent' });
  const config: Config = { ...defaultConfig(), externalHost: '127.0.0.1', httpPort: 0, healthCheckInterval: 0, ...cfg };
  const nodes: SipNode[] = specs.map((s) => {
    // SIP ports that nothing uses: these nodes are only ever reached over HTTP here.
    const sipPort = nextSipPort++;
    const http = { port: s.port, ...(s.jvmRoute === undefined ? {} : { jvmRoute: s.jvmRoute }), ...(s.wsPort === undefined ? {} : { wsPort: s.wsPort }) };
    return { id: nodeId('127.0.0.1', sipPort), ip: '127.0.0.1', ports: { udp: sipPort }, weight: s.weight ?? 1, http };
  });
  // As the wiring does: the PEM files are read (and may fail) before anything starts.
  const tls = config.httpsPort !== null && config.tlsCertFile !== null && config.tlsKeyFile !== null
    ? readTlsFiles(config.tlsCertFile, config.tlsKeyFile, config.tlsCaFile) : null;
  const registry = new NodeRegistry({ nodeTimeoutMs: 60_000, extraServerNodes: [], rampUpPeriodMs: 0, rampUpPercent: 0, log });
  const store = new MemoryStateStore();
  const calls = new CallTracker(60_000);
  const algorithm = await createAlgorithm({ config, store, loads: calls, log });
  registry.addStatic(nodes);
  const balancer = new HttpBalancer({
    config, tls, algorithm, cluster: () => registry.snapshot(), knownNodes: () => registry.list().map((e) => e.node), log,
  });
  // The same listener as src/wiring/balancer.ts.
  registry.onEvent((e) => {
    const snap = registry.snapshot();
    if (e.type === 'removed') balancer.nodeRemoved(e.nodeId);
    else if (e.type === 'added' || e.type === 'replaced' || (e.type === 'state' && snap.stateOf(e.nodeId) === 'active')) balancer.nodeRecovered(e.nodeId, e.type);
  });
  t.after(async () => {
    await balancer.close();
    algorithm.close();
    calls.close();
    await store.close();
  });
  await balancer.start();
  const port = balancer.addresses().http?.port ?? balancer.addresses().https?.port ?? 0;
  return { base: `http://127.0.0.1:${port}`, port, balancer, registry, nodes };
}
