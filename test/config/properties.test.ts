import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProperties } from '../../src/config/properties.ts';
import { ConfigError, ERROR_CODES } from '../../src/core/errors.ts';

// [key, value, line]
type Row = [string, string, number];

function rows(text: string): Row[] {
  return parseProperties(text).entries.map((e): Row => [e.key, e.value, e.line]);
}

const cases: { name: string; input: string; expected: Row[] }[] = [
  // separators
  { name: 'key=value', input: 'host=127.0.0.1', expected: [['host', '127.0.0.1', 1]] },
  { name: 'key: value', input: 'host: 127.0.0.1', expected: [['host', '127.0.0.1', 1]] },
  { name: 'key value (space separator)', input: 'host 127.0.0.1', expected: [['host', '127.0.0.1', 1]] },
  { name: 'key<TAB>value', input: 'host\t127.0.0.1', expected: [['host', '127.0.0.1', 1]] },
  { name: 'key = value (spaces around =)', input: 'host   =   10.0.0.1', expected: [['host', '10.0.0.1', 1]] },
  { name: 'key : value (spaces around :)', input: 'host : 10.0.0.1', expected: [['host', '10.0.0.1', 1]] },
  { name: 'only the first separator splits', input: 'a=b=c:d', expected: [['a', 'b=c:d', 1]] },
  { name: 'colon first', input: 'a:b=c', expected: [['a', 'b=c', 1]] },
  { name: 'second = after whitespace belongs to the value', input: 'a = = b', expected: [['a', '= b', 1]] },
  { name: 'whitespace then = then value', input: 'a \t= b', expected: [['a', 'b', 1]] },
  { name: 'key alone has an empty value', input: 'lonely', expected: [['lonely', '', 1]] },
  { name: 'key= has an empty value', input: 'empty=', expected: [['empty', '', 1]] },
  { name: 'key = followed by spaces has an empty value', input: 'empty =   ', expected: [['empty', '', 1]] },
  { name: 'leading whitespace before the key is ignored', input: '  \t\fhost=1.2.3.4', expected: [['host', '1.2.3.4', 1]] },
  { name: 'empty key', input: '=value', expected: [['', 'value', 1]] },

  // trimming
  { name: 'trailing spaces are trimmed', input: 'host=1.2.3.4   ', expected: [['host', '1.2.3.4', 1]] },
  { name: 'trailing tab and form feed are trimmed', input: 'host=1.2.3.4\t\f', expected: [['host', '1.2.3.4', 1]] },
  { name: 'inner whitespace is kept', input: 'name=SMPP Load Balancer', expected: [['name', 'SMPP Load Balancer', 1]] },
  { name: 'escaped trailing space is kept', input: 'a=x\\ ', expected: [['a', 'x ', 1]] },
  { name: 'escaped trailing space then plain spaces', input: 'a=x\\   ', expected: [['a', 'x ', 1]] },
  { name: 'escaped trailing tab is kept', input: 'a=x\\t  ', expected: [['a', 'x\t', 1]] },
  { name: 'non-breaking space is not whitespace', input: 'a=x\u00a0', expected: [['a', 'x\u00a0', 1]] },

  // comments and blank lines
  {
    name: '# and ! comments, blank and whitespace-only lines',
    input: '# comment\n! also a comment\n\n   \t\n  # indented comment\nhost=1.2.3.4\n',
    expected: [['host', '1.2.3.4', 6]],
  },
  { name: '# inside a value is data', input: 'a=b#c', expected: [['a', 'b#c', 1]] },
  { name: 'comment ending in a backslash continues nothing', input: '# note \\\nhost=1.2.3.4', expected: [['host', '1.2.3.4', 2]] },

  // line endings
  { name: 'CRLF line endings', input: 'a=1\r\nb=2\r\n', expected: [['a', '1', 1], ['b', '2', 2]] },
  { name: 'CR line endings', input: 'a=1\rb=2', expected: [['a', '1', 1], ['b', '2', 2]] },
  { name: 'byte-order mark is ignored', input: '\uFEFFhost=1.2.3.4', expected: [['host', '1.2.3.4', 1]] },

  // continuations
  {
    name: 'continuation drops leading whitespace of the next line',
    input: 'nodes=10.0.0.1:5080,\\\n      10.0.0.2:5080\nnext=1',
    expected: [['nodes', '10.0.0.1:5080,10.0.0.2:5080', 1], ['next', '1', 3]],
  },
  {
    name: 'continuation over three lines, line number is the first',
    input: '\n\nkey=a\\\n  b\\\n  c',
    expected: [['key', 'abc', 3]],
  },
  { name: 'continuation line starting with # is data', input: 'a=x\\\n  #y', expected: [['a', 'x#y', 1]] },
  { name: 'continuation with CRLF', input: 'a=x\\\r\n  y\r\n', expected: [['a', 'xy', 1]] },
  { name: 'continuation inside the key', input: 'ho\\\n  st=1', expected: [['host', '1', 1]] },
  { name: 'blank continuation line ends the logical line', input: 'a=x\\\n\nb=y', expected: [['a', 'x', 1], ['b', 'y', 3]] },
  { name: 'backslash at end of file is dropped', input: 'a=x\\', expected: [['a', 'x', 1]] },
  { name: 'two trailing backslashes are one escaped backslash', input: 'a=x\\\\\nb=y', expected: [['a', 'x\\', 1], ['b', 'y', 2]] },
  { name: 'three trailing backslashes: escaped backslash then continuation', input: 'a=x\\\\\\\ny', expected: [['a', 'x\\y', 1]] },

  // escapes
  { name: '\\t \\n \\r \\f escapes', input: 'a=1\\t2\\n3\\r4\\f5', expected: [['a', '1\t2\n3\r4\f5', 1]] },
  { name: '\\\\ is a backslash', input: 'path=C:\\\\lb\\\\conf', expected: [['path', 'C:\\lb\\conf', 1]] },
  { name: '\\= \\: \\# \\! in a value', input: 'a=\\=\\:\\#\\!', expected: [['a', '=:#!', 1]] },
  { name: 'escaped = inside a key', input: 'a\\=b=c', expected: [['a=b', 'c', 1]] },
  { name: 'escaped : inside a key', input: 'a\\:b:c', expected: [['a:b', 'c', 1]] },
  { name: 'escaped space inside a key', input: 'a\\ b c', expected: [['a b', 'c', 1]] },
  { name: 'escaped backslash before = still separates', input: 'a\\\\=b', expected: [['a\\', 'b', 1]] },
  { name: 'unknown escape keeps the character', input: 'a=\\q\\z', expected: [['a', 'qz', 1]] },
  { name: 'escaped # at the start of a line is a key', input: '\\#notcomment=1', expected: [['#notcomment', '1', 1]] },

  // unicode
  { name: '\\uXXXX lower-case hex', input: 'a=caf\\u00e9', expected: [['a', 'café', 1]] },
  { name: '\\uXXXX upper-case hex', input: 'a=caf\\u00E9', expected: [['a', 'café', 1]] },
  { name: '\\uXXXX in a key', input: '\\u0068ost=1', expected: [['host', '1', 1]] },
  { name: 'surrogate pair from two escapes', input: 'a=\\ud83d\\ude00', expected: [['a', '😀', 1]] },
  { name: 'escaped space via \\u0020 survives trimming', input: 'a=x\\u0020', expected: [['a', 'x ', 1]] },
  { name: 'raw UTF-8 passes through', input: 'a=naïve ☎', expected: [['a', 'naïve ☎', 1]] },

  // duplicates
  {
    name: 'later duplicate overrides and takes the later position',
    input: 'a=1\nb=2\na=3',
    expected: [['b', '2', 2], ['a', '3', 3]],
  },
];

