// Hot reload: POST /api/v1/reload and SIGHUP read the configuration file again and apply, to the
// running balancer, what can change without new sockets and without dropping a call.
//
// All or nothing. The new file is loaded and validated as at start-up (a ConfigError names the
// key), every key that differs from the running configuration is looked up in RULES below, and
// the reload is refused, naming each key and why, when one of them needs a restart. Then what can
// still fail is done before anything changes: host names in `nodes=` are resolved, the TLS files
// read and checked, and the algorithm asked to take its new parameters (it refuses, or takes
// them). Only then are the other parts given their new settings, which cannot fail, and the new
// configuration becomes the running one (what the admin API shows).
//
// What a reload does to calls in progress:
// - a node added to `nodes=` takes new calls at once;
// - a node removed from it drains ("retiring", node-registry.ts): a removed node's in-dialog
//   requests are routed by their Record-Route hint (lbnode=), which finds no node once the
//   registry has dropped it, so the algorithm would move them (repick) to a node that knows
//   nothing of the dialog, and the node's own requests would no longer count as the cluster's.
//   Retiring keeps it until its calls have ended (the call tracker, idle expiry included) and
//   the retransmission window has passed;
// - a changed weight applies to new calls; a weight set through the admin API stays until the
//   file changes that node's weight;
// - health, passive-health, ramp-up and policy settings apply to the messages and probes from
//   now on; a node already taken out stays out until its usual way back (but see
//   ActiveHealthCheck.reconfigure and PassiveHealth.reconfigure for what turning a check off
//   undoes).
// The TLS files are read again on every reload, changed or not (a renewed certificate under the
// same name), as SIGHUP always did.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Algorithm } from '../algorithms/algorithm.ts';
import { builtInEntry } from '../algorithms/catalog.ts';
import type { ReloadRefusal, ReloadResult } from '../admin/target.ts';
import type { ActiveHealthCheck } from '../cluster/active-health.ts';
import type { SipNode } from '../cluster/node.ts';
import type { NodeRegistry } from '../cluster/node-registry.ts';
import type { RegistrySync } from '../cluster/node-registry-sync.ts';
import type { PassiveHealth, PassiveHealthOptions } from '../cluster/passive-health.ts';
import { resolveStaticNodes } from '../cluster/static-nodes.ts';
import { keyForField, KEYS } from '../config/keys.ts';
import { loadConfigFile } from '../config/load.ts';
import { isOnePortMode } from '../config/ports.ts';
import { PORT_KEY_PREFIXES, SIP_TRANSPORTS, type Config, type PortKeyName, type StaticNodeSpec } from '../config/types.ts';
import { ConfigError } from '../core/errors.ts';
import type { LocalAddresses } from '../proxy/local-addresses.ts';
import { proxyPolicy } from '../proxy/policy.ts';
import type { SipProxy } from '../proxy/proxy.ts';
import { readTlsFiles, type TlsFiles } from '../transport/tls-files.ts';

export type { ReloadRefusal, ReloadResult } from '../admin/target.ts';

/** The running part a reloadable key is handed to. */
type Part =
  | 'nodes'          // static nodes: added, retired, re-weighted (NodeRegistry)
  | 'algorithm'      // Algorithm.reconfigure
  | 'activeHealth'   // ActiveHealthCheck.reconfigure
  | 'passiveHealth'  // PassiveHealth.reconfigure
  | 'registry'       // NodeRegistry.reconfigure, RegistrySync.reconfigure
  | 'membershipTimer' // the timer that expires registrations (heartbeatInterval)
  | 'heartbeatAuth'   // the heartbeat endpoint's token (HeartbeatServer.setToken)
  | 'policy'         // SipProxy.setPolicy
  | 'tls'            // the TLS listeners' files (read again on every reload anyway)
  | 'udpRead'        // the native UDP reads' delay (setUdpReadDelay)
  | 'read';          // read from the running configuration where used (admin credentials, shutdownTimeout)

