import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, loadConfigFile, loadConfigText } from '../../src/config/load.ts';
import { PORT_KEY_PREFIXES, SIP_TRANSPORTS, type Config, type PortKeyName } from '../../src/config/types.ts';
import { ConfigError, ERROR_CODES } from '../../src/core/errors.ts';

function assertConfigError(fn: () => unknown, key: string, value: string, reason?: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, ERROR_CODES.config);
    assert.equal(err.key, key);
    assert.equal(err.value, value);
    assert.ok(err.reason.length > 0, 'reason must not be empty');
    if (typeof reason === 'string') assert.ok(err.reason.includes(reason), `reason ${JSON.stringify(err.reason)} lacks ${JSON.stringify(reason)}`);
    else if (reason !== undefined) assert.match(err.reason, reason);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Defaults

// Every per-transport port key (externalUdpPort ... internalIpv6LoadBalancerWssPort) is unset.
const PORT_KEY_DEFAULTS = Object.fromEntries(
  PORT_KEY_PREFIXES.flatMap((prefix) => SIP_TRANSPORTS.map((t) => [`${prefix}${t[0].toUpperCase()}${t.slice(1)}Port`, null])),
) as Pick<Config, PortKeyName>;

const DEFAULTS: Config = {
  ...PORT_KEY_DEFAULTS,
  host: '127.0.0.1',
  externalHost: '127.0.0.1',
  internalHost: '127.0.0.1',
  externalPort: null,
  internalPort: null,
  externalTransports: ['udp', 'tcp'],
  internalTransports: ['udp', 'tcp'],
  ipv6Host: null,
  externalIpv6Host: null,
  internalIpv6Host: null,
  nodes: [],
  extraServerNodes: [],
  performanceTestingMode: false,
  algorithmClass: 'org.mobicents.tools.sip.balancer.CallIDAffinityBalancerAlgorithm',
  callIdAffinityMaxTimeInCache: 500,
  callIdAffinityGroupFailover: false,
  callIdAffinityMaxEntries: 2_000_000,
  userAffinityMaxTimeInCache: null,
  userAffinityGroupFailover: null,
  sipHeaderAffinityKey: 'Call-ID',
  sipHeaderAffinityExclusionPattern: null,
  sipHeaderAffinityFallbackKey: 'From',
  httpAffinityKey: 'appsession',
  subclusterMap: [],
  hashLoadFactor: 0,
  stateStore: 'memory',
  redisUrl: 'redis://127.0.0.1:6379',
  redisCluster: [],
  redisKeyPrefix: 'siplb:',
  redisReadTimeout: 100,
  nodeTimeout: 8400,
  heartbeatInterval: 150,
  heartbeatPort: null,
  heartbeatToken: null,
  healthCheckInterval: 7000,
  healthCheckTimeout: 2000,
  healthCheckFailures: 1,
  healthCheckSuccesses: 1,
  responsesStatusCodeNodeRemoval: [503],
  responseReasonNodeRemoval: null,
  maxNumberResponsesWithError: 5,
  maxErrorTime: 300000,
  maxRequestNumberWithoutResponse: null,
  maxResponseTime: null,
  trafficRampupCyclePeriod: 0,
  trafficPercentageIncrease: 10,
  externalIpLoadBalancerAddress: null,
  externalIpLoadBalancerPort: null,
  internalIpLoadBalancerAddress: null,
  internalIpLoadBalancerPort: null,
  externalIpv6LoadBalancerAddress: null,
  internalIpv6LoadBalancerAddress: null,
  useIpLoadBalancerAddressInViaHeaders: false,
  publicIp: null,
  publicIpv6: null,
  routingRulesIpv4: [],
  routingRulesIpv6: [],
  matchingHostnameForRoute: null,
  isFilterSubdomain: false,
  isSendTrying: true,
  blockedValues: ['sipvicious', 'sipcli', 'friendly-scanner'],
  isSend5xxResponse: false,
  isSend5xxResponseSatusCode: 503,
  isSend5xxResponseReasonHeader: null,
  apiPort: null,
  securityRequired: false,
  login: null,
  password: null,
  apiToken: null,
  shutdownTimeout: 10000,
  shutdownAnnounceTime: 0,
  httpPort: null,
  httpsPort: null,
  maxContentLength: 1048576,
  unavailableHost: null,
  requestCheckPattern: null,
  httpResponseTimeout: 60000,
  httpWebSocketIdleTimeout: 600000,
  httpMaxHeaderSize: 16384,
  tlsCertFile: null,
  tlsKeyFile: null,
  tlsCaFile: null,
  tlsClientAuth: 'none',
  maxMessageSize: 65535,
  udpReceiveBuffer: 262144,
  udpNativeIo: true,
  udpReadDelay: 5,
  maxConnectionsPerSource: 1000,
  pikeRequests: 0,
  pikeWindow: 2000,
  pikeBlockTime: 30_000,
  pikeAllow: [],
  overloadControl: false,
  connectedNodeSockets: true,
  maxTcpConnections: 10_000,
  tcpFirstMessageTimeout: 30_000,
  tcpMessageTimeout: 20_000,
  tcpIdleTimeout: 600_000,
  warmUpCalls: 1000,
  memoryTrimInterval: 5,
  tlsHandshakeTimeout: 10_000,
  wsAllowedOrigins: [],
  wsPingInterval: 30_000,
  terminateTLSTraffic: false,
  workers: 1,
  viaSecret: null,
};

for (const field of Object.keys(DEFAULTS) as (keyof Config)[]) {
  test(`default: ${field}`, () => {
    assert.deepEqual(defaultConfig()[field], DEFAULTS[field]);
    assert.deepEqual(loadConfigText('').config[field], DEFAULTS[field]);
  });
}

test('default: defaultConfig has exactly the Config fields', () => {
  assert.deepEqual(Object.keys(defaultConfig()).sort(), Object.keys(DEFAULTS).sort());
});

test('default: an empty file gives no warnings and no infos', () => {
  assert.deepEqual(loadConfigText(''), { config: DEFAULTS, warnings: [], infos: [] });
});

test('default: a comment-only file is the same as an empty one', () => {
  assert.deepEqual(loadConfigText('# nothing here\n! nor here\n\n'), loadConfigText(''));
});

test('default: each call returns its own lists', () => {
  const first = defaultConfig();
  first.externalTransports.push('udp');
  first.nodes.push({ host: '10.0.0.1', port: 5080, transport: 'udp', weight: 1 });
  assert.deepEqual(defaultConfig().externalTransports, ['udp', 'tcp']);
  assert.deepEqual(defaultConfig().nodes, []);
  assert.deepEqual(loadConfigText('').config.nodes, []);
});

// ---------------------------------------------------------------------------------------------
// Accepted values

