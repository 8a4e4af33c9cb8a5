// The package as an operator gets it: `npm pack` (whose prepack builds dist/), then
// `npm install -g` of the tarball into a temporary prefix with the npm of the pinned Node (run by
// that Node; --prefer-offline takes the dependencies from the cache `npm ci` filled). The
// installed commands print their version, refuse the machine's own older Node, and the installed
// siplb, started on the examples/lb.properties it ships with, balances sipp calls, serves its
// dashboard, reloads on SIGHUP (the unit's ExecReload) and runs with the young-generation cap of
// src/cli/siplb.ts's shebang.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { eventually } from '../helpers/wait.ts';
import { allocatePorts, releasePorts } from '../e2e/harness/ports.ts';
import { cliNodeFlags, nodeBinary, REPO_ROOT, startSiplbWithFile, type SiplbHandle } from '../e2e/harness/siplb.ts';
import type { SippUas } from '../e2e/harness/sipp.ts';
import { assertCallsThrough, exampleCopy, startSippNodes, type ExampleCopy } from '../examples/example-run.ts';
import { assertRefusedBySystemNode, COMMANDS, noOlderSystemNode, PKG } from './package-helpers.ts';

/** PATH with the pinned Node first: `npm` and every `#!/usr/bin/env node` then run on it. */
const PINNED_ENV = { ...process.env, PATH: `${dirname(nodeBinary())}:${process.env['PATH'] ?? ''}` };

/** Runs a command to its end (bounded by timeoutMs); rejects with its output unless it exits 0. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: PINNED_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr, ms: Math.round(performance.now() - started) });
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal} (limit ${timeoutMs} ms)\n${stdout}\n${stderr}`));
    });
  });
}

test('npm pack, npm install -g of the tarball, and the installed siplb balances sipp calls', { timeout: 120_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'siplb-install-'));
  const ports = await allocatePorts(6);
  const [lbPort, nodeA, nodeB, uacPort, heartbeatPort, apiPort] = ports;
  let copy: ExampleCopy | undefined;
  let lb: SiplbHandle | undefined;
  let uases: SippUas[] = [];
  try {
    const npmVersion = (await run('npm', ['--version'], work, 20_000)).stdout.trim();
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], REPO_ROOT, 90_000);
    // The prepack build's own lines come first on stdout, then npm's JSON.
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
    const tarball = join(work, info.filename);
    assert.equal(info.filename, `siplb-${PKG.version}.tgz`);
    const files = info.files.map((f) => f.path);
    for (const f of ['bin/launcher.cjs', 'dist/cli/siplb.js', 'dist/cli/siplb.d.ts', 'dist/admin/dashboard/index.html',
      'packaging/siplb.service', 'packaging/README.md', 'examples/lb.properties', 'docs/configuration.md', 'README.md', 'package.json',
      'native/memory.c', 'native/udp.c', 'native/mac.c', 'native/node-api.h', 'native/build.cjs']) {
      assert.ok(files.includes(f), `${f} in the tarball`);
    }
    for (const c of COMMANDS) assert.ok(files.includes(`bin/${c}.cjs`) && files.includes(`dist/cli/${c}.js`), c);
    const strays = files.filter((f) => /^(src|test|bench|scripts|node_modules)\//.test(f) || f.endsWith('.ts') && !f.endsWith('.d.ts'));
    assert.deepEqual(strays, [], 'sources, tests and build scripts stay out of the package');

    const prefix = join(work, 'prefix');
    const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], work, 90_000);
    console.log(`npm ${npmVersion}: pack ${packed.ms} ms (${info.size} B packed, ${info.unpackedSize} B unpacked, ${files.length} files), install -g ${installed.ms} ms`);
    const pkgDir = join(prefix, 'lib', 'node_modules', 'siplb');
    assert.ok(!existsSync(join(pkgDir, 'src')), 'no TypeScript sources installed: the launchers must take dist/');
    // The install script compiled every addon (native/build.cjs; this machine has cc).
    for (const name of ['memory', 'udp', 'mac']) assert.ok(existsSync(join(pkgDir, 'native', 'build', `${name}.node`)), `native/build/${name}.node built by npm install`);
    for (const c of COMMANDS) {
      const bin = join(prefix, 'bin', c);
      assert.ok(statSync(bin).mode & 0o111, `${bin} executable`);
      const v = await run(bin, ['--version'], work, 20_000);
      assert.equal(v.stdout, `${c} ${PKG.version} (Node.js ${process.version})\n`);
      const help = await run(bin, ['--help'], work, 20_000);
      assert.match(help.stdout, new RegExp(`^usage: ${c} `));
    }
    const skip = noOlderSystemNode();
    if (skip === null) assertRefusedBySystemNode(join(prefix, 'bin'), '');
    else t.diagnostic(`not checked: ${skip}`);

    // The installed siplb on the sample file it ships, its ports moved to this test's.
    copy = exampleCopy(join(pkgDir, 'examples', 'lb.properties'), { 5060: lbPort, 5071: nodeA, 5072: nodeB }, { heartbeatPort: String(heartbeatPort), apiPort: String(apiPort) });
    uases = await startSippNodes([nodeA, nodeB]);
    lb = await startSiplbWithFile(copy.path, { logLevel: 'info', executable: join(prefix, 'bin', 'siplb'), env: PINNED_ENV, readyTimeoutMs: 20_000 });
    const handle = lb;
    // The process is Node itself (env execs it), started with the flags of the source's shebang.
    const cmdline = readFileSync(`/proc/${lb.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of cliNodeFlags()) assert.ok(cmdline.includes(flag), `${flag} in ${cmdline.join(' ')}`);
    assert.ok(cmdline.some((a) => a.endsWith('/bin/siplb')), cmdline.join(' '));
    for (const path of ['/', '/assets/uplot.js']) {
      const res = await fetch(`http://127.0.0.1:${apiPort}${path}`);
      assert.equal(res.status, 200, `dashboard ${path}`);
      await res.arrayBuffer();
    }
    await assertCallsThrough(`127.0.0.1:${lbPort}`, uacPort, uases, 10, () => handle.logs());
    assert.ok(!handle.jsonLogs().some((l) => String(l['msg']).startsWith('memory trim off')), 'the installed siplb loads its memory addon');
    assert.ok(!handle.jsonLogs().some((l) => String(l['msg']).includes('native UDP I/O off')), 'the installed siplb loads its UDP addon');
    assert.ok(!handle.jsonLogs().some((l) => String(l['msg']).startsWith('branch MACs in JavaScript')), 'the installed siplb loads its MAC addon');

    process.kill(lb.pid, 'SIGHUP');
    await eventually('the reload on SIGHUP logged', 5_000, () => handle.jsonLogs().some((l) => l['msg'] === 'configuration reloaded: no key changed'));
    await lb.stop();
    assert.equal(await lb.exitCode, 0);
  } finally {
    await Promise.allSettled(uases.map((u) => u.stop(1_000)));
    await lb?.stop();
    copy?.remove();
    releasePorts(ports);
    rmSync(work, { recursive: true, force: true });
  }
});
