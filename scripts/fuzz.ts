// The long fuzzing run (issue 14): `npm run fuzz -- --inputs 1000000 [--seed N] [--target
// parser|framer|proxy|all] [--budget-ms 50] [--out DIR]`, or `--replay FILE.bin` to run one
// reproducer again. Each target runs in a worker of its own, watched for inputs that never
// return. Exits 1 on any crash or hang; reproducers (.bin with a .json beside it) go to --out.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { replay } from '../test/fuzz/engine.ts';
import { formatResult, fuzzInWorker } from '../test/fuzz/supervise.ts';
import { TARGETS, type TargetName } from '../test/fuzz/targets.ts';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
    target: { type: 'string', default: 'all' },
    'budget-ms': { type: 'string', default: '50' },
    'max-minutes': { type: 'string', default: '60' },
    out: { type: 'string', default: 'fuzz-findings' },
    replay: { type: 'string' },
  },
});

if (values.replay !== undefined) {
  const file = values.replay;
  const meta = JSON.parse(readFileSync(file.replace(/\.bin$/, '.json'), 'utf8')) as { target: TargetName; variant: number };
  const r = replay(meta.target, readFileSync(file), meta.variant);
  console.log(`${meta.target} variant ${meta.variant}: ${r.ms.toFixed(1)} ms`);
  if (r.error !== undefined) {
    console.log(r.error);
    process.exit(1);
  }
  console.log(`no crash; signature ${r.sig}`);
  process.exit(0);
}

const targets: TargetName[] = values.target === 'all' ? [...TARGETS] : [values.target as TargetName];
for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; one of ${TARGETS.join(', ')}, all`);
const inputs = Number(values.inputs);
const seed = values.seed === undefined ? (Math.random() * 2 ** 31) >>> 0 : Number(values.seed);
const budgetMs = Number(values['budget-ms']);
console.log(`fuzzing ${targets.join(', ')}: ${inputs} inputs each, seed ${seed}, budget ${budgetMs} ms per input, findings to ${values.out}/`);

let failed = false;
const started = performance.now();
let total = 0;
for (const target of targets) {
  const r = await fuzzInWorker({
    target, seed, maxInputs: inputs, maxMs: Number(values['max-minutes']) * 60_000, budgetMs,
    reproDir: values.out, stallMs: 10_000,
  });
  total += r.inputs;
  console.log(formatResult(r) + (r.slowOnce > 0 ? `, over budget once then not: ${r.slowOnce}` : ''));
  for (const f of r.findings) console.log(`  ${f.kind} at input ${f.index} (variant ${f.variant}): ${f.detail.split('\n')[0]}\n    reproducer: ${f.file ?? '(not written)'}`);
  if (r.crashes > 0 || r.hangs > 0) failed = true;
}
const secs = (performance.now() - started) / 1000;
console.log(`total: ${total} inputs in ${secs.toFixed(1)} s (${Math.round(total / secs)}/s); ${failed ? 'FAILED' : 'no crash, no hang'}`);
process.exit(failed ? 1 : 0);
