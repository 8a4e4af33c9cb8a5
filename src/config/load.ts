// Turns a configuration file into a fully validated Config. Both of Restcomm's formats are read:
// properties text (lb.properties, lb-configuration.properties) and lb-configuration.xml, told
// apart by content, not by file name. Each format is flattened into the same entries (key name,
// value, where it was written); from there one pipeline applies the key table in keys.ts and the
// rules that need more than one key: defaults derived from other keys, settings given twice under
// two names, combinations that cannot work. The loader never logs; it hands its remarks back.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../core/errors.ts';
import type { ConfigEntry, FlatConfig } from './entries.ts';
import { isSipStackKey, keyForField, keySpec, KEYS, type AnyKeySpec, type KeySpec } from './keys.ts';
import { ipLoadBalancerPortKey, isOnePortMode, portKey, sidePorts, sidePortsV6 } from './ports.ts';
import { parseProperties } from './properties.ts';
import { KEYSTORE_KEYS, KEYSTORE_WARNING, NO_MEANING_KEYS, SMPP_KEYS, SMPP_WARNING, SUPERSEDED_KEYS } from './restcomm-keys.ts';
import { SIP_TRANSPORTS, type Config, type LoadedConfig, type PortKeyName } from './types.ts';
import { isXmlConfig, xmlEntries } from './xml.ts';

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
  const loaded = loadConfigText(text);
  resolveAlgorithmPath(loaded.config, dirname(resolve(path)));
  resolveTlsPaths(loaded.config, dirname(resolve(path)));
  return loaded;
}

export function loadConfigText(text: string): LoadedConfig {
  return loadEntries(isXmlConfig(text) ? xmlEntries(text) : propertiesEntries(text));
}

function propertiesEntries(text: string): FlatConfig {
  const parsed = parseProperties(text);
  const flat: FlatConfig = { entries: [], warnings: [...parsed.warnings], sipStackKeys: 0, noMeaning: [] };
  for (const e of parsed.entries) {
    if (isSipStackKey(e.key)) flat.sipStackKeys += 1;
    else flat.entries.push({ key: e.key, value: e.value, where: `line ${e.line}` });
  }
  return flat;
}

type GivenEntries = Map<keyof Config, ConfigEntry>;

function loadEntries(flat: FlatConfig): LoadedConfig {
  const warnings = [...flat.warnings];
  const infos: string[] = [];
  const config = defaultConfig();
  const given: GivenEntries = new Map();
  const noMeaning = new Set(flat.noMeaning);
  const smpp: string[] = [];
  const keystore: string[] = [];

  for (const entry of flat.entries) {
    const spec = keySpec(entry.key);
    if (spec === undefined) {
      if (NO_MEANING_KEYS.has(entry.key)) noMeaning.add(entry.key);
      else if (SMPP_KEYS.has(entry.key)) smpp.push(entry.key);
      else if (KEYSTORE_KEYS.has(entry.key)) keystore.push(entry.key);
      else if (SUPERSEDED_KEYS.has(entry.key)) warnings.push(`${entry.key} is an older Restcomm key siplb does not read: ${SUPERSEDED_KEYS.get(entry.key)} (${entry.where})`);
      else warnings.push(unknownKeyWarning(entry));
      continue;
    }
    const earlier = given.get(spec.field);
    if (earlier !== undefined) {
      // One setting written twice under two names or in two places (statisticPort and apiPort,
      // public-ip and publicIp, <common><heartbeatPorts> and <heartbeatConfig><heartbeatPort>).
      if (normalised(spec, earlier.value) !== normalised(spec, entry.value)) {
        throw new ConfigError(entry.key, entry.value,
          `${entry.key} (${entry.where}) and ${earlier.key} (${earlier.where}) are the same setting and must not differ`);
      }
      continue;
    }
    assign(config, spec, entry);
    given.set(spec.field, entry);
  }

  deriveDefaults(config, given, warnings);
  secureListenersNeedFiles(config, given, warnings);
  checkPortClash(config, given);
  checkHttpListeners(config, given, warnings);

  if (smpp.some((k) => k === 'smppPort' || k === 'smppSslPort')) warnings.push(`${SMPP_WARNING}: ${smpp.join(', ')}`);
  // Without smppPort Restcomm's SMPP balancer is off too; its tuning keys change nothing anywhere.
  else if (smpp.length > 0) infos.push(`ignored SMPP balancer settings (no smppPort, so the SMPP balancer is off; siplb has none): ${smpp.join(', ')}`);
  if (keystore.length > 0) warnings.push(`${KEYSTORE_WARNING}: ${keystore.join(', ')}`);
  if (flat.sipStackKeys > 0) {
    const noun = flat.sipStackKeys === 1 ? 'key' : 'keys';
    infos.push(`ignored ${flat.sipStackKeys} SIP-stack ${noun} (javax.sip.*, gov.nist.*): siplb has its own SIP stack`);
  }
  if (noMeaning.size > 0) {
    const reasons = [...noMeaning].map((k) => `${k} (${NO_MEANING_KEYS.get(k) ?? 'no meaning in siplb'})`);
    infos.push(`ignored Restcomm keys that have no meaning in siplb: ${reasons.join('; ')}`);
  }
  return { config, warnings, infos };
}

