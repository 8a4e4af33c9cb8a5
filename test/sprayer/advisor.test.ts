// The advisor's rounds against scripted probes and a scripted nft: the table created from the
// first round, a balancer taken out after `fall` failed rounds and back after `rise`, panic when
// all are down, a foreign table refused, our leftover replaced, a failed update retried, the
// table deleted at stop.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { NftablesError } from '../../src/core/errors.ts';
import { Advisor, type AdvisorSettings, type NftControl } from '../../src/sprayer/advisor.ts';
import type { ProbeOutcome, ProbeTransport } from '../../src/sprayer/balancer-probe.ts';
import { bucketTable } from '../../src/sprayer/maglev.ts';
import { createScript, deleteScript, mapUpdateScript, type Endpoint } from '../../src/sprayer/nft-script.ts';
import type { TableOwner } from '../../src/sprayer/nftables.ts';
import { eventually } from '../helpers/wait.ts';

const A = '10.231.2.2:5060';
const B = '10.231.3.2:5060';
const C = '10.231.4.2:5060';
const ALL = [A, B, C];

const SETTINGS: AdvisorSettings = {
  dataPlane: {
    table: 'siplb_advisor', family: 'ip', vip: '10.231.0.10', port: 5060, buckets: 16, seed: 0,
    balancers: [{ host: '10.231.4.2', port: 5060 }, { host: '10.231.2.2', port: 5060 }, { host: '10.231.3.2', port: 5060 }],
  },
  intervalMs: 60, timeoutMs: 30, rise: 2, fall: 3, transports: ['udp', 'tcp'],
};

class FakeNft implements NftControl {
  scripts: string[] = [];
  ownerAnswer: TableOwner = 'absent';
  failNext = 0;
  async check(): Promise<void> {}
  async owner(): Promise<TableOwner> {
    return this.ownerAnswer;
  }
  async apply(script: string): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new NftablesError('failed', 'nft refused the script: Error: Could not process rule: No buffer space available');
    }
    this.scripts.push(script);
  }
}

/** Probes answered from a table: balancer → transport → outcome (default 200). */
class FakeProbes {
  readonly answers = new Map<string, Partial<Record<ProbeTransport, ProbeOutcome>>>();
  count = 0;
  readonly probe = async (target: Endpoint, transport: ProbeTransport): Promise<ProbeOutcome> => {
    this.count++;
    const name = `${target.host}:${target.port}`;
    return this.answers.get(name)?.[transport] ?? { ok: true, code: 200, reason: '200 OK', rttMs: 0.3 };
  };
  fail(name: string, transports: ProbeTransport[] = ['udp', 'tcp']): void {
    const a: Partial<Record<ProbeTransport, ProbeOutcome>> = {};
    for (const t of transports) a[t] = { ok: false, code: 503, reason: '503 Service Unavailable (no node available)', rttMs: 0.4 };
    this.answers.set(name, a);
  }
  heal(name: string): void {
    this.answers.delete(name);
  }
}

function logCapture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } }) };
}

function setup(t: TestContext, settings = SETTINGS): { advisor: Advisor; nft: FakeNft; probes: FakeProbes; lines: Array<Record<string, unknown>> } {
  const nft = new FakeNft();
  const probes = new FakeProbes();
  const { log, lines } = logCapture();
  const advisor = new Advisor(settings, { nft, log, probe: probes.probe });
  t.after(() => advisor.stop());
  return { advisor, nft, probes, lines };
}