type Rule = { readonly apply: Part } | { readonly refuse: string };

const RESTART = 'restart siplb to change it';
const SOCKETS: Rule = { refuse: `needs new sockets (a listener would move, open or close): ${RESTART}` };
const STORE: Rule = { refuse: `the state store connects once, at start: ${RESTART}` };
const TABLES: Rule = { refuse: `sizes the affinity tables and the call tracker, which are built at start: ${RESTART}` };
const KEYING: Rule = { refuse: `requests of calls in progress that carry no node hint would be keyed, and so placed, differently: ${RESTART}` };
const OUR_ADDRESSES: Rule = { refuse: `siplb writes it into Via and Record-Route: calls in progress would no longer be recognised as passing through it; ${RESTART}` };
const OUR_NAMES: Rule = { refuse: `names the balancer in the route sets of calls in progress, which would no longer be recognised; ${RESTART}` };
const TRANSPORTS: Rule = { refuse: `the transports take it when their listeners open: ${RESTART}` };
const HTTP: Rule = { refuse: `the HTTP balancer takes it when it starts: ${RESTART}` };

/**
 * Every key but the per-transport port keys (PORT_KEYS, all refused: see ruleOf), and what a
 * change of it does. A mapped type: a key added to Config does not compile until it is placed here.
 */
