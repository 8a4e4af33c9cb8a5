// The heartbeat token of siplb-node and siplb-demo-node: from --token-file or
// SIPLB_HEARTBEAT_TOKEN, refused (UsageError, exit 2) when unusable, never quoted in the message.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { agentOptionsFromArgs, agentToken, TOKEN_ENV } from '../../src/cli/agent-options.ts';
import { UsageError } from '../../src/core/errors.ts';

const TOKEN = 'cli-token-0123456789abcdef';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tokenFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-agent-options-'));
  dirs.push(dir);
  const file = join(dir, 'token');
  writeFileSync(file, text);
  return file;
}

test('no token anywhere: none is sent', () => {
  assert.equal(agentToken({}, {}), undefined);
  const opts = agentOptionsFromArgs({ balancers: '127.0.0.1:2610' }, { ip: '127.0.0.1', udpPort: 5060 }, pino({ level: 'silent' }), true, {});
  assert.equal(opts?.token, undefined);
});

test(`${TOKEN_ENV}: taken as it is`, () => {
  assert.equal(agentToken({}, { [TOKEN_ENV]: TOKEN }), TOKEN);
  const opts = agentOptionsFromArgs({ balancers: '127.0.0.1:2610' }, { ip: '127.0.0.1', udpPort: 5060 }, pino({ level: 'silent' }), true, { [TOKEN_ENV]: TOKEN });
  assert.equal(opts?.token, TOKEN);
});

test('--token-file: read without its final line end, and read again on each call (a rotation rewrites it)', () => {
  const file = tokenFile(`${TOKEN}\n`);
  const source = agentToken({ 'token-file': file }, {});
  assert.equal(typeof source, 'function');
  assert.equal((source as () => string)(), TOKEN);
  writeFileSync(file, 'rotated-token-0123456789\r\n');
  assert.equal((source as () => string)(), 'rotated-token-0123456789');
});

const refused: { name: string; values: () => Record<string, string>; env: Record<string, string>; message: RegExp }[] = [
  { name: 'both --token-file and the environment', values: () => ({ 'token-file': tokenFile(TOKEN) }), env: { [TOKEN_ENV]: TOKEN }, message: /either with --token-file or in SIPLB_HEARTBEAT_TOKEN/ },
  { name: 'a missing token file', values: () => ({ 'token-file': '/nonexistent/siplb/token' }), env: {}, message: /--token-file "\/nonexistent\/siplb\/token": cannot read the token file: ENOENT/ },
  { name: 'a short token in the file', values: () => ({ 'token-file': tokenFile('short-secret\n') }), env: {}, message: /the token must be at least 16 characters long \(got 12\)/ },
  { name: 'a short token in the environment', values: () => ({}), env: { [TOKEN_ENV]: 'short-secret' }, message: /SIPLB_HEARTBEAT_TOKEN: the token must be at least 16/ },
  { name: 'a token with spaces in the environment', values: () => ({}), env: { [TOKEN_ENV]: 'correct horse battery staple' }, message: /visible ASCII/ },
];
for (const c of refused) {
  test(`refused: ${c.name} (UsageError, the token not quoted)`, () => {
    const values = c.values();
    assert.throws(() => agentToken(values, c.env), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, c.message);
      assert.ok(!err.message.includes('short-secret') && !err.message.includes(TOKEN) && !err.message.includes('horse'), err.message);
      return true;
    });
  });
}
