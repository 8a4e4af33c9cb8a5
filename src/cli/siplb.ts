#!/usr/bin/env -S node --max-semi-space-size=8 --no-maglev
// siplb [path/to/lb.properties | path/to/lb-configuration.xml] [--log-level error|warn|info|debug]
// Exit codes: 0 after SIGTERM/SIGINT, 1 when a socket cannot be bound, 2 for a bad command line
// or configuration (one line on stderr naming the key, the value and the reason).
//
// --max-semi-space-size=8 (the same in package.json's start script and bin/siplb.cjs; the test
// harness reads it from this line): V8 sizes its young generation by the heap limit, and with the
// 4 GiB limit of a 24 GB host lets each semi-space grow to 64 MiB, which a balancer under steady
// load reaches within minutes and then keeps touching: RSS rose for half an hour while the live
// heap stayed at 20-30 MiB. V8 doubles the young generation each time enough has survived since
// the last step, so under a steady load each cap is reached in steps; a lower cap is reached
// sooner. With 100 000 calls held, RSS was 120 MiB with 8 against 129-132 MiB with 16. CPU per
// call was the same (2000 calls/s, 4 alternating rounds: median 0.198 ms with 8, 0.212 with 16;
// 1000 calls/s: 0.274 both). Before the data path allocated a quarter less per call, 8 cost
// 20 % more than 32 (bench/README.md, "The young generation's cap").
//
// --no-maglev: V8's middle compiler tier off. Functions go from the baseline compiler straight to
// the optimizing one; siplb's data path is small and hot, so it reaches optimized code either way
// (the start-up warm-up runs it first), and Maglev's code, its compile zones and the part of the
// node binary it runs from stayed resident for nothing: RSS 7 MiB lower idle (89 -> 81 MiB) and
// with 100 000 calls held (119 -> 112 MiB), CPU per call no worse (1000 calls/s, 3 alternating
// rounds: median 0.259 ms without against 0.286 with; 2000/s: 0.2075 against 0.213).
import { enableCompileCache, flushCompileCache } from 'node:module';
import { defaultConfig, loadConfigFile } from '../config/load.ts';
import { isOnePortMode, sidePorts, sidePortsV6 } from '../config/ports.ts';
import { SIP_TRANSPORTS, type Config, type PortSet } from '../config/types.ts';
import { UsageError } from '../core/errors.ts';
import { createLifecycleLogger, createLogger, setLogFormat, type LogFormat, type LogLevel } from '../core/log.ts';
import { startMemoryTrim } from '../core/memory-trim.ts';
import type { HttpListenerAddress } from '../http/http-balancer.ts';
import { formatHost } from '../sip/uri.ts';
import { joinSupervisor, superviseWorkers, workerIndexFromEnv, type WorkerLink } from '../wiring/workers.ts';
import { versionLine } from './about.ts';
import { exitOnBug, exitOnError, logFormatArg, logLevelArg } from './command-line.ts';
import { SIPLB_HELP, SIPLB_USAGE as USAGE } from './help.ts';

function parseCommand(argv: string[]): { file: string | null; level: LogLevel; format: LogFormat } {
  let file: string | null = null;
  let level: string | undefined;
  let format: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--log-level') level = argv[++i] ?? '';
    else if (a.startsWith('--log-level=')) level = a.slice('--log-level='.length);
    else if (a === '--log-format') format = argv[++i] ?? '';
    else if (a.startsWith('--log-format=')) format = a.slice('--log-format='.length);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(SIPLB_HELP + '\n');
      process.exit(0);
    } else if (a === '--version') {
      process.stdout.write(versionLine('siplb') + '\n');
      process.exit(0);
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if (file === null) file = a;
    else throw new UsageError('only one configuration file may be given');
  }
  return { file, level: logLevelArg(level), format: logFormatArg(format) };
}

