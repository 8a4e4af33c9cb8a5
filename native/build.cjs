// npm install and npm ci run this (package.json "install"): it compiles native/memory.c into
// native/build/memory.node with the system's C compiler ($CC, else cc). Without a compiler, or
// off Linux, it says so in one line and exits 0: siplb runs the same without the addon, only
// without giving back the memory src/core/memory-trim.ts gives back (it says so at start-up).
// `node native/build.cjs --strict` fails instead (exit 1), for a package build that must have it.
'use strict';

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');

var HERE = __dirname;
var SOURCE = path.join(HERE, 'memory.c');
var OUT_DIR = path.join(HERE, 'build');
var OUT = path.join(OUT_DIR, 'memory.node');
var strict = process.argv.indexOf('--strict') !== -1;

/** Prints one line and exits: 0 when built; when not, 0 (the install goes on) or 1 with --strict. */
function finish(message, built) {
  var consequence = built || strict ? '' : '; siplb runs without it (it keeps the memory it could give back)';
  process.stdout.write('native: ' + message + consequence + '\n');
  process.exit(built || !strict ? 0 : 1);
}

if (process.platform !== 'linux') finish('memory.node is for Linux only (this is ' + process.platform + ')', false);

var compiler = process.env.CC || 'cc';
var temp = path.join(OUT_DIR, 'memory.' + process.pid + '.tmp.node');
fs.mkdirSync(OUT_DIR, { recursive: true });
var r = childProcess.spawnSync(compiler, ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-o', temp, SOURCE], { encoding: 'utf8' });
if (r.error || r.status !== 0) {
  try { fs.rmSync(temp, { force: true }); } catch (e) { /* nothing to remove */ }
  var why = r.error ? r.error.code === 'ENOENT' ? 'no C compiler (' + compiler + ' not found; apt-get install gcc)' : r.error.message
    : compiler + ' failed (exit ' + (r.status === null ? r.signal : r.status) + ')' + (String(r.stderr).trim() === '' ? '' : ': ' + String(r.stderr).trim().split('\n').slice(0, 3).join(' | '));
  finish('native/build/memory.node not built: ' + why, false);
}
// Loaded once here, so a broken build fails the install step rather than siplb's start.
try {
  var addon = require(temp);
  if (typeof addon.dropPages !== 'function' || typeof addon.mallocTrim !== 'function') throw new Error('exports missing');
} catch (err) {
  fs.rmSync(temp, { force: true });
  finish('native/build/memory.node built but does not load: ' + err.message, false);
}
fs.renameSync(temp, OUT);
finish('native/build/memory.node built with ' + compiler, true);
