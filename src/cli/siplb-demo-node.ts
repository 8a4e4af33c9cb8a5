#!/usr/bin/env node
// siplb-demo-node: a small SIP application server (src/demo-node/demo-node.ts) for demos and
// tests, optionally registered with siplb balancers through the heartbeat protocol.
// SIGTERM/SIGINT: with --balancers, drain (`shutdown`, calls keep being served), `stop` after
// --grace, then exit 0; a second signal stops at once. The counters are logged as one JSON line
// ("siplb-demo-node stats") on the way out. Exit 2 with one stderr line for a bad command line,
// 1 when a socket cannot be bound.

import type { Server } from 'node:http';
import { http } from '../core/node-http.ts';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { DemoNode } from '../demo-node/demo-node.ts';
import type { DemoTransport } from '../demo-node/demo-node.ts';
import { BindError, UsageError } from '../core/errors.ts';
import { createLifecycleLogger, createLogger } from '../core/log.ts';
import type { HeartbeatAgent } from '../node-agent/agent.ts';
import { versionLine } from './about.ts';
import { agentOptionsFromArgs, createAgent, DEMO_NODE_ARG_OPTIONS as OPTIONS } from './agent-options.ts';
import { exitOnBug, exitOnError, integerArg, logLevelArg, onTerminationSignals, parseCommandLine, stringArg } from './command-line.ts';
import { DEMO_NODE_HELP, DEMO_NODE_USAGE as USAGE } from './help.ts';

const PROGRAM = 'siplb-demo-node';

interface Settings {
  ip: string;
  port: number;
  transports: DemoTransport[];
  answerDelayMs: number;
  statsPort: number | undefined;
}

function transportsArg(value: string | undefined): DemoTransport[] {
  const out: DemoTransport[] = [];
  for (const t of (value ?? 'udp,tcp').split(',').map((s) => s.trim().toLowerCase())) {
    if (t !== 'udp' && t !== 'tcp') throw new UsageError(`--transport ${JSON.stringify(value)}: expected a comma list of udp, tcp`);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** Serves the counters as JSON on GET / (127.0.0.1 only: it is for tests and the dashboard). */
function serveStats(node: DemoNode, port: number): Promise<Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/' && req.url !== '/stats')) {
      res.writeHead(req.method === 'GET' ? 404 : 405, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'GET / only' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(node.stats()));
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new BindError(`cannot bind stats HTTP 127.0.0.1:${port}: ${err.message}`)));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

/** Reads the command line; prints usage and exits on --help; throws UsageError. */
function parseCommand(argv: string[]): { settings: Settings; log: Logger; agent: HeartbeatAgent | null } {
  // --version V is the node's version; alone, it asks for this command's.
  if (argv.length === 1 && argv[0] === '--version') {
    process.stdout.write(versionLine(PROGRAM) + '\n');
    process.exit(0);
  }
  const values = parseCommandLine(argv, OPTIONS);
  if (values.help === true) {
    process.stdout.write(DEMO_NODE_HELP + '\n');
    process.exit(0);
  }
  const log = createLogger(logLevelArg(stringArg(values, 'log-level')), 'siplb-demo-node');
  const ip = stringArg(values, 'ip');
  if (ip === undefined) throw new UsageError('--ip is required');
  // The address goes into Contact, SDP and the heartbeat: it must be one peers can send to.
  if (isIP(ip) === 0 || ip === '0.0.0.0' || ip === '::') {
    throw new UsageError(`--ip ${JSON.stringify(ip)}: expected the unicast IP literal calls are sent to`);
  }
  const port = integerArg(values, 'port', 1, 65535);
  if (port === undefined) throw new UsageError('--port is required');
  const transports = transportsArg(stringArg(values, 'transport'));
  const settings: Settings = {
    ip, port, transports,
    answerDelayMs: integerArg(values, 'answer-delay', 0, 600_000) ?? 0,
    statsPort: integerArg(values, 'stats-port', 1, 65535),
  };
  const agentOpts = agentOptionsFromArgs(values, {
    ip,
    udpPort: transports.includes('udp') ? port : undefined,
    tcpPort: transports.includes('tcp') ? port : undefined,
  }, log.child({ component: 'node-agent' }), false);
  return { settings, log, agent: agentOpts === null ? null : createAgent(agentOpts) };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseCommand>;
  try {
    parsed = parseCommand(process.argv.slice(2));
  } catch (err) {
    exitOnError('siplb-demo-node', err, USAGE);
  }
  const { settings, log, agent } = parsed;

  const node = new DemoNode({ ip: settings.ip, port: settings.port, transports: settings.transports, answerDelayMs: settings.answerDelayMs, logger: log });
  let statsServer: Server | null = null;
  try {
    await node.start();
    if (settings.statsPort !== undefined) statsServer = await serveStats(node, settings.statsPort);
  } catch (err) {
    exitOnError('siplb-demo-node', err, USAGE);
  }
  // Listening before registering: a balancer may send a call as soon as `start` is answered.
  agent?.start();
  const lifecycle = createLifecycleLogger('siplb-demo-node');
  lifecycle.info({
    sip: `${settings.ip}:${node.port} ${settings.transports.join('/')}`,
    answerDelayMs: settings.answerDelayMs,
    stats: settings.statsPort === undefined ? null : `http://127.0.0.1:${settings.statsPort}/`,
    sessionId: agent?.sessionId ?? null,
  }, 'siplb-demo-node ready');

  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    lifecycle.info({ stats: node.stats(), balancers: agent?.status() ?? [] }, 'siplb-demo-node stats');
    statsServer?.closeAllConnections();
    statsServer?.close();
    node.close().then(() => process.exit(0), () => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  onTerminationSignals((signal) => {
    if (agent === null) {
      lifecycle.info({ signal }, 'siplb-demo-node stopping');
      exit();
      return;
    }
    // Calls in progress are still served while the balancers drain this node.
    lifecycle.info({ signal, graceMs: agent.shutdownGraceMs }, 'siplb-demo-node draining');
    agent.shutdown().then(exit, exit);
  }, (signal) => {
    lifecycle.info({ signal }, 'siplb-demo-node stopping now');
    if (agent === null) return exit();
    agent.stop().then(exit, exit);
    setTimeout(exit, 2 * agent.requestTimeoutMs + 1000).unref();
  });
}

main().catch(exitOnBug('siplb-demo-node'));