function normalised(spec: AnyKeySpec, value: string): string {
  try {
    // A RegExp would serialise as {} and make any two patterns look the same.
    return JSON.stringify(spec.parse(value, spec.key), (_, v: unknown) => (v instanceof RegExp ? String(v) : v));
  } catch {
    return value;
  }
}

function assign<F extends keyof Config>(config: Config, spec: KeySpec<F>, entry: ConfigEntry): void {
  try {
    config[spec.field] = spec.parse(entry.value, entry.key);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.key, err.value, `${err.reason} (${entry.where})`);
    throw err;
  }
}

const KEY_BY_LOWER_CASE = new Map(KEYS.map((spec) => [spec.key.toLowerCase(), spec.key]));

function unknownKeyWarning(entry: ConfigEntry): string {
  const warning = `unknown configuration key '${entry.key}' ignored (${entry.where})`;
  // Java keys are case-sensitive; a wrong case is the likeliest reason a known key goes unseen.
  const meant = KEY_BY_LOWER_CASE.get(entry.key.toLowerCase());
  return meant === undefined ? warning : `${warning}; did you mean '${meant}'?`;
}

function whereOf(given: GivenEntries, field: keyof Config): string {
  const entry = given.get(field);
  return entry === undefined ? '' : ` (${entry.where})`;
}

function nameOf(given: GivenEntries, field: keyof Config): string {
  return given.get(field)?.key ?? keyForField(field).key;
}