for (const c of cases) {
  test(`properties: ${c.name}`, () => {
    assert.deepEqual(rows(c.input), c.expected);
  });
}

const warningCases: { name: string; input: string; expected: string[] }[] = [
  { name: 'no duplicates, no warnings', input: 'a=1\nb=2', expected: [] },
  {
    name: 'duplicate key warns with both lines',
    input: 'a=1\n\nb=2\na=3',
    expected: ["duplicate key 'a' on line 4 overrides the value from line 1"],
  },
  {
    name: 'three occurrences warn twice, each against the previous one',
    input: 'a=1\na=2\na=3',
    expected: [
      "duplicate key 'a' on line 2 overrides the value from line 1",
      "duplicate key 'a' on line 3 overrides the value from line 2",
    ],
  },
  {
    name: 'keys equal after unescaping are duplicates',
    input: 'host=1\n\\u0068ost=2',
    expected: ["duplicate key 'host' on line 2 overrides the value from line 1"],
  },
];

for (const c of warningCases) {
  test(`properties warnings: ${c.name}`, () => {
    assert.deepEqual(parseProperties(c.input).warnings, c.expected);
  });
}

const malformed: { name: string; input: string; key: string; value: string; line: number }[] = [
  { name: 'non-hex digit in value', input: 'a=\\u12g4', key: 'a', value: '\\u12g4', line: 1 },
  { name: 'too few digits at end of value', input: '\n\nb=x\\u12', key: 'b', value: 'x\\u12', line: 3 },
  { name: 'malformed escape in key reports the raw key', input: 'k\\uZZZZ=v', key: 'k\\uZZZZ', value: 'v', line: 1 },
];

for (const c of malformed) {
  test(`properties malformed \\u: ${c.name}`, () => {
    assert.throws(
      () => parseProperties(c.input),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, ERROR_CODES.config);
        assert.equal(err.key, c.key);
        assert.equal(err.value, c.value);
        assert.match(err.reason, new RegExp(`malformed Unicode escape .* on line ${c.line} `));
        return true;
      },
    );
  });
}

test('properties: empty text gives no entries and no warnings', () => {
  assert.deepEqual(parseProperties(''), { entries: [], warnings: [] });
});
