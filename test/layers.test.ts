// Folder layering of src/: no import cycle between folders, every cross-folder import goes from a higher
// layer to a lower one, and every folder is placed in a layer. The analysis lives in
// test/helpers/import-graph.ts and is itself tested here on small synthetic trees.
//
// A folder is the first path segment under src/ (src/state/redis/store.ts belongs to "state"). An
// import is any static import, `import type`, `export ... from` or `import('literal')` whose relative
// specifier resolves inside src/; package imports (node:*, pino, redis) do not count.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  analyzeTree,
  extractImports,
  findCycles,
  folderGraph,
  formatCycle,
  formatViolation,
  layerIndex,
  layeringViolations,
  stripComments,
  undeclared,
  type ImportKind,
  type Layers,
} from './helpers/import-graph.ts';

// Lowest layer first. A folder may import from its own folder and from folders in lower layers only;
// folders in the same layer may not import each other. Place a new folder here deliberately.
const LAYERS: Layers = [
  /* 0 */ { core: 'error classes with stable codes, logging' },
  /* 1 */ { sip: 'SIP message parser, editor and stream framing; no I/O' },
  /* 2 */ { config: 'lb.properties -> one validated Config' },
  /* 3 */ {
    heartbeat: 'the heartbeat protocol, shared by the balancer and the node agent',
    transport: 'UDP/TCP/TLS/WS/WSS endpoints, connection table, router that sends by destination',
  },
  /* 4 */ { state: 'state stores: in memory and on Redis (redis/)' },
  /* 5 */ { cluster: 'node registry and snapshots, heartbeat endpoint, active and passive health, call counts' },
  /* 6 */ { algorithms: 'balancing algorithms, their base and their catalog' },
  /* 7 */ { proxy: 'the stateless SIP forwarding rules' },
  /* 8 */ { http: 'HTTP balancer' },
  /* 9 */ { admin: 'admin API (Restcomm endpoints and /api/v1), metrics, dashboard' },
  /* 10 */ { wiring: 'composition root: builds and closes one running balancer' },
  /* 11 */ {
    'node-agent': 'heartbeat agent run beside a SIP node',
    'demo-node': 'demo SIP application server',
    sprayer: 'siplb-advisor: OPTIONS probes of balancers, the bucket table and the nftables sprayer it programs',
  },
  /* 12 */ { cli: 'the commands: siplb, siplb-node, siplb-demo-node, siplb-advisor' },
];

const SRC = resolve(import.meta.dirname, '../src');
const WHERE = 'LAYERS in test/layers.test.ts';

