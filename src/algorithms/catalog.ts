// algorithmClass values -> algorithm instances. Restcomm's fully qualified class names, their
// simple names and siplb's short names all select the same implementation; a value that looks
// like a file path loads a user module (docs/algorithms.md).

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.ts';
import type { Algorithm, AlgorithmContext, AlgorithmFactory } from './algorithm.ts';
import { ActiveStandby } from './active-standby.ts';
import { CallIdAffinity, WeightedRoundRobin } from './callid-affinity.ts';
import { HeaderConsistentHash } from './header-hash.ts';
import { LeastActiveCalls } from './least-active-calls.ts';
import { PersistentConsistentHash } from './persistent-hash.ts';
import { SubclusterAffinity } from './subcluster-affinity.ts';
import { UserBased } from './user-based.ts';

const RESTCOMM_PACKAGE = 'org.mobicents.tools.sip.balancer.';

interface AlgorithmEntry {
  short: string;
  /** Restcomm simple class names that select it. */
  restcomm: readonly string[];
  /** Uses node `weight` (a warning says so when weights are set for one that does not). */
  weighted: boolean;
  create(ctx: AlgorithmContext): Algorithm;
}

export const BUILT_IN: readonly AlgorithmEntry[] = [
  { short: 'callid', restcomm: ['CallIDAffinityBalancerAlgorithm'], weighted: false, create: (ctx) => new CallIdAffinity(ctx) },
  {
    short: 'hash', restcomm: ['HeaderConsistentHashBalancerAlgorithm', 'PureConsistentHashBalancerAlgorithm'], weighted: true,
    create: (ctx) => new HeaderConsistentHash(ctx),
  },
  {
    short: 'persistent-hash', restcomm: ['PersistentConsistentHashBalancerAlgorithm'], weighted: true,
    create: (ctx) => new PersistentConsistentHash(ctx),
  },
  { short: 'subcluster', restcomm: ['ClusterSubdomainAffinityAlgorithm'], weighted: false, create: (ctx) => new SubclusterAffinity(ctx) },
  { short: 'user', restcomm: ['UserBasedAlgorithm'], weighted: true, create: (ctx) => new UserBased(ctx) },
  { short: 'active-standby', restcomm: ['ActiveStandbyAlgorithm'], weighted: false, create: (ctx) => new ActiveStandby(ctx) },
  { short: 'least-calls', restcomm: [], weighted: true, create: (ctx) => new LeastActiveCalls(ctx) },
  { short: 'wrr', restcomm: [], weighted: true, create: (ctx) => new WeightedRoundRobin(ctx) },
];

/** Restcomm's own test algorithms: recognised, refused with a reason. */
const RESTCOMM_TEST_ONLY = new Set(['WorstCaseUdpTestAffinityAlgorithm']);

const REQUIRED_METHODS = ['pick', 'repick', 'callEnded', 'close'] as const;
/** Optional, but a function when present: the balancer calls them when it has something to say. */
const OPTIONAL_METHODS = ['pickHttp', 'nodeAdded', 'nodeRemoved', 'reconfigure'] as const;

function simpleName(value: string): string {
  return value.startsWith(RESTCOMM_PACKAGE) ? value.slice(RESTCOMM_PACKAGE.length) : value;
}

function looksLikePath(value: string): boolean {
  return value.startsWith('/') || value.startsWith('./') || value.startsWith('../') || /\.(m?js|ts)$/.test(value);
}

export function builtInEntry(value: string): AlgorithmEntry | undefined {
  const simple = simpleName(value.trim());
  return BUILT_IN.find((a) => a.restcomm.includes(simple) || a.short === value.trim().toLowerCase());
}

/**
 * Build the configured algorithm. Throws ConfigError (key algorithmClass) for names siplb cannot
 * run and for user modules that do not load or do not provide an Algorithm.
 */
export async function createAlgorithm(ctx: AlgorithmContext, baseDir = process.cwd()): Promise<Algorithm> {
  const value = ctx.config.algorithmClass.trim();
  const entry = builtInEntry(value);
  if (entry !== undefined) return entry.create(ctx);
  if (looksLikePath(value)) return loadUserAlgorithm(value, ctx, baseDir);
  const available = BUILT_IN.map((a) => (a.restcomm.length > 0 ? `${a.short} (${a.restcomm[0]})` : a.short)).join(', ');
  if (RESTCOMM_TEST_ONLY.has(simpleName(value))) {
    throw new ConfigError('algorithmClass', value, `a Restcomm test algorithm, not provided; available: ${available}, or a module path`);
  }
  throw new ConfigError('algorithmClass', value, `unknown algorithm; available: ${available}, or a path to a module`);
}

async function loadUserAlgorithm(value: string, ctx: AlgorithmContext, baseDir: string): Promise<Algorithm> {
  const path = isAbsolute(value) ? value : resolve(baseDir, value);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(path).href) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError('algorithmClass', value, `module does not load: ${(err as Error).message.split('\n')[0]}`);
  }
  const factory = typeof mod.createAlgorithm === 'function' ? mod.createAlgorithm : mod.default;
  if (typeof factory !== 'function') {
    throw new ConfigError('algorithmClass', value, 'module must export createAlgorithm(ctx) or a default function or class');
  }
  let algorithm: unknown;
  try {
    // A class is called with new, a factory function without; both receive the context.
    algorithm = isClass(factory) ? new (factory as new (c: AlgorithmContext) => unknown)(ctx) : (factory as AlgorithmFactory)(ctx);
  } catch (err) {
    throw new ConfigError('algorithmClass', value, `module failed to create the algorithm: ${(err as Error).message}`);
  }
  const members = algorithm as Record<string, unknown> | null;
  const missing = REQUIRED_METHODS.filter((m) => typeof members?.[m] !== 'function');
  if (missing.length > 0) throw new ConfigError('algorithmClass', value, `the algorithm lacks ${missing.join(', ')}`);
  const wrong = OPTIONAL_METHODS.filter((m) => members?.[m] !== undefined && typeof members[m] !== 'function');
  if (wrong.length > 0) throw new ConfigError('algorithmClass', value, `${wrong.join(', ')} must be a function when present`);
  const a = algorithm as Algorithm;
  return typeof a.name === 'string' && a.name.length > 0 ? a : Object.assign(a, { name: value });
}

function isClass(f: unknown): boolean {
  return typeof f === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(f));
}