const RULES: { readonly [K in Exclude<keyof Config, PortKeyName>]: Rule } = {
  // Sockets.
  host: SOCKETS, externalHost: SOCKETS, internalHost: SOCKETS, externalPort: SOCKETS, internalPort: SOCKETS,
  externalTransports: SOCKETS, internalTransports: SOCKETS,
  ipv6Host: SOCKETS, externalIpv6Host: SOCKETS, internalIpv6Host: SOCKETS,
  heartbeatPort: SOCKETS, apiPort: SOCKETS, httpPort: SOCKETS, httpsPort: SOCKETS,
  apiToken: { refuse: `decides where the admin API listens (loopback only without it): ${RESTART}` },
  // Static nodes and the algorithm's live parameters.
  nodes: { apply: 'nodes' },
  hashLoadFactor: { apply: 'algorithm' },
  callIdAffinityGroupFailover: { apply: 'algorithm' },
  userAffinityGroupFailover: { apply: 'algorithm' },
  subclusterMap: { apply: 'algorithm' },
  algorithmClass: { refuse: `a new algorithm would start without the assignments of the calls in progress: ${RESTART}` },
  callIdAffinityMaxTimeInCache: TABLES, userAffinityMaxTimeInCache: TABLES, callIdAffinityMaxEntries: TABLES,
  sipHeaderAffinityKey: KEYING, sipHeaderAffinityExclusionPattern: KEYING, sipHeaderAffinityFallbackKey: KEYING,
  extraServerNodes: { refuse: `decides which addresses are the cluster's for calls in progress: ${RESTART}` },
  performanceTestingMode: { refuse: `decides which addresses are the cluster's and which static nodes exist: ${RESTART}` },
  // The state store.
  stateStore: STORE, redisUrl: STORE, redisCluster: STORE, redisKeyPrefix: STORE, redisReadTimeout: STORE,
  // Membership and health.
  nodeTimeout: { apply: 'registry' },
  trafficRampupCyclePeriod: { apply: 'registry' },
  trafficPercentageIncrease: { apply: 'registry' },
  heartbeatInterval: { apply: 'membershipTimer' },
  // Rotation: the new token is required from the next request on; agents re-read theirs on a 401.
  heartbeatToken: { apply: 'heartbeatAuth' },
  healthCheckInterval: { apply: 'activeHealth' },
  healthCheckTimeout: { apply: 'activeHealth' },
  healthCheckFailures: { apply: 'activeHealth' },
  healthCheckSuccesses: { apply: 'activeHealth' },
  responsesStatusCodeNodeRemoval: { apply: 'passiveHealth' },
  responseReasonNodeRemoval: { apply: 'passiveHealth' },
  maxNumberResponsesWithError: { apply: 'passiveHealth' },
  maxErrorTime: { apply: 'passiveHealth' },
  maxRequestNumberWithoutResponse: { apply: 'passiveHealth' },
  maxResponseTime: { apply: 'passiveHealth' },
  // What siplb writes into messages as its own address, and what it recognises as itself.
  externalIpLoadBalancerAddress: OUR_ADDRESSES, externalIpLoadBalancerPort: OUR_ADDRESSES,
  internalIpLoadBalancerAddress: OUR_ADDRESSES, internalIpLoadBalancerPort: OUR_ADDRESSES,
  externalIpv6LoadBalancerAddress: OUR_ADDRESSES, internalIpv6LoadBalancerAddress: OUR_ADDRESSES,
  useIpLoadBalancerAddressInViaHeaders: OUR_ADDRESSES,
  publicIp: OUR_NAMES, publicIpv6: OUR_NAMES, matchingHostnameForRoute: OUR_NAMES, isFilterSubdomain: OUR_NAMES,
  workers: { refuse: `the worker processes are forked and bind their ports at start: ${RESTART}` },
  viaSecret: { refuse: `responses to requests forwarded under the old secret would be dropped: ${RESTART}` },
  // The proxy policy.
  routingRulesIpv4: { apply: 'policy' },
  routingRulesIpv6: { apply: 'policy' },
  blockedValues: { apply: 'policy' },
  isSend5xxResponse: { apply: 'policy' },
  isSend5xxResponseSatusCode: { apply: 'policy' },
  isSend5xxResponseReasonHeader: { apply: 'policy' },
  terminateTLSTraffic: { apply: 'policy' },
  // The per-source limit keeps its table (and who is blocked) across a reload; SipProxy.setPolicy.
  overloadControl: { apply: 'policy' },
  pikeRequests: { apply: 'policy' }, pikeWindow: { apply: 'policy' }, pikeBlockTime: { apply: 'policy' }, pikeAllow: { apply: 'policy' },
  isSendTrying: { refuse: `decides at start whether INVITEs are kept until their node answers and 100s absorbed: ${RESTART}` },
  // The admin API and the graceful stop read them from the running configuration.
  securityRequired: { apply: 'read' }, login: { apply: 'read' }, password: { apply: 'read' },
  shutdownTimeout: { apply: 'read' },
  shutdownAnnounceTime: { apply: 'read' },
  // Read once, at start.
  warmUpCalls: { apply: 'read' },
  memoryTrimInterval: { refuse: `the memory trim's timer starts with siplb: ${RESTART}` },
  connectedNodeSockets: { refuse: `decides at start how the transports send to nodes: ${RESTART}` },
  // HTTP balancer.
  maxContentLength: HTTP, unavailableHost: HTTP, requestCheckPattern: HTTP, httpResponseTimeout: HTTP,
  httpWebSocketIdleTimeout: HTTP, httpMaxHeaderSize: HTTP, httpAffinityKey: HTTP,
  // TLS: new files for the listeners that have TLS; turning TLS on or off is refused below.
  tlsCertFile: { apply: 'tls' }, tlsKeyFile: { apply: 'tls' }, tlsCaFile: { apply: 'tls' },
  tlsClientAuth: TRANSPORTS,
  // Transports.
  maxMessageSize: TRANSPORTS, udpReceiveBuffer: TRANSPORTS, udpNativeIo: TRANSPORTS, udpReadDelay: { apply: 'udpRead' }, maxConnectionsPerSource: TRANSPORTS, tlsHandshakeTimeout: TRANSPORTS,
  maxTcpConnections: TRANSPORTS, tcpFirstMessageTimeout: TRANSPORTS, tcpMessageTimeout: TRANSPORTS, tcpIdleTimeout: TRANSPORTS,
  wsAllowedOrigins: TRANSPORTS, wsPingInterval: TRANSPORTS,
};

