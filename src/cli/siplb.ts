#!/usr/bin/env node
// siplb [path/to/lb.properties] [--log-level error|warn|info|debug]
// Exit codes: 0 after SIGTERM/SIGINT, 1 when a socket cannot be bound, 2 for a bad command line
// or configuration (one line on stderr naming the key, the value and the reason).

import { startBalancer } from '../wiring/balancer.ts';
import { defaultConfig, loadConfigFile } from '../config/load.ts';
import type { LoadedConfig } from '../config/types.ts';
import { SiplbError } from '../core/errors.ts';
import { createLifecycleLogger, createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from '../core/log.ts';

const USAGE = 'usage: siplb [path/to/lb.properties] [--log-level error|warn|info|debug]';

function parseArgs(argv: string[]): { file: string | null; level: LogLevel } {
  let file: string | null = null;
  let level = process.env.LOG_LEVEL ?? 'info';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--log-level') level = argv[++i] ?? '';
    else if (a.startsWith('--log-level=')) level = a.slice('--log-level='.length);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (a.startsWith('-')) fail(`unknown option ${a}; ${USAGE}`);
    else if (file === null) file = a;
    else fail(`only one configuration file may be given; ${USAGE}`);
  }
  if (!isLogLevel(level)) fail(`invalid log level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  return { file, level };
}

function fail(line: string, code = 2): never {
  process.stderr.write(`siplb: ${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const { file, level } = parseArgs(process.argv.slice(2));
  let loaded: LoadedConfig;
  try {
    loaded = file === null ? { config: defaultConfig(), warnings: [], infos: [] } : loadConfigFile(file);
  } catch (err) {
    if (err instanceof SiplbError) fail(err.message);
    throw err;
  }
  const log = createLogger(level);
  for (const line of loaded.infos) log.info(line);
  for (const line of loaded.warnings) log.warn(line);
  const cfg = loaded.config;
  let balancer;
  try {
    balancer = await startBalancer(cfg, log);
  } catch (err) {
    if (err instanceof SiplbError) fail(err.message, err.code === 'ERR_CONFIG' ? 2 : 1);
    throw err;
  }
  const lifecycle = createLifecycleLogger();
  lifecycle.info({
    external: `${cfg.externalHost}:${cfg.externalPort} ${cfg.externalTransports.join('/')}`,
    internal: cfg.internalPort === null ? 'same as external' : `${cfg.internalHost}:${cfg.internalPort} ${cfg.internalTransports.join('/')}`,
    heartbeat: balancer.heartbeatPort === null ? 'off (port busy)' : `${cfg.internalHost}:${balancer.heartbeatPort}`,
    healthChecks: cfg.healthCheckInterval > 0 ? `OPTIONS every ${cfg.healthCheckInterval} ms to silent nodes` : 'off',
    algorithm: balancer.algorithm.name,
    nodes: balancer.cluster().selectable.map((n) => n.id),
    config: file ?? '(built-in defaults)',
  }, 'siplb ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    lifecycle.info({ signal, stats: balancer.stats.toJSON() }, 'siplb stopping');
    balancer.close().then(() => process.exit(0), () => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`siplb: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
