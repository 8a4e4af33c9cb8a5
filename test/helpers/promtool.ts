// promtool (Debian's `prometheus` package), which checks that a /metrics exposition follows
// Prometheus' text format and naming conventions. Installed with apt-get when missing; a test
// that needs it fails with a one-line instruction otherwise.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';

let found = false;

/** The promtool command, installing it first when it is missing. */
export function promtool(): string {
  const has = (): boolean => spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
  if (found || has()) {
    found = true;
    return 'promtool';
  }
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], {
    stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 240_000,
  });
  if (r.status !== 0 || !has()) assert.fail('promtool is missing and `apt-get install -y prometheus` failed: install the Debian package prometheus (it provides promtool)');
  found = true;
  return 'promtool';
}

/** `promtool check metrics` over an exposition: its exit code and what it said. */
export function checkMetrics(text: string): Promise<{ code: number | null; out: string }> {
  const tool = promtool();
  return new Promise((resolve, reject) => {
    const p = spawn(tool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}
