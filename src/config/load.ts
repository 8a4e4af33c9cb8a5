// Turns lb.properties text into a fully validated Config. Single keys are checked by the table in
// keys.ts; this file adds what needs more than one key: defaults derived from other keys and
// combinations that cannot work. The loader never logs; it hands its remarks back to the caller.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.ts';
import { isSipStackKey, keyForField, keySpec, KEYS, type KeySpec } from './keys.ts';
import { parseProperties, type PropertyEntry } from './properties.ts';
import type { Config, LoadedConfig } from './types.ts';

/** Built-in defaults: what siplb runs with given an empty file. */
export function defaultConfig(): Config {
  const config: Partial<Config> = {};
  for (const spec of KEYS) setDefault(config, spec);
  // Complete: the key table is a mapped type over Config, so KEYS covers every field exactly once.
  return config as Config;
}

function setDefault<F extends keyof Config>(config: Partial<Config>, spec: KeySpec<F>): void {
  // A copy, so a caller that modifies a list in its Config cannot change the table's default.
  config[spec.field] = structuredClone(spec.defaultValue);
}

export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', path, err instanceof Error ? err.message : String(err));
  }
  return loadConfigText(text);
}

type GivenEntries = Map<keyof Config, PropertyEntry>;

export function loadConfigText(text: string): LoadedConfig {
  const parsed = parseProperties(text);
  const warnings = [...parsed.warnings];
  const infos: string[] = [];
  const config = defaultConfig();
  const given: GivenEntries = new Map();
  let sipStackKeys = 0;

  for (const entry of parsed.entries) {
    if (isSipStackKey(entry.key)) {
      sipStackKeys += 1;
      continue;
    }
    const spec = keySpec(entry.key);
    if (spec === undefined) {
      warnings.push(unknownKeyWarning(entry));
      continue;
    }
    assign(config, spec, entry);
    given.set(spec.field, entry);
  }

  deriveDefaults(config, given);
  checkPortClash(config, given);

  if (sipStackKeys > 0) {
    const noun = sipStackKeys === 1 ? 'key' : 'keys';
    infos.push(`ignored ${sipStackKeys} SIP-stack ${noun} (javax.sip.*, gov.nist.*): siplb has its own SIP stack`);
  }
  return { config, warnings, infos };
}

function assign<F extends keyof Config>(config: Config, spec: KeySpec<F>, entry: PropertyEntry): void {
  try {
    config[spec.field] = spec.parse(entry.value, spec.key);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.key, err.value, `${err.reason} (line ${entry.line})`);
    throw err;
  }
}

const KEY_BY_LOWER_CASE = new Map(KEYS.map((spec) => [spec.key.toLowerCase(), spec.key]));

function unknownKeyWarning(entry: PropertyEntry): string {
  const warning = `unknown configuration key '${entry.key}' ignored (line ${entry.line})`;
  // Java keys are case-sensitive; a wrong case is the likeliest reason a known key goes unseen.
  const meant = KEY_BY_LOWER_CASE.get(entry.key.toLowerCase());
  return meant === undefined ? warning : `${warning}; did you mean '${meant}'?`;
}

function lineOf(given: GivenEntries, field: keyof Config): string {
  const entry = given.get(field);
  return entry === undefined ? '' : ` (line ${entry.line})`;
}

function deriveDefaults(config: Config, given: GivenEntries): void {
  if (!given.has('externalHost')) config.externalHost = config.host;
  if (!given.has('internalHost')) config.internalHost = config.host;

  const externalAddress = keyForField('externalIpLoadBalancerAddress').key;
  const internalAddress = keyForField('internalIpLoadBalancerAddress').key;

  if (config.externalIpLoadBalancerAddress !== null) {
    config.externalIpLoadBalancerPort ??= config.externalPort;
  } else if (config.externalIpLoadBalancerPort !== null) {
    throw portWithoutAddress(given, 'externalIpLoadBalancerPort', externalAddress);
  }

  if (config.internalIpLoadBalancerAddress !== null) {
    config.internalIpLoadBalancerPort ??= config.internalPort ?? config.externalPort;
  } else if (config.internalIpLoadBalancerPort !== null) {
    throw portWithoutAddress(given, 'internalIpLoadBalancerPort', internalAddress);
  }
}

function portWithoutAddress(given: GivenEntries, field: keyof Config, addressKey: string): ConfigError {
  return new ConfigError(
    keyForField(field).key,
    given.get(field)?.value ?? '',
    `${addressKey} must be set as well: a port alone does not say where the IP load balancer is${lineOf(given, field)}`,
  );
}

/** Whether binding the same port on both addresses would collide. */
function bindsOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  // '::' also takes IPv4 on a dual-stack host (the Linux default); '0.0.0.0' takes every IPv4 address.
  if (a === '::' || b === '::') return true;
  const ipv4 = (address: string): boolean => !address.includes(':');
  return (a === '0.0.0.0' && ipv4(b)) || (b === '0.0.0.0' && ipv4(a));
}

function checkPortClash(config: Config, given: GivenEntries): void {
  const { externalPort, internalPort, externalHost, internalHost } = config;
  if (internalPort === null || internalPort !== externalPort || !bindsOverlap(externalHost, internalHost)) return;
  const where = externalHost === internalHost ? externalHost : `${externalHost} and ${internalHost}`;
  throw new ConfigError(
    keyForField('internalPort').key,
    given.get('internalPort')?.value ?? String(internalPort),
    `internalPort must differ from externalPort (${externalPort}) when both sides bind ${where}${lineOf(given, 'internalPort')}`,
  );
}
