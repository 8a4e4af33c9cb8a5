// Import analysis for the layering test (test/layers.test.ts): read a source tree, extract each
// file's imports, map relative imports to folders (the first path segment under the root), build the
// folder graph, find cycles in it, and check imports against a declared layer order.
//
// Imports are found by a small lexer rather than by regular expressions over raw text, so comments are
// skipped (an import mentioned in a comment does not count), strings and regular expression literals
// cannot be mistaken for code, and an import list may span any number of lines.

import { readdirSync, readFileSync } from 'node:fs';
import { posix, relative, sep, join } from 'node:path';

// ---------------------------------------------------------------------------------------------------
// Lexing

type TokenKind = 'name' | 'string' | 'template' | 'regex' | 'number' | 'punct';

interface Token {
  kind: TokenKind;
  // name and punct: the text; string and no-substitution template: the contents; otherwise ''.
  value: string;
  // A template literal with substitutions is lexed as several template tokens, none of them literal.
  literal: boolean;
  start: number;
  end: number;
  line: number;
}

interface Lexed {
  tokens: Token[];
  comments: Array<[start: number, end: number]>;
}

// After these keywords an expression starts, so a '/' opens a regular expression literal.
const REGEX_AFTER_KEYWORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else',
  'yield', 'await',
]);

const ID_START = /[\p{ID_Start}$_]/u;
const ID_PART = /[\p{ID_Continue}$\u200c\u200d]/u;

function lex(source: string): Lexed {
  const tokens: Token[] = [];
  const comments: Array<[number, number]> = [];
  const n = source.length;
  let i = 0;
  let line = 1;
  let regexAllowed = true;
  let braceDepth = 0;
  const templateDepths: number[] = []; // brace depth at each open `${`

  const push = (kind: TokenKind, value: string, start: number, startLine: number, literal = false): void => {
    tokens.push({ kind, value, literal, start, end: i, line: startLine });
  };

  // Reads template characters from i (just after '`' or the '}' closing a substitution) up to the closing
  // '`' or the next '${'. Returns true when the template ended.
  const templateChunk = (): boolean => {
    while (i < n) {
      const c = source[i];
      if (c === '\\') { i += 2; continue; }
      if (c === '\n') line++;
      if (c === '`') { i++; return true; }
      if (c === '$' && source[i + 1] === '{') { i += 2; return false; }
      i++;
    }
    return true;
  };

  if (source.startsWith('#!')) while (i < n && source[i] !== '\n') i++;

  while (i < n) {
    const c = source[i];
    const start = i;
    const startLine = line;
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\ufeff' || c === '\u00a0') {
      i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '/') {
      while (i < n && source[i] !== '\n') i++;
      comments.push([start, i]);
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const close = source.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
      for (let k = start; k < i; k++) if (source[k] === '\n') line++;
      comments.push([start, i]);
      continue;
    }
    if (c === '"' || c === "'") {
      // An unterminated string ends at the end of its line, which bounds the damage of any misreading.
      let value = '';
      i++;
      while (i < n && source[i] !== c && source[i] !== '\n') {
        if (source[i] === '\\') { value += source[i + 1] ?? ''; i += 2; continue; }
        value += source[i++];
      }
      if (source[i] === c) i++;
      push('string', value, start, startLine, true);
      regexAllowed = false;
      continue;
    }
    if (c === '`') {
      i++;
      const ended = templateChunk();
      if (ended) {
        push('template', source.slice(start + 1, i - 1), start, startLine, true);
        regexAllowed = false;
      } else {
        push('template', '', start, startLine);
        templateDepths.push(braceDepth);
        regexAllowed = true;
      }
      continue;
    }
    if (c === '}' && templateDepths.length > 0 && templateDepths[templateDepths.length - 1] === braceDepth) {
      i++;
      const ended = templateChunk();
      push('template', '', start, startLine);
      if (ended) {
        templateDepths.pop();
        regexAllowed = false;
      } else {
        regexAllowed = true;
      }
      continue;
    }
    if (ID_START.test(c) || c === '\\') {
      i++;
      while (i < n && (ID_PART.test(source[i]) || source[i] === '\\')) i++;
      const value = source.slice(start, i);
      push('name', value, start, startLine);
      regexAllowed = REGEX_AFTER_KEYWORD.has(value) && tokens[tokens.length - 2]?.value !== '.';
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(source[i + 1] ?? ''))) {
      i++;
      while (i < n && /[0-9A-Za-z_.]/.test(source[i])) i++;
      push('number', '', start, startLine);
      regexAllowed = false;
      continue;
    }
    if (c === '/' && regexAllowed) {
      // A regular expression literal ends on its own line; if no closing '/' is found there, the '/'
      // was a division after all.
      let j = i + 1;
      let inClass = false;
      let closed = false;
      while (j < n && source[j] !== '\n') {
        const d = source[j];
        if (d === '\\') { j += 2; continue; }
        if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) { closed = true; break; }
        j++;
      }
      if (closed) {
        i = j + 1;
        while (i < n && ID_PART.test(source[i])) i++;
        push('regex', '', start, startLine);
        regexAllowed = false;
        continue;
      }
    }
    i++;
    if (c === '{') braceDepth++;
    else if (c === '}') braceDepth--;
    push('punct', c, start, startLine);
    regexAllowed = c !== ')' && c !== ']';
  }
  return { tokens, comments };
}