describe('src/ layering', () => {
  const tree = analyzeTree(SRC);

  test('LAYERS declares each folder once, with a one-line description', () => {
    assert.doesNotThrow(() => layerIndex(LAYERS));
    for (const layer of LAYERS) {
      for (const [folder, description] of Object.entries(layer)) {
        assert.match(description, /^[^\n]+$/, `${folder}: description must be one line`);
      }
    }
  });

  test('every src/ folder is declared in a layer', () => {
    const missing = undeclared(tree.files, LAYERS);
    if (missing.length === 0) return;
    assert.fail(
      `Not placed in the declared layers (${WHERE}):\n` +
        missing
          .map((entry) =>
            entry.endsWith('/')
              ? `  src/${entry}: folder not declared; add it to the declared layers at the level it belongs`
              : `  src/${entry}: file directly in src/; move it into a folder that is in the declared layers, ` +
                'or add a new folder for it to the declared layers',
          )
          .join('\n'),
    );
  });

  test('no import cycle between src/ folders', () => {
    const graph = folderGraph(tree.imports);
    const cycles = findCycles(graph);
    if (cycles.length === 0) return;
    assert.fail(
      `${cycles.length} import cycle(s) between src/ folders (one example import per edge):\n` +
        cycles.map((c) => indent(formatCycle(c, graph))).join('\n'),
    );
  });

  test('cross-folder imports go from a higher layer to a lower one', () => {
    const violations = layeringViolations(tree.imports, LAYERS);
    if (violations.length === 0) return;
    assert.fail(
      `${violations.length} import(s) against the layering (${WHERE}; lowest first: ` +
        `${LAYERS.map((l) => Object.keys(l).join('+')).join(' < ')}):\n` +
        violations.map((v) => indent(formatViolation(v))).join('\n'),
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// The checker itself

describe('import-graph: extracting imports', () => {
  type Expected = [specifier: string, kind: ImportKind, typeOnly?: boolean];
  const cases: Array<{ name: string; source: string; imports: Expected[] }> = [
    { name: 'named import', source: `import { a, b } from '../x/y.ts';`, imports: [['../x/y.ts', 'import']] },
    { name: 'default and namespace', source: `import d, * as ns from "./m.ts"`, imports: [['./m.ts', 'import']] },
    { name: 'import type', source: `import type { T } from '../x/y.ts';`, imports: [['../x/y.ts', 'import', true]] },
    { name: 'default named type', source: `import type from './t.ts';`, imports: [['./t.ts', 'import', false]] },
    { name: 'inline type', source: `import { type T, v } from '../x/y.ts';`, imports: [['../x/y.ts', 'import']] },
    { name: 'side effect', source: `import '../x/setup.ts';`, imports: [['../x/setup.ts', 'side-effect']] },
    {
      name: 'multi-line import list',
      source: `import {\n  a,\n  b\n} from '../x/y.ts';`,
      imports: [['../x/y.ts', 'import']],
    },
    {
      name: 'multi-line list with comments inside',
      source: `import {\n  a, // the a\n  /* b */ b,\n} from '../x/y.ts';`,
      imports: [['../x/y.ts', 'import']],
    },
    { name: 'export from', source: `export { a, b as c } from '../x/y.ts';`, imports: [['../x/y.ts', 're-export']] },
    {
      name: 'export type from, multi-line',
      source: `export type {\n  A,\n  B,\n} from '../x/y.ts';`,
      imports: [['../x/y.ts', 're-export', true]],
    },
    { name: 'export * from', source: `export * from './all.ts';`, imports: [['./all.ts', 're-export']] },
    { name: 'export * as from', source: `export * as ns from './all.ts';`, imports: [['./all.ts', 're-export']] },
    { name: 'local export is not an import', source: `const a = 1;\nexport { a };\nexport const from = 'x';`, imports: [] },
    { name: 'dynamic import', source: `const m = await import('../x/y.ts');`, imports: [['../x/y.ts', 'dynamic']] },
    {
      name: 'dynamic import with a template literal and options',
      source: 'await import(`../x/y.ts`, { with: {} });',
      imports: [['../x/y.ts', 'dynamic']],
    },
    { name: 'dynamic import in a type', source: `let m: typeof import('../x/y.ts');`, imports: [['../x/y.ts', 'dynamic']] },
    { name: 'computed dynamic import is skipped', source: 'await import(pathToFileURL(p).href);', imports: [] },
    { name: 'import.meta is not an import', source: 'const d = import.meta.dirname;', imports: [] },
    { name: 'line comment', source: `// import { a } from '../x/y.ts';\nconst a = 1;`, imports: [] },
    {
      name: 'block comment',
      source: `/*\n * import { a } from '../x/y.ts';\n * await import('../x/z.ts')\n */\nexport const a = 1;`,
      imports: [],
    },
    { name: 'trailing comment', source: `f(); // see import('../x/y.ts')`, imports: [] },
    { name: 'inside a string', source: `const s = "import { a } from '../x/y.ts'";`, imports: [] },
    {
      name: 'inside a template literal',
      source: 'const s = `\nimport { a } from "../x/y.ts"\n${v}`;',
      imports: [],
    },
    {
      name: 'comment markers inside strings and regular expressions',
      source: `const u = 'http://h/*';\nconst r = /['"/]*/g;\nimport { a } from '../x/y.ts'; // */`,
      imports: [['../x/y.ts', 'import']],
    },
    { name: 'name "from" in the list', source: `import { from } from './f.ts';`, imports: [['./f.ts', 'import']] },
    { name: 'shebang', source: `#!/usr/bin/env node\nimport { a } from '../x/y.ts';`, imports: [['../x/y.ts', 'import']] },
    { name: 'property named import', source: `obj.import('../x/y.ts');`, imports: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = extractImports(c.source).map((r): Expected => [r.specifier, r.kind, r.typeOnly]);
      assert.deepEqual(got, c.imports.map(([s, k, t = false]): Expected => [s, k, t]));
    });
  }

  test('reports the line of the keyword and the statement text without comments', () => {
    const source = `// header\n\nimport {\n  a, // first\n  b\n} from '../x/y.ts';\n`;
    assert.deepEqual(
      extractImports(source).map((r) => [r.line, r.text]),
      [[3, `import { a, b } from '../x/y.ts'`]],
    );
  });

  test('stripComments keeps offsets and line breaks', () => {
    const source = `a /* x\ny */ b // z\nc '/* s */'`;
    const stripped = stripComments(source);
    assert.equal(stripped.length, source.length);
    assert.equal(stripped, `a     \n     b     \nc '/* s */'`);
  });
});

describe('import-graph: checking a tree', () => {
  // a < b = b2 < c
  const layers: Layers = [{ a: 'lowest' }, { b: 'middle', b2: 'middle, beside b' }, { c: 'highest' }];
  type Violation = [file: string, line: number, specifier: string];
  const cases: Array<{
    name: string;
    files: Record<string, string>;
    cycles?: string[][];
    violations?: Violation[];
    undeclared?: string[];
  }> = [
    {
      name: 'downward imports only',
      files: {
        'a/x.ts': `import { readFileSync } from 'node:fs';\nimport { pino } from 'pino';\nexport const x = 1;`,
        'b/y.ts': `import { x } from '../a/x.ts';\nimport { z } from './z.ts';`,
        'b/z.ts': `export const z = 1;`,
        'c/w.ts': `import { y } from '../b/y.ts';\nimport '../a/x.ts';`,
      },
    },
    {
      name: 'two-folder cycle',
      files: { 'a/x.ts': `import { y } from '../b/y.ts';`, 'b/y.ts': `import { x } from '../a/x.ts';` },
      cycles: [['a', 'b', 'a']],
      violations: [['a/x.ts', 1, '../b/y.ts']],
    },
    {
      name: 'three-folder cycle',
      files: {
        'a/x.ts': `import { w } from '../c/w.ts';`,
        'b/y.ts': `import { x } from '../a/x.ts';`,
        'c/w.ts': `import { y } from '../b/y.ts';`,
      },
      cycles: [['a', 'c', 'b', 'a']],
      violations: [['a/x.ts', 1, '../c/w.ts']],
    },
    {
      name: 'upward import',
      files: { 'a/x.ts': `export const x = 1;\nimport type { W } from '../c/w.ts';`, 'c/w.ts': `export type W = 1;` },
      violations: [['a/x.ts', 2, '../c/w.ts']],
    },
    {
      name: 'same-layer import',
      files: { 'b/y.ts': `import { v } from '../b2/v.ts';`, 'b2/v.ts': `export const v = 1;` },
      violations: [['b/y.ts', 1, '../b2/v.ts']],
    },
    {
      name: 'upward import hidden in a multi-line list',
      files: { 'a/x.ts': `\nimport {\n  a,\n  b\n} from '../c/w.ts';` },
      violations: [['a/x.ts', 2, '../c/w.ts']],
    },
    {
      name: 'upward dynamic import',
      files: { 'b/y.ts': `export async function f() {\n  return await import('../c/w.ts');\n}` },
      violations: [['b/y.ts', 2, '../c/w.ts']],
    },
    {
      name: 'upward re-export',
      files: { 'a/x.ts': `export type { W } from '../c/w.ts';` },
      violations: [['a/x.ts', 1, '../c/w.ts']],
    },
    {
      name: 'imports in comments are ignored',
      files: {
        'a/x.ts': `// import { w } from '../c/w.ts';\n/* await import('../c/w.ts') */\nexport const x = 1;`,
      },
    },
    {
      name: 'a nested folder belongs to its top folder',
      files: {
        'b/deep/er/y.ts': `import { x } from '../../../a/x.ts';\nimport { z } from '../../z.ts';`,
        'a/x.ts': `import { y } from '../b/deep/er/y.ts';`,
      },
      cycles: [['a', 'b', 'a']],
      violations: [['a/x.ts', 1, '../b/deep/er/y.ts']],
    },
    {
      name: 'imports leaving the root are ignored',
      files: { 'a/x.ts': `import '../../outside/c/w.ts';\nimport pkg from '../../package.json' with { type: 'json' };` },
    },
    {
      name: 'undeclared folder and file in the root',
      files: { 'a/x.ts': `export const x = 1;`, 'extra/q.ts': `import { x } from '../a/x.ts';`, 'index.ts': `export {};` },
      undeclared: ['extra/', 'index.ts'],
    },
  ];

  for (const c of cases) {
    test(c.name, (t) => {
      const tree = analyzeTree(writeTree(t, c.files));
      assert.deepEqual(findCycles(folderGraph(tree.imports)), c.cycles ?? [], 'cycles');
      assert.deepEqual(
        layeringViolations(tree.imports, layers).map((v): Violation => [v.import.file, v.import.line, v.import.specifier]),
        c.violations ?? [],
        'layering violations',
      );
      assert.deepEqual(undeclared(tree.files, layers), c.undeclared ?? [], 'undeclared');
    });
  }

  test('a cycle is reported as a folder path with one example import per edge', (t) => {
    const tree = analyzeTree(
      writeTree(t, {
        'a/x.ts': `import { y } from '../b/y.ts';\nimport { y2 } from '../b/y2.ts';`,
        'b/y.ts': `\nimport type {\n  X,\n} from '../a/x.ts';`,
      }),
    );
    const graph = folderGraph(tree.imports);
    assert.equal(
      formatCycle(['a', 'b', 'a'], graph),
      [
        'a -> b -> a',
        `  a -> b: src/a/x.ts:1: import { y } from '../b/y.ts' (+1 more)`,
        `  b -> a: src/b/y.ts:2: import type { X, } from '../a/x.ts'`,
      ].join('\n'),
    );
    const [violation] = layeringViolations(tree.imports, layers);
    assert.equal(
      formatViolation(violation),
      `src/a/x.ts:1: import { y } from '../b/y.ts'\n  a (layer 0) -> b (layer 1): upward`,
    );
  });

  test('a folder declared twice is an error', () => {
    assert.throws(() => layerIndex([{ a: 'x' }, { a: 'y' }]), /"a" is declared in layers 0 and 1/);
  });
});

function indent(text: string): string {
  return text.replace(/^/gm, '  ');
}

// Writes the files into a new temporary directory (removed after the test) and returns its path.
function writeTree(t: TestContext, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'siplb-layers-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
  return root;
}
