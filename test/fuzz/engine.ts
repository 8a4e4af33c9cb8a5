// The fuzzing loop of one target, in the thread it runs in: mutate a corpus entry, run it, time
// it, keep it when it did something new. Deterministic for a seed: the PRNG drives every choice
// and the corpus grows from signatures, not from timings.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Mutator, type FuzzInput } from './mutate.ts';
import { makeTarget, type TargetName } from './targets.ts';

export interface FuzzOptions {
  target: TargetName;
  seed: number;
  /** Stop after this many inputs (seeds included)... */
  maxInputs: number;
  /** ...or after this long, whichever comes first. */
  maxMs: number;
  /** An input that takes longer than this, three times running, is a hang. */
  budgetMs: number;
  /** Where reproducers are written; none when null. */
  reproDir: string | null;
}

export interface Finding {
  kind: 'crash' | 'hang';
  target: TargetName;
  seed: number;
  /** Index of the input in the run. */
  index: number;
  detail: string;
  variant: number;
  /** The input, base64. */
  data: string;
  /** Reproducer file, when written. */
  file?: string;
}

export interface FuzzResult {
  target: TargetName;
  seed: number;
  inputs: number;
  elapsedMs: number;
  crashes: number;
  hangs: number;
  /** Inputs over the budget once but not on the second and third try (GC, a busy machine). */
  slowOnce: number;
  /** Slowest input that was not a hang, ms. */
  slowestMs: number;
  corpus: number;
  signatures: number;
  findings: Finding[];
}

const CORPUS_CAP = 4000;
/** Distinct findings kept (and written out) per run; the counts go on. */
const FINDINGS_CAP = 20;

export function runFuzz(o: FuzzOptions, onInput?: (input: FuzzInput, index: number) => void): FuzzResult {
  const target = makeTarget(o.target);
  const corpus: FuzzInput[] = [...target.seeds];
  const mutator = new Mutator(o.seed, () => corpus);
  const signatures = new Set<string>();
  const seen = new Set<string>();
  const result: FuzzResult = { target: o.target, seed: o.seed, inputs: 0, elapsedMs: 0, crashes: 0, hangs: 0, slowOnce: 0, slowestMs: 0, corpus: 0, signatures: 0, findings: [] };
  const started = performance.now();
  const deadline = started + o.maxMs;

  const runOne = (input: FuzzInput): { sig: string | null; error: unknown; ms: number } => {
    const t0 = performance.now();
    try {
      const sig = target.run(input);
      return { sig, error: undefined, ms: performance.now() - t0 };
    } catch (error) {
      return { sig: null, error: error ?? new Error('thrown nullish'), ms: performance.now() - t0 };
    }
  };

  const record = (kind: Finding['kind'], input: FuzzInput, index: number, detail: string): void => {
    if (kind === 'crash') result.crashes++;
    else result.hangs++;
    // One finding per distinct first line and place, so a bug hit a thousand times is one file.
    const key = `${kind}:${detail.split('\n').slice(0, 2).join('|').replace(/\d+/g, 'N')}`;
    if (seen.has(key) || result.findings.length >= FINDINGS_CAP) return;
    seen.add(key);
    const f: Finding = { kind, target: o.target, seed: o.seed, index, detail, variant: input.variant, data: input.data.toString('base64') };
    if (o.reproDir !== null) f.file = writeReproducer(o.reproDir, f, input.data);
    result.findings.push(f);
  };

  try {
    for (let index = 0; result.inputs < o.maxInputs; index++) {
      if ((index & 63) === 0 && performance.now() > deadline) break;
      // The seeds as they are first, then mutations of the growing corpus.
      const input = index < target.seeds.length ? target.seeds[index] : mutator.mutate(mutator.pick(corpus), target.variants);
      onInput?.(input, index);
      let r = runOne(input);
      result.inputs++;
      if (r.ms > o.budgetMs) {
        // Once may be a collection or a busy core; a hang is slow every time.
        const again = Math.min(runOne(input).ms, runOne(input).ms);
        if (again > o.budgetMs) {
          record('hang', input, index, `took ${r.ms.toFixed(1)} ms, then ${again.toFixed(1)} ms (budget ${o.budgetMs} ms)`);
          continue;
        }
        result.slowOnce++;
        r = { ...r, ms: again };
      }
      if (r.ms > result.slowestMs) result.slowestMs = r.ms;
      if (r.error !== undefined) {
        const e = r.error;
        record('crash', input, index, e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e));
        continue;
      }
      if (r.sig !== null && !signatures.has(r.sig)) {
        signatures.add(r.sig);
        if (index >= target.seeds.length && corpus.length < CORPUS_CAP) corpus.push(input);
      }
    }
  } finally {
    target.close();
  }
  result.elapsedMs = performance.now() - started;
  result.corpus = corpus.length;
  result.signatures = signatures.size;
  return result;
}

export function writeReproducer(dir: string, f: Omit<Finding, 'file'>, data: Buffer): string {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${f.target}-${f.kind}-seed${f.seed}-${f.index}`);
  writeFileSync(`${base}.bin`, data);
  writeFileSync(`${base}.json`, JSON.stringify({ ...f, data: undefined }, null, 2) + '\n');
  return `${base}.bin`;
}

/** Runs one reproducer (its .bin and the variant from its .json) through its target once. */
export function replay(target: TargetName, data: Buffer, variant: number): { sig: string | null; error: unknown; ms: number } {
  const t = makeTarget(target);
  const t0 = performance.now();
  try {
    return { sig: t.run({ data, variant }), error: undefined, ms: performance.now() - t0 };
  } catch (error) {
    return { sig: null, error, ms: performance.now() - t0 };
  } finally {
    t.close();
  }
}
