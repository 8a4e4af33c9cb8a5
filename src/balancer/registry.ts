// algorithmClass values -> algorithm instances. Restcomm's fully qualified class names, their
// simple names and siplb's short names all select the same implementation.

import type { Config } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { Algorithm } from './algorithm.ts';
import { CallIdAffinity } from './callid-affinity.ts';

const RESTCOMM_PACKAGE = 'org.mobicents.tools.sip.balancer.';

interface AlgorithmEntry {
  short: string;
  restcomm: string;
  create(cfg: Config): Algorithm;
}

const AVAILABLE: readonly AlgorithmEntry[] = [
  {
    short: 'callid',
    restcomm: 'CallIDAffinityBalancerAlgorithm',
    create: (cfg) => new CallIdAffinity({
      maxIdleSeconds: cfg.callIdAffinityMaxTimeInCache,
      groupFailover: cfg.callIdAffinityGroupFailover,
      maxEntries: cfg.callIdAffinityMaxEntries,
    }),
  },
];

// Restcomm algorithms siplb recognises but does not provide in this version: naming one is a
// configuration error that says so, rather than "unknown".
const NOT_YET = new Set([
  'HeaderConsistentHashBalancerAlgorithm', 'PersistentConsistentHashBalancerAlgorithm',
  'ClusterSubdomainAffinityAlgorithm', 'UserBasedAlgorithm', 'ActiveStandbyAlgorithm',
  'WorstCaseUdpTestAffinityAlgorithm', 'CallIDAffinityBalancerAlgorithmRR',
]);

function simpleName(value: string): string {
  return value.startsWith(RESTCOMM_PACKAGE) ? value.slice(RESTCOMM_PACKAGE.length) : value;
}

/** Throws ConfigError (key algorithmClass) for names siplb cannot run. */
export function createAlgorithm(cfg: Config): Algorithm {
  const value = cfg.algorithmClass.trim();
  const simple = simpleName(value);
  const entry = AVAILABLE.find((a) => a.restcomm === simple || a.short === value.toLowerCase());
  if (entry !== undefined) return entry.create(cfg);
  const available = AVAILABLE.map((a) => `${a.short} (${RESTCOMM_PACKAGE}${a.restcomm})`).join(', ');
  if (NOT_YET.has(simple)) throw new ConfigError('algorithmClass', value, `not available in this siplb version; available: ${available}`);
  throw new ConfigError('algorithmClass', value, `unknown algorithm; available: ${available}`);
}