async function main(): Promise<void> {
  let started;
  let file: string | null;
  // workers > 1: this process supervises the workers (wiring/workers.ts), each of which runs this
  // command again with SIPLB_WORKER set.
  const place = workerIndexFromEnv();
  let link: WorkerLink | null = null;
  try {
    const command = parseCommand(process.argv.slice(2));
    file = command.file;
    const loaded = file === null ? { config: defaultConfig(), warnings: [], infos: [] } : loadConfigFile(file);
    setLogFormat(command.format);
    const log = createLogger(command.level);
    // Worker 0 says what the supervisor read already; the other workers would only repeat it.
    if (place === null || place.index === 0) {
      for (const line of loaded.infos) log.info(line);
      for (const line of loaded.warnings) log.warn(line);
    }
    if (place === null && loaded.config.workers > 1) {
      // The supervisor lives as long as its workers: its start-up pages go too.
      startMemoryTrim(loaded.config.memoryTrimInterval, log);
      const code = await superviseWorkers({
        count: loaded.config.workers, script: process.argv[1], args: process.argv.slice(2), execArgv: process.execArgv,
        shutdownTimeoutMs: loaded.config.shutdownTimeout, log, lifecycle: createLifecycleLogger(),
      });
      process.exit(code);
    }
    if (place !== null) link = await joinSupervisor(place.index, place.count, log);
    // Node's compile cache (NODE_COMPILE_CACHE, else a folder under the temporary directory) for
    // the balancer's modules, loaded next: their stripped TypeScript and V8's compiled code are
    // kept on disk, so the next start (a restart, every worker, every test) takes about 0.45 s
    // of CPU instead of 0.8. Where the folder cannot be written it is simply not used.
    enableCompileCache();
    // Loaded only here: a supervisor never runs a balancer and need not hold its code.
    const { startBalancer } = await import('../wiring/balancer.ts');
    started = { cfg: loaded.config, balancer: await startBalancer(loaded.config, log, { configPath: file, ...(link === null ? {} : { worker: link.place }) }) };
    // Node writes the cache at a clean exit only: a balancer killed with SIGKILL (or by the
    // kernel's OOM killer) would leave none, and its restart would load the type stripper again
    // (about 33 MiB more RSS for the life of the process). Written now, once every module of a
    // running balancer is loaded.
    flushCompileCache();
  } catch (err) {
    exitOnError('siplb', err, USAGE);
  }
  const { cfg, balancer } = started;
  const lifecycle = createLifecycleLogger();
  // Worker 0 alone runs the heartbeat endpoint, the HTTP balancer and the admin API.
  const elsewhere = place !== null && place.index > 0 ? 'on worker 0' : null;
  const summary = {
    external: sideText(cfg, 'external'),
    internal: isOnePortMode(cfg) ? 'same as external' : sideText(cfg, 'internal'),
    heartbeat: elsewhere ?? (balancer.heartbeatPort === null ? 'off (port busy)'
      : `${cfg.internalHost}:${balancer.heartbeatPort} ${cfg.heartbeatToken === null ? '(unauthenticated)' : '(token required)'}`),
    http: elsewhere ?? httpText(cfg, balancer.http?.addresses() ?? null),
    healthChecks: cfg.healthCheckInterval > 0 ? `OPTIONS every ${cfg.healthCheckInterval} ms to silent nodes` : 'off',
    algorithm: balancer.algorithm.name,
    nodes: balancer.cluster().selectable.map((n) => n.id),
    admin: elsewhere ?? (balancer.apiPort === null ? 'off (port busy)' : `${cfg.apiToken === null ? '127.0.0.1' : cfg.host}:${balancer.apiPort}`),
    config: file ?? '(built-in defaults)',
  };
  // The first SIGTERM/SIGINT (or the admin API's stop) is graceful: new calls get 503 while the
  // calls in progress go on, for up to shutdownTimeout. A second signal stops at once.
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) {
      lifecycle.warn({ signal: why }, 'siplb stopping now: second stop request');
      balancer.close().then(() => process.exit(0), () => process.exit(0));
      setTimeout(() => process.exit(0), 3000).unref();
      return;
    }
    stopping = true;
    // The running configuration: a reload may have changed shutdownTimeout.
    const shutdownTimeout = balancer.config.shutdownTimeout;
    link?.close();
    // A worker's own counters (worker 0's admin API shows the sums).
    lifecycle.info({ signal: why, ...(place === null ? {} : { worker: place.index }), calls: balancer.calls.size, shutdownTimeoutMs: shutdownTimeout, stats: balancer.stats.toJSON(),
      ...(place === null ? {} : { sentToNode: Object.fromEntries(balancer.stats.sentToNode) }) },
      place === null ? 'siplb stopping' : 'siplb worker stopping');
    balancer.gracefulStop(why).then(() => process.exit(0), () => process.exit(0));
    // Closing itself is bounded too: a listener that will not close must not keep the process.
    setTimeout(() => process.exit(0), shutdownTimeout + 3000).unref();
  };
  // A worker's admin stop (worker 0's API) stops every worker, through the supervisor.
  balancer.onStopRequest((reason) => (link === null ? stop(reason) : link.requestStop(reason)));
  // A worker whose supervisor is gone stops as on SIGTERM.
  if (link !== null) process.on('disconnect', () => stop('supervisor gone'));
  // SIGHUP: the configuration file read again (nodes, weights, health and passive-health
  // settings, policy; reload.ts) and the TLS files with it (a renewed Let's Encrypt certificate,
  // say), without a restart. A bad file, or one changing what needs a restart, changes nothing:
  // the old configuration and certificates stay, and the log says why.
  process.on('SIGHUP', () => {
    void balancer.reload().then((r) => {
      if (r.ok) {
        lifecycle.info({ signal: 'SIGHUP', applied: r.applied, notes: r.notes, config: file }, r.applied.length > 0 ? 'configuration reloaded' : 'configuration reloaded: no key changed');
        if (r.tlsListeners > 0) lifecycle.info({ signal: 'SIGHUP', listeners: r.tlsListeners }, 'TLS certificates reloaded');
        return;
      }
      const tlsFile = r.refused.some((x) => x.key === 'tlsCertFile' || x.key === 'tlsKeyFile' || x.key === 'tlsCaFile');
      lifecycle.error({ signal: 'SIGHUP', err: r.error, refused: r.refused, config: file },
        tlsFile ? 'TLS certificates not reloaded; the listeners keep the old ones' : 'configuration not reloaded: nothing was changed');
    });
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // Ready only now that every signal has its handler: whoever waits for this line may send
  // SIGTERM at once, and before process.on('SIGTERM') that signal kills the process outright
  // (the service-unit test saw exactly that: "siplb ready", then death by SIGTERM, no stop).
  if (link === null) lifecycle.info(summary, 'siplb ready');
  else {
    // The supervisor says "siplb ready" once every worker is.
    lifecycle.info({ ...summary, worker: place?.index }, 'siplb worker ready');
    link.started(balancer, summary);
  }
}

/**
 * The HTTP listeners: "127.0.0.1:2080", "https 127.0.0.1:2081", both joined by ", ", or why
 * there is none.
 */
function httpText(cfg: Config, bound: { http: HttpListenerAddress | null; https: HttpListenerAddress | null } | null): string {
  const httpsOff = cfg.httpsPort !== null && (cfg.tlsCertFile === null || cfg.tlsKeyFile === null)
    ? `https off (httpsPort=${cfg.httpsPort} needs tlsCertFile and tlsKeyFile)` : null;
  const parts: string[] = [];
  if (bound?.http != null) parts.push(`${formatHost(bound.http.host)}:${bound.http.port}`);
  if (bound?.https != null) parts.push(`https ${formatHost(bound.https.host)}:${bound.https.port}`);
  if (httpsOff !== null) parts.push(httpsOff);
  return parts.length === 0 ? 'off (no httpPort/httpsPort)' : parts.join(', ');
}

/** e.g. "127.0.0.1 udp:5060 tcp:5060" (only the transports siplb opens today). */
function listenerText(host: string, ports: PortSet): string {
  const open = SIP_TRANSPORTS.filter((t) => ports[t] !== null).map((t) => `${t}:${ports[t]}`);
  return `${host} ${open.join(' ')}`;
}

/** "127.0.0.1 udp:5060 tls:5061", and "; ::1 udp:5060 ..." with an IPv6 address. */
function sideText(cfg: Config, side: 'external' | 'internal'): string {
  const v4 = listenerText(side === 'external' ? cfg.externalHost : cfg.internalHost, sidePorts(cfg, side));
  const v6Host = side === 'external' ? cfg.externalIpv6Host : cfg.internalIpv6Host;
  const v6Ports = sidePortsV6(cfg, side);
  return v6Host === null || v6Ports === null ? v4 : `${v4}; ${listenerText(v6Host, v6Ports)}`;
}

main().catch(exitOnBug('siplb'));
