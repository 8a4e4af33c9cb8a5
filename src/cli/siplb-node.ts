#!/usr/bin/env node
// siplb-node: registers a SIP application server (any language, any process) with siplb
// balancers over the heartbeat protocol (docs/heartbeat-protocol.md) and keeps it registered.
// SIGTERM/SIGINT drain the node (`shutdown`), then `stop` it after the grace period and exit 0; a
// second signal sends `stop` at once. Exit code 2 with one stderr line for a bad command line.

import { UsageError } from '../core/errors.ts';
import { createLifecycleLogger, createLogger } from '../core/log.ts';
import type { HeartbeatAgent } from '../node-agent/agent.ts';
import { versionLine } from './about.ts';
import { agentOptionsFromArgs, createAgent, NODE_ARG_OPTIONS as OPTIONS } from './agent-options.ts';
import { exitOnBug, exitOnError, integerArg, logLevelArg, onTerminationSignals, parseCommandLine, stringArg } from './command-line.ts';
import { NODE_HELP, NODE_USAGE as USAGE } from './help.ts';

const PROGRAM = 'siplb-node';

function main(): void {
  let agent: HeartbeatAgent;
  try {
    const argv = process.argv.slice(2);
    // --version V is the node's version; alone, it asks for this command's.
    if (argv.length === 1 && argv[0] === '--version') {
      process.stdout.write(versionLine(PROGRAM) + '\n');
      process.exit(0);
    }
    const values = parseCommandLine(argv, OPTIONS);
    if (values.help === true) {
      process.stdout.write(NODE_HELP + '\n');
      process.exit(0);
    }
    const level = logLevelArg(stringArg(values, 'log-level'));
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
    exitOnError('siplb-node', err, USAGE);
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

try {
  main();
} catch (err) {
  exitOnBug('siplb-node')(err);
}