function deriveDefaults(config: Config, given: GivenEntries, warnings: string[]): void {
  if (!given.has('externalHost')) config.externalHost = config.host;
  if (!given.has('internalHost')) config.internalHost = config.host;
  if (!given.has('externalIpv6Host')) config.externalIpv6Host = config.ipv6Host;
  if (!given.has('internalIpv6Host')) config.internalIpv6Host = config.ipv6Host;

  if (config.callIdAffinityMaxTimeInCache === 0) {
    // Restcomm's own lb-configuration.xml ships 0, which there evicts every call at the next sweep.
    const fallback = keyForField('callIdAffinityMaxTimeInCache').defaultValue;
    warnings.push(`callIdAffinityMaxTimeInCache=0 would forget every call at once; using ${fallback} seconds${whereOf(given, 'callIdAffinityMaxTimeInCache')}`);
    config.callIdAffinityMaxTimeInCache = fallback;
  }

  for (const side of ['external', 'internal'] as const) {
    const addressField = side === 'external' ? 'externalIpLoadBalancerAddress' : 'internalIpLoadBalancerAddress';
    const portField = side === 'external' ? 'externalIpLoadBalancerPort' : 'internalIpLoadBalancerPort';
    if (config[addressField] !== null) continue;
    const fields: (PortKeyName | typeof portField)[] = [portField, ...SIP_TRANSPORTS.map((t) => ipLoadBalancerPortKey(side, t))];
    for (const field of fields) {
      const value = config[field];
      if (value !== null && value !== 0) {
        throw new ConfigError(nameOf(given, field), given.get(field)?.value ?? String(value),
          `${keyForField(addressField).key} must be set as well: a port alone does not say where the IP load balancer is${whereOf(given, field)}`);
      }
    }
  }
  if (isOnePortMode(config) && config.internalIpLoadBalancerAddress !== null) {
    warnings.push(`internalIpLoadBalancerAddress=${config.internalIpLoadBalancerAddress} has no effect in one-port mode (no internal port is set): clients and nodes both see the external address${whereOf(given, 'internalIpLoadBalancerAddress')}`);
  }

  if (config.performanceTestingMode && config.extraServerNodes.length === 0) {
    warnings.push(`performanceTestingMode=true without extraServerNodes: there are no nodes to put in${whereOf(given, 'performanceTestingMode')}`);
  }

  // A stream connection lives in one worker; what a node sends towards it reaches that worker
  // only when the kernel happens to hash the node's packets there.
  const streams = SIP_TRANSPORTS.filter((t) => t !== 'udp' && sidePorts(config, 'external')[t] !== null);
  if (config.workers > 1 && streams.length > 0) {
    warnings.push(`workers=${config.workers} with ${streams.join(', ')} client listeners: each connection belongs to one worker, and responses and requests from nodes towards it are lost when the kernel hands them to another worker; use workers=1 for clients over streams${whereOf(given, 'workers')}`);
  }
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
  const external = sidePorts(config, 'external');
  if (SIP_TRANSPORTS.every((t) => external[t] === null)) {
    const field = (['externalUdpPort', 'externalTcpPort', 'externalPort'] as const).find((f) => given.has(f)) ?? 'externalUdpPort';
    throw new ConfigError(nameOf(given, field), given.get(field)?.value ?? '0',
      `no external SIP port is left, so siplb would not listen for clients; set externalUdpPort, externalTcpPort, externalTlsPort, externalWsPort or externalWssPort${whereOf(given, field)}`);
  }

  if (!bindsOverlap(config.externalHost, config.internalHost)) return;
  const internal = sidePorts(config, 'internal');
  // TCP-based transports share one port space, UDP another.
  const space = (t: string): string => (t === 'udp' ? 'udp' : 'tcp');
  for (const ti of SIP_TRANSPORTS) {
    const p = internal[ti];
    if (p === null) continue;
    for (const te of SIP_TRANSPORTS) {
      if (external[te] !== p || space(te) !== space(ti)) continue;
      const field = given.has(portKey('internal', ti)) ? portKey('internal', ti) : 'internalPort';
      const where = config.externalHost === config.internalHost ? config.externalHost : `${config.externalHost} and ${config.internalHost}`;
      throw new ConfigError(nameOf(given, field), given.get(field)?.value ?? String(p),
        `the internal ${ti.toUpperCase()} port must differ from the external ${te.toUpperCase()} port (${p}) when both sides bind ${where}${whereOf(given, field)}`);
    }
  }
}

/**
 * A SIP TLS or WSS listener needs the PEM certificate and key. Restcomm read a Java keystore
 * instead, so a Restcomm file may well set externalTlsPort with neither: as with httpsPort, such
 * listeners stay off with a warning (the file keeps starting); given only one of the two files,
 * the operator meant TLS and the missing one is an error.
 */
