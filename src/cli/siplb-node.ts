#!/usr/bin/env node
// siplb-node: registers a SIP application server (any language, any process) with siplb
// balancers over the heartbeat protocol (docs/heartbeat-protocol.md) and keeps it registered.
// SIGTERM/SIGINT drain the node (`shutdown`), then `stop` it after the grace period and exit 0; a
// second signal sends `stop` at once. Exit code 2 with one stderr line for a bad command line.
//
// The agent options shared with siplb-demo-node (which registers itself the same way) are parsed
// here and exported; main() only runs when this file is the program.

import { parseArgs } from 'node:util';
import type { ParseArgsOptionsConfig } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError } from '../core/errors.ts';
import { createLifecycleLogger, createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from '../core/log.ts';
import { HeartbeatAgent, parseBalancers } from '../node-agent/agent.ts';
import type { HeartbeatAgentOptions, NodeInfo } from '../node-agent/agent.ts';

const USAGE = 'usage: siplb-node --balancers HOST:PORT[;HOST:PORT...] --ip IP (--udp-port N | --tcp-port N) ' +
  '[--tls-port N] [--ws-port N] [--wss-port N] [--http-port N] [--ssl-port N] [--host-name NAME] [--version V] ' +
  '[--jvm-route R] [--interval ms] [--request-timeout ms] [--grace ms] [--log-level error|warn|info|debug]';

/** A command line the program cannot run with; the CLI prints its message on one line, exit 2. */
export class UsageError extends Error {}

/** Options every command that runs a HeartbeatAgent accepts (node:util parseArgs format). */
export const AGENT_ARG_OPTIONS = {
  balancers: { type: 'string' },
  'host-name': { type: 'string' },
  version: { type: 'string' },
  'jvm-route': { type: 'string' },
  'http-port': { type: 'string' },
  'ssl-port': { type: 'string' },
  interval: { type: 'string' },
  'request-timeout': { type: 'string' },
  grace: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type ArgValues = Record<string, string | boolean | undefined>;

/** parseArgs with its errors turned into one-line UsageErrors. */
export function parseCommandLine(argv: string[], options: ParseArgsOptionsConfig): ArgValues {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as ArgValues;
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    throw new UsageError(text.split('\n')[0]);
  }
}

function stringArg(values: ArgValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** An integer flag in [min, max]; undefined when absent. */
export function integerArg(values: ArgValues, name: string, min: number, max: number): number | undefined {
  const v = stringArg(values, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`--${name} ${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
  }
  return Number(v);
}

export function logLevelArg(values: ArgValues): LogLevel {
  const level = stringArg(values, 'log-level') ?? process.env.LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * The agent settings of a command line, for a node whose SIP side is described by `sip`; null
 * when --balancers is absent and `required` is false. Throws UsageError.
 */
export function agentOptionsFromArgs(values: ArgValues, sip: Pick<NodeInfo, 'ip' | 'udpPort' | 'tcpPort' | 'tlsPort' | 'wsPort' | 'wssPort'>,
  logger: Logger, required: boolean): HeartbeatAgentOptions | null {
  const balancers = stringArg(values, 'balancers');
  if (balancers === undefined) {
    if (required) throw new UsageError('--balancers is required');
    return null;
  }
  try {
    parseBalancers(balancers);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`--balancers ${JSON.stringify(balancers)}: ${err.reason}`);
    throw err;
  }
  const node: NodeInfo = {
    ...sip,
    hostName: stringArg(values, 'host-name'),
    version: stringArg(values, 'version'),
    jvmRoute: stringArg(values, 'jvm-route'),
    httpPort: integerArg(values, 'http-port', 1, 65535),
    sslPort: integerArg(values, 'ssl-port', 1, 65535),
  };
  return {
    balancers,
    node,
    intervalMs: integerArg(values, 'interval', 10, 3_600_000),
    requestTimeoutMs: integerArg(values, 'request-timeout', 10, 3_600_000),
    shutdownGraceMs: integerArg(values, 'grace', 0, 86_400_000),
    logger,
  };
}

/**
 * First SIGTERM/SIGINT runs `graceful`, a second one `immediate`; each gets the signal name.
 * Both are expected to end the process themselves.
 */
export function onTerminationSignals(graceful: (signal: string) => void, immediate: (signal: string) => void): void {
  let received = 0;
  const handler = (signal: NodeJS.Signals): void => {
    received++;
    if (received === 1) graceful(signal);
    else if (received === 2) immediate(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** Prints one line on stderr and exits with code 2 (usage), like siplb does. */
export function failUsage(program: string, message: string, usage: string): never {
  process.stderr.write(`${program}: ${message}; ${usage}\n`);
  process.exit(2);
}

/** A HeartbeatAgent, or a UsageError naming the flag whose value it refused. */
export function createAgent(opts: HeartbeatAgentOptions): HeartbeatAgent {
  try {
    return new HeartbeatAgent(opts);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`--${flagOf(err.key)} ${JSON.stringify(err.value)}: ${err.reason}`);
    throw err;
  }
}

/** The command-line flag of an agent option named in a ConfigError. */
function flagOf(key: string): string {
  const flags: Record<string, string> = {
    ip: 'ip', udpPort: 'udp-port', tcpPort: 'tcp-port', tlsPort: 'tls-port', wsPort: 'ws-port', wssPort: 'wss-port',
    httpPort: 'http-port', sslPort: 'ssl-port', intervalMs: 'interval', requestTimeoutMs: 'request-timeout',
    shutdownGraceMs: 'grace', balancers: 'balancers',
  };
  return flags[key] ?? key;
}

const OPTIONS = {
  ...AGENT_ARG_OPTIONS,
  ip: { type: 'string' },
  'udp-port': { type: 'string' },
  'tcp-port': { type: 'string' },
  'tls-port': { type: 'string' },
  'ws-port': { type: 'string' },
  'wss-port': { type: 'string' },
} as const;

function main(): void {
  let agent: HeartbeatAgent;
  try {
    const values = parseCommandLine(process.argv.slice(2), OPTIONS);
    if (values.help === true) {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    const level = logLevelArg(values);
    const ip = stringArg(values, 'ip');
    if (ip === undefined) throw new UsageError('--ip is required');
    const sip = {
      ip,
      udpPort: integerArg(values, 'udp-port', 1, 65535),
      tcpPort: integerArg(values, 'tcp-port', 1, 65535),
      tlsPort: integerArg(values, 'tls-port', 1, 65535),
      wsPort: integerArg(values, 'ws-port', 1, 65535),
      wssPort: integerArg(values, 'wss-port', 1, 65535),
    };
    if (sip.udpPort === undefined && sip.tcpPort === undefined) throw new UsageError('--udp-port or --tcp-port is required');
    const log = createLogger(level, 'siplb-node');
    const opts = agentOptionsFromArgs(values, sip, log, true);
    if (opts === null) throw new UsageError('--balancers is required');
    agent = createAgent(opts);
  } catch (err) {
    if (err instanceof UsageError) failUsage('siplb-node', err.message, USAGE);
    throw err;
  }

  const lifecycle = createLifecycleLogger('siplb-node');
  agent.start();
  lifecycle.info({ sessionId: agent.sessionId, balancers: agent.status().map((s) => s.balancer) }, 'siplb-node ready');
  const exit = (): void => {
    lifecycle.info({ balancers: agent.status() }, 'siplb-node stopped');
    process.exit(0);
  };
  onTerminationSignals((signal) => {
    lifecycle.info({ signal, graceMs: agent.shutdownGraceMs }, 'siplb-node draining');
    agent.shutdown().then(exit, exit);
  }, (signal) => {
    lifecycle.info({ signal }, 'siplb-node stopping now');
    agent.stop().then(exit, exit);
    // stop waits for a request in flight and then sends one more: both bounded by the timeout.
    setTimeout(exit, 2 * agent.requestTimeoutMs + 1000).unref();
  });
}

if (import.meta.main) main();
