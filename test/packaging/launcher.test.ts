// The launchers (bin/*.cjs): the Node.js version gate as a function of the version string, the
// same gate end to end with the machine's own Node when that one is older than package.json's
// engines.node (Debian's is), and the launcher's shebang carrying the balancer's Node flags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtFromCurrentSource, entryPoint, nodeProblem, parseVersion, satisfies, sourceStamp, stampPath } from '../../bin/launcher.cjs';
import { spawnOwned } from '../e2e/harness/children.ts';
import { cliNodeFlags, nodeBinary, REPO_ROOT } from '../e2e/harness/siplb.ts';
import { assertRefusedBySystemNode, COMMANDS, noOlderSystemNode, PKG } from './package-helpers.ts';


test('parseVersion reads what process.version and engines ranges hold, and nothing else', () => {
  const table: Array<[string, [number, number, number] | null]> = [
    ['v20.20.2', [20, 20, 2]], ['24.0.0', [24, 0, 0]], ['24', [24, 0, 0]], ['24.1', [24, 1, 0]],
    ['v25.0.0-nightly20260101abcdef', [25, 0, 0]], ['24.0.0+build.7', [24, 0, 0]], [' 24.3.1 ', [24, 3, 1]],
    ['', null], ['v', null], ['abc', null], ['24.x', null], ['24.0.0.1', null], ['-24', null], ['24..0', null],
  ];
  for (const [text, want] of table) assert.deepEqual(parseVersion(text), want, JSON.stringify(text));
});

test('the gate: engines.node >=24 refuses Node 20 and 23, accepts 24 and later', () => {
  const table: Array<[string, string, boolean]> = [
    ['v20.20.2', '>=24', false], ['20.20.2', '>=24', false], ['v23.11.0', '>=24', false], ['v18.0.0', '>=24', false],
    ['v24.0.0', '>=24', true], ['24.0.0', '>=24', true], ['v24.21.0', '>=24', true], ['v26.1.0', '>=24', true],
    // Nightlies and release candidates of a supported major count as that major.
    ['v24.0.0-rc.1', '>=24', true],
    ['garbage', '>=24', false], ['', '>=24', false],
    ['v22.12.0', '^20.19 || >=22.12', true], ['v22.11.0', '>=20.19 <21 || >=22.12', false], ['v20.19.0', '>=20.19 <21 || >=22.12', true],
    ['v24.0.0', '>24', false], ['v24.0.1', '>24.0.0', true], ['v24.0.0', '<=24', true], ['v24.0.0', '<24', false], ['v24.0.0', '24.0.0', true],
  ];
  for (const [version, range, want] of table) {
    if (range.includes('^')) {
      assert.throws(() => satisfies(version, range), /unsupported engines range/, range);
      continue;
    }
    assert.equal(satisfies(version, range), want, `${version} against ${range}`);
  }
  assert.equal(nodeProblem('v20.20.2', '>=24'), 'needs Node.js >=24 (found v20.20.2)');
  assert.equal(nodeProblem('v24.0.0', '>=24'), null);
  assert.match(nodeProblem('v24.0.0', '^24') ?? '', /^cannot read engines\.node "\^24"/);
  // The range the package declares is one the gate can read, and the pinned Node passes it.
  assert.equal(nodeProblem(process.version, PKG.engines.node), null);
});