/** Restcomm's per-transport listener port keys (externalUdpPort ... internalIpv6LoadBalancerWssPort). */
const PORT_KEYS: readonly PortKeyName[] = PORT_KEY_PREFIXES.flatMap((prefix) =>
  SIP_TRANSPORTS.map((t) => `${prefix}${t[0].toUpperCase()}${t.slice(1)}Port` as PortKeyName));

/**
 * A key's rule. The per-transport port keys are listeners (externalUdpPort...), or, for the IP
 * load balancer in front (externalIpLoadBalancerUdpPort...), ports siplb writes as its own.
 */
function ruleOf(field: keyof Config): Rule {
  const rule = (RULES as Readonly<Record<string, Rule>>)[field];
  if (rule !== undefined) return rule;
  return field.includes('LoadBalancer') ? OUR_ADDRESSES : SOCKETS;
}

function isPart(rule: Rule, part: Part): boolean {
  return 'apply' in rule && rule.apply === part;
}

/** The keys that need a restart, and why; for the documentation and tests. */
export function refusedKeys(): ReadonlyMap<keyof Config, string> {
  const out = new Map<keyof Config, string>();
  for (const field of [...Object.keys(RULES) as (keyof Config)[], ...PORT_KEYS]) {
    const r = ruleOf(field);
    if ('refuse' in r) out.set(field, r.refuse);
  }
  return out;
}

/** The key as lb.properties spells it. */
function keyName(field: keyof Config): string {
  return keyForField(field).key;
}

function hasTls(cfg: Config): boolean {
  return cfg.tlsCertFile !== null && cfg.tlsKeyFile !== null;
}

/** Keys whose value differs between the two configurations, in the key table's order (the documentation's). */
export function changedFields(running: Config, next: Config): (keyof Config)[] {
  return KEYS.map((spec) => spec.field).filter((f) => !isDeepStrictEqual(running[f], next[f]));
}

export interface ReloadPlan {
  /** Fields that differ. */
  readonly changed: readonly (keyof Config)[];
  /** The running parts that get new settings. */
  readonly parts: ReadonlySet<Part>;
  /** Non-empty: the reload is refused. */
  readonly refused: readonly ReloadRefusal[];
}

/**
 * What a reload from `running` to `next` would do. `algorithm`: the running algorithm, which can
 * take new parameters only when it has reconfigure().
 */
export function reloadPlan(running: Config, next: Config, algorithm: Pick<Algorithm, 'name' | 'reconfigure'>): ReloadPlan {
  const changed = changedFields(running, next);
  const parts = new Set<Part>();
  const refused: ReloadRefusal[] = [];
  for (const field of changed) {
    const rule = ruleOf(field);
    if ('refuse' in rule) {
      refused.push({ key: keyName(field), reason: rule.refuse });
      continue;
    }
    if (rule.apply === 'tls' && hasTls(running) !== hasTls(next)) {
      refused.push({ key: keyName(field), reason: `turns the TLS listeners ${hasTls(next) ? 'on' : 'off'} (they open at start, with both tlsCertFile and tlsKeyFile): ${RESTART}` });
      continue;
    }
    if (rule.apply === 'algorithm' && algorithm.reconfigure === undefined) {
      refused.push({ key: keyName(field), reason: `algorithm ${algorithm.name} takes its parameters when it is built (it has no reconfigure()): ${RESTART}` });
      continue;
    }
    parts.add(rule.apply);
  }
  return { changed, parts, refused };
}