// The source with every comment replaced by spaces (line breaks kept, so offsets and line numbers
// stay the same). Strings, template literals and regular expressions are left as they are.
export function stripComments(source: string): string {
  const { comments } = lex(source);
  let out = '';
  let at = 0;
  for (const [start, end] of comments) {
    out += source.slice(at, start) + source.slice(start, end).replace(/[^\n]/g, ' ');
    at = end;
  }
  return out + source.slice(at);
}

// ---------------------------------------------------------------------------------------------------
// Imports of one file

export type ImportKind = 'import' | 'side-effect' | 're-export' | 'dynamic';

export interface ImportRef {
  specifier: string;
  kind: ImportKind;
  // `import type ...` or `export type ... from` (it still couples the two folders).
  typeOnly: boolean;
  // Line of the `import`/`export` keyword (1-based).
  line: number;
  // The statement from its keyword through the specifier, comments removed, whitespace collapsed.
  text: string;
}

// Every import of a module source: static `import ... from`, `import '...'`, `export ... from`, and
// `import('...')` with a literal specifier (in code or in a type). Imports in comments and strings
// are not imports; `import(expr)` with a computed specifier cannot be resolved and is skipped.
export function extractImports(source: string): ImportRef[] {
  const { tokens } = lex(source);
  const stripped = stripComments(source);
  const refs: ImportRef[] = [];
  const isPunct = (t: Token | undefined, p: string): boolean => t?.kind === 'punct' && t.value === p;
  const isName = (t: Token | undefined, v: string): boolean => t?.kind === 'name' && t.value === v;
  const isSpecifier = (t: Token | undefined): t is Token =>
    t !== undefined && (t.kind === 'string' || t.kind === 'template') && t.literal;
  const add = (kw: Token, spec: Token, kind: ImportKind, typeOnly: boolean, end = spec.end): void => {
    refs.push({
      specifier: spec.value,
      kind,
      typeOnly,
      line: kw.line,
      text: stripped.slice(kw.start, end).replace(/\s+/g, ' '),
    });
  };
  // Index of the '}' matching the '{' at `open`, or -1.
  const matching = (open: number): number => {
    let depth = 0;
    for (let j = open; j < tokens.length; j++) {
      if (isPunct(tokens[j], '{')) depth++;
      else if (isPunct(tokens[j], '}') && --depth === 0) return j;
    }
    return -1;
  };

  for (let k = 0; k < tokens.length; k++) {
    const kw = tokens[k];
    if (kw.kind !== 'name' || (kw.value !== 'import' && kw.value !== 'export')) continue;
    if (isPunct(tokens[k - 1], '.')) continue; // a property named import/export
    const next = tokens[k + 1];

    if (kw.value === 'import') {
      if (isPunct(next, '(')) {
        const spec = tokens[k + 2];
        const after = tokens[k + 3];
        if (isSpecifier(spec) && (isPunct(after, ')') || isPunct(after, ','))) {
          add(kw, spec, 'dynamic', false, isPunct(after, ')') ? after.end : spec.end);
        }
        continue;
      }
      if (isPunct(next, '.')) continue; // import.meta
      if (isSpecifier(next)) {
        add(kw, next, 'side-effect', false);
        continue;
      }
      // import [type] clause from 'x': the clause is names, '*', 'as', ',' and one {...} list.
      const typeOnly = isName(next, 'type') && !(isName(tokens[k + 2], 'from') && isSpecifier(tokens[k + 3]));
      for (let j = k + 1; j < tokens.length; j++) {
        const t = tokens[j];
        if (isPunct(t, '{')) {
          const close = matching(j);
          if (close < 0) break;
          j = close;
          continue;
        }
        if (isName(t, 'from') && isSpecifier(tokens[j + 1])) {
          add(kw, tokens[j + 1], 'import', typeOnly);
          break;
        }
        if (t.kind === 'name' || isPunct(t, ',') || isPunct(t, '*')) continue;
        break; // `;`, `=` (import x = require(...)), or anything else that is not an import clause
      }
      continue;
    }

    // export [type] * [as name] from 'x' | export [type] { ... } from 'x'
    const typeOnly = isName(next, 'type');
    let j = typeOnly ? k + 2 : k + 1;
    if (isPunct(tokens[j], '*')) {
      j++;
      if (isName(tokens[j], 'as')) j += 2;
    } else if (isPunct(tokens[j], '{')) {
      const close = matching(j);
      if (close < 0) continue;
      j = close + 1;
    } else {
      continue;
    }
    if (isName(tokens[j], 'from') && isSpecifier(tokens[j + 1])) add(kw, tokens[j + 1], 're-export', typeOnly);
  }
  return refs;
}

