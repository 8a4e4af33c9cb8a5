// Running nft and reading who owns a table, against a scripted nft (the netns test runs the real
// one): no nft, no permission, an absent, own or foreign table, a refused script.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NftablesError } from '../../src/core/errors.ts';
import { isOwnedListing, Nftables, type NftResult, type NftRunner } from '../../src/sprayer/nftables.ts';

function runner(answer: (args: readonly string[], stdin?: string) => NftResult | Error): { run: NftRunner; calls: Array<{ args: readonly string[]; stdin?: string }> } {
  const calls: Array<{ args: readonly string[]; stdin?: string }> = [];
  return {
    calls,
    run: async (args, stdin) => {
      calls.push({ args, stdin });
      const a = answer(args, stdin);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

const ok = (stdout = ''): NftResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string): NftResult => ({ code: 1, stdout: '', stderr });
const enoent = (): Error => Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' });

async function rejectsWith(p: Promise<unknown>, kind: NftablesError['kind'], message: RegExp, exitCode: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof NftablesError, String(err));
    assert.equal(err.kind, kind);
    assert.equal(err.exitCode, exitCode);
    assert.match(err.message, message);
    return true;
  });
}

const OURS = 'table ip siplb_advisor {\n\tcomment "siplb-advisor vip 10.231.0.10:5060"\n\tmap buckets {\n\t\ttype mark : ipv4_addr\n\t}\n}\n';

describe('nftables', () => {
  test('nft missing: exit 2, says how to install it', async () => {
    await rejectsWith(new Nftables(runner(enoent).run).check(), 'missing', /^nft not found: install nftables \(Debian: apt-get install nftables\)$/, 2);
  });

  test('not root: exit 2, needs CAP_NET_ADMIN', async () => {
    const r = runner(() => fail('Error: cache initialization failed: Operation not permitted'));
    await rejectsWith(new Nftables(r.run).check(), 'permission', /^siplb-advisor needs root \(CAP_NET_ADMIN\) to program nftables$/, 2);
    assert.deepEqual(r.calls[0].args, ['list', 'tables']);
  });

  test('check passes when nft lists tables', async () => {
    await new Nftables(runner(() => ok('table ip filter\n')).run).check();
  });

  const OWNERS: Array<{ name: string; answer: NftResult; owner: string }> = [
    { name: 'absent', answer: fail('Error: No such file or directory\nlist table ip siplb_advisor\n              ^^^^^^^^^^^^^'), owner: 'absent' },
    { name: 'ours', answer: ok(OURS), owner: 'ours' },
    { name: 'foreign, no comment', answer: ok('table ip siplb_advisor {\n\tchain input {\n\t}\n}\n'), owner: 'foreign' },
    { name: 'foreign, another comment', answer: ok('table ip siplb_advisor {\n\tcomment "firewall"\n}\n'), owner: 'foreign' },
  ];
  for (const c of OWNERS) {
    test(`owner: ${c.name}`, async () => {
      const r = runner(() => c.answer);
      assert.equal(await new Nftables(r.run).owner('ip', 'siplb_advisor'), c.owner);
      assert.deepEqual(r.calls[0].args, ['-t', 'list', 'table', 'ip', 'siplb_advisor']);
    });
  }

  test('apply: the script on stdin of nft -f -; a refusal is exit 1 with nft\'s first line', async () => {
    const r = runner((_, stdin) => (stdin?.includes('bad') === true ? fail('/dev/stdin:1:1-3: Error: syntax error, unexpected string\nbad\n^^^') : ok()));
    const nft = new Nftables(r.run);
    await nft.apply('flush map ip siplb_advisor buckets\n');
    assert.deepEqual(r.calls[0], { args: ['-f', '-'], stdin: 'flush map ip siplb_advisor buckets\n' });
    await rejectsWith(nft.apply('bad'), 'failed', /^nft refused the script: \/dev\/stdin:1:1-3: Error: syntax error, unexpected string$/, 1);
  });
});

describe('the ownership mark', () => {
  const CASES: Array<{ name: string; listing: string; ours: boolean }> = [
    { name: 'the table comment right after the table line', listing: OURS, ours: true },
    { name: 'just the mark', listing: 'table ip6 t {\n\tcomment "siplb-advisor"\n}\n', ours: true },
    { name: 'a comment that only starts like the mark', listing: 'table ip t {\n\tcomment "siplb-advisorish"\n}\n', ours: false },
    { name: 'the mark on a chain, not the table', listing: 'table ip t {\n\tchain c {\n\t\tcomment "siplb-advisor vip x"\n\t}\n}\n', ours: false },
    { name: 'the mark on a rule', listing: 'table ip t {\n\tchain c {\n\t\tcounter comment "siplb-advisor"\n\t}\n}\n', ours: false },
    { name: 'nothing', listing: '', ours: false },
  ];
  for (const c of CASES) test(`${c.name}: ${c.ours ? 'ours' : 'not ours'}`, () => assert.equal(isOwnedListing(c.listing), c.ours));
});
