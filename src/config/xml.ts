// Reads Restcomm's lb-configuration.xml into the same flat entries as a properties file, so both
// formats meet one validation pipeline (load.ts). The element path says which key a leaf sets
// (keys.ts lists each key's paths, several where Restcomm's own files disagree on the parent);
// an unknown path whose leaf name is a key siplb knows is accepted as that key, because
// operators move elements between sections and Restcomm's files themselves do. The structured
// parts have their own readers: <sipStack><property> pairs, <routingRulesIpv4/6><rule> lists,
// <heartbeat configclass=...>, and the sections siplb does not offer (<smpp>, <ssl> keystores,
// <http><urlrewrite>).

import { createRequire } from 'node:module';
import type * as FastXmlParser from 'fast-xml-parser';
import { ConfigError } from '../core/errors.ts';
import type { FlatConfig } from './entries.ts';
import { keyForXmlPath, keySpec, type AnyKeySpec } from './keys.ts';

const ROOT = 'load-balancer-properties';

// Loaded only for an XML file: the parser adds several MB to a balancer whose file is properties.
let parserModule: typeof FastXmlParser | null = null;
function fastXmlParser(): typeof FastXmlParser {
  parserModule ??= createRequire(import.meta.url)('fast-xml-parser') as typeof FastXmlParser;
  return parserModule;
}

/** Restcomm's XML file starts with a declaration or its root element; a properties file never starts with '<'. */
export function isXmlConfig(text: string): boolean {
  return text.replace(/^\uFEFF/, '').trimStart().startsWith('<');
}

// fast-xml-parser's preserveOrder shape: each element is { name: children[], ':@'?: attributes }
// and text is { '#text': value }.
type XmlNode = Record<string, unknown>;

interface Element {
  name: string;
  children: Element[];
  text: string;
  attributes: Record<string, string>;
}

export function xmlEntries(withBom: string): FlatConfig {
  const text = withBom.replace(/^\uFEFF/, '').trimStart();
  const { XMLParser, XMLValidator } = fastXmlParser();
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new ConfigError('(file)', '(XML)', `not well-formed XML: ${validatorMessage(valid.err.msg)} (line ${valid.err.line}, column ${valid.err.col})`);
  }
  const parser = new XMLParser({
    preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false,
    parseAttributeValue: false, trimValues: true, ignoreDeclaration: true, ignorePiTags: true,
  });
  const roots = toElements(parser.parse(text) as XmlNode[]);
  if (roots.length !== 1 || roots[0].name !== ROOT) {
    const found = roots.map((r) => `<${r.name}>`).join(', ') || 'nothing';
    throw new ConfigError('(file)', '(XML)', `expected one <${ROOT}> root element (Restcomm's lb-configuration.xml), found ${found}`);
  }
  const reader = new XmlReader();
  for (const section of roots[0].children) reader.section(section);
  return reader.result();
}

/** The validator reports elements left open as a JSON list of their names; say it in words. */
function validatorMessage(msg: string): string {
  const open = /^Invalid '(\[[\s\S]*\])' found\.$/.exec(msg);
  if (open === null) return msg;
  try {
    const names = JSON.parse(open[1]) as unknown;
    if (Array.isArray(names)) return `elements never closed: ${names.map((n) => `<${String(n)}>`).join(', ')}`;
  } catch {
    // Not the list it looked like: the validator's own words.
  }
  return msg;
}

function toElements(nodes: XmlNode[]): Element[] {
  const out: Element[] = [];
  for (const node of nodes) {
    const name = Object.keys(node).find((k) => k !== ':@' && k !== '#text');
    if (name === undefined) continue;
    const inner = (node[name] ?? []) as XmlNode[];
    const text = inner.map((n) => (typeof n['#text'] === 'string' || typeof n['#text'] === 'number' ? String(n['#text']) : '')).join('').trim();
    const attributes = (node[':@'] ?? {}) as Record<string, string>;
    out.push({ name, children: toElements(inner), text, attributes });
  }
  return out;
}

function where(path: readonly string[]): string {
  return path.map((p) => `<${p}>`).join('');
}

class XmlReader {
  private readonly flat: FlatConfig = { entries: [], warnings: [], sipStackKeys: 0, noMeaning: [] };

  result(): FlatConfig {
    return this.flat;
  }

  section(el: Element): void {
    switch (el.name) {
      case 'sipStack': return this.sipStack(el);
      case 'heartbeat': return this.heartbeat(el);
      default: return this.walk(el, [el.name]);
    }
  }

