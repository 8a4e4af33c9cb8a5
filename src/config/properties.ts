// Reads Java .properties text the way java.util.Properties.load does, so an lb.properties written
// for the Restcomm balancer means the same thing here. Two deliberate differences, both because
// operators leave invisible characters behind: unescaped trailing whitespace is dropped from
// values, and a leading byte-order mark is ignored instead of becoming part of the first key.

import { ConfigError } from '../core/errors.ts';
import { isSipStackKey } from './keys.ts';

export interface PropertyEntry {
  key: string;
  value: string;
  line: number; // 1-based line where the logical line starts, for error messages
}

export interface ParsedProperties {
  entries: PropertyEntry[]; // one per key, in file order of the value that won
  warnings: string[];       // e.g. duplicate keys
}

// Properties treats only these three as whitespace; a non-breaking space is part of the text.
const WHITESPACE = new Set([' ', '\t', '\f']);

interface LogicalLine {
  text: string;
  line: number;
}

export function parseProperties(text: string): ParsedProperties {
  const warnings: string[] = [];
  // Map order is insertion order; delete-then-set moves an overridden key to its new position.
  const byKey = new Map<string, PropertyEntry>();
  for (const logical of logicalLines(text)) {
    const entry = splitEntry(logical);
    const earlier = byKey.get(entry.key);
    // Restcomm's own files repeat JAIN-SIP stack keys, which siplb ignores anyway: no noise for those.
    if (earlier !== undefined && !isSipStackKey(entry.key)) {
      // Java keeps the last value silently; an operator editing a long file rarely means that.
      warnings.push(
        `duplicate key '${entry.key}' on line ${entry.line} overrides the value from line ${earlier.line}`,
      );
      byKey.delete(entry.key);
    }
    byKey.set(entry.key, entry);
  }
  return { entries: [...byKey.values()], warnings };
}

function* logicalLines(text: string): Generator<LogicalLine> {
  const natural = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  let i = 0;
  while (i < natural.length) {
    const start = i;
    let content = skipLeadingWhitespace(natural[i]);
    i += 1;
    // Comment and blank lines are only recognised at the start of a logical line: a continuation
    // line beginning with '#' is data, and a backslash ending a comment continues nothing.
    if (content === '' || content[0] === '#' || content[0] === '!') continue;
    while (endsWithContinuation(content)) {
      content = content.slice(0, -1);
      if (i >= natural.length) break; // Java drops a backslash that ends the file
      content += skipLeadingWhitespace(natural[i]);
      i += 1;
    }
    yield { text: content, line: start + 1 };
  }
}

function skipLeadingWhitespace(s: string): string {
  let i = 0;
  while (i < s.length && WHITESPACE.has(s[i])) i += 1;
  return s.slice(i);
}

// An odd run of trailing backslashes ends in a line continuation; an even run is escaped backslashes.
function endsWithContinuation(s: string): boolean {
  let count = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === '\\'; i -= 1) count += 1;
  return count % 2 === 1;
}

function splitEntry(logical: LogicalLine): PropertyEntry {
  const { text, line } = logical;
  let keyEnd = 0;
  let valueStart = text.length;
  let hasSeparator = false;
  let escaped = false;
  while (keyEnd < text.length) {
    const c = text[keyEnd];
    if (!escaped && (c === '=' || c === ':')) {
      valueStart = keyEnd + 1;
      hasSeparator = true;
      break;
    }
    if (!escaped && WHITESPACE.has(c)) {
      valueStart = keyEnd + 1;
      break;
    }
    escaped = c === '\\' ? !escaped : false;
    keyEnd += 1;
  }
  // "key = value" and "key value" both work: whitespace, then at most one '=' or ':', then whitespace.
  while (valueStart < text.length) {
    const c = text[valueStart];
    if (!WHITESPACE.has(c)) {
      if (hasSeparator || (c !== '=' && c !== ':')) break;
      hasSeparator = true;
    }
    valueStart += 1;
  }

  const rawKey = text.slice(0, keyEnd);
  const rawValue = text.slice(valueStart);
  const key = unescape(rawKey, false);
  if (typeof key !== 'string') throw malformedEscape(rawKey, rawValue, key.bad, line);
  const value = unescape(rawValue, true);
  if (typeof value !== 'string') throw malformedEscape(key, rawValue, value.bad, line);
  return { key, value, line };
}

function malformedEscape(key: string, value: string, bad: string, line: number): ConfigError {
  return new ConfigError(
    key,
    value,
    `malformed Unicode escape '${bad}' on line ${line} (expected \\u followed by 4 hex digits)`,
  );
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { t: '\t', n: '\n', r: '\r', f: '\f' };

/**
 * Resolves backslash escapes. With trimEnd, trailing whitespace is dropped unless it was written
 * as an escape: "a\ " keeps its space because the operator asked for it explicitly.
 */
function unescape(s: string, trimEnd: boolean): string | { bad: string } {
  let out = '';
  let keepLength = 0; // length of `out` up to the last character that must survive trimming
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      i += 1;
      if (!WHITESPACE.has(c)) keepLength = out.length;
      continue;
    }
    const next = s[i + 1];
    if (next === 'u') {
      const hex = s.slice(i + 2, i + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) return { bad: s.slice(i, i + 6) };
      out += String.fromCharCode(parseInt(hex, 16));
      i += 6;
    } else {
      out += SIMPLE_ESCAPES[next] ?? next;
      i += 2;
    }
    keepLength = out.length;
  }
  return trimEnd ? out.slice(0, keepLength) : out;
}
