// What the packaging tests share: the package's declared commands and the check that the
// machine's own, older Node.js is refused by each of them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { satisfies } from '../../bin/launcher.cjs';
import { REPO_ROOT } from '../e2e/harness/siplb.ts';

export const PKG = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string; engines: { node: string }; bin: Record<string, string>; files: string[];
};
export const COMMANDS = ['siplb', 'siplb-node', 'siplb-demo-node', 'siplb-advisor'];
/** Debian's Node.js, older than engines.node on the machines this runs on. */
export const SYSTEM_NODE = '/usr/bin/node';

/** The machine's own Node's version ("v20.20.2"); null when it has none at /usr/bin/node. */
export function systemNodeVersion(): string | null {
  if (!existsSync(SYSTEM_NODE)) return null;
  const r = spawnSync(SYSTEM_NODE, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.stdout.trim();
}

/**
 * Why the gate cannot be tested end to end on this machine (no Node at /usr/bin/node, or one the
 * package supports: the issue asks for the test wherever the machine's Node is older, as
 * Debian's is), else null. Callers skip with this reason, visibly.
 */
export function noOlderSystemNode(): string | null {
  const found = systemNodeVersion();
  if (found === null) return `no ${SYSTEM_NODE}: the gate's end-to-end check needs the machine's own, older Node.js (Debian: apt-get install -y nodejs)`;
  if (satisfies(found, PKG.engines.node)) return `${SYSTEM_NODE} is ${found}, which satisfies ${PKG.engines.node}: no older Node to test the gate with`;
  return null;
}

/** Each command of `binDir` run by the machine's own (older) Node: one line on stderr, exit 2. */
export function assertRefusedBySystemNode(binDir: string, suffix: string): void {
  const reason = noOlderSystemNode();
  assert.equal(reason, null);
  const found = systemNodeVersion();
  for (const command of COMMANDS) {
    for (const args of [[], ['--version'], ['--help']]) {
      const r = spawnSync(SYSTEM_NODE, [join(binDir, command + suffix), ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `${command} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `${command}: needs Node.js ${PKG.engines.node} (found ${found})\n`);
    }
  }
}

