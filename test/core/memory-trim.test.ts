// The memory trim: which mappings it may drop (a table over smaps lines), that it touches only
// those, and, with the real addon in a child process, that RSS falls and the process runs on.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { BUSY_SHARE, droppableMappings, executableMappings, FORCED_TRIM_MS, loadMemoryAddon, MemoryTrim, type MemoryAddon } from '../../src/core/memory-trim.ts';

const EXE = '/opt/node/bin/node';
const ADDON = fileURLToPath(new URL('../../native/build/memory.node', import.meta.url));

/** One smaps entry, as the kernel prints it (only the lines the trim reads, and some it does not). */
function entry(range: string, perms: string, path: string, rss: number, anonymous: number | null): string {
  return [
    `${range} ${perms} 00034000 fe:00 5317189${path === '' ? '' : `                    ${path}`}`,
    `Size:               4096 kB`,
    `Rss:                ${rss} kB`,
    `Pss:                ${rss} kB`,
    ...(anonymous === null ? [] : [`Anonymous:          ${anonymous} kB`]),
    `VmFlags: rd ex mr mw me sd`,
  ].join('\n');
}

describe('which mappings may be dropped', () => {
  const cases: { name: string; perms: string; path: string; rss: number; anonymous: number | null; droppable: boolean }[] = [
    { name: 'the executable\'s code', perms: 'r-xp', path: EXE, rss: 2048, anonymous: 0, droppable: true },
    { name: 'the executable\'s read-only data', perms: 'r--p', path: EXE, rss: 1024, anonymous: 0, droppable: true },
    { name: 'read-only data with relocated pages of its own', perms: 'r--p', path: EXE, rss: 1024, anonymous: 4, droppable: false },
    { name: 'the executable\'s writable data', perms: 'rw-p', path: EXE, rss: 64, anonymous: 0, droppable: false },
    { name: 'a shared mapping of the executable', perms: 'r--s', path: EXE, rss: 64, anonymous: 0, droppable: false },
    { name: 'nothing resident', perms: 'r-xp', path: EXE, rss: 0, anonymous: 0, droppable: false },
    { name: 'no Anonymous line', perms: 'r-xp', path: EXE, rss: 64, anonymous: null, droppable: false },
    { name: 'another file (libc)', perms: 'r-xp', path: '/usr/lib/x86_64-linux-gnu/libc.so.6', rss: 320, anonymous: 0, droppable: false },
    { name: 'a path that only starts like the executable', perms: 'r-xp', path: `${EXE} (deleted)`, rss: 320, anonymous: 0, droppable: false },
    { name: 'anonymous memory', perms: 'r-xp', path: '', rss: 320, anonymous: 0, droppable: false },
    { name: 'the heap', perms: 'rw-p', path: '[heap]', rss: 9000, anonymous: 9000, droppable: false },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.droppable ? 'dropped' : 'left alone'}`, () => {
      // Between two other mappings, as in a real smaps.
      const text = [
        entry('00200000-00300000', 'r--p', '/usr/lib/x86_64-linux-gnu/libm.so.6', 8, 0),
        entry('00400000-00800000', c.perms, c.path, c.rss, c.anonymous),
        entry('00900000-00a00000', 'rw-p', '', 16, 16),
      ].join('\n');
      assert.deepEqual(droppableMappings(executableMappings(text, EXE)).map((m) => m.start), c.droppable ? [0x400000] : []);
    });
  }

  test('executableMappings reads the addresses, permissions and the two fields of each of the executable\'s mappings', () => {
    const text = [
      entry('00400000-00746000', 'r--p', EXE, 384, 0),
      entry('7f397e000000-7f397e100000', 'rw-p', '', 12, 12),
      entry('7f397e580000-7f397e785000', 'r-xp', EXE, 1344, 0),
      entry('7f399d499000-7f399d59a000', 'rw-p', EXE, 12, 12),
      entry('7f399d600000-7f399d700000', 'r-xp', '/usr/lib/libc.so.6', 320, 0),
    ].join('\n');
    assert.deepEqual(executableMappings(text, EXE), [
      { start: 0x400000, end: 0x746000, perms: 'r--p', path: EXE, rssKiB: 384, anonymousKiB: 0 },
      { start: 0x7f397e580000, end: 0x7f397e785000, perms: 'r-xp', path: EXE, rssKiB: 1344, anonymousKiB: 0 },
      { start: 0x7f399d499000, end: 0x7f399d59a000, perms: 'rw-p', path: EXE, rssKiB: 12, anonymousKiB: 12 },
    ]);
  });

  test('a field is read from its own mapping\'s lines, never from the next mapping\'s', () => {
    const noAnonymousLine = entry('00400000-00746000', 'r-xp', EXE, 384, null);
    const text = [noAnonymousLine, entry('00800000-00900000', 'rw-p', '', 64, 0)].join('\n');
    assert.deepEqual(executableMappings(text, EXE).map((m) => m.anonymousKiB), [-1]);
  });

  test('a field on the text\'s last line, with no newline after it, is read whole', () => {
    const text = `00400000-00746000 r-xp 00000000 fe:00 5317189 ${EXE}\nRss:                 384 kB\nAnonymous:            0 kB`;
    assert.deepEqual(executableMappings(text, EXE).map((m) => [m.rssKiB, m.anonymousKiB]), [[384, 0]]);
  });

  test('the real smaps of this process names its executable', () => {
    const text = readFileSync('/proc/self/smaps', 'latin1');
    const mine = executableMappings(text, realpathSync(process.execPath));
    assert.ok(mine.length >= 2, `${mine.length} mappings of ${process.execPath}`);
    assert.ok(mine.every((m) => m.anonymousKiB >= 0 && m.rssKiB >= 0 && m.end > m.start));
    assert.ok(droppableMappings(mine).some((m) => m.perms === 'r-xp'), 'the code is droppable');
  });
});

describe('MemoryTrim with a recording addon', () => {
  const log = pino({ level: 'silent' });
  const smaps = [
    entry('00400000-00746000', 'r--p', EXE, 384, 0),
    entry('0074a000-03044000', 'r-xp', EXE, 27000, 0),
    entry('03201000-06b51000', 'r--p', EXE, 13000, 8),
    entry('06b51000-06b60000', 'rw-p', EXE, 60, 60),
  ].join('\n');

  test('drops exactly the droppable ranges, counts what madvise refuses, and trims malloc', () => {
    const calls: [number, number][] = [];
    const addon: MemoryAddon = {
      dropPages: (start, length) => { calls.push([start, length]); return start === 0x400000 ? 0 : 22; },
      mallocTrim: () => 1,
    };
    const trim = new MemoryTrim({ addon, intervalMs: 60_000, log, executable: EXE, readSmaps: () => smaps });
    const r = trim.trim();
    assert.deepEqual(calls, [[0x400000, 0x346000], [0x74a000, 0x03044000 - 0x74a000]]);
    assert.equal(r.droppedKiB, 384);
    assert.equal(r.refused, 1);
    assert.equal(r.malloc, 1);
    assert.equal(trim.trims, 1);
    assert.equal(trim.droppedKiB, 384);
  });

  test('a refusal that repeats at every trim is warned about once a minute, logged at debug otherwise', async () => {
    const lines: { level: number; msg: string }[] = [];
    const recording = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number; msg: string }); } });
    const addon: MemoryAddon = { dropPages: () => 22, mallocTrim: () => 0 };
    const trim = new MemoryTrim({ addon, intervalMs: 10, log: recording, executable: EXE, readSmaps: () => smaps, busyShare: () => 0 });
    trim.start(0);
    await new Promise((r) => setTimeout(r, 100));
    trim.close();
    const warned = lines.filter((l) => l.level === 40);
    assert.equal(warned.length, 1, JSON.stringify(lines));
    assert.match(warned[0].msg, /madvise refused/);
    assert.ok(lines.filter((l) => l.level === 20 && l.msg === 'memory trim').length >= 2, `${lines.length} lines`);
  });

  test('an unreadable smaps drops nothing and does not throw', () => {
    const calls: number[] = [];
    const addon: MemoryAddon = { dropPages: (s) => { calls.push(s); return 0; }, mallocTrim: () => 0 };
    const trim = new MemoryTrim({ addon, intervalMs: 60_000, log, executable: EXE, readSmaps: () => { throw new Error('EACCES'); } });
    const r = trim.trim();
    assert.deepEqual(calls, []);
    assert.equal(r.droppedKiB, 0);
    assert.equal(r.malloc, 0);
  });

  test('the timer trims on its interval until closed', async () => {
    let trims = 0;
    const addon: MemoryAddon = { dropPages: () => 0, mallocTrim: () => { trims++; return 0; } };
    const trim = new MemoryTrim({ addon, intervalMs: 20, log, executable: EXE, readSmaps: () => smaps, busyShare: () => 0 });
    trim.start();
    await new Promise((r) => setTimeout(r, 150));
    trim.close();
    const seen = trims;
    assert.ok(seen >= 3, `${seen} trims in 150 ms at 20 ms`);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(trims, seen, 'no trim after close()');
  });
});

describe('MemoryTrim waits while the event loop is busy', () => {
  const log = pino({ level: 'silent' });
  const smaps = entry('0074a000-03044000', 'r-xp', EXE, 27000, 0);
  // Each tick: the loop's busy share since the last one, and the clock (ms).
  const cases: { name: string; ticks: [number, number][]; trimmed: boolean[] }[] = [
    { name: 'a quiet loop trims at every tick', ticks: [[0.01, 5_000], [0.0, 10_000], [0.049, 15_000]], trimmed: [true, true, true] },
    { name: 'a busy loop skips', ticks: [[0.3, 5_000], [0.05, 10_000]], trimmed: [false, false] },
    {
      name: 'a busy loop still trims once FORCED_TRIM_MS has passed since the last trim',
      ticks: [[0.5, 5_000], [0.5, FORCED_TRIM_MS - 1], [0.5, FORCED_TRIM_MS], [0.5, FORCED_TRIM_MS + 5_000], [0.01, FORCED_TRIM_MS + 10_000]],
      trimmed: [false, false, true, false, true],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      let i = 0;
      const addon: MemoryAddon = { dropPages: () => 0, mallocTrim: () => 0 };
      const trim = new MemoryTrim({
        addon, intervalMs: 5_000, log, executable: EXE, readSmaps: () => smaps,
        busyShare: () => c.ticks[i][0], now: () => c.ticks[i][1],
      });
      const seen: boolean[] = [];
      for (; i < c.ticks.length; i++) seen.push(trim.tick());
      assert.deepEqual(seen, c.trimmed);
      assert.equal(trim.trims, c.trimmed.filter(Boolean).length);
      assert.equal(trim.skipped, c.trimmed.filter((t) => !t).length);
    });
  }
  test('BUSY_SHARE is 5 % of the loop', () => assert.equal(BUSY_SHARE, 0.05));
});

describe('the addon (native/build/memory.node)', { skip: process.platform !== 'linux' ? 'Linux only' : false }, () => {
  test('is built (npm ci runs native/build.cjs) and loads', () => {
    assert.ok(existsSync(ADDON), 'native/build/memory.node missing: run `node native/build.cjs` (needs cc: apt-get install gcc)');
    const loaded = loadMemoryAddon();
    assert.equal(loaded.problem, null);
  });

  test('dropPages refuses what is not whole pages of a mapping', () => {
    const { addon } = loadMemoryAddon();
    assert.ok(addon !== null);
    const EINVAL = 22;
    const ENOMEM = 12;
    assert.equal(addon.dropPages(0, 4096), EINVAL, 'address 0');
    assert.equal(addon.dropPages(4097, 4096), EINVAL, 'unaligned start');
    assert.equal(addon.dropPages(4096, 100), EINVAL, 'unaligned length');
    assert.equal(addon.dropPages(-4096, 4096), EINVAL, 'negative');
    assert.equal(addon.dropPages(4096.5, 4096), EINVAL, 'fraction');
    assert.equal(addon.dropPages(2 ** 60, 4096), EINVAL, 'beyond a double\'s integers');
    assert.equal((addon.dropPages as (...a: unknown[]) => number)('x', 4096), EINVAL, 'not a number');
    assert.equal((addon.dropPages as (...a: unknown[]) => number)(4096), EINVAL, 'one argument');
    assert.equal(addon.dropPages(4096, 4096), ENOMEM, 'nothing mapped at 4096');
    assert.ok([0, 1, -1].includes(addon.mallocTrim()));
  });

  test('a real trim takes the executable\'s start-up pages out of RSS, and the process runs on', () => {
    // A child process, so that this test runner's own memory is left as it was.
    const script = `
      import { loadMemoryAddon, MemoryTrim } from ${JSON.stringify(new URL('../../src/core/memory-trim.ts', import.meta.url).href)};
      import { readFileSync } from 'node:fs';
      const rssFile = () => Number(/RssFile:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
      const { addon } = loadMemoryAddon();
      const trim = new MemoryTrim({ addon, intervalMs: 60_000, log: { debug() {}, warn() {} } });
      const before = rssFile();
      const r = trim.trim();
      const after = rssFile();
      // Code that ran before runs again, from pages mapped anew.
      const json = JSON.stringify({ before, after, droppedKiB: r.droppedKiB, refused: r.refused, sum: [1, 2, 3].reduce((a, b) => a + b, 0) });
      process.stdout.write(json);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.status, 0, child.stderr);
    const r = JSON.parse(child.stdout) as { before: number; after: number; droppedKiB: number; refused: number; sum: number };
    assert.equal(r.refused, 0);
    assert.equal(r.sum, 6);
    assert.ok(r.droppedKiB > 10 * 1024, `dropped ${r.droppedKiB} KiB of the executable`);
    assert.ok(r.after < r.before - 10 * 1024, `RssFile ${r.before} -> ${r.after} KiB`);
  });
});
