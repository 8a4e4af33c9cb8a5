// --help and --version of every command: each help text names every option its command accepts
// and where the configuration keys are documented, and --version prints package.json's version.
// The commands run as a user runs them: through their launchers (bin/*.cjs) with the pinned Node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ADVISOR_HELP, ADVISOR_OPTION_NAMES } from '../../src/cli/advisor-options.ts';
import { DEMO_NODE_ARG_OPTIONS, NODE_ARG_OPTIONS } from '../../src/cli/agent-options.ts';
import { DEMO_NODE_HELP, NODE_HELP, SIPLB_HELP, SIPLB_OPTIONS } from '../../src/cli/help.ts';
import { nodeBinary, REPO_ROOT } from '../e2e/harness/siplb.ts';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const CASES = [
  { command: 'siplb', help: SIPLB_HELP, options: [...SIPLB_OPTIONS] },
  { command: 'siplb-node', help: NODE_HELP, options: Object.keys(NODE_ARG_OPTIONS) },
  { command: 'siplb-demo-node', help: DEMO_NODE_HELP, options: Object.keys(DEMO_NODE_ARG_OPTIONS) },
  { command: 'siplb-advisor', help: ADVISOR_HELP, options: ADVISOR_OPTION_NAMES },
];

function run(command: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(REPO_ROOT, 'bin', `${command}.cjs`), args, {
    encoding: 'utf8', timeout: 20_000, cwd: REPO_ROOT,
    env: { ...process.env, PATH: `${dirname(nodeBinary())}:${process.env['PATH'] ?? ''}` },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('each help text names every option of its command', () => {
  for (const c of CASES) {
    for (const option of c.options) {
      assert.match(c.help, new RegExp(`--${option}\\b`), `${c.command} --help does not name --${option}`);
    }
    assert.match(c.help, /--version\b/, c.command);
    assert.match(c.help, /-h, --help/, c.command);
    assert.match(c.help, /^Exit codes: /m, c.command);
  }
  // Where the configuration keys are written down, and that those files exist.
  assert.match(SIPLB_HELP, /docs\/configuration\.md/);
  assert.match(SIPLB_HELP, /docs\/operations\.md/);
  for (const doc of ['docs/configuration.md', 'docs/operations.md', 'docs/heartbeat-protocol.md', 'docs/sprayer.md', 'examples']) {
    assert.ok(existsSync(join(REPO_ROOT, doc)), doc);
  }
  assert.match(NODE_HELP, /docs\/heartbeat-protocol\.md/);
  assert.match(ADVISOR_HELP, /docs\/sprayer\.md/);
});

test('--help and --version of every command, through its launcher', () => {
  for (const c of CASES) {
    for (const flag of ['--help', '-h']) {
      const help = run(c.command, [flag]);
      assert.equal(help.status, 0, `${c.command} ${flag}: ${help.stderr}`);
      assert.equal(help.stdout, c.help + '\n', `${c.command} ${flag}`);
    }
    const version = run(c.command, ['--version']);
    assert.equal(version.status, 0, `${c.command} --version: ${version.stderr}`);
    assert.equal(version.stdout, `${c.command} ${VERSION} (Node.js ${process.version})\n`);
    assert.equal(version.stderr, '');
  }
});

test('a bad option: one line on stderr with the usage, exit 2', () => {
  for (const c of CASES) {
    const r = run(c.command, ['--no-such-option']);
    assert.equal(r.status, 2, `${c.command}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 2, `${c.command}: one line expected, got ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, new RegExp(`^${c.command}: .*--no-such-option.*; usage: ${c.command} `));
  }
});

test('siplb-node and siplb-demo-node keep --version V as the version the node announces', () => {
  // With other arguments, --version takes a value, as before; only alone does it print ours.
  const r = run('siplb-node', ['--version', '2', '--ip', '127.0.0.1', '--udp-port', '5080']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^siplb-node: --balancers is required; usage: /);
  const missing = run('siplb-demo-node', ['--ip', '127.0.0.1', '--version']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^siplb-demo-node: .*--version/);
});
