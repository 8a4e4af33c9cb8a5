// Smooth weighted round robin: exact pick sequences and long-run ratios.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SmoothWeightedRoundRobin } from '../../src/algorithms/smooth-round-robin.ts';
import type { SipNode } from '../../src/cluster/node.ts';

function nodes(...weights: number[]): SipNode[] {
  return weights.map((weight, i) => ({ id: String.fromCharCode(65 + i), ip: `10.0.0.${i + 1}`, ports: { udp: 5080 }, weight }));
}

function sequence(ns: SipNode[], picks: number): string {
  const rr = new SmoothWeightedRoundRobin();
  let out = '';
  for (let i = 0; i < picks; i++) out += rr.pick(ns, (n) => n.weight)?.id ?? '-';
  return out;
}

describe('SmoothWeightedRoundRobin', () => {
  const SEQUENCES: { weights: number[]; picks: number; expected: string }[] = [
    { weights: [1, 1], picks: 6, expected: 'ABABAB' },
    { weights: [1, 1, 1], picks: 6, expected: 'ABCABC' },
    { weights: [5, 1, 1], picks: 7, expected: 'AABACAA' },
    { weights: [2, 1], picks: 6, expected: 'ABAABA' },
    { weights: [1, 0], picks: 3, expected: 'AAA' },
    { weights: [0, 0], picks: 2, expected: '--' },
  ];
  for (const c of SEQUENCES) {
    test(`weights ${c.weights.join(':')} -> ${c.expected}`, () => assert.equal(sequence(nodes(...c.weights), c.picks), c.expected));
  }

  test('fractional weights (ramp-up 0.25 against 1) give a 1:4 share', () => {
    const ns = nodes(1, 0.25);
    const rr = new SmoothWeightedRoundRobin();
    const count = { A: 0, B: 0 };
    for (let i = 0; i < 1000; i++) count[rr.pick(ns, (n) => n.weight)!.id as 'A' | 'B']++;
    assert.equal(count.A, 800);
    assert.equal(count.B, 200);
  });

  test('empty node list -> null', () => assert.equal(new SmoothWeightedRoundRobin().pick([], () => 1), null));
});
