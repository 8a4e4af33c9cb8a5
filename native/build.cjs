// npm install and npm ci run this (package.json "install"): it compiles each of siplb's native
// addons, native/<name>.c into native/build/<name>.node, with the system's C compiler ($CC, else
// cc), and prints one line per addon. Without a compiler, or off Linux, the line says what siplb
// does without the addon and the script exits 0: both are optional (the memory trim,
// src/core/memory-trim.ts; batched UDP I/O, src/transport/udp-native.ts), siplb says at start-up
// what it runs without. `node native/build.cjs --strict` exits 1 instead, for a package build
// that must have them.
'use strict';

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');

var HERE = __dirname;
var OUT_DIR = path.join(HERE, 'build');
var strict = process.argv.indexOf('--strict') !== -1;
var compiler = process.env.CC || 'cc';

/** Each addon: its name, the functions it must export, and what siplb does without it. */
var ADDONS = [
  { name: 'memory', exports: ['dropPages', 'mallocTrim'], without: 'it keeps the memory it could give back' },
  { name: 'udp', exports: ['open', 'sendTo', 'send', 'close'], without: 'UDP goes through dgram, at more CPU per message' },
  { name: 'mac', exports: ['setKey', 'mac'], without: 'branch MACs are computed in JavaScript, at more CPU per message' },
];

/** One line for an addon; returns whether it is built. */
function report(addon, message, built) {
  var consequence = built || strict ? '' : '; siplb runs without it (' + addon.without + ')';
  process.stdout.write('native: ' + message + consequence + '\n');
  return built;
}

/** Compiles and loads one addon into native/build/<name>.node; returns whether it is built. */
function build(addon) {
  var out = 'native/build/' + addon.name + '.node';
  if (process.platform !== 'linux') return report(addon, addon.name + '.node is for Linux only (this is ' + process.platform + ')', false);
  var temp = path.join(OUT_DIR, addon.name + '.' + process.pid + '.tmp.node');
  var source = path.join(HERE, addon.name + '.c');
  var r = childProcess.spawnSync(compiler, ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-o', temp, source], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    try { fs.rmSync(temp, { force: true }); } catch (e) { /* nothing to remove */ }
    var why = r.error ? r.error.code === 'ENOENT' ? 'no C compiler (' + compiler + ' not found; apt-get install gcc)' : r.error.message
      : compiler + ' failed (exit ' + (r.status === null ? r.signal : r.status) + ')' + (String(r.stderr).trim() === '' ? '' : ': ' + String(r.stderr).trim().split('\n').slice(0, 3).join(' | '));
    return report(addon, out + ' not built: ' + why, false);
  }
  // Loaded once here, so a broken build fails the install step rather than siplb's start.
  try {
    var loaded = require(temp);
    var missing = addon.exports.filter(function (f) { return typeof loaded[f] !== 'function'; });
    if (missing.length > 0) throw new Error('exports missing: ' + missing.join(', '));
  } catch (err) {
    fs.rmSync(temp, { force: true });
    return report(addon, out + ' built but does not load: ' + err.message, false);
  }
  fs.renameSync(temp, path.join(OUT_DIR, addon.name + '.node'));
  return report(addon, out + ' built with ' + compiler, true);
}

fs.mkdirSync(OUT_DIR, { recursive: true });
var all = true;
for (var i = 0; i < ADDONS.length; i++) all = build(ADDONS[i]) && all;
process.exit(all || !strict ? 0 : 1);
