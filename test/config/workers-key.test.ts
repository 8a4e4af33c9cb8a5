// The workers key (src/config/keys.ts) as loadConfigText reads it: default, auto, bounds, refused
// values naming key, value and reason; the warning for stream client listeners; a reload refuses
// to change it (src/wiring/reload.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { loadConfigText } from '../../src/config/load.ts';
import { MAX_WORKERS } from '../../src/config/keys.ts';
import { ConfigError } from '../../src/core/errors.ts';

test('workers: default 1, numbers, auto = the cores this process may use', () => {
  assert.equal(loadConfigText('').config.workers, 1);
  assert.equal(loadConfigText('workers=2\n').config.workers, 2);
  assert.equal(loadConfigText(`workers=${MAX_WORKERS}\n`).config.workers, MAX_WORKERS);
  assert.equal(loadConfigText('workers=auto\n').config.workers, Math.min(MAX_WORKERS, availableParallelism()));
  assert.equal(loadConfigText('workers=AUTO\n').config.workers, Math.min(MAX_WORKERS, availableParallelism()));
});

test('workers: refused values name the key, the value and the reason', () => {
  for (const value of ['0', '-1', '1.5', 'two', String(MAX_WORKERS + 1), '0x2']) {
    assert.throws(() => loadConfigText(`workers=${value}\n`), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError for ${value}, got ${String(err)}`);
      assert.equal(err.key, 'workers');
      assert.equal(err.value, value);
      assert.match(err.reason, new RegExp(`auto or an integer from 1 to ${MAX_WORKERS}`));
      return true;
    });
  }
});

test('workers > 1 with stream client listeners: one warning naming them; UDP only or one worker: none', () => {
  const warned = (text: string): string[] => loadConfigText(text).warnings.filter((w) => w.startsWith('workers='));
  const w = warned('workers=2\nexternalTransport=udp,tcp\n');
  assert.equal(w.length, 1);
  assert.match(w[0], /workers=2 with tcp client listeners/);
  assert.deepEqual(warned('workers=2\nexternalTransport=udp\n'), []);
  assert.deepEqual(warned('workers=1\nexternalTransport=udp,tcp\n'), []);
});
