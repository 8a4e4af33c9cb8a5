// packaging/install-tree.ts: dist/ replaced by a new build file by file, so that a launcher
// starting during a build (npm pack in the test suite) never finds a file missing or half written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { filesUnder, installTree, writeAtomically } from '../../packaging/install-tree.ts';

function tree(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
}

function read(root: string): Record<string, string> {
  return Object.fromEntries(filesUnder(root).sort().map((rel) => [rel, readFileSync(join(root, rel), 'utf8')]));
}

test('installTree: identical files untouched, changed and new ones written, stale ones and empty folders removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-install-tree-'));
  try {
    const stage = join(dir, 'stage');
    const dest = join(dir, 'dist');
    tree(dest, { 'cli/siplb.js': 'same', 'proxy/proxy.js': 'old', 'gone/old.js': 'stale', 'cli/removed.d.ts': 'stale' });
    tree(stage, { 'cli/siplb.js': 'same', 'proxy/proxy.js': 'new', 'sip/message.js': 'added' });
    const sameInode = statSync(join(dest, 'cli/siplb.js')).ino;
    const changedInode = statSync(join(dest, 'proxy/proxy.js')).ino;
    assert.deepEqual(installTree(stage, dest), { written: 2, unchanged: 1, removed: 2 });
    assert.deepEqual(read(dest), { 'cli/siplb.js': 'same', 'proxy/proxy.js': 'new', 'sip/message.js': 'added' });
    // The unchanged file is the same file; the changed one a new file renamed over the old.
    assert.equal(statSync(join(dest, 'cli/siplb.js')).ino, sameInode);
    assert.notEqual(statSync(join(dest, 'proxy/proxy.js')).ino, changedInode);
    assert.equal(existsSync(join(dest, 'gone')), false, 'a folder left empty goes');
    // No temporary file is left, and the stage is as it was.
    assert.deepEqual(filesUnder(dest).filter((f) => f.includes('.tmp-')), []);
    assert.deepEqual(read(stage), { 'cli/siplb.js': 'same', 'proxy/proxy.js': 'new', 'sip/message.js': 'added' });
    // Again with the same stage: nothing to do.
    assert.deepEqual(installTree(stage, dest), { written: 0, unchanged: 3, removed: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('installTree: into a missing folder, and where a folder became a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-install-tree-'));
  try {
    const stage = join(dir, 'stage');
    const dest = join(dir, 'dist');
    tree(stage, { 'a.js': 'a', 'b/c.js': 'c' });
    assert.deepEqual(installTree(stage, dest), { written: 2, unchanged: 0, removed: 0 });
    assert.deepEqual(read(dest), { 'a.js': 'a', 'b/c.js': 'c' });
    const stage2 = join(dir, 'stage2');
    tree(stage2, { 'a.js': 'a', b: 'now a file' });
    assert.deepEqual(installTree(stage2, dest), { written: 1, unchanged: 1, removed: 0 });
    assert.deepEqual(read(dest), { 'a.js': 'a', b: 'now a file' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeAtomically: the folder made, the content in place, no temporary file left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-install-tree-'));
  try {
    const target = join(dir, 'x', 'y.txt');
    writeAtomically(target, 'one');
    writeAtomically(target, 'two');
    assert.equal(readFileSync(target, 'utf8'), 'two');
    assert.deepEqual(filesUnder(dir), ['x/y.txt']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
