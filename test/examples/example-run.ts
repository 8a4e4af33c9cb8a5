// What the tests of the sample configurations (examples/) and of the installed package share: an
// example file run as it is written except for its port numbers, which are moved to ports this
// test reserved (the suite runs files in parallel, and 5060, 2006 or 2610 may be anyone's), and a
// handful of sipp calls through the balancer it describes, answered by two sipp UASes.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describeResult, runSippUac, SCENARIOS, startSippUas, type SippResult, type SippUas } from '../e2e/harness/sipp.ts';

export interface ExampleCopy {
  readonly path: string;
  readonly text: string;
  remove(): void;
}

/**
 * A copy of `example` in a temporary directory where each port number of `ports` (from -> to) is
 * replaced in the values, and each key of `set` is given its value (replaced where the file has
 * the key, added where it does not). Fails when a port of `ports` is not in the file, so a test
 * cannot go on moving a port the example no longer has.
 */
export function exampleCopy(example: string, ports: Record<number, number>, set: Record<string, string> = {}): ExampleCopy {
  const original = readFileSync(example, 'utf8');
  const seen = new Set<string>();
  const froms = Object.keys(ports);
  const portPattern = new RegExp(`(?<![\\d.])(${froms.join('|')})(?!\\d)`, 'g');
  const pending = new Map(Object.entries(set));
  const lines = original.split('\n').map((line) => {
    if (/^\s*([#!]|$)/.test(line)) return line;
    const key = /^\s*([^=:\s]+)\s*[=:]/.exec(line)?.[1];
    if (key !== undefined && pending.has(key)) {
      const value = pending.get(key);
      pending.delete(key);
      return `${key}=${value}`;
    }
    if (froms.length === 0) return line;
    return line.replace(portPattern, (from: string) => {
      seen.add(from);
      return String(ports[Number(from)]);
    });
  });
  for (const from of froms) assert.ok(seen.has(from), `${example}: port ${from} not found in its values`);
  for (const [key, value] of pending) lines.push(`${key}=${value}`);
  const dir = mkdtempSync(join(tmpdir(), 'siplb-example-'));
  const path = join(dir, basename(example));
  const text = lines.join('\n');
  writeFileSync(path, text);
  return { path, text, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** sipp UASes (uas-rr: they echo the Record-Route) on `ports`, UDP. */
export async function startSippNodes(ports: number[]): Promise<SippUas[]> {
  const uases: SippUas[] = [];
  try {
    for (const port of ports) uases.push(await startSippUas({ scenario: SCENARIOS.uasRr, transport: 'u1', localPort: port, timeoutS: 60, traceErrors: true }));
  } catch (err) {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    throw err;
  }
  return uases;
}

/**
 * `calls` sipp calls (uac-rr over UDP: ACK and BYE follow the balancer's Record-Route) from
 * 127.0.0.1:`uacPort` to `remote`, then the UASes stopped; asserts that every call completed,
 * that the nodes received each call once and that every node took some.
 */
export async function assertCallsThrough(remote: string, uacPort: number, uases: SippUas[], calls: number, log: () => string[]): Promise<SippResult> {
  const uac = await runSippUac({
    scenario: SCENARIOS.uacRr, transport: 'u1', localPort: uacPort, remote, rate: 20, calls, timeoutS: 30, traceErrors: true,
  });
  const nodes = await Promise.all(uases.map((u) => u.stop()));
  const context = (): string => [
    describeResult('UAC', uac), ...nodes.map((n, i) => describeResult(`UAS ${uases[i].port}`, n)),
    `siplb log (tail):\n${log().slice(-30).join('\n')}`,
  ].join('\n');
  assert.equal(uac.stats.successful, calls, `successful calls\n${context()}`);
  assert.equal(uac.stats.failed, 0, `failed calls\n${context()}`);
  assert.equal(nodes.reduce((n, r) => n + r.stats.incoming, 0), calls, `calls received by the nodes\n${context()}`);
  for (const n of nodes) assert.ok(n.stats.incoming > 0 && n.stats.successful === n.stats.incoming, `a node's calls\n${context()}`);
  return uac;
}