describe('advisor', () => {
  test('the first round decides: the table is created with every balancer that passed, each with its buckets', async (t) => {
    const { advisor, nft, probes } = setup(t);
    probes.fail(C);
    await advisor.start();
    assert.equal(nft.scripts.length, 1);
    assert.equal(nft.scripts[0], createScript(SETTINGS.dataPlane, bucketTable(ALL, [A, B], 16).owners, false));
    const v = advisor.view();
    assert.equal(v.installed, true);
    assert.deepEqual(v.balancers.map((b) => [b.address, b.state, b.buckets]), [[A, 'up', 8], [B, 'up', 8], [C, 'down', 0]]);
    assert.equal(v.balancers[2].reason, 'udp: 503 Service Unavailable (no node available); tcp: 503 Service Unavailable (no node available)');
    assert.deepEqual(v.balancers[0].lastProbe.udp?.code, 200);
  });

  test('fall 3: out after three failed rounds, the map rewritten without it; rise 2: back after two passes', async (t) => {
    const { advisor, nft, probes, lines } = setup(t);
    await advisor.start();
    probes.fail(B, ['tcp']);
    await eventually('B down', 2000, () => advisor.view().balancers[1].state === 'down');
    const down = lines.find((l) => l.msg === 'balancer state' && l.balancer === B && l.to === 'down');
    assert.deepEqual([down?.from, down?.to, down?.reason], ['up', 'down', 'tcp: 503 Service Unavailable (no node available)']);
    assert.equal(advisor.view().balancers[1].consecutiveFail, 3);
    await eventually('map rewritten', 1000, () => nft.scripts.length === 2);
    assert.equal(nft.scripts[1], mapUpdateScript(SETTINGS.dataPlane, bucketTable(ALL, [A, C], 16).owners));
    probes.heal(B);
    await eventually('B back', 2000, () => advisor.view().balancers[1].state === 'up');
    await eventually('map rewritten again', 1000, () => nft.scripts.length === 3);
    assert.equal(nft.scripts[2], mapUpdateScript(SETTINGS.dataPlane, bucketTable(ALL, ALL, 16).owners));
    assert.ok(lines.some((l) => l.msg === 'balancer state' && l.balancer === B && l.from === 'down' && l.to === 'up'));
  });

  test('all down: panic, the VIP sprayed to all of them, logged at error; over when one is back', async (t) => {
    const { advisor, nft, probes, lines } = setup(t, { ...SETTINGS, fall: 1, rise: 1 });
    await advisor.start();
    for (const n of ALL) probes.fail(n);
    await eventually('panic', 2000, () => advisor.view().panic);
    // Every balancer down gives the full table, which is what the kernel already has: nothing to write.
    assert.equal(nft.scripts.length, 1);
    assert.equal(advisor.view().balancers.every((b) => b.state === 'down'), true);
    assert.deepEqual(advisor.view().map, bucketTable(ALL, ALL, 16).owners);
    const panicLine = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('PANIC'));
    assert.equal(panicLine?.level, 50, 'logged at error');
    probes.heal(A);
    await eventually('panic over', 2000, () => !advisor.view().panic);
    await eventually('map with A alone', 1000, () => nft.scripts.length === 2);
    assert.deepEqual(advisor.view().map, new Array(16).fill(A));
    assert.ok(lines.some((l) => l.msg === 'panic mode over: a balancer is up again'));
  });

  test('a foreign table of its name: refused before anything is written or probed', async (t) => {
    const { advisor, nft, probes } = setup(t);
    nft.ownerAnswer = 'foreign';
    await assert.rejects(advisor.start(), (err: unknown) => err instanceof NftablesError && err.kind === 'foreign-table' && err.exitCode === 2 &&
      /^nftables table ip siplb_advisor exists and is not siplb-advisor's/.test(err.message));
    assert.deepEqual([nft.scripts.length, probes.count], [0, 0]);
  });

  test('its own leftover table: replaced in the creating transaction, with a warning', async (t) => {
    const { advisor, nft, lines } = setup(t);
    nft.ownerAnswer = 'ours';
    await advisor.start();
    assert.match(nft.scripts[0], /^# .*\ndelete table ip siplb_advisor\ncreate table ip siplb_advisor /);
    assert.ok(lines.some((l) => l.level === 40 && l.msg === 'replacing the table a previous siplb-advisor left behind (it did not stop cleanly)'));
  });

  test('nft refusing the first table: start fails (exit 1)', async (t) => {
    const { advisor, nft } = setup(t);
    nft.failNext = 1;
    await assert.rejects(advisor.start(), (err: unknown) => err instanceof NftablesError && err.exitCode === 1 && /No buffer space/.test(err.message));
  });

  test('a failed map update is retried next round', async (t) => {
    const { advisor, nft, probes } = setup(t, { ...SETTINGS, fall: 1 });
    await advisor.start();
    nft.failNext = 1;
    probes.fail(C);
    await eventually('update failed', 2000, () => advisor.view().mapUpdates.failed === 1);
    assert.match(advisor.view().mapUpdates.lastError ?? '', /No buffer space/);
    await eventually('retried', 2000, () => nft.scripts.length === 2);
    assert.deepEqual(advisor.view().mapUpdates, { ok: 2, failed: 1, lastError: null });
    assert.equal(advisor.view().balancers.find((b) => b.address === C)?.buckets, 0);
  });

  test('stop: the table deleted, no more probes', async (t) => {
    const { advisor, nft, probes } = setup(t);
    await advisor.start();
    await advisor.stop();
    assert.equal(nft.scripts.at(-1), deleteScript(SETTINGS.dataPlane));
    assert.equal(advisor.view().installed, false);
    const n = probes.count;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(probes.count, n);
  });
});
