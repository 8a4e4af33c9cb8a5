// End to end, in network namespaces: sipp calls to a virtual IP that siplb-advisor sprays over
// three siplb balancers (nftables in the sprayer's namespace), which share one redis-server and
// two demo nodes. The calls spread over the balancers, all complete, and keep completing when one
// balancer is killed (SIGKILL) or stopped gracefully under load. Needs root and nftables (the
// setup installs nftables, iproute2 and curl with apt-get when missing) and fails with one line
// where namespaces cannot be made.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_IP, SIP_PORT, SprayerBed, VIP } from './harness/sprayer-bed.ts';
import { describeResult, runSippUac, startSippUac, type SippResult, type SippTransport } from './harness/sipp.ts';

const TIMING = { intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 2 } as const;
/** interval × fall + the probe timeout: the advisor has taken a dead balancer out by then. */
const DETECTION_MS = TIMING.intervalMs * TIMING.fall + TIMING.timeoutMs;

async function startedCounts(bed: SprayerBed): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) out.push((await bed.callsStarted(i)) ?? 0);
  return out;
}

function sippCalls(transport: SippTransport, localPort: number, rate: number, calls: number, holdMs: number, netns: string) {
  return {
    scenario: 'uac' as const, transport, localIp: CLIENT_IP, localPort, remote: `${VIP}:${SIP_PORT}`,
    rate, calls, timeoutS: Math.ceil(calls / rate + holdMs / 1000) + 40, netns,
    extraArgs: ['-d', String(holdMs)], traceErrors: true,
  };
}

function assertSpread(label: string, deltas: number[], total: number): void {
  const third = total / 3;
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(deltas[i] - third) <= 0.15 * third,
      `${label}: balancer b${i + 1} started ${deltas[i]} of ${total} calls, outside ${Math.round(0.85 * third)}..${Math.round(1.15 * third)} (all: ${deltas.join('/')})`);
  }
}

describe('three balancers behind siplb-advisor (network namespaces, nftables)', { concurrency: false }, () => {
  let bed: SprayerBed;

  before(async () => {
    // TCP first: a TCP client's connection lives on one balancer, so the nodes must answer that
    // balancer (its own address in Via); the UDP cases then name the VIP in Via.
    bed = await SprayerBed.start(TIMING, { viaVip: false });
  });

  after(async () => {
    await bed?.close();
  });

  /** 1500 calls, each from its own source port or connection: all complete, spread ±15 %. */
  async function spreadRun(transport: 'un' | 'tn', label: string): Promise<void> {
    const before0 = await startedCounts(bed);
    const r = await runSippUac(sippCalls(transport, 5070, 150, 1500, 0, bed.net.ns('c')));
    assert.equal(r.stats.failed, 0, describeResult(`sipp ${label}`, r));
    assert.equal(r.stats.successful, 1500, describeResult(`sipp ${label}`, r));
    const deltas = (await startedCounts(bed)).map((n, i) => n - before0[i]);
    console.log(`${label} spread over b1/b2/b3: ${deltas.join('/')} of 1500`);
    assert.equal(deltas.reduce((x, y) => x + y, 0), 1500);
    assertSpread(label, deltas, 1500);
  }

  test('TCP: 1500 calls from as many connections spread over the three balancers within ±15 % and all complete', async () => {
    await bed.waitForNodes();
    await spreadRun('tn', 'TCP');
  });

  test('UDP: 1500 calls from as many source ports spread within ±15 % and all complete', async () => {
    await bed.restartBalancers({ viaVip: true, announceMs: DETECTION_MS + 500 });
    await spreadRun('un', 'UDP');
  });

  test('SIGKILL of a balancer under load: taken out within interval × fall, 0 failed calls among those established before', async () => {
    const ns = bed.net.ns('c');
    // Calls established before the kill: 400 calls at 100/s, each held 5 s, all answered by the
    // time of the kill; their BYEs start right after it, and about a third of those go to the
    // dead balancer's buckets before the advisor has moved them (sipp retransmits them).
    const held = await startSippUac(sippCalls('un', 5071, 100, 400, 5000, ns));
    // New calls through the kill and after it.
    const fresh = await startSippUac(sippCalls('un', 5072, 50, 600, 1000, ns));
    await new Promise((r) => setTimeout(r, 4800));
    const victim = bed.balancers[1];
    assert.ok(victim !== null);
    const killedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    const detectedMs = await bed.waitForAdvisor('b2 taken out', 10_000, (s) => s.some((b) => b.address.startsWith('10.241.2.12') && b.state !== 'up'));
    console.log(`advisor took the killed balancer out ${detectedMs} ms after the kill (bound: interval × fall + timeout = ${DETECTION_MS} ms)`);
    assert.ok(detectedMs <= DETECTION_MS + 1000, `detection took ${detectedMs} ms`);
    const [h, f]: SippResult[] = await Promise.all([held.done, fresh.done]);
    console.log(`established before the kill: ${h.stats.successful} completed, ${h.stats.failed} failed, ${h.stats.retransmissions} retransmissions; ` +
      `new calls during and after the kill: ${f.stats.successful} completed, ${f.stats.failed} failed ` +
      `(${Date.now() - killedAt} ms after the kill)`);
    assert.equal(h.stats.failed, 0, describeResult('calls established before the kill', h));
    assert.equal(h.stats.successful, 400, describeResult('calls established before the kill', h));
    assert.ok(h.stats.retransmissions > 0, 'some BYEs of established calls reached the dead balancer and were carried by another');
    // New calls may fail only within the detection window: at 50 calls/s that bounds them.
    assert.ok(f.stats.failed <= Math.ceil((50 * (detectedMs + 1000)) / 1000), describeResult('new calls', f));
    await victim.stop();
    bed.balancers[1] = null;
    await bed.startBalancer(1);
    await bed.waitForNodes();
    await bed.waitForAdvisor('b2 back', 10_000, (s) => s.every((b) => b.state === 'up'));
  });

  test('graceful stop of a balancer under load (shutdownAnnounceTime): 0 failed calls, it exits 0', async () => {
    const ns = bed.net.ns('c');
    const load = await startSippUac(sippCalls('un', 5073, 80, 800, 2000, ns));
    await new Promise((r) => setTimeout(r, 3000));
    const leaving = bed.balancers[2];
    assert.ok(leaving !== null);
    const stopAt = Date.now();
    process.kill(leaving.pid, 'SIGTERM');
    const outMs = await bed.waitForAdvisor('b3 taken out', 10_000, (s) => s.some((b) => b.address.startsWith('10.241.2.13') && b.state !== 'up'));
    const code = await leaving.exitCode;
    const exitedMs = Date.now() - stopAt;
    const r = await load.done;
    console.log(`graceful stop: advisor took b3 out after ${outMs} ms, b3 exited ${code} after ${exitedMs} ms; ` +
      `${r.stats.successful} calls completed, ${r.stats.failed} failed`);
    assert.equal(code, 0);
    assert.equal(r.stats.failed, 0, describeResult('calls through a graceful stop', r));
    assert.equal(r.stats.successful, 800, describeResult('calls through a graceful stop', r));
  });
});
