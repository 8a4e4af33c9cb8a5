#!/usr/bin/env node
// siplb-advisor: the control plane of an IP sprayer in front of siplb balancers (docs/sprayer.md).
// It probes each balancer with SIP OPTIONS and keeps an nftables table of its own spraying
// VIP:PORT over the healthy ones by stateless NAT.
// Exit codes: 0 after SIGTERM/SIGINT (the table deleted) or --dry-run/--help; 2 for a bad
// command line, no nft, no CAP_NET_ADMIN or a foreign table of its name (one line on stderr);
// 1 when nft refuses the table or the state endpoint's port cannot be bound.

import { createLifecycleLogger, createLogger, setLogFormat } from '../core/log.ts';
import { Advisor } from '../sprayer/advisor.ts';
import { AdvisorHttp } from '../sprayer/advisor-http.ts';
import { bucketTable } from '../sprayer/maglev.ts';
import { createScript, endpointName } from '../sprayer/nft-script.ts';
import { Nftables } from '../sprayer/nftables.ts';
import { versionLine } from './about.ts';
import { ADVISOR_HELP, ADVISOR_USAGE, parseAdvisorCommand, type AdvisorCommand } from './advisor-options.ts';
import { exitOnBug, exitOnError, onTerminationSignals } from './command-line.ts';

const PROGRAM = 'siplb-advisor';

async function main(): Promise<void> {
  let command: AdvisorCommand;
  try {
    const parsed = parseAdvisorCommand(process.argv.slice(2));
    if (parsed.help) {
      process.stdout.write(ADVISOR_HELP + '\n');
      process.exit(0);
    }
    if ('version' in parsed) {
      process.stdout.write(versionLine(PROGRAM) + '\n');
      process.exit(0);
    }
    command = parsed;
  } catch (err) {
    exitOnError(PROGRAM, err, ADVISOR_USAGE);
  }
  const { settings } = command;
  const dp = settings.dataPlane;
  const names = dp.balancers.map(endpointName);

  if (command.dryRun) {
    // What the table would be with every balancer up; needs neither root nor nft.
    process.stdout.write(createScript(dp, bucketTable(names, names, dp.buckets).owners, false));
    process.exit(0);
  }

  setLogFormat(command.format);
  const log = createLogger(command.level, PROGRAM);
  const lifecycle = createLifecycleLogger(PROGRAM);
  const advisor = new Advisor(settings, { nft: new Nftables(), log });

  // Whatever kills the process, the table should not outlive it: a sprayer rewriting to a
  // balancer set nobody watches any more is worse than no sprayer.
  const dying = (err: unknown): void => {
    advisor.emergencyCleanup();
    exitOnBug(PROGRAM)(err);
  };
  process.on('uncaughtException', dying);
  process.on('unhandledRejection', dying);

  let http: AdvisorHttp | null = null;
  let httpAddress = 'off';
  try {
    // The port first: a busy one stops start-up before the kernel is touched.
    if (command.http !== null) {
      http = new AdvisorHttp(advisor, log);
      const a = await http.listen(command.http.host, command.http.port);
      httpAddress = endpointName({ host: a.address, port: a.port });
    }
    await advisor.start();
  } catch (err) {
    advisor.emergencyCleanup();
    exitOnError(PROGRAM, err, ADVISOR_USAGE);
  }
  const view = advisor.view();
  lifecycle.info({
    vip: endpointName({ host: dp.vip, port: dp.port }),
    balancers: view.balancers.map((b) => ({ address: b.address, state: b.state, buckets: b.buckets })),
    table: `${dp.family} ${dp.table}`,
    buckets: dp.buckets,
    intervalMs: settings.intervalMs,
    timeoutMs: settings.timeoutMs,
    rise: settings.rise,
    fall: settings.fall,
    probeTransports: settings.transports,
    http: httpAddress,
  }, 'siplb-advisor ready');

  onTerminationSignals((signal) => {
    lifecycle.info({ signal }, 'siplb-advisor stopping: deleting its table');
    advisor.stop().then(async () => {
      await http?.close();
      lifecycle.info({ signal }, 'siplb-advisor stopped');
      process.exit(0);
    }, (err: unknown) => {
      lifecycle.error({ err: err instanceof Error ? err.message : String(err) }, 'siplb-advisor stopped, but its table could not be deleted');
      process.exit(1);
    });
  }, (signal) => {
    lifecycle.warn({ signal }, 'siplb-advisor stopping now: second signal');
    advisor.emergencyCleanup();
    process.exit(0);
  });
}

main().catch(exitOnBug(PROGRAM));