test('package.json: every command is a launcher with a source and a build target', () => {
  assert.deepEqual(Object.keys(PKG.bin).sort(), [...COMMANDS].sort());
  for (const command of COMMANDS) {
    assert.equal(PKG.bin[command], `bin/${command}.cjs`);
    assert.equal(entryPoint(REPO_ROOT, command, { SIPLB_FROM_SOURCE: '1' }), join(REPO_ROOT, 'src', 'cli', `${command}.ts`));
    // Whichever the checkout runs now, it is one of the two, and dist/ only when built from this src/.
    const now = entryPoint(REPO_ROOT, command);
    assert.equal(now, builtFromCurrentSource(REPO_ROOT) ? join(REPO_ROOT, 'dist', 'cli', `${command}.js`) : join(REPO_ROOT, 'src', 'cli', `${command}.ts`));
    assert.equal(entryPoint('/nonexistent', command), join('/nonexistent', 'dist', 'cli', `${command}.js`));
  }
  // A package under node_modules that brought src/ along still runs dist/: Node refuses to strip
  // types there.
  const dir = mkdtempSync(join(tmpdir(), 'siplb-launcher-'));
  try {
    const installed = join(dir, 'node_modules', 'siplb');
    mkdirSync(join(installed, 'src', 'cli'), { recursive: true });
    writeFileSync(join(installed, 'src', 'cli', 'siplb.ts'), '');
    assert.equal(entryPoint(installed, 'siplb'), join(installed, 'dist', 'cli', 'siplb.js'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the siplb launcher runs Node with the same flags as the source\'s shebang (and npm start)', () => {
  // The flags live in src/cli/siplb.ts's first line (cliNodeFlags); the installed command is the
  // launcher, whose own first line must carry them too.
  assert.deepEqual(cliNodeFlags(join(REPO_ROOT, 'bin', 'siplb.cjs')), cliNodeFlags());
  for (const command of COMMANDS.filter((c) => c !== 'siplb')) {
    assert.deepEqual(cliNodeFlags(join(REPO_ROOT, 'bin', `${command}.cjs`)), cliNodeFlags(join(REPO_ROOT, 'src', 'cli', `${command}.ts`)), command);
  }
});

test('every launcher in the checkout, run by the machine\'s own older Node: one line naming both versions, exit 2', (t) => {
  const skip = noOlderSystemNode();
  if (skip !== null) return t.skip(skip);
  assertRefusedBySystemNode(join(REPO_ROOT, 'bin'), '.cjs');
});

test('the launchers stay parseable by old Node: no syntax newer than ES5 besides what Node 0.10 read', () => {
  for (const file of ['launcher.cjs', ...COMMANDS.map((c) => `${c}.cjs`)]) {
    const text = readFileSync(join(REPO_ROOT, 'bin', file), 'utf8').replace(/^#!.*\n/, '');
    const code = text.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const [pattern, what] of [[/=>/, 'arrow function'], [/\b(let|const|class|async|await)\s/, 'ES2015+ keyword'], [/`/, 'template string'],
      [/^\s*import\s/m, 'import declaration'], [/\?\.|\?\?/, 'optional chaining / nullish'], [/\.\.\.\w/, 'spread']] as const) {
      assert.ok(!pattern.test(code), `bin/${file}: ${what}`);
    }
  }
});

/** A checkout of its own: the launchers and package.json, a src/cli/siplb.ts and a dist/cli/siplb.js that say which ran. */
function miniCheckout(): string {
  const root = mkdtempSync(join(tmpdir(), 'siplb-checkout-'));
  mkdirSync(join(root, 'bin'));
  for (const f of ['launcher.cjs', 'siplb.cjs']) copyFileSync(join(REPO_ROOT, 'bin', f), join(root, 'bin', f));
  copyFileSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
  writeFileSync(join(root, 'tsconfig.json'), '{}\n');
  mkdirSync(join(root, 'src', 'cli'), { recursive: true });
  // Types to strip, so that running it needs Node's stripper.
  writeFileSync(join(root, 'src', 'cli', 'siplb.ts'), "const from: string = 'src';\nprocess.stdout.write(from + '\\n');\n");
  mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
  writeFileSync(join(root, 'dist', 'cli', 'siplb.js'), "process.stdout.write('dist\\n');\n");
  // Reports at exit whether Node loaded its type stripper (amaro).
  writeFileSync(join(root, 'probe.cjs'), "process.on('exit', () => process.stdout.write('amaro ' + process.moduleLoadList.some((m) => m.includes('amaro')) + '\\n'));\n");
  return root;
}

async function runLauncher(root: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const owned = spawnOwned(nodeBinary(), [...cliNodeFlags(), '--require', join(root, 'probe.cjs'), join(root, 'bin', 'siplb.cjs')], {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: root,
    // A compile cache of its own for each run: a warm one would hide the stripper.
    env: { ...process.env, TMPDIR: mkdtempSync(join(root, 'tmp-')), SIPLB_FROM_SOURCE: undefined, ...env },
  });
  let out = '';
  owned.process.stdout?.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  owned.process.stderr?.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  assert.deepEqual(await owned.exited, { code: 0, signal: null }, out);
  return out.trim().split('\n').join(' ');
}

test('a checkout runs dist/ (no type stripper) only while dist/ is built from src/ as it is', { timeout: 60_000 }, async () => {
  const root = miniCheckout();
  try {
    // Never built: the source.
    assert.equal(builtFromCurrentSource(root), false);
    assert.equal(await runLauncher(root), 'src amaro true');
    // Built (the stamp the build records): the JavaScript, and Node's stripper stays unloaded.
    writeFileSync(stampPath(root), sourceStamp(root));
    assert.equal(builtFromCurrentSource(root), true);
    assert.equal(await runLauncher(root), 'dist amaro false');
    // SIPLB_FROM_SOURCE=1 asks for the source anyway.
    assert.equal(await runLauncher(root, { SIPLB_FROM_SOURCE: '1' }), 'src amaro true');
    // A touch is not an edit (the stamp is of contents)...
    const file = join(root, 'src', 'cli', 'siplb.ts');
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    assert.equal(entryPoint(root, 'siplb'), join(root, 'dist', 'cli', 'siplb.js'));
    // ...an edit is, even of the same size, and so are a file added under src/ and a tsconfig changed.
    writeFileSync(file, readFileSync(file, 'utf8').replace("'src'", "'SRC'"));
    assert.equal(entryPoint(root, 'siplb'), file);
    writeFileSync(file, readFileSync(file, 'utf8').replace("'SRC'", "'src'"));
    assert.equal(entryPoint(root, 'siplb'), join(root, 'dist', 'cli', 'siplb.js'), 'the edit undone');
    writeFileSync(join(root, 'src', 'extra.ts'), 'export {};\n');
    assert.equal(entryPoint(root, 'siplb'), file);
    writeFileSync(stampPath(root), sourceStamp(root));
    writeFileSync(join(root, 'tsconfig.json'), '{ "compilerOptions": {} }\n');
    assert.equal(entryPoint(root, 'siplb'), file);
    writeFileSync(stampPath(root), sourceStamp(root));
    // A stamp without the built file: the source.
    rmSync(join(root, 'dist'), { recursive: true });
    assert.equal(entryPoint(root, 'siplb'), file);
    assert.equal(await runLauncher(root), 'src amaro true');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