/** What the reload drives. */
export interface ReloadParts {
  readonly registry: NodeRegistry;
  readonly passiveHealth: PassiveHealth;
  readonly health: ActiveHealthCheck;
  readonly proxy: SipProxy;
  readonly algorithm: Algorithm;
  readonly sync: RegistrySync;
  readonly addresses: LocalAddresses;
  readonly log: Logger;
  /** The HTTP balancer runs: it keeps its own health settings from start. */
  readonly http: boolean;
  /** Hands PEM files to the TLS listeners (SIP TLS, WSS, HTTPS); how many took them. */
  reloadTls(files: TlsFiles): number;
  /** The membership timer (registrations expire, ramp-up, retiring nodes leave) runs every `ms`. */
  setMembershipInterval(ms: number): void;
  /** The heartbeat endpoint requires `token` from now on (null: none); a no-op when it did not open. */
  setHeartbeatToken(token: string | null): void;
  /** Native UDP reads wait `ms` while datagrams are dense (TransportRouter.setUdpReadDelay). */
  setUdpReadDelay(ms: number): void;
  /** A graceful stop is under way: parts are closing, nothing is reloaded. */
  isStopping(): boolean;
}

/** The interval of registry sharing for a nodeTimeout (a few rounds per timeout, at most one a second). */
export function shareIntervalMs(nodeTimeoutMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(100, Math.floor(nodeTimeoutMs / 8)));
}

/** The keys whose change the HTTP balancer does not follow (its own health checks keep their start values). */
const HTTP_HEALTH_FIELDS: readonly (keyof Config)[] = [
  'healthCheckInterval', 'healthCheckTimeout', 'healthCheckSuccesses', 'maxNumberResponsesWithError', 'maxErrorTime',
];

export class Reloader {
  private readonly path: string | null;
  private readonly parts: ReloadParts;
  private readonly shareMaxMs: number;
  private running: Config;
  /** The static nodes as the running configuration lists them (resolved), by id. */
  private configured: Map<string, SipNode>;
  /** Reloads run one after the other: each compares with what the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * `path`: the file to read again (null: built-in defaults, nothing to reload). `staticNodes`:
   * the static nodes the running configuration was resolved to at start.
   */
  constructor(path: string | null, running: Config, staticNodes: readonly SipNode[], parts: ReloadParts, shareMaxMs: number) {
    this.path = path;
    this.running = running;
    this.configured = new Map(staticNodes.map((n) => [n.id, n]));
    this.parts = parts;
    this.shareMaxMs = shareMaxMs;
  }

  /** The running configuration: the start one, or the last one a reload applied. */
  get config(): Config {
    return this.running;
  }

  /** Re-read the file and apply it, after any reload already under way. Never rejects. */
  reload(): Promise<ReloadResult> {
    const run = this.queue.then(() => this.reloadNow());
    this.queue = run;
    return run;
  }

  private async reloadNow(): Promise<ReloadResult> {
    try {
      return await this.attempt();
    } catch (err) {
      // A bug, not a bad file: what was applied before it stays, and the operator is told.
      this.parts.log.error({ err }, 'reload failed');
      return { ok: false, status: 'invalid', error: `reload failed: ${(err as Error).message}`, refused: [] };
    }
  }

