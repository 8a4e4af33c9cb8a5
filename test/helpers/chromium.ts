// Debian's Chromium for the browser tests (SIP.js over WebSocket, the dashboard): installed on
// demand with apt-get (tests run as root in CI images), else a one-line instruction; launched
// headless through playwright-core with a fresh profile that is removed with the context, and
// with the flags this sandbox needs (no background networking: its connections are refused).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { registerCleanup } from '../e2e/harness/children.ts';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const HEADLESS_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
] as const;

export function ensureChromium(): void {
  if (existsSync(CHROMIUM_PATH)) return;
  const res = spawnSync('apt-get', ['install', '-y', 'chromium'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  if (res.status !== 0 || !existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing and 'apt-get install -y chromium' failed (status ${res.status}): run 'apt-get update && apt-get install -y chromium' as root`);
  }
}

export interface LaunchOptions {
  /** Flags besides HEADLESS_ARGS. */
  readonly extraArgs?: readonly string[];
  readonly ignoreHTTPSErrors?: boolean;
  readonly viewport?: { width: number; height: number };
  /** Bound on the launch; default 30 000 ms. */
  readonly timeoutMs?: number;
}

export interface LaunchedChromium {
  readonly context: BrowserContext;
  /** Closes the browser and removes its profile; idempotent. */
  close(): Promise<void>;
}

export async function launchChromium(opts: LaunchOptions = {}): Promise<LaunchedChromium> {
  ensureChromium();
  const profileDir = mkdtempSync(join(tmpdir(), 'siplb-chromium-'));
  const unregister = registerCleanup(() => rmSync(profileDir, { recursive: true, force: true }));
  let context: BrowserContext;
  try {
    // A persistent context is how playwright takes our own --user-data-dir (a fresh temp dir).
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM_PATH, headless: true, args: [...HEADLESS_ARGS, ...(opts.extraArgs ?? [])],
      timeout: opts.timeoutMs ?? 30_000,
      ...(opts.ignoreHTTPSErrors === undefined ? {} : { ignoreHTTPSErrors: opts.ignoreHTTPSErrors }),
      ...(opts.viewport === undefined ? {} : { viewport: opts.viewport }),
    });
  } catch (err) {
    rmSync(profileDir, { recursive: true, force: true });
    unregister();
    throw new Error(`could not launch ${CHROMIUM_PATH}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let closed: Promise<void> | null = null;
  return {
    context,
    close() {
      closed ??= context.close().catch(() => undefined).then(() => {
        rmSync(profileDir, { recursive: true, force: true });
        unregister();
      });
      return closed;
    },
  };
}