// ---------------------------------------------------------------------------------------------------
// Imports across a source tree

// Folder name used for files that lie directly in the root (they belong to no folder).
export const ROOT_FOLDER = '.';

export interface SourceImport extends ImportRef {
  // Importing file and imported module, as posix paths relative to the source root.
  file: string;
  target: string;
  fromFolder: string;
  toFolder: string;
}

export interface SourceTree {
  // Source files, posix paths relative to the root, sorted.
  files: string[];
  // Relative imports that resolve inside the root, in file then line order.
  imports: SourceImport[];
}

const SOURCE_FILE = /\.(?:[cm]?ts|tsx|[cm]?js|jsx)$/;

// The folder of a root-relative path: its first segment, or ROOT_FOLDER for a file in the root itself.
export function folderOf(path: string): string {
  const slash = path.indexOf('/');
  return slash < 0 ? ROOT_FOLDER : path.slice(0, slash);
}

// Analyses sources given in memory: path (posix, relative to the root) -> text. Package imports and
// relative imports that leave the root are dropped.
export function analyzeSources(sources: ReadonlyMap<string, string> | Record<string, string>): SourceTree {
  const entries = sources instanceof Map ? [...sources] : Object.entries(sources);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const imports: SourceImport[] = [];
  for (const [file, text] of entries) {
    for (const ref of extractImports(text)) {
      const spec = ref.specifier;
      if (!spec.startsWith('./') && !spec.startsWith('../') && spec !== '.' && spec !== '..') continue;
      const target = posix.normalize(posix.join(posix.dirname(file), spec));
      if (target === '..' || target.startsWith('../')) continue; // outside the root
      imports.push({ ...ref, file, target, fromFolder: folderOf(file), toFolder: folderOf(target) });
    }
  }
  return { files: entries.map(([file]) => file), imports };
}

// Reads every source file under `root` (recursively) and analyses it.
export function analyzeTree(root: string): SourceTree {
  const sources = new Map<string, string>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !SOURCE_FILE.test(entry.name)) continue;
    const full = join(entry.parentPath, entry.name);
    sources.set(relative(root, full).split(sep).join('/'), readFileSync(full, 'utf8'));
  }
  return analyzeSources(sources);
}

// ---------------------------------------------------------------------------------------------------
// Folder graph and cycles

// from folder -> to folder -> the imports making that edge (same-folder imports are not edges).
export type FolderGraph = Map<string, Map<string, SourceImport[]>>;

export function folderGraph(imports: readonly SourceImport[]): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const imp of imports) {
    if (imp.fromFolder === imp.toFolder) continue;
    let out = graph.get(imp.fromFolder);
    if (!out) graph.set(imp.fromFolder, (out = new Map()));
    let edge = out.get(imp.toFolder);
    if (!edge) out.set(imp.toFolder, (edge = []));
    edge.push(imp);
  }
  return graph;
}