  private async attempt(): Promise<ReloadResult> {
    if (this.path === null) {
      return refuse('refused', '(file)', 'siplb runs on its built-in defaults: there is no configuration file to read again');
    }
    if (this.parts.isStopping()) return refuse('refused', '(balancer)', 'a graceful stop is under way');
    let next: Config;
    let warnings: readonly string[];
    try {
      const loaded = loadConfigFile(this.path);
      next = loaded.config;
      warnings = loaded.warnings;
    } catch (err) {
      if (err instanceof ConfigError) return invalid(err);
      throw err;
    }
    const plan = reloadPlan(this.running, next, this.parts.algorithm);
    if (plan.refused.length > 0) {
      return {
        ok: false, status: 'refused', refused: plan.refused,
        error: `not reloaded: ${plan.refused.map((r) => r.key).join(', ')} cannot change while siplb runs; nothing was changed`,
      };
    }

    // What can still fail, before anything changes.
    let nodes: SipNode[] | null = null;
    let tls: TlsFiles | null = null;
    try {
      if (plan.parts.has('nodes')) nodes = await resolveStaticNodes(next.nodes, next.performanceTestingMode ? next.extraServerNodes : []);
      if (hasTls(next)) tls = readTlsFiles(next.tlsCertFile as string, next.tlsKeyFile as string, next.tlsCaFile);
    } catch (err) {
      if (err instanceof ConfigError) return invalid(err);
      throw err;
    }
    // The stop may have begun while host names were being resolved.
    if (this.parts.isStopping()) return refuse('refused', '(balancer)', 'a graceful stop is under way');
    if (plan.parts.has('algorithm')) {
      const algorithmFields = plan.changed.filter((f) => isPart(ruleOf(f), 'algorithm'));
      let reason: string | null;
      try {
        reason = this.parts.algorithm.reconfigure?.(next) ?? null;
      } catch (err) {
        reason = `failed: ${(err as Error).message}`;
      }
      if (reason !== null) {
        return {
          ok: false, status: 'refused', error: `not reloaded: algorithm ${this.parts.algorithm.name} refused its new parameters; nothing was changed`,
          refused: algorithmFields.map((f) => ({ key: keyName(f), reason: `algorithm ${this.parts.algorithm.name}: ${reason}` })),
        };
      }
    }

    // From here on nothing fails.
    this.apply(plan, next, nodes);
    const tlsListeners = tls === null ? 0 : this.parts.reloadTls(tls);
    this.running = next;
    for (const line of warnings) this.parts.log.warn(line);
    return { ok: true, applied: plan.changed.map(keyName), tlsListeners, warnings, notes: this.notes(plan, next) };
  }

  private apply(plan: ReloadPlan, next: Config, nodes: SipNode[] | null): void {
    const p = this.parts;
    if (plan.parts.has('registry')) {
      p.registry.reconfigure({ nodeTimeoutMs: next.nodeTimeout, rampUpPeriodMs: next.trafficRampupCyclePeriod, rampUpPercent: next.trafficPercentageIncrease });
      p.sync.reconfigure(next.nodeTimeout, shareIntervalMs(next.nodeTimeout, this.shareMaxMs));
    }
    if (plan.parts.has('membershipTimer')) p.setMembershipInterval(next.heartbeatInterval);
    if (plan.parts.has('heartbeatAuth')) p.setHeartbeatToken(next.heartbeatToken);
    if (plan.parts.has('udpRead')) p.setUdpReadDelay(next.udpReadDelay);
    if (plan.parts.has('passiveHealth')) p.passiveHealth.reconfigure(passiveHealthOptions(next));
    if (plan.parts.has('activeHealth')) {
      p.health.reconfigure({ intervalMs: next.healthCheckInterval, timeoutMs: next.healthCheckTimeout, failures: next.healthCheckFailures, successes: next.healthCheckSuccesses });
    }
    if (plan.parts.has('policy')) p.proxy.setPolicy(proxyPolicy(next));
    if (nodes !== null) {
      this.applyNodes(nodes);
      warnUnusableNodeTransports(next.nodes, next, p.addresses, p.log);
      warnIgnoredWeights(next, p.algorithm.name, p.log);
    }
  }

  /**
   * The static nodes of the new file against those of the running one: new ones added, missing
   * ones retired (they leave once their calls have ended), changed ones updated. A weight set
   * through the admin API (here or on a balancer sharing the store) stays unless the file changes
   * that node's weight; then the file's weight is withdrawn to every balancer as the newer word.
   */
  private applyNodes(nodes: readonly SipNode[]): void {
    const r = this.parts.registry;
    const next = new Map(nodes.map((n) => [n.id, n]));
    for (const id of this.configured.keys()) if (!next.has(id)) r.retire(id);
    for (const [id, n] of next) {
      const before = this.configured.get(id);
      const entry = r.get(id);
      if (before !== undefined && entry !== undefined && entry.source === 'static' && !entry.retiring) {
        // The entry changed in the file (transports, HTTP side): the new entry, which keeps an
        // operator's weight (putStatic) unless the file changed the weight too.
        if (!isDeepStrictEqual({ ...before, weight: 0 }, { ...n, weight: 0 })) r.putStatic(n);
        if (before.weight !== n.weight) r.configureWeight(id, n.weight);
        continue;
      }
      r.putStatic(n);
    }
    this.configured = next;
  }