  private walk(el: Element, path: string[]): void {
    const joined = path.join('/');
    if (joined === 'sip/routingRulesIpv4' || joined === 'sip/routingRulesIpv6') return this.routingRules(el, path);
    if (joined === 'http/urlrewrite') {
      if (el.children.length > 0) this.flat.warnings.push(`${where(path)}: URL rewriting is not available: its rules are ignored`);
      return;
    }
    if (el.children.length > 0) {
      for (const child of el.children) this.walk(child, [...path, child.name]);
      return;
    }
    // Restcomm reads an empty element as "not set", and its own files are full of them.
    if (el.text === '') return;
    this.leaf(path, el.text);
  }

  private leaf(path: readonly string[], value: string): void {
    const leafName = path[path.length - 1];
    const at = where(path);
    if (path[0] === 'smpp' || path[0] === 'ssl') {
      // The pipeline recognises these by name (SMPP keys, keystores, terminateTLSTraffic).
      this.flat.entries.push({ key: leafName, value, where: at });
      return;
    }
    const spec = keyForXmlPath(path.join('/')) ?? keySpec(leafName);
    if (spec === undefined) {
      // Not a siplb key: the pipeline classifies Restcomm keys that have no meaning here and
      // warns about the rest, naming the element.
      this.flat.entries.push({ key: leafName, value, where: at });
      return;
    }
    this.flat.entries.push({ key: nameFor(spec, leafName), value, where: at });
  }

  private sipStack(el: Element): void {
    for (const property of el.children) {
      const key = property.children.find((c) => c.name === 'key')?.text ?? '';
      const value = property.children.find((c) => c.name === 'value')?.text ?? '';
      if (property.name !== 'property' || key === '') {
        this.flat.warnings.push(`<sipStack><${property.name}>: expected <property><key>…</key><value>…</value></property>; ignored`);
      } else if (key.startsWith('javax.net.ssl.')) {
        // Keystore settings put among the stack properties: reported with the other keystore keys.
        this.flat.entries.push({ key, value, where: `<sipStack><property>${key}` });
      } else {
        // Whatever its prefix, a <sipStack> property tunes JAIN-SIP, which siplb does not have.
        this.flat.sipStackKeys += 1;
      }
    }
  }

  private routingRules(el: Element, path: string[]): void {
    const items: string[] = [];
    for (const rule of el.children) {
      const pattern = rule.children.find((c) => c.name === 'ipPattern')?.text ?? '';
      const patch = rule.children.find((c) => c.name === 'patch')?.text ?? '';
      if (rule.name !== 'rule' || pattern === '' || patch === '' || pattern.includes(',') || pattern.includes('=')) {
        throw new ConfigError(path[path.length - 1], `${pattern}=${patch}`,
          `each ${where(path)} entry must be <rule><ipPattern>…</ipPattern><patch>true|false</patch></rule>`);
      }
      items.push(`${pattern}=${patch}`);
    }
    if (items.length > 0) this.flat.entries.push({ key: path[path.length - 1], value: items.join(','), where: where(path) });
  }

  // <heartbeat configclass="..."><heartbeatConfig>...</heartbeatConfig></heartbeat>: Restcomm's
  // pluggable heartbeat. siplb speaks the HTTP one (heartbeatPort); RMI and Kubernetes are not offered.
  private heartbeat(el: Element): void {
    const configClass = el.attributes.configclass ?? el.attributes.configClass ?? '';
    if (/kube/i.test(configClass)) {
      this.flat.warnings.push(`<heartbeat configclass="${configClass}">: the Kubernetes heartbeat is not available; nodes register over HTTP on heartbeatPort`);
    } else if (/rmi/i.test(configClass)) {
      this.flat.noMeaning.push('rmiRegistryPort');
    }
    for (const config of el.children) {
      for (const leaf of config.children) {
        if (leaf.text === '') continue;
        const path = ['heartbeat', config.name, leaf.name];
        if (/^protocolClassName$/i.test(leaf.name)) continue; // names the Java class configclass already told
        if (/kube/i.test(configClass)) continue;              // warned about as a whole above
        this.leaf(path, leaf.text);
      }
    }
  }
}

/** The properties name to report: the element's own name when it is one of the key's names. */
function nameFor(spec: AnyKeySpec, leafName: string): string {
  if (leafName === spec.key || (spec.aliases ?? []).includes(leafName)) return leafName;
  return spec.key;
}
