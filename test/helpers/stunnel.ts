// stunnel4 as a TLS adapter for tools that speak plain TCP only (Debian's sipp is built without
// TLS): in client mode it accepts plain TCP on loopback and carries each connection over TLS to a
// TLS server (siplb's TLS listener); in server mode it terminates TLS on loopback and carries each
// connection as plain TCP to a TCP server (a sipp UAS standing in for a TLS node). One TCP
// connection in is one TLS connection out, so a sipp using a single TCP socket (-t t1) is a single
// TLS client as far as the far side can tell.
//
// stunnel runs in the foreground as our own child (children.ts: SIGKILLed by pid if the test
// process dies), logs to its stderr, and keeps its configuration and pid file in a temp dir that
// stop() (or the exit of this process) removes. Also: a self-signed certificate for loopback.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureOutput, LineBuffer, registerCleanup, spawnOwned, terminate } from '../e2e/harness/children.ts';
import { allocatePort, releasePorts } from '../e2e/harness/ports.ts';
import { allBound } from '../e2e/harness/procnet.ts';

export const STUNNEL_BIN = '/usr/bin/stunnel4';
const START_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 2_000;

export interface StunnelClientOptions {
  mode: 'client';
  /** TLS server to connect to: an IPv4 literal, an IPv6 literal (no brackets) or a name. */
  connectHost: string;
  connectPort: number;
  /**
   * PEM file the server's certificate must chain to; the certificate must then also name
   * connectHost (IP SAN for a literal, DNS SAN for a name). Absent: no verification at all.
   */
  caFile?: string;
}

export interface StunnelServerOptions {
  mode: 'server';
  /** Plain TCP server each decrypted connection is carried to. */
  connectHost: string;
  connectPort: number;
  certFile: string;
  keyFile: string;
}

export type StunnelOptions = (StunnelClientOptions | StunnelServerOptions) & {
  /** Loopback address to accept on; default 127.0.0.1. */
  acceptHost?: string;
  /** Port to accept on; default a fresh one from allocatePort (released again by stop()). */
  acceptPort?: number;
};

export interface Stunnel {
  readonly pid: number;
  /** The accept port (plain TCP in client mode, TLS in server mode). */
  readonly port: number;
  /** stunnel's log lines so far (its stderr), for failure messages. */
  logs(): string[];
  /** SIGTERM, SIGKILL after 2 s; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface SelfSignedCert {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Removes the files (also done when this process exits). */
  remove(): void;
}

let installChecked = false;

/**
 * stunnel4 must be there: install it when missing (we run as root in CI containers); otherwise
 * fail with the one-line fix rather than a spawn ENOENT deep inside a test.
 */
function ensureStunnelInstalled(): void {
  if (installChecked) return;
  if (!existsSync(STUNNEL_BIN)) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', '-qq', 'stunnel4'], { stdio: 'ignore', env, timeout: 300_000 });
    if (r.status !== 0) {
      // A fresh container has no package lists yet.
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
      r = spawnSync('apt-get', ['install', '-y', '-qq', 'stunnel4'], { stdio: 'ignore', env, timeout: 300_000 });
    }
    if (!existsSync(STUNNEL_BIN)) throw new Error('stunnel4 is needed for the TLS tests: apt-get install -y stunnel4');
  }
  installChecked = true;
}

/** stunnel's "[host:]port": it splits at the last colon, so an IPv6 literal goes in bare. */
function endpoint(host: string, port: number): string {
  return `${host}:${port}`;
}

function configText(opts: StunnelOptions, acceptHost: string, acceptPort: number, pidFile: string): string {
  const lines = [
    'foreground = yes',
    `pid = ${pidFile}`,
    // notice: one line per accepted and closed connection, enough to explain a failed call.
    'debug = 5',
    'syslog = no',
    '',
    '[siplb-test]',
    `accept = ${endpoint(acceptHost, acceptPort)}`,
    `connect = ${endpoint(opts.connectHost, opts.connectPort)}`,
    // No lingering: the test reads a closed connection as closed at once.
    'TIMEOUTclose = 0',
  ];
  if (opts.mode === 'client') {
    lines.push('client = yes');
    if (opts.caFile === undefined) {
      lines.push('verifyChain = no', 'verifyPeer = no');
    } else {
      lines.push('verifyChain = yes', `CAfile = ${opts.caFile}`);
      lines.push(isIP(opts.connectHost) !== 0 ? `checkIP = ${opts.connectHost}` : `checkHost = ${opts.connectHost}`);
    }
  } else {
    lines.push(`cert = ${opts.certFile}`, `key = ${opts.keyFile}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Starts stunnel4 and resolves once it listens on the accept port. Rejects with stunnel's own
 * output if it exits first (bad config, port taken) or is not listening within 5 s.
 */
export async function startStunnel(opts: StunnelOptions): Promise<Stunnel> {
  ensureStunnelInstalled();
  const acceptHost = opts.acceptHost ?? '127.0.0.1';
  const ownPort = opts.acceptPort === undefined;
  const port = opts.acceptPort ?? await allocatePort(acceptHost);
  const dir = mkdtempSync(join(tmpdir(), 'siplb-stunnel-'));
  const unregister = registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'stunnel.conf');
  writeFileSync(configFile, configText(opts, acceptHost, port, join(dir, 'stunnel.pid')));

  const owned = spawnOwned(STUNNEL_BIN, [configFile], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const output = new LineBuffer(2_000);
  captureOutput(owned, output);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(owned, 'SIGTERM', STOP_GRACE_MS);
      rmSync(dir, { recursive: true, force: true });
      unregister();
      if (ownPort) releasePorts([port]);
    })();
    return stopping;
  };

  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (owned.hasExited()) {
      const status = await owned.exited.catch((err: unknown) => ({ code: null, signal: null, error: String(err) }));
      await stop();
      throw new Error(`stunnel4 exited at start (${JSON.stringify(status)}); config:\n` +
        `${configText(opts, acceptHost, port, 'stunnel.pid')}output:\n${output.snapshot().join('\n')}`);
    }
    if (allBound(owned.pid, [{ proto: 'tcp', port }])) break;
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`stunnel4 not listening on ${endpoint(acceptHost, port)} within ${START_TIMEOUT_MS} ms; output:\n` +
        output.snapshot().join('\n'));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  return { pid: owned.pid, port, logs: () => output.snapshot(), stop };
}

/**
 * A self-signed certificate and its unencrypted key (PEM) valid for 127.0.0.1, ::1 and
 * localhost, so the same pair serves as server certificate and as the CA that verifies it.
 */
export function makeSelfSignedCert(): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-cert-'));
  const unregister = registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost', '-days', '2',
      '-keyout', keyFile, '-out', certFile,
    ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    unregister();
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
    throw new Error(`openssl could not make a test certificate (install it with: apt-get install -y openssl): ${detail}`);
  }
  return {
    dir,
    certFile,
    keyFile,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      unregister();
    },
  };
}
