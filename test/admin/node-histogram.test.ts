// NodeHistogram exports what prom-client's Histogram with the same name, help, label and buckets
// exports for the same observations, line for line, in both exposition formats.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { NodeHistogram } from '../../src/admin/node-histogram.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const OBSERVATIONS: [string, number][] = [
  ['node-a', 0.0004], ['node-a', 0.001], ['node-a', 0.0011], ['node-b', 0.3], ['node-a', 59.9],
  ['node-b', 60], ['node-b', 61], ['node "c"\\', 0.02], ['node-a', 0], ['node-b', 1e-9],
];

function pair(contentType?: string): { ours: NodeHistogram; theirs: Histogram<'node'>; a: Registry; b: Registry } {
  const a = new Registry();
  const b = new Registry();
  if (contentType !== undefined) {
    a.setContentType(contentType as never);
    b.setContentType(contentType as never);
  }
  const spec = { name: 'x_seconds', help: 'Help with \\ and "quotes".' };
  const ours = new NodeHistogram({ ...spec, labelName: 'node', buckets: BUCKETS, registers: [a] });
  const theirs = new Histogram({ ...spec, labelNames: ['node'], buckets: BUCKETS, registers: [b] });
  return { ours, theirs, a, b };
}

for (const format of [undefined, Registry.OPENMETRICS_CONTENT_TYPE]) {
  test(`the same exposition as prom-client's Histogram (${format ?? 'Prometheus text'})`, async () => {
    const { ours, theirs, a, b } = pair(format);
    assert.equal(await a.metrics(), await b.metrics(), 'empty');
    for (const [node, v] of OBSERVATIONS) {
      ours.observe(node, v);
      theirs.observe({ node }, v);
    }
    assert.equal(await a.metrics(), await b.metrics());
    ours.remove('node-b');
    theirs.remove({ node: 'node-b' });
    assert.equal(await a.metrics(), await b.metrics(), 'after removing a series');
    a.resetMetrics();
    b.resetMetrics();
    assert.equal(await a.metrics(), await b.metrics(), 'after a reset');
  });
}

test('a value that is not a finite number is not counted', async () => {
  const { ours, a } = pair();
  ours.observe('n', Number.NaN);
  ours.observe('n', Number.POSITIVE_INFINITY);
  assert.doesNotMatch(await a.metrics(), /x_seconds_count/);
});

test('buckets that do not ascend are refused', () => {
  assert.throws(() => new NodeHistogram({ name: 'y', help: 'h', labelName: 'node', buckets: [1, 1], registers: [] }), /ascend/);
});
