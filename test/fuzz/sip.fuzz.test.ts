// The short fuzzing run of `npm test` (issue 14): about a minute in all over the SIP parser, the
// TCP framer and the proxy's request and response paths, each bounded in inputs and in time,
// with two fixed seeds: the same inputs every run (a slower machine runs a prefix of them), so
// the suite stays deterministic and a red run means a change broke something. Exploring new
// seeds is the long run's job (scripts/fuzz.ts, `npm run fuzz`, a random seed by default when
// none is given); a failure there is reproduced with `npm run fuzz -- --target T --seed N`.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSeeds } from './corpus.ts';
import { isParseFailure, parseSipMessage } from '../../src/sip/message.ts';
import { formatResult, fuzzInWorker } from './supervise.ts';
import type { TargetName } from './targets.ts';

/** 4475 (the RFC); 902018219, a random seed that found the bare-CR Content-Length (regressions.test.ts). */
const SEEDS = [4475, 902018219];
/** Seconds per target, split between the two seeds; about 55 s in all. */
const SECONDS: Record<TargetName, number> = { parser: 15, framer: 15, proxy: 25 };
/** Inputs per seed: about what this machine runs in the seconds above, so the time is only a safety bound. */
const MAX_INPUTS: Record<TargetName, number> = { parser: 60_000, framer: 15_000, proxy: 80_000 };
// Five times the long run's: this run shares two cores with the rest of the suite, where the
// framer's slowest honest input (90 kB cut into 1-7-byte chunks, framed twice) reached 87 ms. A
// quadratic path still shows: the Via one the fuzzer found took 3 s on a 60 kB message.
const BUDGET_MS = 250;

describe('fuzzing (short run)', () => {
  test('the seeds are what they are meant to be', () => {
    const seeds = loadSeeds();
    assert.ok(seeds.length >= 50, `${seeds.length} seeds`);
    const valid = (name: string): boolean => {
      const m = parseSipMessage(seeds.find((s) => s.name === name)!.data, true);
      return !isParseFailure(m) && m.error === null;
    };
    // RFC 4475 §3.1.1 messages a proxy must take, §3.1.2 ones it must refuse (or answer 400/505).
    for (const name of ['rfc4475-wsinv.sip', 'rfc4475-intmeth.sip', 'rfc4475-esc01.sip', 'rfc4475-longreq.sip', 'rfc4475-lwsdisp.sip', 'sipp-uac-invite.sip', 'sipp-register.sip']) {
      assert.ok(valid(name), `${name} parses as a valid message`);
    }
    // (badinv01's Via passes the parser and is refused by the proxy, when it reads the Via.)
    for (const name of ['rfc4475-clerr.sip', 'rfc4475-ncl.sip', 'rfc4475-mcl01.sip', 'rfc4475-insuf.sip', 'rfc4475-badvers.sip', 'rfc4475-mismatch01.sip', 'rfc4475-quotbal.sip']) {
      assert.ok(!valid(name), `${name} is refused`);
    }
  });

  for (const target of ['parser', 'framer', 'proxy'] as const) {
    test(`${target}: no crash, no hang, no broken invariant`, { timeout: (SECONDS[target] + 60) * 1000 }, async () => {
      for (const seed of SEEDS) {
        const r = await fuzzInWorker({
          target, seed, maxInputs: MAX_INPUTS[target], maxMs: (SECONDS[target] / 2) * 1000, budgetMs: BUDGET_MS, reproDir: null, stallMs: 10_000,
        });
        console.log(`# fuzz ${formatResult(r)}`);
        const found = r.findings.map((f) => `${f.kind} at input ${f.index} (variant ${f.variant}, data ${f.data.slice(0, 200)}): ${f.detail.split('\n').slice(0, 3).join(' / ')}`);
        assert.deepEqual(found, [], `seed ${seed}: reproduce with npm run fuzz -- --target ${target} --seed ${seed} --inputs ${r.inputs}`);
        assert.equal(r.crashes + r.hangs, 0);
        // A run that did almost nothing would pass vacuously: the seeds alone are over 50 inputs.
        assert.ok(r.inputs > 1000, `only ${r.inputs} inputs`);
        assert.ok(r.signatures > 20, `only ${r.signatures} distinct behaviours`);
      }
    });
  }
});
