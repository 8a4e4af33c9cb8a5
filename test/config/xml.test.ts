import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, loadConfigText } from '../../src/config/load.ts';
import { KEYS, xmlPaths } from '../../src/config/keys.ts';
import type { Config } from '../../src/config/types.ts';
import { ConfigError } from '../../src/core/errors.ts';

function xml(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<load-balancer-properties>\n${body}\n</load-balancer-properties>\n`;
}

/** <a><b>value</b></a> for the path a/b. */
function element(path: string, value: string): string {
  const names = path.split('/');
  return names.map((n) => `<${n}>`).join('') + value + [...names].reverse().map((n) => `</${n}>`).join('');
}

// A valid, non-default value for each key, to prove each XML place sets the same field as the
// properties key. Keys ending in Port take SAMPLE_PORT.
const SAMPLE_PORT = '5099';
const SAMPLES: Record<string, string> = {
  host: '10.0.0.1', externalHost: '10.0.0.2', internalHost: '10.0.0.3',
  ipv6Host: '::1', externalIpv6Host: 'fd00::1', internalIpv6Host: 'fd00::2',
  externalTransport: 'udp', internalTransport: 'tcp',
  nodes: '10.0.0.9:5080', extraServerNodes: '10.0.0.8:5080', performanceTestingMode: 'true',
  algorithmClass: 'org.mobicents.tools.sip.balancer.UserBasedAlgorithm',
  callIdAffinityMaxTimeInCache: '180', callIdAffinityMaxEntries: '5000', callIdAffinityGroupFailover: 'true',
  userAffinityMaxTimeInCache: '60', userAffinityGroupFailover: 'true',
  sipHeaderAffinityKey: 'To', sipHeaderAffinityExclusionPattern: 'anonymous', sipHeaderAffinityFallbackKey: 'Call-ID',
  httpAffinityKey: 'session', subclusterMap: '(10.0.0.1,10.0.0.2)(10.0.0.3)', hashLoadFactor: '0.25',
  stateStore: 'redis', redisUrl: 'redis://10.0.0.5:6379', redisCluster: '10.0.0.5:7000', redisKeyPrefix: 'lb1:',
  redisReadTimeout: '50', nodeTimeout: '5200', heartbeatInterval: '100',
  healthCheckInterval: '0', healthCheckTimeout: '500', healthCheckFailures: '3', healthCheckSuccesses: '2',
  responsesStatusCodeNodeRemoval: '500,503', responseReasonNodeRemoval: 'Unable to setup media services',
  maxNumberResponsesWithError: '10', maxErrorTime: '1000', maxRequestNumberWithoutResponse: '20', maxResponseTime: '3000',
  trafficRampupCyclePeriod: '1000', trafficPercentageIncrease: '20',
  externalIpLoadBalancerAddress: '192.0.2.1', internalIpLoadBalancerAddress: '192.0.2.2',
  externalIpv6LoadBalancerAddress: '2001:db8::1', internalIpv6LoadBalancerAddress: '2001:db8::2',
  useIpLoadBalancerAddressInViaHeaders: 'true', publicIp: '203.0.113.7', publicIpv6: '2001:db8::7',
  routingRulesIpv4: 'default=true,10.0.0.*=false', routingRulesIpv6: 'fd30:*=false',
  matchingHostnameForRoute: 'lb.example.com', isFilterSubdomain: 'true', isSendTrying: 'false',
  blockedValues: 'sipvicious,evil', isSend5xxResponse: 'true', isSend5xxResponseSatusCode: '500',
  isSend5xxResponseReasonHeader: 'Destination not available',
  securityRequired: 'true', login: 'admin', password: 'secret', shutdownTimeout: '30000', shutdownAnnounceTime: '3000',
  maxContentLength: '2048', unavailableHost: 'sorry.example.com', requestCheckPattern: '^/api/.*',
  httpResponseTimeout: '5000', httpWebSocketIdleTimeout: '30000', httpMaxHeaderSize: '8192',
  tlsCertFile: '/etc/siplb/cert.pem', tlsKeyFile: '/etc/siplb/key.pem', tlsCaFile: '/etc/siplb/ca.pem', tlsClientAuth: 'request',
  maxMessageSize: '10000', udpReceiveBuffer: '524288', udpNativeIo: 'false', udpReadDelay: '2', maxConnectionsPerSource: '50', viaSecret: 'a-long-enough-shared-secret',
  pikeRequests: '400', pikeWindow: '1000', pikeBlockTime: '60000', pikeAllow: '10.0.0.0/8,fd00::/8', overloadControl: 'true', warmUpCalls: '500', memoryTrimInterval: '30', workers: '2', connectedNodeSockets: 'false', maxTcpConnections: '20000', tcpFirstMessageTimeout: '5000', tcpMessageTimeout: '8000', tcpIdleTimeout: '120000',
  heartbeatToken: 'a-long-enough-heartbeat-token',
  apiToken: 'a-long-enough-admin-token', tlsHandshakeTimeout: '5000', wsAllowedOrigins: 'https://app.example.com,https://b.example.com', wsPingInterval: '20000', terminateTLSTraffic: 'true',
};

function sample(key: string): string {
  if (key.endsWith('Port')) return SAMPLE_PORT;
  const value = SAMPLES[key];
  assert.ok(value !== undefined, `test/config/xml.test.ts needs a sample value for ${key}`);
  return value;
}

/** The routing rules' XML shape from the properties shape (pattern=patch,...). */
function rulesXml(value: string): string {
  return value.split(',').map((item) => {
    const [pattern, patch] = item.split('=');
    return `<rule><ipPattern>${pattern}</ipPattern><patch>${patch}</patch></rule>`;
  }).join('');
}

// Keys that need a companion to load at all (a port alone does not say where the VIP is).
const COMPANIONS: Record<string, string> = {
  externalIpLoadBalancerPort: 'externalIpLoadBalancerAddress=192.0.2.1',
  internalIpLoadBalancerPort: 'internalIpLoadBalancerAddress=192.0.2.2',
};

for (const spec of KEYS) {
  for (const path of xmlPaths(spec)) {
    test(`xml: <${path.replaceAll('/', '><')}> sets ${spec.key} as the properties key does`, () => {
      const value = sample(spec.key);
      let companion = COMPANIONS[spec.key] ?? (/^(external|internal)IpLoadBalancer(Udp|Tcp|Tls|Ws|Wss)Port$/.test(spec.key)
        ? `${spec.key.startsWith('external') ? 'external' : 'internal'}IpLoadBalancerAddress=192.0.2.3` : '');
      // An internal port equal to the default external one on one address would clash.
      if (/^internal(Udp|Tcp|Tls|Ws|Wss)?Port$/.test(spec.key)) companion = 'externalPort=5060';
      // TLS/WS/WSS alone would leave no external listener siplb can open today.
      if (/^external(Tls|Ws|Wss)Port$/.test(spec.key)) companion = 'externalUdpPort=5060';
      const fromProperties = loadConfigText(`${spec.key}=${value}\n${companion}`).config;
      const body = path.endsWith('routingRulesIpv4') || path.endsWith('routingRulesIpv6') ? element(path, rulesXml(value)) : element(path, value);
      const companionXml = companion === '' ? '' : (() => {
        const [k, v] = companion.split('=');
        return element(xmlPaths(KEYS.find((s) => s.key === k) ?? assert.fail(k))[0], v);
      })();
      const fromXml = loadConfigText(xml(body + companionXml)).config;
      assert.deepEqual(fromXml[spec.field], fromProperties[spec.field]);
      assert.notDeepEqual(fromXml[spec.field], defaultConfig()[spec.field], 'the sample must differ from the default');
    });
  }
}

test('xml: empty elements mean "not set", as in Restcomm', () => {
  const loaded = loadConfigText(xml('<sip><publicIp></publicIp><external><udpPort></udpPort><tcpPort/></external></sip><http><httpPort></httpPort></http>'));
  assert.deepEqual(loaded.config, defaultConfig());
  assert.deepEqual(loaded.warnings, []);
});

test('xml: keys Restcomm reads under <sip> are accepted under <algorithm> too, and the other way round', () => {
  const a = loadConfigText(xml('<sip><algorithm><subclusterMap>(10.0.0.1)(10.0.0.2)</subclusterMap><earlyDialogWorstCase>false</earlyDialogWorstCase></algorithm></sip>'));
  const b = loadConfigText(xml('<sip><subclusterMap>(10.0.0.1)(10.0.0.2)</subclusterMap><algorithmClass>user</algorithmClass></sip>'));
  assert.deepEqual(a.config.subclusterMap, [['10.0.0.1'], ['10.0.0.2']]);
  assert.deepEqual(b.config.subclusterMap, [['10.0.0.1'], ['10.0.0.2']]);
  assert.equal(b.config.algorithmClass, 'user');
  assert.ok(a.infos.some((i) => i.includes('earlyDialogWorstCase')), a.infos.join('\n'));
});

test('xml: statisticPort and apiPort are one setting; given both, they must agree', () => {
  assert.equal(loadConfigText(xml('<common><statisticPort>2006</statisticPort></common>')).config.apiPort, 2006);
  assert.equal(loadConfigText(xml('<common><apiPort>2007</apiPort><statisticPort>2007</statisticPort></common>')).config.apiPort, 2007);
  assert.throws(() => loadConfigText(xml('<common><apiPort>2007</apiPort><statisticPort>2006</statisticPort></common>')),
    (err: unknown) => err instanceof ConfigError && /same setting/.test(err.reason) && err.key === 'statisticPort');
  assert.throws(() => loadConfigText('apiPort=2007\nstatisticPort=2006'), (err: unknown) => err instanceof ConfigError && /same setting/.test(err.reason));
});

test('xml: one setting in two places must agree, patterns included', () => {
  const same = loadConfigText(xml('<sip><sipHeaderAffinityExclusionPattern>anon.*</sipHeaderAffinityExclusionPattern><algorithm><sipHeaderAffinityExclusionPattern>anon.*</sipHeaderAffinityExclusionPattern></algorithm></sip>'));
  assert.ok(same.config.sipHeaderAffinityExclusionPattern?.test('anonymous'));
  assert.throws(
    () => loadConfigText(xml('<sip><sipHeaderAffinityExclusionPattern>anon.*</sipHeaderAffinityExclusionPattern><algorithm><sipHeaderAffinityExclusionPattern>guest.*</sipHeaderAffinityExclusionPattern></algorithm></sip>')),
    (err: unknown) => err instanceof ConfigError && /same setting/.test(err.reason),
  );
});

test('xml: <sipStack> properties are counted as SIP-stack tuning, whatever their prefix', () => {
  const loaded = loadConfigText(xml('<sipStack><property><key>javax.sip.STACK_NAME</key><value>x</value></property><property><key>MAX_LISTENER_RESPONSE_TIME</key><value>1</value></property></sipStack>'));
  assert.deepEqual(loaded.infos, ['ignored 2 SIP-stack keys (javax.sip.*, gov.nist.*): siplb has its own SIP stack']);
  assert.deepEqual(loaded.warnings, []);
});

test('xml: routing rules become an ordered list', () => {
  const loaded = loadConfigText(xml(`<sip><publicIp>203.0.113.7</publicIp><routingRulesIpv4>
    <rule><ipPattern>default</ipPattern><patch>true</patch></rule>
    <rule><ipPattern>10.0.0.*</ipPattern><patch>false</patch></rule></routingRulesIpv4>
    <routingRulesIpv6><rule><ipPattern>fd30:*</ipPattern><patch>false</patch></rule></routingRulesIpv6></sip>`));
  assert.deepEqual(loaded.config.routingRulesIpv4, [{ pattern: 'default', patch: true }, { pattern: '10.0.0.*', patch: false }]);
  assert.deepEqual(loaded.config.routingRulesIpv6, [{ pattern: 'fd30:*', patch: false }]);
});

test('xml: <heartbeat> with the HTTP heartbeat config sets heartbeatPort; RMI is a no-meaning info; Kubernetes a warning', () => {
  const http = loadConfigText(xml('<heartbeat configclass="org.mobicents.tools.heartbeat.impl.HeartbeatConfigHttp"><heartbeatConfig><heartbeatPort>2611</heartbeatPort><protocolClassName>org.mobicents.tools.heartbeat.impl.ServerController</protocolClassName></heartbeatConfig></heartbeat>'));
  assert.equal(http.config.heartbeatPort, 2611);
  assert.deepEqual(http.warnings, []);
  const rmi = loadConfigText(xml('<heartbeat configclass="org.mobicents.tools.heartbeat.rmi.HeartbeatConfigRmi"><heartbeatConfig><rmiRegistryPort>2000</rmiRegistryPort></heartbeatConfig></heartbeat>'));
  assert.deepEqual(rmi.warnings, []);
  assert.ok(rmi.infos.some((i) => i.includes('rmiRegistryPort')));
  const kube = loadConfigText(xml('<heartbeat configclass="org.mobicents.tools.heartbeat.kube.HeartbeatConfigKube"><heartbeatConfig><nodeName>node</nodeName></heartbeatConfig></heartbeat>'));
  assert.equal(kube.warnings.length, 1);
  assert.match(kube.warnings[0], /Kubernetes heartbeat is not available/);
});

test('xml: SMPP keys make one warning when the SMPP balancer is configured, one info line when it is off', () => {
  const on = loadConfigText(xml('<smpp><smppHost>127.0.0.1</smppHost><smppPort>2776</smppPort><maxConnectionSize>10</maxConnectionSize></smpp>'));
  assert.deepEqual(on.warnings, ['the SMPP load balancer is not part of siplb: no SMPP listener is opened and these keys are ignored: smppHost, smppPort, maxConnectionSize']);
  const off = loadConfigText(xml('<smpp><smppHost></smppHost><smppPort></smppPort><maxConnectionSize>10</maxConnectionSize></smpp>'));
  assert.deepEqual(off.warnings, []);
  assert.ok(off.infos.some((i) => i.startsWith('ignored SMPP balancer settings') && i.endsWith('maxConnectionSize')));
});

test('xml: keystores in <ssl> are refused with one warning; <urlrewrite> rules are reported', () => {
  const loaded = loadConfigText(xml('<ssl><keyStore>/opt/ks</keyStore><keyStorePassword>x</keyStorePassword></ssl><http><urlrewrite><rule><from>a</from><to>b</to></rule></urlrewrite></http>'));
  assert.deepEqual(loaded.warnings, [
    '<http><urlrewrite>: URL rewriting is not available: its rules are ignored',
    'Java keystores are not read (siplb will take PEM files for TLS); these keys are ignored: keyStore, keyStorePassword',
  ]);
});

test('xml: an unknown element is named in a warning', () => {
  const loaded = loadConfigText(xml('<sip><frobnicate>1</frobnicate></sip>'));
  assert.deepEqual(loaded.warnings, ["unknown configuration key 'frobnicate' ignored (<sip><frobnicate>)"]);
});

const errors: { name: string; text: string; key: string; reason: RegExp }[] = [
  { name: 'not well-formed', text: '<load-balancer-properties><sip></load-balancer-properties>', key: '(file)', reason: /not well-formed XML: .*line 1/ },
  { name: 'elements left open are named', text: '<load-balancer-properties><sip>', key: '(file)', reason: /elements never closed: <load-balancer-properties>, <sip>/ },
  { name: 'wrong root', text: '<?xml version="1.0"?><configuration/>', key: '(file)', reason: /expected one <load-balancer-properties> root element/ },
  { name: 'bad value names the element', text: xml('<sip><external><udpPort>70000</udpPort></external></sip>'), key: 'externalUdpPort', reason: /\(<sip><external><udpPort>\)$/ },
  { name: 'bad rule', text: xml('<sip><routingRulesIpv4><rule><ipPattern>10.0.0.*</ipPattern></rule></routingRulesIpv4></sip>'), key: 'routingRulesIpv4', reason: /<rule><ipPattern>/ },
  { name: 'bad rule pattern', text: xml('<sip><routingRulesIpv4><rule><ipPattern>10.0.x.*</ipPattern><patch>true</patch></rule></routingRulesIpv4></sip>'), key: 'routingRulesIpv4', reason: /ipPattern '10\.0\.x\.\*'/ },
];

for (const c of errors) {
  test(`xml rejects: ${c.name}`, () => {
    assert.throws(() => loadConfigText(c.text), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.key, c.key);
      assert.match(err.reason, c.reason);
      return true;
    });
  });
}

test('xml is chosen by content: a leading BOM, whitespace or comment still means XML', () => {
  for (const prefix of ['\uFEFF', '\n\n  ']) {
    const loaded = loadConfigText(prefix + xml('<common><host>10.0.0.1</host></common>'));
    assert.equal(loaded.config.host, '10.0.0.1');
  }
  const commented = loadConfigText('<!-- Restcomm -->\n<load-balancer-properties><common><host>10.0.0.1</host></common></load-balancer-properties>');
  assert.equal(commented.config.host, '10.0.0.1');
});

// Fields the XML table above must leave alone (it compares against the properties result).
const _typecheck: (keyof Config)[] = KEYS.map((s) => s.field);
void _typecheck;