function secureListenersNeedFiles(config: Config, given: GivenEntries, warnings: string[]): void {
  const cert = config.tlsCertFile !== null;
  const key = config.tlsKeyFile !== null;
  if (cert && key) return;
  for (const side of ['external', 'internal'] as const) {
    const v4 = sidePorts(config, side);
    const v6 = sidePortsV6(config, side);
    for (const t of ['tls', 'wss'] as const) {
      const v4Field = portKey(side, t);
      const v6Field = `${side}Ipv6${t === 'tls' ? 'Tls' : 'Wss'}Port` as const;
      if (v4[t] === null && (v6 === null || v6[t] === null)) continue;
      const field = given.has(v4Field) ? v4Field : v6Field;
      const value = given.get(field)?.value ?? String(v4[t] ?? v6?.[t]);
      if (cert !== key) {
        const missing = cert ? 'tlsKeyFile' : 'tlsCertFile';
        throw new ConfigError(missing, '', `${nameOf(given, field)}=${value} needs ${missing} as well as ${cert ? 'tlsCertFile' : 'tlsKeyFile'}${whereOf(given, field)}`);
      }
      warnings.push(`${nameOf(given, field)}=${value} needs tlsCertFile and tlsKeyFile (PEM): no SIP ${t.toUpperCase()} listener${whereOf(given, field)}`);
      if (v4[t] !== null) config[v4Field] = 0;
      if (v6 !== null && v6[t] !== null) config[v6Field] = 0;
    }
  }
}

/**
 * The HTTP listeners: httpsPort needs both PEM files. Restcomm's own files set httpsPort=2081
 * with no certificate at all (Restcomm read a Java keystore instead), and must keep starting: so
 * given neither file, HTTPS stays off with a warning; given only one, the operator meant HTTPS
 * and the missing one is an error. Both ports are TCP on externalHost, so they must differ from
 * each other and from the external SIP TCP port.
 */
function checkHttpListeners(config: Config, given: GivenEntries, warnings: string[]): void {
  const https = config.httpsPort;
  if (https !== null) {
    const cert = config.tlsCertFile !== null;
    const key = config.tlsKeyFile !== null;
    if (!cert && !key) {
      warnings.push(`${nameOf(given, 'httpsPort')}=${https} needs tlsCertFile and tlsKeyFile: no HTTPS listener${whereOf(given, 'httpsPort')}`);
    } else if (cert !== key) {
      const missing = cert ? 'tlsKeyFile' : 'tlsCertFile';
      const present = cert ? 'tlsCertFile' : 'tlsKeyFile';
      throw new ConfigError(missing, '', `httpsPort=${https} needs ${missing} as well as ${present}${whereOf(given, 'httpsPort')}`);
    }
  }
  if (config.tlsClientAuth === 'require' && config.tlsCaFile === null) {
    throw new ConfigError(nameOf(given, 'tlsClientAuth'), 'require',
      `tlsClientAuth=require needs tlsCaFile: without it no client certificate could be trusted${whereOf(given, 'tlsClientAuth')}`);
  }
  const sipTcp = sidePorts(config, 'external').tcp;
  for (const field of ['httpPort', 'httpsPort'] as const) {
    const p = config[field];
    if (p === null) continue;
    if (field === 'httpsPort' && p === config.httpPort) {
      throw new ConfigError(nameOf(given, field), String(p), `httpsPort and httpPort must differ${whereOf(given, field)}`);
    }
    if (p === sipTcp) {
      throw new ConfigError(nameOf(given, field), String(p), `the external SIP TCP port is ${p} too; both bind ${config.externalHost}${whereOf(given, field)}`);
    }
  }
}

/** tlsCertFile and tlsKeyFile: relative to the configuration file, as the key table says. */
function resolveTlsPaths(config: Config, folder: string): void {
  if (config.tlsCertFile !== null && !isAbsolute(config.tlsCertFile)) config.tlsCertFile = resolve(folder, config.tlsCertFile);
  if (config.tlsKeyFile !== null && !isAbsolute(config.tlsKeyFile)) config.tlsKeyFile = resolve(folder, config.tlsKeyFile);
  if (config.tlsCaFile !== null && !isAbsolute(config.tlsCaFile)) config.tlsCaFile = resolve(folder, config.tlsCaFile);
}

/** algorithmClass naming a module file (./x.ts, ../lib/x.js): relative to the configuration file. */
function resolveAlgorithmPath(config: Config, folder: string): void {
  const cls = config.algorithmClass;
  if (isAbsolute(cls) || !(/^\.\.?[\\/]/.test(cls) || /\.(m?js|ts)$/.test(cls))) return;
  config.algorithmClass = resolve(folder, cls);
}
