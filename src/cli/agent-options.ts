// The flags of every command that runs a HeartbeatAgent (siplb-node, siplb-demo-node): which
// balancers, what the node announces besides its SIP ports, the agent's timing, and the
// balancers' heartbeat token. The token comes from a file (--token-file) or the environment
// (SIPLB_HEARTBEAT_TOKEN), never from a flag: a command line is readable by every local user.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError, UsageError } from '../core/errors.ts';
import { tokenProblem, type NodeInfo } from '../heartbeat/protocol.ts';
import { HeartbeatAgent, parseBalancers, type HeartbeatAgentOptions } from '../node-agent/agent.ts';
import { integerArg, stringArg, type ArgValues } from './command-line.ts';

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
  'token-file': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** siplb-node's options: the agent's and the node's SIP ports. */
export const NODE_ARG_OPTIONS = {
  ...AGENT_ARG_OPTIONS,
  ip: { type: 'string' },
  'udp-port': { type: 'string' },
  'tcp-port': { type: 'string' },
  'tls-port': { type: 'string' },
  'ws-port': { type: 'string' },
  'wss-port': { type: 'string' },
} as const;

/** siplb-demo-node's options: the agent's (all optional there) and the demo node's own. */
export const DEMO_NODE_ARG_OPTIONS = {
  ...AGENT_ARG_OPTIONS,
  ip: { type: 'string' },
  port: { type: 'string' },
  transport: { type: 'string' },
  'answer-delay': { type: 'string' },
  'stats-port': { type: 'string' },
} as const;

/** The environment variable that may hold the balancers' heartbeatToken. */
export const TOKEN_ENV = 'SIPLB_HEARTBEAT_TOKEN';

/** The token in a token file: the file's text without the line end editors and `echo` add. */
function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('token', path, `cannot read the token file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}

/**
 * The token the agent sends, from --token-file or SIPLB_HEARTBEAT_TOKEN; undefined when neither
 * is given. A file is read now, to refuse a bad one at start, and again by the agent after a 401.
 * Messages name where the token came from, never the token. Throws UsageError.
 */
export function agentToken(values: ArgValues, env: NodeJS.ProcessEnv): string | (() => string) | undefined {
  const file = stringArg(values, 'token-file');
  const fromEnv = env[TOKEN_ENV];
  if (file !== undefined && fromEnv !== undefined) throw new UsageError(`give the heartbeat token either with --token-file or in ${TOKEN_ENV}, not both`);
  if (file !== undefined) {
    let token: string;
    try {
      token = readTokenFile(file);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`--token-file ${JSON.stringify(file)}: ${err.reason}`);
      throw err;
    }
    const problem = tokenProblem(token);
    if (problem !== null) throw new UsageError(`--token-file ${JSON.stringify(file)}: the token ${problem}`);
    return () => readTokenFile(file);
  }
  if (fromEnv === undefined) return undefined;
  const problem = tokenProblem(fromEnv);
  if (problem !== null) throw new UsageError(`${TOKEN_ENV}: the token ${problem}`);
  return fromEnv;
}

/**
 * The agent settings of a command line, for a node whose SIP side is described by `sip`; null
 * when --balancers is absent and `required` is false. Throws UsageError.
 */
export function agentOptionsFromArgs(values: ArgValues, sip: Pick<NodeInfo, 'ip' | 'udpPort' | 'tcpPort' | 'tlsPort' | 'wsPort' | 'wssPort'>,
  logger: Logger, required: boolean, env: NodeJS.ProcessEnv = process.env): HeartbeatAgentOptions | null {
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
    token: agentToken(values, env),
    logger,
  };
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
    shutdownGraceMs: 'grace', balancers: 'balancers', token: 'token-file',
  };
  return flags[key] ?? key;
}