// The elementary cycles of the graph, each as a folder path that starts and ends with the same folder,
// starting at its alphabetically first folder (so each cycle is listed once). At most `limit` cycles.
export function findCycles(graph: FolderGraph, limit = 100): string[][] {
  const nodes = [...new Set([...graph.keys(), ...[...graph.values()].flatMap((m) => [...m.keys()])])].sort();
  const cycles: string[][] = [];
  for (const startNode of nodes) {
    // Only paths through folders after startNode, so the cycle is found from its smallest folder.
    const path = [startNode];
    const onPath = new Set(path);
    const walk = (node: string): void => {
      for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
        if (cycles.length >= limit) return;
        if (next === startNode) cycles.push([...path, startNode]);
        else if (next > startNode && !onPath.has(next)) {
          path.push(next);
          onPath.add(next);
          walk(next);
          onPath.delete(next);
          path.pop();
        }
      }
    };
    walk(startNode);
  }
  return cycles;
}

export function describeFolder(folder: string, prefix = 'src/'): string {
  return folder === ROOT_FOLDER ? `${prefix} (files directly in it)` : folder;
}

// One import as `src/a/b.ts:12: import { x } from '../c/d.ts'`.
export function formatImport(imp: SourceImport, prefix = 'src/'): string {
  return `${prefix}${imp.file}:${imp.line}: ${imp.text}`;
}

// A cycle as its folder path plus one example import per edge, e.g.
//   proxy -> transport -> proxy
//     proxy -> transport: src/proxy/proxy.ts:3: import type { Inbound } from '../transport/types.ts'
//     transport -> proxy: src/transport/udp.ts:5: import type { Side } from '../proxy/local-addresses.ts'
export function formatCycle(cycle: readonly string[], graph: FolderGraph, prefix = 'src/'): string {
  const lines = [cycle.map((f) => describeFolder(f, prefix)).join(' -> ')];
  for (let k = 0; k + 1 < cycle.length; k++) {
    const edge = graph.get(cycle[k])?.get(cycle[k + 1]) ?? [];
    const more = edge.length > 1 ? ` (+${edge.length - 1} more)` : '';
    const example = edge[0] ? formatImport(edge[0], prefix) : '?';
    lines.push(`  ${describeFolder(cycle[k], prefix)} -> ${describeFolder(cycle[k + 1], prefix)}: ${example}${more}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Layers

// Lowest layer first; each layer maps its folders to a one-line description.
export type Layers = ReadonlyArray<Readonly<Record<string, string>>>;

// folder -> layer index. Throws if a folder is declared twice.
export function layerIndex(layers: Layers): Map<string, number> {
  const index = new Map<string, number>();
  layers.forEach((layer, level) => {
    for (const folder of Object.keys(layer)) {
      const seen = index.get(folder);
      if (seen !== undefined) throw new Error(`folder "${folder}" is declared in layers ${seen} and ${level}`);
      index.set(folder, level);
    }
  });
  return index;
}

// Folders (and files directly in the root) that the layers do not declare, sorted; a file in the root
// appears as its own path, a folder with a trailing '/'.
export function undeclared(files: readonly string[], layers: Layers): string[] {
  const index = layerIndex(layers);
  const found = new Set<string>();
  for (const file of files) {
    const folder = folderOf(file);
    if (folder === ROOT_FOLDER) found.add(file);
    else if (!index.has(folder)) found.add(`${folder}/`);
  }
  return [...found].sort();
}

export interface LayerViolation {
  import: SourceImport;
  fromLayer: number;
  toLayer: number;
}

// Cross-folder imports that do not go from a higher layer to a lower one (same-layer imports included).
// Imports from or to undeclared folders are left to `undeclared`.
export function layeringViolations(imports: readonly SourceImport[], layers: Layers): LayerViolation[] {
  const index = layerIndex(layers);
  const violations: LayerViolation[] = [];
  for (const imp of imports) {
    if (imp.fromFolder === imp.toFolder) continue;
    const fromLayer = index.get(imp.fromFolder);
    const toLayer = index.get(imp.toFolder);
    if (fromLayer === undefined || toLayer === undefined) continue;
    if (toLayer >= fromLayer) violations.push({ import: imp, fromLayer, toLayer });
  }
  return violations;
}

export function formatViolation(v: LayerViolation, prefix = 'src/'): string {
  const i = v.import;
  const how = v.toLayer === v.fromLayer ? 'same layer' : 'upward';
  return `${formatImport(i, prefix)}\n  ${i.fromFolder} (layer ${v.fromLayer}) -> ${i.toFolder} (layer ${v.toLayer}): ${how}`;
}