const accepted: { name: string; input: string; expected: Partial<Config> }[] = [
  // host / externalHost / internalHost
  { name: 'host IPv4', input: 'host=10.1.2.3', expected: { host: '10.1.2.3', externalHost: '10.1.2.3', internalHost: '10.1.2.3' } },
  { name: 'host 0.0.0.0', input: 'host=0.0.0.0', expected: { host: '0.0.0.0', externalHost: '0.0.0.0', internalHost: '0.0.0.0' } },
  { name: 'host ::', input: 'host=::', expected: { host: '::', externalHost: '::', internalHost: '::' } },
  { name: 'host ::1', input: 'host=::1', expected: { host: '::1' } },
  { name: 'host IPv6 is stored canonical', input: 'host=0:0:0:0:0:0:0:1', expected: { host: '::1', externalHost: '::1' } },
  { name: 'host IPv6 upper case is lowered', input: 'host=FE80::A', expected: { host: 'fe80::a' } },
  { name: 'host IPv6 with zone keeps the zone', input: 'host=fe80::1%eth0', expected: { host: 'fe80::1%eth0' } },
  { name: 'host IPv4-mapped IPv6', input: 'host=::FFFF:10.0.0.1', expected: { host: '::ffff:10.0.0.1' } },
  {
    name: 'externalHost and internalHost override host',
    input: 'host=10.0.0.1\nexternalHost=192.0.2.1\ninternalHost=10.0.0.2',
    expected: { host: '10.0.0.1', externalHost: '192.0.2.1', internalHost: '10.0.0.2' },
  },
  {
    name: 'externalHost alone leaves internalHost at host',
    input: 'externalHost=192.0.2.1',
    expected: { host: '127.0.0.1', externalHost: '192.0.2.1', internalHost: '127.0.0.1' },
  },
  {
    name: 'host after externalHost in the file still only fills the missing side',
    input: 'externalHost=192.0.2.1\nhost=10.0.0.1',
    expected: { externalHost: '192.0.2.1', internalHost: '10.0.0.1' },
  },

  // ports
  { name: 'externalPort 1', input: 'externalPort=1', expected: { externalPort: 1 } },
  { name: 'externalPort 65535', input: 'externalPort=65535', expected: { externalPort: 65535 } },
  { name: 'externalPort with leading zero', input: 'externalPort=05080', expected: { externalPort: 5080 } },
  { name: 'internalPort set', input: 'internalPort=5065', expected: { externalPort: null, internalPort: 5065 } },
  { name: 'internalPort empty means one port', input: 'internalPort=', expected: { internalPort: null } },
  {
    name: 'equal ports on different addresses',
    input: 'externalHost=192.0.2.1\ninternalHost=10.0.0.1\ninternalPort=5060',
    expected: { externalPort: null, internalPort: 5060 },
  },
  {
    name: 'equal ports on 0.0.0.0 and an IPv6 address',
    input: 'externalHost=0.0.0.0\ninternalHost=::1\ninternalPort=5060',
    expected: { internalPort: 5060 },
  },

  // transports
  { name: 'Restcomm UDP', input: 'externalTransport=UDP', expected: { externalTransports: ['udp'] } },
  { name: 'tcp only', input: 'internalTransport=tcp', expected: { internalTransports: ['tcp'] } },
  { name: 'list keeps order', input: 'externalTransport=TCP, udp', expected: { externalTransports: ['tcp', 'udp'] } },
  { name: 'repeated transport folded', input: 'externalTransport=udp,UDP,udp', expected: { externalTransports: ['udp'] } },
  {
    name: 'sides are independent',
    input: 'externalTransport=udp\ninternalTransport=tcp',
    expected: { externalTransports: ['udp'], internalTransports: ['tcp'] },
  },

  // nodes
  { name: 'nodes empty', input: 'nodes=', expected: { nodes: [] } },
  {
    name: 'nodes with an HTTP side',
    input: 'nodes=10.0.0.1:5080;http=8080;jvmRoute=node1,10.0.0.2:5080;http=8081;https=8443;ws=5062',
    expected: { nodes: [
      { host: '10.0.0.1', port: 5080, transport: 'udp', weight: 1, http: { port: 8080, jvmRoute: 'node1' } },
      { host: '10.0.0.2', port: 5080, transport: 'udp', weight: 1, http: { port: 8081, sslPort: 8443, wsPort: 5062 } },
    ] },
  },
  {
    name: 'one node with defaults',
    input: 'nodes=10.0.0.1:5080',
    expected: { nodes: [{ host: '10.0.0.1', port: 5080, transport: 'udp', weight: 1 }] },
  },
  {
    name: 'node with transport and weight',
    input: 'nodes=10.0.0.1:5080;transport=tcp;weight=5',
    expected: { nodes: [{ host: '10.0.0.1', port: 5080, transport: 'tcp', weight: 5 }] },
  },
  {
    name: 'node parameters in either order, any case, spaced',
    input: 'nodes=10.0.0.1:5080 ; Weight = 1000 ; TRANSPORT = TCP',
    expected: { nodes: [{ host: '10.0.0.1', port: 5080, transport: 'tcp', weight: 1000 }] },
  },
  {
    name: 'IPv6 node in brackets',
    input: 'nodes=[::1]:5080',
    expected: { nodes: [{ host: '::1', port: 5080, transport: 'udp', weight: 1 }] },
  },
  {
    name: 'IPv6 node is stored canonical',
    input: 'nodes=[2001:DB8:0:0:0:0:0:1]:5080;transport=tcp',
    expected: { nodes: [{ host: '2001:db8::1', port: 5080, transport: 'tcp', weight: 1 }] },
  },
  {
    name: 'host name node is lowered',
    input: 'nodes=AS1.Example.COM:5080',
    expected: { nodes: [{ host: 'as1.example.com', port: 5080, transport: 'udp', weight: 1 }] },
  },
  {
    name: 'several nodes, same address on two transports',
    input: 'nodes=10.0.0.1:5080, 10.0.0.1:5080;transport=tcp ,\\\n   [fd00::2]:5090;weight=2',
    expected: {
      nodes: [
        { host: '10.0.0.1', port: 5080, transport: 'udp', weight: 1 },
        { host: '10.0.0.1', port: 5080, transport: 'tcp', weight: 1 },
        { host: 'fd00::2', port: 5090, transport: 'udp', weight: 2 },
      ],
    },
  },

  // extraServerNodes
  { name: 'extraServerNodes empty', input: 'extraServerNodes=', expected: { extraServerNodes: [] } },
  {
    name: 'extraServerNodes Restcomm example',
    input: 'extraServerNodes=222.221.21.12:21,45.6.6.7:9003,33.5.6.7,33.9.9.2',
    expected: {
      extraServerNodes: [
        { host: '222.221.21.12', port: 21 },
        { host: '45.6.6.7', port: 9003 },
        { host: '33.5.6.7', port: null },
        { host: '33.9.9.2', port: null },
      ],
    },
  },
  {
    name: 'extraServerNodes IPv6 forms and host names',
    input: 'extraServerNodes=::1, [fd00::1], [FD00::2]:5080, sbc.example.net, sbc2.example.net:5070',
    expected: {
      extraServerNodes: [
        { host: '::1', port: null },
        { host: 'fd00::1', port: null },
        { host: 'fd00::2', port: 5080 },
        { host: 'sbc.example.net', port: null },
        { host: 'sbc2.example.net', port: 5070 },
      ],
    },
  },
  {
    name: 'extraServerNodes same host with and without port',
    input: 'extraServerNodes=10.0.0.1,10.0.0.1:5080',
    expected: { extraServerNodes: [{ host: '10.0.0.1', port: null }, { host: '10.0.0.1', port: 5080 }] },
  },

  // algorithm
  {
    name: 'algorithmClass kept raw',
    input: 'algorithmClass=org.mobicents.tools.sip.balancer.HeaderConsistentHashBalancerAlgorithm',
    expected: { algorithmClass: 'org.mobicents.tools.sip.balancer.HeaderConsistentHashBalancerAlgorithm' },
  },
  { name: 'algorithmClass short name kept raw', input: 'algorithmClass=roundRobin', expected: { algorithmClass: 'roundRobin' } },
  { name: 'callIdAffinityMaxTimeInCache 1', input: 'callIdAffinityMaxTimeInCache=1', expected: { callIdAffinityMaxTimeInCache: 1 } },
  { name: 'callIdAffinityMaxTimeInCache 3600', input: 'callIdAffinityMaxTimeInCache=3600', expected: { callIdAffinityMaxTimeInCache: 3600 } },
  { name: 'healthCheckInterval 0 disables', input: 'healthCheckInterval=0', expected: { healthCheckInterval: 0 } },
  { name: 'responsesStatusCodeNodeRemoval list', input: 'responsesStatusCodeNodeRemoval=503, 500,503', expected: { responsesStatusCodeNodeRemoval: [503, 500] } },
  { name: 'ramp-up', input: 'trafficRampupCyclePeriod=5000\ntrafficPercentageIncrease=25', expected: { trafficRampupCyclePeriod: 5000, trafficPercentageIncrease: 25 } },
  { name: 'heartbeatPort', input: 'heartbeatPort=2611', expected: { heartbeatPort: 2611 } },
  { name: 'heartbeatToken 16 characters', input: 'heartbeatToken=0123456789abcdef', expected: { heartbeatToken: '0123456789abcdef' } },
  { name: 'heartbeatToken any visible ASCII', input: 'heartbeatToken=A-z.0~9+/_=!#$%&*?@[]', expected: { heartbeatToken: 'A-z.0~9+/_=!#$%&*?@[]' } },
  { name: 'heartbeatToken empty means none', input: 'heartbeatToken=', expected: { heartbeatToken: null } },
  { name: 'callIdAffinityMaxEntries 5000', input: 'callIdAffinityMaxEntries=5000', expected: { callIdAffinityMaxEntries: 5000 } },
  { name: 'callIdAffinityGroupFailover true', input: 'callIdAffinityGroupFailover=true', expected: { callIdAffinityGroupFailover: true } },
  { name: 'callIdAffinityGroupFailover TRUE', input: 'callIdAffinityGroupFailover=TRUE', expected: { callIdAffinityGroupFailover: true } },
  { name: 'callIdAffinityGroupFailover False', input: 'callIdAffinityGroupFailover=False', expected: { callIdAffinityGroupFailover: false } },
  { name: 'sipHeaderAffinityKey From', input: 'sipHeaderAffinityKey=From', expected: { sipHeaderAffinityKey: 'From' } },
  { name: 'sipHeaderAffinityKey from.user', input: 'sipHeaderAffinityKey=from.user', expected: { sipHeaderAffinityKey: 'from.user' } },
  { name: 'sipHeaderAffinityKey token characters', input: 'sipHeaderAffinityKey=X-Tenant_Id.1', expected: { sipHeaderAffinityKey: 'X-Tenant_Id.1' } },
  { name: 'sipHeaderAffinityKey Call-ID', input: 'sipHeaderAffinityKey=Call-ID', expected: { sipHeaderAffinityKey: 'Call-ID' } },
  { name: 'sipHeaderAffinityKey to.user', input: 'sipHeaderAffinityKey=to.user', expected: { sipHeaderAffinityKey: 'to.user' } },
  { name: 'sipHeaderAffinityKey from.uri', input: 'sipHeaderAffinityKey=from.uri', expected: { sipHeaderAffinityKey: 'from.uri' } },
  { name: 'sipHeaderAffinityKey TO.URI kept as written', input: 'sipHeaderAffinityKey=TO.URI', expected: { sipHeaderAffinityKey: 'TO.URI' } },
  { name: 'sipHeaderAffinityKey X-Tenant', input: 'sipHeaderAffinityKey=X-Tenant', expected: { sipHeaderAffinityKey: 'X-Tenant' } },
  {
    name: 'sipHeaderAffinityExclusionPattern is anchored to the whole key',
    input: 'sipHeaderAffinityExclusionPattern=anonymous|unknown',
    expected: { sipHeaderAffinityExclusionPattern: /^(?:anonymous|unknown)$/ },
  },
  { name: 'sipHeaderAffinityExclusionPattern empty means none', input: 'sipHeaderAffinityExclusionPattern=', expected: { sipHeaderAffinityExclusionPattern: null } },
  { name: 'sipHeaderAffinityFallbackKey To', input: 'sipHeaderAffinityFallbackKey=To', expected: { sipHeaderAffinityFallbackKey: 'To' } },
  { name: 'sipHeaderAffinityFallbackKey from.uri', input: 'sipHeaderAffinityFallbackKey=from.uri', expected: { sipHeaderAffinityFallbackKey: 'from.uri' } },
  { name: 'sipHeaderAffinityFallbackKey Call-ID', input: 'sipHeaderAffinityFallbackKey=Call-ID', expected: { sipHeaderAffinityFallbackKey: 'Call-ID' } },
  { name: 'httpAffinityKey jsessionid', input: 'httpAffinityKey=jsessionid', expected: { httpAffinityKey: 'jsessionid' } },
  { name: 'httpAffinityKey with underscore and dot', input: 'httpAffinityKey=app_session.id', expected: { httpAffinityKey: 'app_session.id' } },
  {
    name: 'subclusterMap Restcomm form',
    input: 'subclusterMap=(10.0.0.1,10.0.0.2)(10.0.0.3)',
    expected: { subclusterMap: [['10.0.0.1', '10.0.0.2'], ['10.0.0.3']] },
  },
  {
    name: 'subclusterMap with blanks and an ip:port member',
    input: 'subclusterMap=( 10.0.0.1 , 10.0.0.2 ) ( 10.0.0.3:5080 )',
    expected: { subclusterMap: [['10.0.0.1', '10.0.0.2'], ['10.0.0.3:5080']] },
  },
  { name: 'subclusterMap IPv6 members', input: 'subclusterMap=([::1]:5080,::2)', expected: { subclusterMap: [['[::1]:5080', '::2']] } },
  {
    name: 'subclusterMap IPv6 members are stored canonical, brackets without port dropped',
    input: 'subclusterMap=([0:0:0:0:0:0:0:1]:5080, FD00::2, [fd00::3])',
    expected: { subclusterMap: [['[::1]:5080', 'fd00::2', 'fd00::3']] },
  },
  { name: 'subclusterMap groups separated by a comma', input: 'subclusterMap=(10.0.0.1),(10.0.0.2)', expected: { subclusterMap: [['10.0.0.1'], ['10.0.0.2']] } },
  { name: 'subclusterMap an IP and one of its ports in different groups', input: 'subclusterMap=(10.0.0.1)(10.0.0.1:5080)', expected: { subclusterMap: [['10.0.0.1'], ['10.0.0.1:5080']] } },
  { name: 'subclusterMap empty', input: 'subclusterMap=', expected: { subclusterMap: [] } },
  { name: 'hashLoadFactor 0', input: 'hashLoadFactor=0', expected: { hashLoadFactor: 0 } },
  { name: 'hashLoadFactor 0.25', input: 'hashLoadFactor=0.25', expected: { hashLoadFactor: 0.25 } },
  { name: 'hashLoadFactor 10', input: 'hashLoadFactor=10', expected: { hashLoadFactor: 10 } },

  // shared state store
  { name: 'stateStore memory', input: 'stateStore=memory', expected: { stateStore: 'memory' } },
  { name: 'stateStore REDIS is lowered', input: 'stateStore=REDIS', expected: { stateStore: 'redis' } },
  { name: 'redisUrl host and port', input: 'redisUrl=redis://h:1', expected: { redisUrl: 'redis://h:1' } },
  { name: 'redisUrl TLS with credentials and database', input: 'redisUrl=rediss://user:pw@h:6380/0', expected: { redisUrl: 'rediss://user:pw@h:6380/0' } },
  {
    name: 'redisCluster seed nodes',
    input: 'redisCluster=127.0.0.1:7000,127.0.0.1:7001',
    expected: { redisCluster: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }] },
  },
  { name: 'redisCluster empty', input: 'redisCluster=', expected: { redisCluster: [] } },
  { name: 'redisKeyPrefix', input: 'redisKeyPrefix=lb-eu.1:', expected: { redisKeyPrefix: 'lb-eu.1:' } },
  { name: 'redisKeyPrefix with a cluster hash tag', input: 'redisKeyPrefix={siplb}:', expected: { redisKeyPrefix: '{siplb}:' } },
  { name: 'redisReadTimeout 1', input: 'redisReadTimeout=1', expected: { redisReadTimeout: 1 } },
  { name: 'redisReadTimeout 10000', input: 'redisReadTimeout=10000', expected: { redisReadTimeout: 10000 } },

  // timers
  { name: 'nodeTimeout 1', input: 'nodeTimeout=1', expected: { nodeTimeout: 1 } },
  { name: 'nodeTimeout max', input: 'nodeTimeout=2147483647', expected: { nodeTimeout: 2147483647 } },
  { name: 'heartbeatInterval 1000', input: 'heartbeatInterval=1000', expected: { heartbeatInterval: 1000 } },

  // IP load balancer
  {
    // The port is taken from the listener at use time (config/ports.ts), per transport.
    name: 'external IP LB address alone leaves the port to the listener',
    input: 'externalPort=5070\nexternalIpLoadBalancerAddress=192.0.2.10',
    expected: { externalIpLoadBalancerAddress: '192.0.2.10', externalIpLoadBalancerPort: null },
  },
  {
    // Restcomm's comma list (its StringTokenizer drops empty entries): kept checked and joined.
    name: 'external IP LB addresses as a list',
    input: 'externalPort=5070\nexternalIpLoadBalancerAddress= 192.0.2.10, LB2.Example.com,,',
    expected: { externalIpLoadBalancerAddress: '192.0.2.10,lb2.example.com' },
  },
  {
    name: 'IPv6 IP LB addresses as a list',
    input: 'externalIpv6LoadBalancerAddress=2001:db8::10,2001:DB8::11',
    expected: { externalIpv6LoadBalancerAddress: '2001:db8::10,2001:db8::11' },
  },
  {
    name: 'external IP LB address and port',
    input: 'externalIpLoadBalancerAddress=192.0.2.10\nexternalIpLoadBalancerPort=111',
    expected: { externalIpLoadBalancerAddress: '192.0.2.10', externalIpLoadBalancerPort: 111 },
  },
  {
    name: 'internal IP LB address alone leaves the port to the listener',
    input: 'internalPort=5065\ninternalIpLoadBalancerAddress=10.9.9.9',
    expected: { internalIpLoadBalancerAddress: '10.9.9.9', internalIpLoadBalancerPort: null },
  },
  {
    name: 'internal IP LB address in one-port mode is read (and warned about)',
    input: 'externalPort=5070\ninternalIpLoadBalancerAddress=10.9.9.9',
    expected: { internalIpLoadBalancerAddress: '10.9.9.9', internalIpLoadBalancerPort: null },
  },
  {
    name: 'internal IP LB address and port',
    input: 'internalIpLoadBalancerAddress=10.9.9.9\ninternalIpLoadBalancerPort=112',
    expected: { internalIpLoadBalancerAddress: '10.9.9.9', internalIpLoadBalancerPort: 112 },
  },
  {
    name: 'IP LB address may be IPv6 or a host name',
    input: 'externalIpLoadBalancerAddress=2001:DB8::10\ninternalIpLoadBalancerAddress=LB.internal.example',
    expected: { externalIpLoadBalancerAddress: '2001:db8::10', internalIpLoadBalancerAddress: 'lb.internal.example' },
  },
  {
    name: 'empty IP LB keys are absent',
    input: 'externalIpLoadBalancerAddress=\nexternalIpLoadBalancerPort=\ninternalIpLoadBalancerAddress=\ninternalIpLoadBalancerPort=',
    expected: {
      externalIpLoadBalancerAddress: null, externalIpLoadBalancerPort: null,
      internalIpLoadBalancerAddress: null, internalIpLoadBalancerPort: null,
    },
  },
  { name: 'useIpLoadBalancerAddressInViaHeaders true', input: 'useIpLoadBalancerAddressInViaHeaders=true', expected: { useIpLoadBalancerAddressInViaHeaders: true } },
  { name: 'useIpLoadBalancerAddressInViaHeaders false', input: 'useIpLoadBalancerAddressInViaHeaders=false', expected: { useIpLoadBalancerAddressInViaHeaders: false } },

  // siplb keys
  { name: 'maxMessageSize min', input: 'maxMessageSize=1024', expected: { maxMessageSize: 1024 } },
  { name: 'maxMessageSize max', input: 'maxMessageSize=1048576', expected: { maxMessageSize: 1048576 } },
  { name: 'udpReceiveBuffer min', input: 'udpReceiveBuffer=65536', expected: { udpReceiveBuffer: 65536 } },
  { name: 'udpNativeIo off', input: 'udpNativeIo=false', expected: { udpNativeIo: false } },
  { name: 'udpReadDelay off', input: 'udpReadDelay=0', expected: { udpReadDelay: 0 } },
  { name: 'udpReadDelay max', input: 'udpReadDelay=100', expected: { udpReadDelay: 100 } },
  { name: 'udpReceiveBuffer 8 MiB', input: 'udpReceiveBuffer=8388608', expected: { udpReceiveBuffer: 8388608 } },
  { name: 'viaSecret 16 characters', input: 'viaSecret=0123456789abcdef', expected: { viaSecret: '0123456789abcdef' } },
  { name: 'viaSecret counts characters, not bytes', input: 'viaSecret=éééééééééééééééé', expected: { viaSecret: 'éééééééééééééééé' } },
  { name: 'viaSecret keeps inner spaces', input: 'viaSecret=correct horse battery staple', expected: { viaSecret: 'correct horse battery staple' } },
  { name: 'viaSecret empty means random', input: 'viaSecret=', expected: { viaSecret: null } },

  // file syntax reaching the loader
  { name: 'colon separator and trailing spaces', input: 'externalPort : 5070   ', expected: { externalPort: 5070 } },
  { name: 'later duplicate wins', input: 'externalPort=5070\nexternalPort=5080', expected: { externalPort: 5080 } },
];

