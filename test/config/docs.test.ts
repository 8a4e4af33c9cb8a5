import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configTable, TABLE_BEGIN, TABLE_END } from '../../scripts/config-table.ts';
import { KEYS, SIP_STACK_KEY_PREFIXES } from '../../src/config/keys.ts';

const DOC = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function documentedTable(text: string, file: string): string {
  const begin = text.indexOf(TABLE_BEGIN);
  const end = text.indexOf(TABLE_END);
  assert.ok(begin !== -1 && end > begin, `${file} lacks the config-table markers`);
  return text.slice(begin + TABLE_BEGIN.length, end).replace(/^\r?\n/, '');
}

for (const [file, text] of [['docs/configuration.md', DOC], ['README.md', README]] as const) {
  test(`${file} key table matches scripts/config-table.ts (regenerate: node scripts/config-table.ts --write)`, () => {
    assert.equal(documentedTable(text, file), configTable());
  });
}

test('the generated table has one row per key', () => {
  const rows = configTable().trimEnd().split('\n').slice(2);
  assert.deepEqual(
    rows.map((row) => /^\| `([^`]+)`/.exec(row)?.[1]),
    KEYS.map((spec) => spec.key),
  );
});

test('a | inside a cell is escaped so the row keeps its four columns', () => {
  const nodesRow = configTable().split('\n').find((row) => row.startsWith('| `nodes` |'));
  assert.ok(nodesRow !== undefined);
  assert.ok(nodesRow.includes('udp\\|tcp'));
  assert.equal(nodesRow.split(/(?<!\\)\|/).length, 6);
});

test('every row names the key in both formats: properties name(s) and XML element(s)', () => {
  for (const row of configTable().trimEnd().split('\n').slice(2)) {
    const cells = row.split(/(?<!\\)\|/).map((c) => c.trim());
    assert.match(cells[1], /^`[A-Za-z0-9.-]+`( or `[A-Za-z0-9.-]+`)*$/, row);
    assert.match(cells[2], /^`(<[A-Za-z0-9]+>)+`( or `(<[A-Za-z0-9]+>)+`)*$/, row);
  }
});

for (const prefix of SIP_STACK_KEY_PREFIXES) {
  test(`docs list the ignored SIP-stack prefix ${prefix}*`, () => {
    const section = DOC.slice(DOC.indexOf("## Restcomm keys siplb does not act on"));
    assert.ok(section.includes(`\`${prefix}*\``));
  });
}
