// The command line of siplb-advisor, read into the advisor's settings. Every refusal is a
// UsageError naming the option, the value and the reason (exit 2).

import { isIP } from 'node:net';
import { UsageError } from '../core/errors.ts';
import type { LogFormat, LogLevel } from '../core/log.ts';
import type { AdvisorSettings } from '../sprayer/advisor.ts';
import type { ProbeTransport } from '../sprayer/balancer-probe.ts';
import { endpointName, type Endpoint } from '../sprayer/nft-script.ts';
import { integerArg, logFormatArg, logLevelArg, parseCommandLine, stringArg, type ArgValues } from './command-line.ts';

export const ADVISOR_USAGE = 'usage: siplb-advisor --vip IP [--port N] --balancer IP[:PORT] [--balancer ...] [--interval ms] [--timeout ms] ' +
  '[--rise N] [--fall N] [--buckets N] [--seed N] [--probe-transports udp,tcp] [--table NAME] [--http HOST:PORT|off] ' +
  '[--log-level error|warn|info|debug] [--log-format json|pretty] [--dry-run]';

export const ADVISOR_HELP = `${ADVISOR_USAGE}

Programs an IP sprayer (nftables, stateless NAT) that spreads SIP over UDP and TCP for VIP:PORT
across siplb balancers, and takes a balancer out while it fails SIP OPTIONS (docs/sprayer.md).

  --vip IP                 the virtual IP clients send to (IPv4 or IPv6); required
  --port N                 the VIP's SIP port, UDP and TCP (default 5060)
  --balancer IP[:PORT]     a balancer (repeat, or a comma list); PORT defaults to --port. IP
                           literals of the VIP's family; required
  --interval ms            advisorInterval: a probe round starts every interval (default 7000)
  --timeout ms             per probe, below the interval (default 2000, or half the interval
                           when that is smaller)
  --rise N                 passed rounds in a row that bring a down balancer back (default 2)
  --fall N                 failed rounds in a row that take an up balancer out (default 3)
  --buckets N              hash buckets of the map (default 256)
  --seed N                 jhash seed, 0-4294967295 (default 0); sprayers sharing a seed and
                           balancers spray alike
  --probe-transports LIST  udp, tcp or both (default udp,tcp); a balancer is up only while it
                           passes on every one
  --table NAME             the nftables table the advisor owns (default siplb_advisor)
  --http HOST:PORT|off     GET /state, /metrics, /healthz (default 127.0.0.1:2016)
  --log-level LEVEL        error, warn, info or debug (default info, or LOG_LEVEL)
  --log-format FORMAT      json or pretty (default pretty on a terminal, else json)
  --dry-run                print the nftables script for all balancers up, and exit
  --version                print the version and exit
  -h, --help               this text

Exit codes: 0 after SIGTERM/SIGINT (the table deleted), --dry-run, --help or --version; 2 for a
bad command line, no nft, no CAP_NET_ADMIN or a foreign table of its name; 1 when nft refuses
the table or the state endpoint's port cannot be bound.

Documentation: README.md and docs/ in the repository, and in the installed package
($(npm root -g)/siplb/README.md, .../docs/sprayer.md).`;