for (const c of accepted) {
  test(`accepts: ${c.name}`, () => {
    const { config } = loadConfigText(c.input);
    for (const field of Object.keys(c.expected) as (keyof Config)[]) {
      assert.deepEqual(config[field], c.expected[field], field);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Rejected values

const rejected: { name: string; input: string; key: string; value: string; reason?: string | RegExp }[] = [
  { name: 'tlsClientAuth=require without tlsCaFile', input: 'tlsClientAuth=require', key: 'tlsClientAuth', value: 'require', reason: 'needs tlsCaFile' },
  { name: 'tlsClientAuth unknown', input: 'tlsClientAuth=maybe', key: 'tlsClientAuth', value: 'maybe', reason: 'none, request or require' },
  { name: 'an IP load balancer address list with a doubled entry', input: 'externalIpLoadBalancerAddress=192.0.2.1,192.0.2.1', key: 'externalIpLoadBalancerAddress', value: '192.0.2.1,192.0.2.1', reason: 'duplicates an earlier entry' },
  { name: 'an IP load balancer address list with a bad entry', input: 'internalIpLoadBalancerAddress=10.0.0.1,10.0.0.300', key: 'internalIpLoadBalancerAddress', value: '10.0.0.1,10.0.0.300', reason: '10.0.0.300' },
  { name: 'an IP load balancer address list of commas only', input: 'externalIpLoadBalancerAddress=,', key: 'externalIpLoadBalancerAddress', value: ',', reason: 'no address in the list' },
  { name: 'no external UDP or TCP listener left', input: 'externalUdpPort=0\nexternalTlsPort=5061', key: 'externalUdpPort', value: '0', reason: 'would not listen for clients' },
  { name: 'externalPort with both transports turned off', input: 'externalPort=5070\nexternalUdpPort=0\nexternalTcpPort=0', key: 'externalUdpPort', value: '0' },
  { name: 'per-transport port clash on one host', input: 'externalUdpPort=5060\ninternalUdpPort=5060', key: 'internalUdpPort', value: '5060', reason: 'must differ from the external UDP port' },
  { name: 'internal TCP equal to external TLS (one TCP port space)', input: 'externalUdpPort=5060\nexternalTlsPort=5061\ninternalTcpPort=5061\ntlsCertFile=c.pem\ntlsKeyFile=k.pem', key: 'internalTcpPort', value: '5061', reason: 'external TLS port' },
  { name: 'VIP UDP port without VIP address', input: 'externalIpLoadBalancerUdpPort=111', key: 'externalIpLoadBalancerUdpPort', value: '111', reason: 'externalIpLoadBalancerAddress must be set' },
  { name: 'statisticPort and apiPort disagree', input: 'statisticPort=2006\napiPort=2007', key: 'apiPort', value: '2007', reason: 'same setting' },
  { name: 'public-ip and publicIp disagree', input: 'public-ip=203.0.113.1\npublicIp=203.0.113.2', key: 'publicIp', value: '203.0.113.2' },
  { name: 'isSend5xxResponseSatusCode not 5xx', input: 'isSend5xxResponseSatusCode=404', key: 'isSend5xxResponseSatusCode', value: '404', reason: '5xx' },
  { name: 'reason header text with a quote', input: 'isSend5xxResponseReasonHeader=say "hi"', key: 'isSend5xxResponseReasonHeader', value: 'say "hi"' },
  { name: 'routing rule without patch', input: 'routingRulesIpv4=10.0.0.*', key: 'routingRulesIpv4', value: '10.0.0.*' },
  { name: 'routing rule IPv6 pattern in the IPv4 list', input: 'routingRulesIpv4=fd30:*=false', key: 'routingRulesIpv4', value: 'fd30:*=false' },
  { name: 'ipv6Host given an IPv4 address', input: 'ipv6Host=127.0.0.1', key: 'ipv6Host', value: '127.0.0.1', reason: 'IPv6' },
  { name: 'maxRequestNumberWithoutResponse 0', input: 'maxRequestNumberWithoutResponse=0', key: 'maxRequestNumberWithoutResponse', value: '0' },
  { name: 'a port key of 70000', input: 'internalWsPort=70000', key: 'internalWsPort', value: '70000', reason: '0 (off) to 65535' },
  // addresses to bind
  { name: 'host name as host', input: 'host=localhost', key: 'host', value: 'localhost', reason: 'expected an IP address' },
  { name: 'bracketed host', input: 'host=[::1]', key: 'host', value: '[::1]' },
  { name: 'short IPv4', input: 'host=10.1.2', key: 'host', value: '10.1.2' },
  { name: 'IPv4 octet out of range', input: 'host=256.1.1.1', key: 'host', value: '256.1.1.1' },
  { name: 'empty host', input: 'host=', key: 'host', value: '' },
  { name: 'host name as externalHost', input: 'externalHost=sip.example.com', key: 'externalHost', value: 'sip.example.com' },
  { name: 'empty internalHost', input: 'internalHost=', key: 'internalHost', value: '' },

  // ports
  { name: 'port 0', input: 'externalPort=0', key: 'externalPort', value: '0', reason: 'port must be an integer from 1 to 65535' },
  { name: 'port 65536', input: 'externalPort=65536', key: 'externalPort', value: '65536', reason: 'port must be an integer from 1 to 65535' },
  { name: 'negative port', input: 'externalPort=-1', key: 'externalPort', value: '-1' },
  { name: 'fractional port', input: 'externalPort=5060.0', key: 'externalPort', value: '5060.0' },
  { name: 'hex port', input: 'externalPort=0x13c4', key: 'externalPort', value: '0x13c4' },
  { name: 'exponent port', input: 'externalPort=5e3', key: 'externalPort', value: '5e3' },
  { name: 'signed port', input: 'externalPort=+5060', key: 'externalPort', value: '+5060' },
  { name: 'word port', input: 'externalPort=sip', key: 'externalPort', value: 'sip' },
  { name: 'internalPort 70000', input: 'internalPort=70000', key: 'internalPort', value: '70000', reason: 'port must be an integer from 1 to 65535' },
  { name: 'internalPort with space inside', input: 'internalPort=50 65', key: 'internalPort', value: '50 65' },

  // port clash
  { name: 'internalPort equals default externalPort on one host', input: 'internalPort=5060', key: 'internalPort', value: '5060', reason: 'must differ from the external UDP port (5060)' },
  { name: 'both ports equal explicitly', input: 'externalPort=5070\ninternalPort=5070', key: 'internalPort', value: '5070', reason: /bind 127\.0\.0\.1/ },
  { name: 'equal ports, external binds 0.0.0.0', input: 'externalHost=0.0.0.0\ninternalHost=10.0.0.1\ninternalPort=5060', key: 'internalPort', value: '5060', reason: '0.0.0.0 and 10.0.0.1' },
  { name: 'equal ports, internal binds ::', input: 'externalHost=192.0.2.1\ninternalHost=::\ninternalPort=5060', key: 'internalPort', value: '5060' },
  { name: 'equal ports, same IPv6 written two ways', input: 'externalHost=::1\ninternalHost=0:0:0:0:0:0:0:1\ninternalPort=5060', key: 'internalPort', value: '5060' },

  // HTTP listeners
  { name: 'httpsPort with a certificate but no key', input: 'httpsPort=8443\ntlsCertFile=/etc/siplb/cert.pem', key: 'tlsKeyFile', value: '', reason: 'httpsPort=8443 needs tlsKeyFile as well as tlsCertFile (line 1)' },
  { name: 'httpsPort with a key but no certificate', input: 'httpsPort=8443\ntlsKeyFile=/etc/siplb/key.pem', key: 'tlsCertFile', value: '', reason: 'needs tlsCertFile as well as tlsKeyFile' },
  { name: 'httpsPort equal to httpPort', input: 'httpPort=8080\nhttpsPort=8080\ntlsCertFile=c.pem\ntlsKeyFile=k.pem', key: 'httpsPort', value: '8080', reason: 'must differ' },
  { name: 'httpPort equal to the external SIP TCP port', input: 'httpPort=5060', key: 'httpPort', value: '5060', reason: 'the external SIP TCP port is 5060 too' },

  // transports
  { name: 'sctp', input: 'externalTransport=sctp', key: 'externalTransport', value: 'sctp', reason: "unknown transport 'sctp' (expected udp, tcp, tls, ws or wss)" },
  { name: 'tls in the plain transport list', input: 'externalTransport=udp,TLS', key: 'externalTransport', value: 'udp,TLS', reason: 'names the plain transports (udp, tcp)' },
  { name: 'ws in the plain transport list', input: 'internalTransport=ws', key: 'internalTransport', value: 'ws', reason: 'names the plain transports (udp, tcp)' },
  { name: 'wss in the plain transport list', input: 'internalTransport=WSS', key: 'internalTransport', value: 'WSS', reason: 'own port keys say' },
  { name: 'TLS port with only a certificate', input: 'externalTlsPort=5061\ntlsCertFile=c.pem', key: 'tlsKeyFile', value: '', reason: 'externalTlsPort=5061 needs tlsKeyFile as well as tlsCertFile' },
  { name: 'no external listener at all', input: 'externalUdpPort=0\nexternalTcpPort=0', key: 'externalUdpPort', value: '0', reason: 'no external SIP port is left' },
  { name: 'empty transport list', input: 'externalTransport=', key: 'externalTransport', value: '', reason: 'at least one transport' },
  { name: 'trailing comma in transports', input: 'internalTransport=udp,', key: 'internalTransport', value: 'udp,', reason: 'empty entry' },
  { name: 'doubled comma in transports', input: 'internalTransport=udp,,tcp', key: 'internalTransport', value: 'udp,,tcp', reason: 'empty entry' },

  // nodes
  { name: 'node without port', input: 'nodes=10.0.0.1', key: 'nodes', value: '10.0.0.1', reason: "entry '10.0.0.1': port is missing" },
  { name: 'node with empty port', input: 'nodes=10.0.0.1:', key: 'nodes', value: '10.0.0.1:', reason: "entry '10.0.0.1:'" },
  { name: 'node port 0', input: 'nodes=10.0.0.1:0', key: 'nodes', value: '10.0.0.1:0', reason: 'port must be an integer from 1 to 65535' },
  { name: 'node port too large', input: 'nodes=10.0.0.1:99999', key: 'nodes', value: '10.0.0.1:99999', reason: 'port must be an integer from 1 to 65535' },
  { name: 'node without host', input: 'nodes=:5080', key: 'nodes', value: ':5080', reason: 'host is missing' },
  { name: 'unbracketed IPv6 node with port', input: 'nodes=::1:5080', key: 'nodes', value: '::1:5080', reason: '[v6]:port' },
  { name: 'unbracketed IPv6 node that is not an address', input: 'nodes=fd00::1::2:5080', key: 'nodes', value: 'fd00::1::2:5080', reason: 'need brackets' },
  { name: 'bracketed IPv6 node without port', input: 'nodes=[::1]', key: 'nodes', value: '[::1]', reason: 'port is missing' },
  { name: 'brackets around IPv4', input: 'nodes=[10.0.0.1]:5080', key: 'nodes', value: '[10.0.0.1]:5080', reason: 'only for IPv6' },
  { name: 'unclosed bracket', input: 'nodes=[::1:5080', key: 'nodes', value: '[::1:5080', reason: "without a matching ']'" },
  { name: 'missing colon after bracket', input: 'nodes=[::1]5080', key: 'nodes', value: '[::1]5080', reason: "unexpected '5080'" },
  { name: 'wildcard node', input: 'nodes=0.0.0.0:5080', key: 'nodes', value: '0.0.0.0:5080', reason: 'any address' },
  { name: 'IPv6 wildcard node', input: 'nodes=[::]:5080', key: 'nodes', value: '[::]:5080', reason: 'any address' },
  { name: 'bad IPv4 looking node', input: 'nodes=10.0.0.256:5080', key: 'nodes', value: '10.0.0.256:5080', reason: 'neither an IP address nor a valid host name' },
  { name: 'underscore host name', input: 'nodes=app_1:5080', key: 'nodes', value: 'app_1:5080', reason: 'neither an IP address nor a valid host name' },
  { name: 'host name label ending in hyphen', input: 'nodes=as-.example.com:5080', key: 'nodes', value: 'as-.example.com:5080' },
  { name: 'empty host name label', input: 'nodes=as..example.com:5080', key: 'nodes', value: 'as..example.com:5080' },
  { name: 'node transport sctp', input: 'nodes=10.0.0.1:5080;transport=sctp', key: 'nodes', value: '10.0.0.1:5080;transport=sctp', reason: "unknown transport 'sctp' (expected udp, tcp, tls, ws or wss)" },
  { name: 'node weight 0', input: 'nodes=10.0.0.1:5080;weight=0', key: 'nodes', value: '10.0.0.1:5080;weight=0', reason: 'weight must be an integer from 1 to 1000' },
  { name: 'node weight 1001', input: 'nodes=10.0.0.1:5080;weight=1001', key: 'nodes', value: '10.0.0.1:5080;weight=1001', reason: 'weight must be an integer from 1 to 1000' },
  { name: 'node weight fractional', input: 'nodes=10.0.0.1:5080;weight=1.5', key: 'nodes', value: '10.0.0.1:5080;weight=1.5', reason: 'weight must be' },
  { name: 'node weight empty', input: 'nodes=10.0.0.1:5080;weight=', key: 'nodes', value: '10.0.0.1:5080;weight=', reason: 'weight must be' },
  { name: 'node parameter without value', input: 'nodes=10.0.0.1:5080;weight', key: 'nodes', value: '10.0.0.1:5080;weight', reason: "parameter 'weight' has no value" },
  { name: 'node unknown parameter', input: 'nodes=10.0.0.1:5080;color=red', key: 'nodes', value: '10.0.0.1:5080;color=red', reason: "unknown parameter 'color'" },
  { name: 'node parameter twice', input: 'nodes=10.0.0.1:5080;weight=2;WEIGHT=3', key: 'nodes', value: '10.0.0.1:5080;weight=2;WEIGHT=3', reason: "parameter 'weight' given twice" },
  { name: 'node stray semicolon', input: 'nodes=10.0.0.1:5080;', key: 'nodes', value: '10.0.0.1:5080;', reason: 'empty parameter' },
  { name: 'nodes: jvmRoute without http', input: 'nodes=10.0.0.1:5080;jvmRoute=n1', key: 'nodes', value: '10.0.0.1:5080;jvmRoute=n1', reason: 'need http=<port>' },
  { name: 'nodes: jvmRoute with a dot', input: 'nodes=10.0.0.1:5080;http=8080;jvmRoute=a.b', key: 'nodes', value: '10.0.0.1:5080;http=8080;jvmRoute=a.b', reason: 'jvmRoute must be' },
  { name: 'nodes: bad http port', input: 'nodes=10.0.0.1:5080;http=0', key: 'nodes', value: '10.0.0.1:5080;http=0', reason: 'port must be' },
  { name: 'nodes leading comma', input: 'nodes=,10.0.0.1:5080', key: 'nodes', value: ',10.0.0.1:5080', reason: 'empty entry' },
  {
    name: 'duplicate node, default transport written out',
    input: 'nodes=10.0.0.1:5080, 10.0.0.1:5080;transport=UDP',
    key: 'nodes', value: '10.0.0.1:5080, 10.0.0.1:5080;transport=UDP',
    reason: "entry '10.0.0.1:5080;transport=UDP': duplicates an earlier entry",
  },
  {
    name: 'duplicate IPv6 node written two ways',
    input: 'nodes=[::1]:5080,[0:0:0:0:0:0:0:1]:5080',
    key: 'nodes', value: '[::1]:5080,[0:0:0:0:0:0:0:1]:5080',
    reason: 'duplicates an earlier entry',
  },
  {
    name: 'duplicate host name node in another case',
    input: 'nodes=as1.example.com:5080;weight=2,AS1.example.com:5080;weight=3',
    key: 'nodes', value: 'as1.example.com:5080;weight=2,AS1.example.com:5080;weight=3',
    reason: 'duplicates an earlier entry',
  },
  {
    name: 'bad entry is named among good ones',
    input: 'nodes=10.0.0.1:5080,10.0.0.2:50x0,10.0.0.3:5080',
    key: 'nodes', value: '10.0.0.1:5080,10.0.0.2:50x0,10.0.0.3:5080',
    reason: "entry '10.0.0.2:50x0'",
  },

  // extraServerNodes
  { name: 'extra node port 0', input: 'extraServerNodes=10.0.0.1:0', key: 'extraServerNodes', value: '10.0.0.1:0', reason: 'port must be an integer from 1 to 65535' },
  { name: 'extra node duplicate', input: 'extraServerNodes=10.0.0.1, 10.0.0.1', key: 'extraServerNodes', value: '10.0.0.1, 10.0.0.1', reason: 'duplicates an earlier entry' },
  { name: 'extra node wildcard', input: 'extraServerNodes=::', key: 'extraServerNodes', value: '::', reason: 'any address' },
  { name: 'extra node bracketed IPv4', input: 'extraServerNodes=[10.0.0.1]', key: 'extraServerNodes', value: '[10.0.0.1]', reason: 'only for IPv6' },
  { name: 'extra node bad name', input: 'extraServerNodes=sbc!.example', key: 'extraServerNodes', value: 'sbc!.example', reason: "entry 'sbc!.example'" },
  { name: 'extra node trailing comma', input: 'extraServerNodes=10.0.0.1,', key: 'extraServerNodes', value: '10.0.0.1,', reason: 'empty entry' },

  // algorithm
  { name: 'empty algorithmClass', input: 'algorithmClass=', key: 'algorithmClass', value: '', reason: 'must not be empty' },
  { name: 'callIdAffinityMaxTimeInCache negative', input: 'callIdAffinityMaxTimeInCache=-5', key: 'callIdAffinityMaxTimeInCache', value: '-5' },
  { name: 'callIdAffinityMaxTimeInCache fractional', input: 'callIdAffinityMaxTimeInCache=1.5', key: 'callIdAffinityMaxTimeInCache', value: '1.5' },
  { name: 'callIdAffinityMaxTimeInCache beyond Java int', input: 'callIdAffinityMaxTimeInCache=2147483648', key: 'callIdAffinityMaxTimeInCache', value: '2147483648' },
  { name: 'responsesStatusCodeNodeRemoval not a code', input: 'responsesStatusCodeNodeRemoval=503,99', key: 'responsesStatusCodeNodeRemoval', value: '503,99', reason: 'is not a SIP status code' },
  { name: 'trafficPercentageIncrease 0', input: 'trafficPercentageIncrease=0', key: 'trafficPercentageIncrease', value: '0', reason: 'must be an integer from 1 to 100' },
  { name: 'healthCheckInterval negative', input: 'healthCheckInterval=-1', key: 'healthCheckInterval', value: '-1', reason: 'must be an integer from 0' },
  { name: 'callIdAffinityMaxEntries below 1000', input: 'callIdAffinityMaxEntries=999', key: 'callIdAffinityMaxEntries', value: '999', reason: 'must be an integer from 1000' },
  { name: 'callIdAffinityGroupFailover yes', input: 'callIdAffinityGroupFailover=yes', key: 'callIdAffinityGroupFailover', value: 'yes', reason: 'expected true or false' },
  { name: 'callIdAffinityGroupFailover 1', input: 'callIdAffinityGroupFailover=1', key: 'callIdAffinityGroupFailover', value: '1', reason: 'expected true or false' },
  { name: 'callIdAffinityGroupFailover empty', input: 'callIdAffinityGroupFailover=', key: 'callIdAffinityGroupFailover', value: '', reason: 'expected true or false' },
  { name: 'sipHeaderAffinityKey empty', input: 'sipHeaderAffinityKey=', key: 'sipHeaderAffinityKey', value: '', reason: 'SIP header name' },
  { name: 'sipHeaderAffinityKey with space', input: 'sipHeaderAffinityKey=Call ID', key: 'sipHeaderAffinityKey', value: 'Call ID', reason: 'SIP header name' },
  { name: 'sipHeaderAffinityKey with colon', input: 'sipHeaderAffinityKey=Call-ID\\:', key: 'sipHeaderAffinityKey', value: 'Call-ID:', reason: 'SIP header name' },
  { name: 'sipHeaderAffinityKey with @', input: 'sipHeaderAffinityKey=a@b', key: 'sipHeaderAffinityKey', value: 'a@b' },
  { name: 'sipHeaderAffinityKey from.host', input: 'sipHeaderAffinityKey=from.host', key: 'sipHeaderAffinityKey', value: 'from.host', reason: 'only from.user, to.user, from.uri and to.uri' },
  { name: 'sipHeaderAffinityKey To.Host', input: 'sipHeaderAffinityKey=To.Host', key: 'sipHeaderAffinityKey', value: 'To.Host', reason: 'only from.user, to.user, from.uri and to.uri' },
  { name: 'sipHeaderAffinityExclusionPattern (', input: 'sipHeaderAffinityExclusionPattern=(', key: 'sipHeaderAffinityExclusionPattern', value: '(', reason: 'not a valid regular expression' },
  {
    // Not a regular expression on its own; wrapped as ^(?:...)$ it would compile to
    // ^(?:anonymous)|(x)$ and exclude every key that merely starts with "anonymous".
    name: 'sipHeaderAffinityExclusionPattern with an unmatched )',
    input: 'sipHeaderAffinityExclusionPattern=anonymous)|(x', key: 'sipHeaderAffinityExclusionPattern', value: 'anonymous)|(x', reason: 'not a valid regular expression',
  },
  { name: 'sipHeaderAffinityFallbackKey from.host', input: 'sipHeaderAffinityFallbackKey=from.host', key: 'sipHeaderAffinityFallbackKey', value: 'from.host', reason: 'only from.user' },
  { name: 'sipHeaderAffinityFallbackKey empty', input: 'sipHeaderAffinityFallbackKey=', key: 'sipHeaderAffinityFallbackKey', value: '', reason: 'expected Call-ID, From, To' },
  { name: 'httpAffinityKey empty', input: 'httpAffinityKey=', key: 'httpAffinityKey', value: '', reason: 'SIP header name' },
  { name: 'httpAffinityKey with =', input: 'httpAffinityKey=a\\=b', key: 'httpAffinityKey', value: 'a=b' },
  { name: 'subclusterMap without parentheses', input: 'subclusterMap=10.0.0.1,10.0.0.2', key: 'subclusterMap', value: '10.0.0.1,10.0.0.2', reason: 'expected groups in parentheses' },
  { name: 'subclusterMap unclosed group', input: 'subclusterMap=(10.0.0.1)(10.0.0.2', key: 'subclusterMap', value: '(10.0.0.1)(10.0.0.2', reason: 'expected groups in parentheses' },
  { name: 'subclusterMap text between groups', input: 'subclusterMap=(10.0.0.1) and (10.0.0.2)', key: 'subclusterMap', value: '(10.0.0.1) and (10.0.0.2)', reason: 'expected groups in parentheses' },
  { name: 'subclusterMap empty group', input: 'subclusterMap=(10.0.0.1)()', key: 'subclusterMap', value: '(10.0.0.1)()', reason: 'a group is empty' },
  { name: 'subclusterMap group of commas', input: 'subclusterMap=( , )', key: 'subclusterMap', value: '( , )', reason: 'a group is empty' },
  { name: 'subclusterMap host name', input: 'subclusterMap=(as1.example.com,10.0.0.2)', key: 'subclusterMap', value: '(as1.example.com,10.0.0.2)', reason: "entry 'as1.example.com': expected an IP address or ip:port" },
  { name: 'subclusterMap duplicate', input: 'subclusterMap=(10.0.0.1,10.0.0.2)(10.0.0.1)', key: 'subclusterMap', value: '(10.0.0.1,10.0.0.2)(10.0.0.1)', reason: "entry '10.0.0.1': listed twice" },
  { name: 'subclusterMap duplicate IPv6 written two ways', input: 'subclusterMap=(::1)(0:0:0:0:0:0:0:1)', key: 'subclusterMap', value: '(::1)(0:0:0:0:0:0:0:1)', reason: 'listed twice' },
  { name: 'subclusterMap port 0', input: 'subclusterMap=(10.0.0.1:0)', key: 'subclusterMap', value: '(10.0.0.1:0)', reason: 'port must be an integer from 1 to 65535' },
  { name: 'hashLoadFactor -1', input: 'hashLoadFactor=-1', key: 'hashLoadFactor', value: '-1', reason: 'expected a number from 0 to 10' },
  { name: 'hashLoadFactor 11', input: 'hashLoadFactor=11', key: 'hashLoadFactor', value: '11', reason: 'expected a number from 0 to 10' },
  { name: 'hashLoadFactor abc', input: 'hashLoadFactor=abc', key: 'hashLoadFactor', value: 'abc', reason: 'expected a number from 0 to 10' },
  { name: 'hashLoadFactor 10.5', input: 'hashLoadFactor=10.5', key: 'hashLoadFactor', value: '10.5', reason: 'expected a number from 0 to 10' },
  { name: 'hashLoadFactor empty', input: 'hashLoadFactor=', key: 'hashLoadFactor', value: '' },

  // shared state store
  { name: 'stateStore mongo', input: 'stateStore=mongo', key: 'stateStore', value: 'mongo', reason: 'expected memory or redis' },
  { name: 'stateStore empty', input: 'stateStore=', key: 'stateStore', value: '', reason: 'expected memory or redis' },
  { name: 'redisUrl http scheme', input: 'redisUrl=http://x', key: 'redisUrl', value: 'http://x', reason: 'scheme must be redis: or rediss:' },
  { name: 'redisUrl not a URL', input: 'redisUrl=not a url', key: 'redisUrl', value: 'not a url', reason: 'expected a URL' },
  { name: 'redisCluster entry without port', input: 'redisCluster=127.0.0.1:7000,127.0.0.1', key: 'redisCluster', value: '127.0.0.1:7000,127.0.0.1', reason: "entry '127.0.0.1': a port is required" },
  { name: 'redisCluster duplicate', input: 'redisCluster=127.0.0.1:7000,127.0.0.1:7000', key: 'redisCluster', value: '127.0.0.1:7000,127.0.0.1:7000', reason: 'duplicates an earlier entry' },
  { name: 'redisKeyPrefix with a space', input: 'redisKeyPrefix=my prefix', key: 'redisKeyPrefix', value: 'my prefix', reason: 'expected 1 to 64 characters' },
  { name: 'redisKeyPrefix empty', input: 'redisKeyPrefix=', key: 'redisKeyPrefix', value: '', reason: 'expected 1 to 64 characters' },
  { name: 'redisKeyPrefix 65 characters', input: `redisKeyPrefix=${'p'.repeat(65)}`, key: 'redisKeyPrefix', value: 'p'.repeat(65), reason: 'expected 1 to 64 characters' },
  { name: 'redisReadTimeout 0', input: 'redisReadTimeout=0', key: 'redisReadTimeout', value: '0', reason: 'must be an integer from 1 to 10000' },
  { name: 'redisReadTimeout 10001', input: 'redisReadTimeout=10001', key: 'redisReadTimeout', value: '10001', reason: 'must be an integer from 1 to 10000' },

  // timers
  { name: 'nodeTimeout 0', input: 'nodeTimeout=0', key: 'nodeTimeout', value: '0', reason: 'integer from 1 to 2147483647 (milliseconds)' },
  { name: 'nodeTimeout words', input: 'nodeTimeout=8.4s', key: 'nodeTimeout', value: '8.4s' },
  { name: 'nodeTimeout beyond setTimeout range', input: 'nodeTimeout=2147483648', key: 'nodeTimeout', value: '2147483648' },
  { name: 'heartbeatInterval 0', input: 'heartbeatInterval=0', key: 'heartbeatInterval', value: '0', reason: 'milliseconds' },
  { name: 'heartbeatInterval empty', input: 'heartbeatInterval=', key: 'heartbeatInterval', value: '' },

  // IP load balancer
  { name: 'external IP LB wildcard', input: 'externalIpLoadBalancerAddress=0.0.0.0', key: 'externalIpLoadBalancerAddress', value: '0.0.0.0', reason: 'any address' },
  { name: 'internal IP LB bad name', input: 'internalIpLoadBalancerAddress=lb host', key: 'internalIpLoadBalancerAddress', value: 'lb host' },
  { name: 'external IP LB port 0', input: 'externalIpLoadBalancerAddress=192.0.2.1\nexternalIpLoadBalancerPort=0', key: 'externalIpLoadBalancerPort', value: '0', reason: 'port must be an integer from 1 to 65535' },
  { name: 'internal IP LB port 65536', input: 'internalIpLoadBalancerAddress=10.0.0.9\ninternalIpLoadBalancerPort=65536', key: 'internalIpLoadBalancerPort', value: '65536', reason: 'port must be an integer from 1 to 65535' },
  { name: 'external IP LB port without address', input: 'externalIpLoadBalancerPort=111', key: 'externalIpLoadBalancerPort', value: '111', reason: 'externalIpLoadBalancerAddress must be set' },
  { name: 'internal IP LB port without address', input: 'internalIpLoadBalancerPort=112', key: 'internalIpLoadBalancerPort', value: '112', reason: 'internalIpLoadBalancerAddress must be set' },
  { name: 'useIpLoadBalancerAddressInViaHeaders on', input: 'useIpLoadBalancerAddressInViaHeaders=on', key: 'useIpLoadBalancerAddressInViaHeaders', value: 'on', reason: 'expected true or false' },
  { name: 'useIpLoadBalancerAddressInViaHeaders t', input: 'useIpLoadBalancerAddressInViaHeaders=t', key: 'useIpLoadBalancerAddressInViaHeaders', value: 't' },

  // siplb keys
  { name: 'maxMessageSize 1023', input: 'maxMessageSize=1023', key: 'maxMessageSize', value: '1023', reason: 'from 1024 to 1048576' },
  { name: 'maxMessageSize 1048577', input: 'maxMessageSize=1048577', key: 'maxMessageSize', value: '1048577', reason: 'from 1024 to 1048576' },
  { name: 'maxMessageSize with unit', input: 'maxMessageSize=64k', key: 'maxMessageSize', value: '64k' },
  { name: 'udpReceiveBuffer 65535', input: 'udpReceiveBuffer=65535', key: 'udpReceiveBuffer', value: '65535', reason: 'from 65536 to 67108864' },
  { name: 'udpReceiveBuffer 64 MiB + 1', input: 'udpReceiveBuffer=67108865', key: 'udpReceiveBuffer', value: '67108865', reason: 'from 65536 to 67108864' },
  { name: 'udpReceiveBuffer with unit', input: 'udpReceiveBuffer=256k', key: 'udpReceiveBuffer', value: '256k' },
  { name: 'udpReadDelay negative', input: 'udpReadDelay=-1', key: 'udpReadDelay', value: '-1', reason: 'from 0 (off) to 100' },
  { name: 'udpReadDelay 101', input: 'udpReadDelay=101', key: 'udpReadDelay', value: '101', reason: 'from 0 (off) to 100' },
  { name: 'udpReadDelay fraction', input: 'udpReadDelay=2.5', key: 'udpReadDelay', value: '2.5' },
  { name: 'maxMessageSize empty', input: 'maxMessageSize=', key: 'maxMessageSize', value: '' },
  // The secret itself never appears in the error.
  { name: 'viaSecret too short', input: 'viaSecret=hunter2', key: 'viaSecret', value: '(7 characters, hidden)', reason: 'at least 16 characters' },
  { name: 'viaSecret 15 characters', input: 'viaSecret=0123456789abcde', key: 'viaSecret', value: '(15 characters, hidden)', reason: 'at least 16 characters' },
  { name: 'heartbeatToken too short', input: 'heartbeatToken=hunter2', key: 'heartbeatToken', value: '(7 characters, hidden)', reason: 'at least 16 characters' },
  { name: 'heartbeatToken 15 characters', input: 'heartbeatToken=0123456789abcde', key: 'heartbeatToken', value: '(15 characters, hidden)', reason: 'at least 16 characters' },
  // Sent in an HTTP header: a space would split the Bearer credential, non-ASCII is refused by clients.
  { name: 'heartbeatToken with a space', input: 'heartbeatToken=correct horse battery staple', key: 'heartbeatToken', value: '(28 characters, hidden)', reason: 'visible ASCII' },
  { name: 'heartbeatToken non-ASCII', input: 'heartbeatToken=éééééééééééééééé', key: 'heartbeatToken', value: '(16 characters, hidden)', reason: 'visible ASCII' },

  // syntax errors from the properties reader surface unchanged
  { name: 'malformed unicode escape', input: 'host=\\u00zz', key: 'host', value: '\\u00zz', reason: 'malformed Unicode escape' },
];

test('accepts: sipHeaderAffinityExclusionPattern matches exactly the listed keys, in full', () => {
  const pattern = loadConfigText('sipHeaderAffinityExclusionPattern=anonymous|unknown').config.sipHeaderAffinityExclusionPattern;
  assert.ok(pattern instanceof RegExp);
  const CASES: [string, boolean][] = [
    ['anonymous', true], ['unknown', true],
    ['anonymous2', false], ['xunknown', false], ['anonymous|unknown', false], ['Anonymous', false], ['', false], ['alice', false],
  ];
  for (const [key, excluded] of CASES) assert.equal(pattern.test(key), excluded, key);
});

for (const c of rejected) {
  test(`rejects: ${c.name}`, () => {
    assertConfigError(() => loadConfigText(c.input), c.key, c.value, c.reason);
  });
}

const lineCases: { name: string; input: string; line: number }[] = [
  { name: 'single-key error', input: '# lb.properties\n\nhost=127.0.0.1\nexternalPort=0\n', line: 4 },
  { name: 'continued value error cites its first line', input: 'a=1\nnodes=10.0.0.1:5080,\\\n  10.0.0.2\n', line: 2 },
  { name: 'port clash cites internalPort', input: 'externalPort=5070\n\ninternalPort=5070', line: 3 },
  { name: 'IP LB port without address cites the port', input: '\nexternalIpLoadBalancerPort=111', line: 2 },
];

for (const c of lineCases) {
  test(`error reason names the line: ${c.name}`, () => {
    assert.throws(
      () => loadConfigText(c.input),
      (err: unknown) => err instanceof ConfigError && err.reason.endsWith(`(line ${c.line})`),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Warnings and infos

const remarks: { name: string; input: string; warnings: string[]; infos: string[] }[] = [
  {
    name: 'an older Restcomm switch names its replacement',
    input: 'removeNodesOn500Response=true',
    warnings: ['removeNodesOn500Response is an older Restcomm key siplb does not read: write responsesStatusCodeNodeRemoval=500,503 to count 500 responses as node errors (line 1)'],
    infos: [],
  },
  {
    name: "callIdAffinityMaxTimeInCache=0 (Restcomm's shipped XML) becomes the default",
    input: 'callIdAffinityMaxTimeInCache=0',
    warnings: ['callIdAffinityMaxTimeInCache=0 would forget every call at once; using 500 seconds (line 1)'],
    infos: [],
  },
  {
    name: 'internalIpLoadBalancerAddress in one-port mode',
    input: 'internalIpLoadBalancerAddress=10.9.9.9',
    warnings: ['internalIpLoadBalancerAddress=10.9.9.9 has no effect in one-port mode (no internal port is set): clients and nodes both see the external address (line 1)'],
    infos: [],
  },
  {
    name: 'performanceTestingMode without extraServerNodes',
    input: 'performanceTestingMode=true',
    warnings: ['performanceTestingMode=true without extraServerNodes: there are no nodes to put in (line 1)'],
    infos: [],
  },
  {
    name: 'a TLS port without certificate and key: no TLS listener, and a warning saying why',
    input: 'externalUdpPort=5060\nexternalTlsPort=5061\ninternalWssPort=0',
    warnings: ['externalTlsPort=5061 needs tlsCertFile and tlsKeyFile (PEM): no SIP TLS listener (line 2)'],
    infos: [],
  },
  {
    name: 'the admin API keys say nothing when they are complete',
    input: 'securityRequired=true\nlogin=admin\npassword=s3cr3t\napiPort=2007',
    warnings: [],
    infos: [],
  },
  {
    name: 'keys with no meaning in siplb make one info line',
    input: 'rmiRegistryPort=2000\njmxHtmlAdapterPort=8000\nisUseWithNexmo=true',
    warnings: [],
    infos: ['ignored Restcomm keys that have no meaning in siplb: rmiRegistryPort (nodes register over HTTP heartbeats (heartbeatPort), not RMI); jmxHtmlAdapterPort (there is no JMX; the admin API and metrics take its place); isUseWithNexmo (siplb never relies on received/rport in its own Via, so there is nothing to strip)'],
  },
  { name: 'known keys only', input: 'host=10.0.0.1\nexternalPort=5070', warnings: [], infos: [] },
  {
    name: 'Restcomm keys siplb does not act on, with lines',
    input: 'host=127.0.0.1\nrmiRegistryPort=2000\n\nhttpPort=2080\nstatisticPort=2006',
    warnings: [],
    infos: ['ignored Restcomm keys that have no meaning in siplb: rmiRegistryPort (nodes register over HTTP heartbeats (heartbeatPort), not RMI)'],
  },
  {
    // Restcomm's own files set httpsPort=2081 with no certificate (Restcomm read a keystore): they must keep starting.
    name: 'httpsPort without TLS files: no HTTPS listener, and a warning saying why',
    input: 'httpPort=2080\nhttpsPort=2081',
    warnings: ['httpsPort=2081 needs tlsCertFile and tlsKeyFile: no HTTPS listener (line 2)'],
    infos: [],
  },
  { name: 'HTTP keys siplb acts on say nothing', input: 'httpPort=2080\nmaxContentLength=2048\nunavailableHost=sorry.example.com\nrequestCheckPattern=(/Accounts/)', warnings: [], infos: [] },
  {
    name: 'wrong case suggests the key',
    input: 'ExternalPort=5070',
    warnings: ["unknown configuration key 'ExternalPort' ignored (line 1); did you mean 'externalPort'?"],
    infos: [],
  },
  {
    name: 'unknown key values are not validated',
    input: 'statisticsServerPort=not-a-port',
    warnings: ["unknown configuration key 'statisticsServerPort' ignored (line 1)"],
    infos: [],
  },
  {
    name: 'one SIP-stack key',
    input: 'javax.sip.STACK_NAME=SipBalancerForwarder',
    warnings: [],
    infos: ['ignored 1 SIP-stack key (javax.sip.*, gov.nist.*): siplb has its own SIP stack'],
  },
  {
    name: 'several SIP-stack keys make one info line',
    input: [
      'javax.sip.STACK_NAME=SipBalancerForwarder',
      'javax.sip.AUTOMATIC_DIALOG_SUPPORT=off',
      'gov.nist.javax.sip.TRACE_LEVEL=LOG4J',
      'gov.nist.javax.sip.THREAD_POOL_SIZE=64',
      'gov.nist.javax.sip.MAX_MESSAGE_SIZE=10000',
    ].join('\n'),
    warnings: [],
    infos: ['ignored 5 SIP-stack keys (javax.sip.*, gov.nist.*): siplb has its own SIP stack'],
  },
  {
    // Restcomm's own lb-configuration.properties repeats one; siplb ignores them anyway.
    name: 'a SIP-stack key given twice counts once, without a duplicate warning',
    input: 'gov.nist.javax.sip.AGGRESSIVE_CLEANUP=true\ngov.nist.javax.sip.AGGRESSIVE_CLEANUP=true',
    warnings: [],
    infos: ['ignored 1 SIP-stack key (javax.sip.*, gov.nist.*): siplb has its own SIP stack'],
  },
  {
    name: 'javax.net.ssl is not a SIP-stack prefix: a keystore, refused with a warning',
    input: 'javax.net.ssl.keyStore=/opt/keystore',
    warnings: ['Java keystores are not read (siplb will take PEM files for TLS); these keys are ignored: javax.net.ssl.keyStore'],
    infos: [],
  },
  {
    name: 'duplicate known key warns',
    input: 'externalPort=5070\nexternalPort=5080',
    warnings: ["duplicate key 'externalPort' on line 2 overrides the value from line 1"],
    infos: [],
  },
];

for (const c of remarks) {
  test(`remarks: ${c.name}`, () => {
    const loaded = loadConfigText(c.input);
    assert.deepEqual(loaded.warnings, c.warnings);
    assert.deepEqual(loaded.infos, c.infos);
  });
}

// A file in the shape Restcomm ships (lb.properties), trimmed: it must load as-is.
const RESTCOMM_STYLE = `# Mobicents Load Balancer Settings
host=127.0.0.1
rmiRegistryPort=2000
externalPort=5060
externalSecurePort=5061
internalPort=5065
httpPort=2080
internalTransport=UDP
externalTransport=UDP
#externalIpLoadBalancerAddress=127.0.0.1
#extraServerNodes=222.221.21.12:21,45.6.6.7:9003,33.5.6.7,33.9.9.2
performanceTestingMode=false
#algorithmClass=org.mobicents.tools.sip.balancer.CallIDAffinityBalancerAlgorithm
nodeTimeout=8400
heartbeatInterval=150
javax.sip.STACK_NAME=SipBalancerForwarder
javax.sip.AUTOMATIC_DIALOG_SUPPORT=off
gov.nist.javax.sip.TRACE_LEVEL=LOG4J
gov.nist.javax.sip.LOG_MESSAGE_CONTENT=false
gov.nist.javax.sip.THREAD_POOL_SIZE=64
gov.nist.javax.sip.MESSAGE_PROCESSOR_FACTORY=gov.nist.javax.sip.stack.NioMessageProcessorFactory
statisticPort=2006
`;

test('Restcomm-style lb.properties loads, saying what siplb does not act on', () => {
  const loaded = loadConfigText(RESTCOMM_STYLE);
  assert.deepEqual(loaded.config, {
    ...DEFAULTS,
    externalPort: 5060,
    internalPort: 5065,
    externalTlsPort: 0, // Restcomm read a keystore: no PEM files, so no TLS listener
    externalTransports: ['udp'],
    internalTransports: ['udp'],
    httpPort: 2080,
    apiPort: 2006,
  });
  assert.deepEqual(loaded.warnings, [
    'externalSecurePort=5061 needs tlsCertFile and tlsKeyFile (PEM): no SIP TLS listener (line 5)',
  ]);
  assert.deepEqual(loaded.infos, [
    'ignored 6 SIP-stack keys (javax.sip.*, gov.nist.*): siplb has its own SIP stack',
    'ignored Restcomm keys that have no meaning in siplb: rmiRegistryPort (nodes register over HTTP heartbeats (heartbeatPort), not RMI)',
  ]);
});

// ---------------------------------------------------------------------------------------------
// Files

test('loadConfigFile: a relative algorithmClass module path resolves against the file\'s folder', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'lb.properties');
  writeFileSync(path, 'algorithmClass=./algorithms/mine.ts\n');
  assert.equal(loadConfigFile(path).config.algorithmClass, join(dir, 'algorithms', 'mine.ts'));
  writeFileSync(path, 'algorithmClass=org.mobicents.tools.sip.balancer.UserBasedAlgorithm\n');
  assert.equal(loadConfigFile(path).config.algorithmClass, 'org.mobicents.tools.sip.balancer.UserBasedAlgorithm');
});

test('loadConfigFile: relative tlsCertFile and tlsKeyFile resolve against the file\'s folder', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'lb.properties');
  writeFileSync(path, 'httpsPort=8443\ntlsCertFile=tls/cert.pem\ntlsKeyFile=/etc/siplb/key.pem\n');
  const { config } = loadConfigFile(path);
  assert.equal(config.tlsCertFile, join(dir, 'tls', 'cert.pem'));
  assert.equal(config.tlsKeyFile, '/etc/siplb/key.pem');
});

test('loadConfigFile reads a file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'lb.properties');
  writeFileSync(path, 'externalPort=5070\r\nnodes=[::1]:5080;transport=tcp\r\nfoo=bar\r\n');
  const loaded = loadConfigFile(path);
  assert.equal(loaded.config.externalPort, 5070);
  assert.deepEqual(loaded.config.nodes, [{ host: '::1', port: 5080, transport: 'tcp', weight: 1 }]);
  assert.deepEqual(loaded.warnings, ["unknown configuration key 'foo' ignored (line 3)"]);
});

test('loadConfigFile reports a bad value from the file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'lb.properties');
  writeFileSync(path, '\n\nexternalTransport=sctp\n');
  assertConfigError(() => loadConfigFile(path), 'externalTransport', 'sctp', "unknown transport 'sctp' (expected udp, tcp, tls, ws or wss) (line 3)");
});

const fileErrors: { name: string; path: () => string; reason: RegExp }[] = [
  { name: 'missing file', path: () => join(tmpdir(), 'siplb-no-such-dir', 'lb.properties'), reason: /ENOENT/ },
  { name: 'directory instead of file', path: () => tmpdir(), reason: /EISDIR/ },
];

for (const c of fileErrors) {
  test(`loadConfigFile: ${c.name} is a ConfigError on '(file)'`, () => {
    const path = c.path();
    assertConfigError(() => loadConfigFile(path), '(file)', path, c.reason);
  });
}