  /** What applies only in part. */
  private notes(plan: ReloadPlan, next: Config): string[] {
    const out: string[] = [];
    if (this.parts.http) {
      const fields = plan.changed.filter((f) => HTTP_HEALTH_FIELDS.includes(f));
      if (fields.length > 0) {
        out.push(`${fields.map(keyName).join(', ')}: applied to SIP; the HTTP balancer's own health checks keep their start values until siplb restarts`);
      }
    }
    if (plan.parts.has('nodes')) {
      const retiring = this.parts.registry.list().filter((e) => e.retiring).map((e) => e.node.id);
      if (retiring.length > 0) out.push(`nodes ${retiring.join(', ')}: removed from nodes=; they take no new calls and leave once their calls have ended`);
    }
    if (plan.changed.includes('healthCheckInterval') && next.healthCheckInterval <= 0) {
      out.push('healthCheckInterval=0: active health checks are off; nodes they had taken out are back');
    }
    return out;
  }
}

/** PassiveHealth's options from a configuration (start and reload). */
export function passiveHealthOptions(cfg: Config): PassiveHealthOptions {
  return {
    errorStatuses: cfg.responsesStatusCodeNodeRemoval, maxErrors: cfg.maxNumberResponsesWithError, windowMs: cfg.maxErrorTime,
    errorReason: cfg.responseReasonNodeRemoval,
    maxUnanswered: cfg.maxRequestNumberWithoutResponse, maxResponseTimeMs: cfg.maxResponseTime,
  };
}

/**
 * A node reached over a transport the node side does not listen for could not reach siplb back
 * the same way: such a port is never used, which the operator should hear about (start, reload).
 */
export function warnUnusableNodeTransports(specs: readonly StaticNodeSpec[], cfg: Config, addresses: LocalAddresses, log: Logger): void {
  for (const spec of specs) {
    if (!addresses.towardsNodes[spec.transport]) {
      log.warn({ node: `${spec.host}:${spec.port}`, transport: spec.transport },
        `nodes: ${spec.transport.toUpperCase()} port of this node is not used: siplb has no ${spec.transport.toUpperCase()} listener on the nodes' side (set ${isOnePortMode(cfg) ? 'external' : 'internal'}${spec.transport[0].toUpperCase()}${spec.transport.slice(1)}Port)`);
    }
  }
}

/** Why node weights do nothing with this algorithm, or undefined when they count (a user module is given the benefit of the doubt). */
export function weightsIgnoredBy(cfg: Config, algorithmName: string): string | undefined {
  return builtInEntry(cfg.algorithmClass)?.weighted === false
    ? `algorithm ${algorithmName} ignores node weights; use algorithmClass=wrr, least-calls or a hash algorithm to honour them`
    : undefined;
}

/** Weights set in `nodes=` for an algorithm that ignores them (start, reload). */
export function warnIgnoredWeights(cfg: Config, algorithmName: string, log: Logger): void {
  const why = weightsIgnoredBy(cfg, algorithmName);
  if (why !== undefined && cfg.nodes.some((n) => n.weight !== 1)) log.warn(why);
}

function refuse(status: 'invalid' | 'refused', key: string, reason: string): ReloadResult {
  return { ok: false, status, error: `not reloaded: ${reason}`, refused: [{ key, reason }] };
}

function invalid(err: ConfigError): ReloadResult {
  return { ok: false, status: 'invalid', error: `${err.message}; nothing was changed`, refused: [{ key: err.key, reason: `${JSON.stringify(err.value)}: ${err.reason}` }] };
}
