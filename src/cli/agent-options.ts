// The flags of every command that runs a HeartbeatAgent (siplb-node, siplb-demo-node): which
// balancers, what the node announces besides its SIP ports, and the agent's timing.

import type { Logger } from 'pino';
import { ConfigError, UsageError } from '../core/errors.ts';
import type { NodeInfo } from '../heartbeat/protocol.ts';
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
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

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
