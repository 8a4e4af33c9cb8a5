// The start of every siplb command (bin/siplb.cjs and its siblings), kept in CommonJS and in
// syntax every Node.js release parses (var, function, no arrows, no template strings, no
// import declarations), so that an old Node gets as far as checking its own version instead of
// dying on syntax: it prints one line naming the Node.js the package needs and the one it found,
// and exits 2. On a supported Node it starts the command: the built dist/cli/<command>.js of an
// installed package, or of a checkout whose dist/ matches its src/, else src/cli/<command>.ts
// (entryPoint below).
'use strict';

var fs = require('fs');
var path = require('path');
var url = require('url');

/** [major, minor, patch] of "v24.1.0", "24.1", "24" (a pre-release or build tag is ignored); null otherwise. */
function parseVersion(text) {
  var m = /^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+][0-9A-Za-z.+-]*)?\s*$/.exec(String(text));
  if (m === null) return null;
  return [Number(m[1]), m[2] === undefined ? 0 : Number(m[2]), m[3] === undefined ? 0 : Number(m[3])];
}

function compare(a, b) {
  for (var i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/**
 * Whether a Node.js version satisfies an engines range of the forms npm writes most: comparators
 * (>=, >, <=, <, =, or a bare version) joined by spaces (all must hold) and alternatives joined by
 * "||". Anything else (^, ~, x ranges, hyphen ranges) throws: the launcher then says it cannot
 * read the range instead of guessing.
 */
function satisfies(version, range) {
  var v = parseVersion(version);
  if (v === null) return false;
  var alternatives = String(range).split('||');
  for (var i = 0; i < alternatives.length; i++) {
    var parts = alternatives[i].trim().split(/\s+/);
    if (parts.length === 1 && parts[0] === '') throw new Error('empty alternative in engines range ' + JSON.stringify(range));
    var all = true;
    for (var j = 0; j < parts.length; j++) {
      var m = /^(>=|<=|>|<|=)?(.+)$/.exec(parts[j]);
      var bound = m === null ? null : parseVersion(m[2]);
      if (bound === null) throw new Error('unsupported engines range ' + JSON.stringify(range));
      var c = compare(v, bound);
      var op = m[1] === undefined ? '=' : m[1];
      var ok = op === '>=' ? c >= 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : op === '<' ? c < 0 : c === 0;
      if (!ok) all = false;
    }
    if (all) return true;
  }
  return false;
}

/**
 * null when `found` (process.version) satisfies `range` (engines.node), else the line to print:
 * "needs Node.js >=24 (found v20.20.2)".
 */
function nodeProblem(found, range) {
  var ok;
  try {
    ok = satisfies(found, range);
  } catch (err) {
    return 'cannot read engines.node ' + JSON.stringify(range) + ' of its package.json: ' + err.message;
  }
  return ok ? null : 'needs Node.js ' + range + ' (found ' + found + ')';
}

/**
 * What the build depends on, as one digest: the path and content of every file under src/ and of
 * the two tsconfig files. The build records it next to dist/ (.dist-stamp) and the launcher
 * compares: any edit, and any file added or removed, changes it; a copy or a touch does not.
 * Reading and hashing src/ (about 1.4 MB) takes a few milliseconds per start.
 */
function sourceStamp(root) {
  var hash = require('crypto').createHash('sha256');
  function add(rel) {
    var full = path.join(root, rel);
    var st = fs.statSync(full);
    if (st.isDirectory()) {
      var names = fs.readdirSync(full).sort();
      for (var i = 0; i < names.length; i++) add(rel + '/' + names[i]);
    } else {
      hash.update(rel + '\0' + st.size + '\0');
      hash.update(fs.readFileSync(full));
    }
  }
  var inputs = ['tsconfig.json', 'tsconfig.build.json', 'src'];
  for (var i = 0; i < inputs.length; i++) {
    if (fs.existsSync(path.join(root, inputs[i]))) add(inputs[i]);
  }
  return hash.digest('hex') + '\n';
}

/** The stamp file the build writes (outside dist/, so that it stays out of the package). */
function stampPath(root) {
  return path.join(root, '.dist-stamp');
}

/** Whether dist/ was built from src/ exactly as it is now. */
function builtFromCurrentSource(root) {
  var recorded;
  try {
    recorded = fs.readFileSync(stampPath(root), 'utf8');
  } catch (err) {
    return false;
  }
  return recorded === sourceStamp(root);
}

/**
 * The file a command runs. An installed package (under node_modules, or without src/): the built
 * dist/cli/<command>.js; Node does not strip types under node_modules. A checkout: the same built
 * file when dist/ was built from src/ as it is now (npm ci builds it, through prepare), since
 * JavaScript needs no type stripper: Node's stripper keeps about 30 MB for the life of the process
 * once loaded. Otherwise, or with SIPLB_FROM_SOURCE=1 in `env`, src/cli/<command>.ts.
 */
function entryPoint(root, command, env) {
  var source = path.join(root, 'src', 'cli', command + '.ts');
  var built = path.join(root, 'dist', 'cli', command + '.js');
  var installed = path.resolve(root).split(path.sep).indexOf('node_modules') !== -1;
  if (installed || !fs.existsSync(source)) return built;
  if (env && env.SIPLB_FROM_SOURCE === '1') return source;
  return fs.existsSync(built) && builtFromCurrentSource(root) ? built : source;
}

/** Checks the running Node against package.json's engines.node, then runs the command's module. */
function launch(command) {
  var root = path.join(__dirname, '..');
  var pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  var range = pkg.engines && pkg.engines.node;
  var problem = typeof range === 'string' ? nodeProblem(process.version, range) : null;
  if (problem !== null) {
    process.stderr.write(command + ': ' + problem + '\n');
    process.exit(2);
  }
  var entry = entryPoint(root, command, process.env);
  if (!fs.existsSync(entry)) {
    process.stderr.write(command + ': ' + entry + ' is missing: run npm run build, or reinstall the package\n');
    process.exit(2);
  }
  // Running src/*.ts, Node strips the types of each module as it loads it, and the stripper (swc
  // built to WebAssembly) keeps about 30 MB of memory for the life of the process once loaded.
  // Node's compile cache keeps the stripped code as well, so with it on from here, before the
  // first TypeScript module, every start after the first loads no stripper at all (RSS of an idle
  // balancer 125 -> 92 MB). The cache lives in the system's temporary directory; a start that
  // cannot use it strips the types as before.
  var nodeModule = require('module');
  if (/\.ts$/.test(entry) && typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache();
  // import() written in a string: a Node too old to parse it still reads this file and reports
  // its version above. The module runs the command (its main() at top level).
  var importModule = new Function('specifier', 'return import(specifier);');
  importModule(url.pathToFileURL(entry).href).catch(function (err) {
    process.stderr.write(command + ': fatal: ' + (err && err.stack ? err.stack : String(err)) + '\n');
    process.exit(1);
  });
}

module.exports = {
  parseVersion: parseVersion, satisfies: satisfies, nodeProblem: nodeProblem, sourceStamp: sourceStamp, stampPath: stampPath,
  builtFromCurrentSource: builtFromCurrentSource, entryPoint: entryPoint, launch: launch,
};