const OPTIONS = {
  vip: { type: 'string' },
  port: { type: 'string' },
  balancer: { type: 'string', multiple: true },
  interval: { type: 'string' },
  timeout: { type: 'string' },
  rise: { type: 'string' },
  fall: { type: 'string' },
  buckets: { type: 'string' },
  seed: { type: 'string' },
  'probe-transports': { type: 'string' },
  table: { type: 'string' },
  http: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'dry-run': { type: 'boolean' },
  version: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The options siplb-advisor accepts, for the test that its help names each. */
export const ADVISOR_OPTION_NAMES = Object.keys(OPTIONS);

export const DEFAULT_HTTP = { host: '127.0.0.1', port: 2016 };

export interface AdvisorCommand {
  help: boolean;
  settings: AdvisorSettings;
  http: { host: string; port: number } | null;
  level: LogLevel;
  format: LogFormat;
  dryRun: boolean;
}

/**
 * The command line read and checked; `help` or `version` set means nothing else was (print the
 * help or the version, exit 0).
 */
export function parseAdvisorCommand(argv: string[]): AdvisorCommand | { help: true } | { help: false; version: true } {
  const values = parseCommandLine(argv, OPTIONS);
  if (values.help === true) return { help: true };
  if (values.version === true) return { help: false, version: true };
  const level = logLevelArg(stringArg(values, 'log-level'));
  const format = logFormatArg(stringArg(values, 'log-format'));

  const vip = stringArg(values, 'vip');
  if (vip === undefined) throw new UsageError('--vip is required');
  const vipFamily = isIP(unbracket(vip));
  if (vipFamily === 0) throw new UsageError(`--vip ${JSON.stringify(vip)}: expected an IPv4 or IPv6 address`);
  const port = integerArg(values, 'port', 1, 65535) ?? 5060;
  const balancers = balancerArgs(values, port, vipFamily, unbracket(vip).toLowerCase());

  const intervalMs = integerArg(values, 'interval', 100, 3_600_000) ?? 7000;
  const timeoutMs = integerArg(values, 'timeout', 50, 3_600_000) ?? Math.min(2000, Math.floor(intervalMs / 2));
  if (timeoutMs >= intervalMs) {
    throw new UsageError(`--timeout ${JSON.stringify(String(timeoutMs))}: must be below --interval (${intervalMs} ms), so a round ends before the next starts`);
  }
  const buckets = integerArg(values, 'buckets', 1, 65536) ?? 256;
  if (buckets < balancers.length) throw new UsageError(`--buckets ${JSON.stringify(String(buckets))}: fewer buckets than the ${balancers.length} balancers`);
  const table = stringArg(values, 'table') ?? 'siplb_advisor';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(table)) {
    throw new UsageError(`--table ${JSON.stringify(table)}: expected a name of letters, digits and _ (not starting with a digit), at most 63 characters`);
  }
  return {
    help: false,
    settings: {
      dataPlane: {
        table,
        family: vipFamily === 4 ? 'ip' : 'ip6',
        vip: unbracket(vip).toLowerCase(),
        port,
        balancers,
        buckets,
        seed: integerArg(values, 'seed', 0, 0xffff_ffff) ?? 0,
      },
      intervalMs,
      timeoutMs,
      rise: integerArg(values, 'rise', 1, 100) ?? 2,
      fall: integerArg(values, 'fall', 1, 100) ?? 3,
      transports: transportsArg(stringArg(values, 'probe-transports')),
    },
    http: httpArg(stringArg(values, 'http')),
    level,
    format,
    dryRun: values['dry-run'] === true,
  };
}

function unbracket(s: string): string {
  return s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
}

/** --balancer, repeated and/or comma lists: IP literals of the VIP's family, each once. */
function balancerArgs(values: ArgValues, defaultPort: number, family: number, vip: string): Endpoint[] {
  const raw = (values as Record<string, unknown>).balancer;
  const items = (Array.isArray(raw) ? (raw as string[]) : []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
  if (items.length === 0) throw new UsageError('--balancer is required (at least one balancer, IP[:PORT])');
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const e = parseEndpoint(item, defaultPort);
    const bad = (why: string): UsageError => new UsageError(`--balancer ${JSON.stringify(item)}: ${why}`);
    if (e === null) throw bad('expected IP[:PORT] (IPv6 in brackets when a port follows), an IP literal, not a host name');
    if (isIP(e.host) !== family) throw bad(`not of the VIP's address family (IPv${family})`);
    if (e.host === vip) throw bad('is the VIP itself');
    const name = endpointName(e);
    if (seen.has(name)) throw bad('given twice');
    seen.add(name);
    out.push(e);
  }
  return out;
}

/** IP, IP:PORT, [IPv6]:PORT or a bare IPv6; null when not one of those. */
export function parseEndpoint(s: string, defaultPort: number): Endpoint | null {
  let host = s;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed !== null) [, host, port] = bracketed;
  else if (isIP(s) === 0) {
    const m = /^([^:]+):(\d+)$/.exec(s);
    if (m === null) return null;
    [, host, port] = m;
  }
  if (isIP(host) === 0) return null;
  const p = port === undefined ? defaultPort : Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535 || (p === 0 && port !== undefined)) return null;
  return { host: host.toLowerCase(), port: p };
}

function transportsArg(v: string | undefined): ProbeTransport[] {
  if (v === undefined) return ['udp', 'tcp'];
  const items = v.split(',').map((t) => t.trim().toLowerCase());
  const out: ProbeTransport[] = [];
  for (const t of items) {
    if (t !== 'udp' && t !== 'tcp') throw new UsageError(`--probe-transports ${JSON.stringify(v)}: ${JSON.stringify(t)} is not udp or tcp`);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

function httpArg(v: string | undefined): { host: string; port: number } | null {
  if (v === undefined) return DEFAULT_HTTP;
  if (v === 'off') return null;
  // Port 0: any free port, which the ready line reports.
  const zero = /^(.*):0$/.exec(v);
  const e = zero === null ? parseEndpoint(v, -1) : parseEndpoint(zero[1], 0);
  if (e === null) throw new UsageError(`--http ${JSON.stringify(v)}: expected IP:PORT (an IP literal) or off`);
  return e;
}
