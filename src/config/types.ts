// The one typed configuration every part reads. Produced by loadConfig() from a Restcomm
// lb.properties / lb-configuration.properties file, a Restcomm lb-configuration.xml file, or the
// built-in defaults; never mutated after start-up. Field names are Restcomm's key names (the
// properties spelling), so an operator's key and the code's field are the same word.

/** Every SIP transport siplb listens on and sends with (Via: UDP, TCP, TLS, WS, WSS). */
export const SIP_TRANSPORTS = ['udp', 'tcp', 'tls', 'ws', 'wss'] as const;
export type SipTransport = (typeof SIP_TRANSPORTS)[number];
export type Transport = SipTransport;

/** The transports externalTransport / internalTransport choose between (externalPort means both). */
export type PlainTransport = 'udp' | 'tcp';

/** One port per SIP transport; null: no listener for that transport. */
export type PortSet = Record<SipTransport, number | null>;

/**
 * Restcomm's per-transport port keys, e.g. externalUdpPort, internalIpLoadBalancerWssPort.
 * Raw as written: null when absent, 0 when explicitly off. src/config/ports.ts resolves them
 * together with externalPort / internalPort into the listeners to open.
 */
export type PortKeys<P extends string> = { [T in SipTransport as `${P}${Capitalize<T>}Port`]: number | null };

export type PortKeyPrefix =
  | 'external' | 'internal'
  | 'externalIpLoadBalancer' | 'internalIpLoadBalancer'
  | 'externalIpv6' | 'internalIpv6'
  | 'externalIpv6LoadBalancer' | 'internalIpv6LoadBalancer';

export const PORT_KEY_PREFIXES: readonly PortKeyPrefix[] = [
  'external', 'internal',
  'externalIpLoadBalancer', 'internalIpLoadBalancer',
  'externalIpv6', 'internalIpv6',
  'externalIpv6LoadBalancer', 'internalIpv6LoadBalancer',
];

export type PortKeyName = keyof AllPortKeys;

interface AllPortKeys
  extends PortKeys<'external'>, PortKeys<'internal'>,
    PortKeys<'externalIpLoadBalancer'>, PortKeys<'internalIpLoadBalancer'>,
    PortKeys<'externalIpv6'>, PortKeys<'internalIpv6'>,
    PortKeys<'externalIpv6LoadBalancer'>, PortKeys<'internalIpv6LoadBalancer'> {}

export interface StaticNodeSpec {
  host: string;        // IP literal (v4 or v6, no brackets) or DNS name
  port: number;
  transport: Transport;
  weight: number;      // >= 1, default 1
  http?: StaticHttpSpec; // ;http=8080[;https=8443][;ws=5062][;jvmRoute=node1]
}

export interface StaticHttpSpec {
  port: number;
  sslPort?: number;
  wsPort?: number;
  jvmRoute?: string;
}

export interface HostPort {
  host: string;        // IP literal or DNS name, no brackets
  port: number | null; // null: any port on that host
}

/**
 * Restcomm's routingRulesIpv4/6 rule: whether responses towards clients whose address matches
 * `pattern` get publicIp (publicIpv6) in place of the balancer's own address.
 */
export interface RoutingRule {
  pattern: string;     // 'default', an exact address, or a prefix ending in '*' (10.0.0.*, fd30:*)
  patch: boolean;
}

export interface Config extends AllPortKeys {
  host: string;                         // host; default 127.0.0.1
  externalHost: string;                 // externalHost; default = host
  internalHost: string;                 // internalHost; default = host
  externalPort: number | null;          // externalPort: UDP and TCP together; null: see config/ports.ts
  internalPort: number | null;          // internalPort; null and no internal*Port = one port for both sides
  externalTransports: PlainTransport[];      // externalTransport (comma list); default ['udp','tcp']
  internalTransports: PlainTransport[];      // internalTransport (comma list); default ['udp','tcp']
  ipv6Host: string | null;              // ipv6Host: IPv6 bind address of both sides (Restcomm <common>)
  externalIpv6Host: string | null;      // default ipv6Host
  internalIpv6Host: string | null;      // default ipv6Host
  nodes: StaticNodeSpec[];              // nodes (siplb key); default []
  extraServerNodes: HostPort[];         // extraServerNodes; default []
  performanceTestingMode: boolean;      // extraServerNodes become static nodes that never expire
  algorithmClass: string;               // algorithmClass, raw; resolved by src/algorithms/catalog.ts
  callIdAffinityMaxTimeInCache: number; // seconds; default 500
  callIdAffinityGroupFailover: boolean; // default false
  callIdAffinityMaxEntries: number;     // siplb key; default 2_000_000 (oldest evicted beyond it)
  userAffinityMaxTimeInCache: number | null; // user algorithm, seconds; null = callIdAffinityMaxTimeInCache
  userAffinityGroupFailover: boolean | null;  // user algorithm; null = callIdAffinityGroupFailover
  sipHeaderAffinityKey: string;         // default 'Call-ID'; see src/algorithms/affinity-key.ts
  sipHeaderAffinityExclusionPattern: RegExp | null; // user-based: keys matching it use the fallback key
  sipHeaderAffinityFallbackKey: string; // default 'From'
  httpAffinityKey: string;              // URL query parameter for HTTP hashing; default 'appsession'
  subclusterMap: string[][];            // groups of node hosts (ip or ip:port); default []
  hashLoadFactor: number;               // bounded-load epsilon; 0 = off (siplb key)
  stateStore: 'memory' | 'redis';       // siplb key; default memory
  redisUrl: string;                     // default redis://127.0.0.1:6379
  redisCluster: HostPort[];             // cluster seed nodes; empty = standalone redisUrl
  redisKeyPrefix: string;               // default 'siplb:'
  redisReadTimeout: number;             // ms a local miss may wait for Redis; default 100
  nodeTimeout: number;                  // ms; default 8400
  heartbeatInterval: number;            // ms; default 150
  heartbeatPort: number | null;         // null = 2610 if free (HTTP/JSON node registration, internal side)
  heartbeatToken: string | null;        // siplb key; shared secret every heartbeat request carries (Bearer); null = unauthenticated
  healthCheckInterval: number;          // ms; default 7000; 0 disables active OPTIONS checks
  healthCheckTimeout: number;           // ms; siplb key; default 2000
  healthCheckFailures: number;          // default 1
  healthCheckSuccesses: number;         // default 1
  responsesStatusCodeNodeRemoval: number[]; // default [503]
  responseReasonNodeRemoval: string | null; // reason phrase a removal status must also carry; null = any
  maxNumberResponsesWithError: number;  // default 5
  maxErrorTime: number;                 // ms; default 300000
  maxRequestNumberWithoutResponse: number | null; // requests a node may leave unanswered; null = off
  maxResponseTime: number | null;       // ms since the node's last response; null = off
  trafficRampupCyclePeriod: number;     // ms; default 0 = no ramp-up
  trafficPercentageIncrease: number;    // %; default 10
  externalIpLoadBalancerAddress: string | null; // a comma list (vipAddressList): the first is advertised
  externalIpLoadBalancerPort: number | null;
  internalIpLoadBalancerAddress: string | null;
  internalIpLoadBalancerPort: number | null;
  externalIpv6LoadBalancerAddress: string | null;
  internalIpv6LoadBalancerAddress: string | null;
  useIpLoadBalancerAddressInViaHeaders: boolean; // default false
  publicIp: string | null;              // publicIp (public-ip): address clients behind NAT are told
  publicIpv6: string | null;
  routingRulesIpv4: RoutingRule[];      // which IPv4 clients get publicIp; default: all
  routingRulesIpv6: RoutingRule[];      // which IPv6 clients get publicIpv6; default: all
  matchingHostnameForRoute: string | null; // a Route naming this host is the balancer itself
  isFilterSubdomain: boolean;           // ... and so is one naming a subdomain of it
  isSendTrying: boolean;                // answer INVITE with 100 Trying; default true
  blockedValues: string[];              // lower case; User-Agent/From/To containing one is dropped
  isSend5xxResponse: boolean;           // add a Reason header to the local 5xx reply
  isSend5xxResponseSatusCode: number;   // (sic, Restcomm's spelling) status of the local reply; default 503
  isSend5xxResponseReasonHeader: string | null; // text of that Reason header
  apiPort: number | null;               // apiPort = statisticPort (Restcomm: one port); admin API
  securityRequired: boolean;            // Restcomm API basic auth
  login: string | null;
  password: string | null;
  apiToken: string | null;              // Bearer token of the admin API (siplb key); null = loopback only
  shutdownTimeout: number;              // ms a graceful stop waits for calls; default 10000
  shutdownAnnounceTime: number;         // ms a graceful stop keeps taking calls while OPTIONS get 503; default 0
  httpPort: number | null;              // HTTP balancer (not yet available)
  httpsPort: number | null;
  maxContentLength: number;             // HTTP body limit, bytes; default 1048576
  unavailableHost: string | null;       // HTTP redirect target when no node is available
  requestCheckPattern: string | null;   // HTTP request filter (Restcomm)
  httpResponseTimeout: number;          // ms a node may take to send a response head; default 60000
  httpWebSocketIdleTimeout: number;     // ms an idle WebSocket tunnel stays open; default 600000
  httpMaxHeaderSize: number;            // bytes of a request's header section; default 16384
  tlsCertFile: string | null;           // PEM certificate (chain) for HTTPS and the SIP TLS / WSS listeners
  tlsKeyFile: string | null;            // PEM private key for it
  tlsCaFile: string | null;             // PEM CA bundle that client certificates are checked against
  tlsClientAuth: 'none' | 'request' | 'require'; // client certificates; default none
  maxMessageSize: number;               // bytes; default 65535 (siplb key)
  udpReceiveBuffer: number;             // bytes asked for each UDP socket's receive queue (SO_RCVBUF); default 262144
  udpNativeIo: boolean;                 // UDP through native/udp.c (transport/udp-native.ts) where it can; default true
  udpReadDelay: number;                 // ms a readable UDP socket waits while datagrams are dense (native/udp.c); default 5, 0 off
  maxConnectionsPerSource: number;      // stream connections one address may open to a listener; default 1000
  maxTcpConnections: number;            // TCP/TLS connections one listener holds in all; default 10000
  tcpFirstMessageTimeout: number;       // ms an accepted TCP/TLS connection may wait for its first whole message; default 30000
  tcpMessageTimeout: number;            // ms a message begun on a TCP/TLS connection may take to arrive whole; default 20000
  tcpIdleTimeout: number;               // ms a TCP/TLS connection may carry nothing before it is closed; default 600000
  pikeRequests: number;                 // new requests one address may send per pikeWindow; 0 = no per-source limit (siplb key)
  pikeWindow: number;                   // ms of the per-source counting window; default 2000
  pikeBlockTime: number;                // ms a blocked address must stay under the limit before it is unblocked; default 30000
  overloadControl: boolean;             // shed new calls when the balancer falls behind; default false
  connectedNodeSockets: boolean;        // UDP to nodes on a connected socket per node (ICMP unreachable takes the node down); default true
  warmUpCalls: number;                  // synthetic calls through a private proxy at start (JIT warm-up); 0 = off; default 1000
  memoryTrimInterval: number;           // seconds between memory trims (core/memory-trim.ts); 0 = off; default 5
  pikeAllow: string[];                  // canonical CIDRs (address/prefix) never limited; the cluster's addresses always are not
  tlsHandshakeTimeout: number;          // ms a TLS (or WebSocket) handshake may take; default 10000
  wsAllowedOrigins: string[];           // Origin values a SIP WebSocket handshake may carry; [] = any
  wsPingInterval: number;               // ms between pings of a quiet SIP WebSocket; two unanswered close it
  terminateTLSTraffic: boolean;         // sips: Request-URIs may reach nodes over UDP/TCP (Restcomm key)
  workers: number;                      // SIP worker processes sharing the ports (SO_REUSEPORT); auto = one per core; default 1
  viaSecret: string | null;             // siplb key; null = random per process
}

/** What loadConfig hands back besides the Config: lines for the CLI to log (the loader never logs). */
export interface LoadedConfig {
  config: Config;
  warnings: string[]; // e.g. unknown keys, one line each naming the key
  infos: string[];    // e.g. one line listing ignored javax.sip.* / gov.nist.* keys
}

/** The weights a node may have (`nodes=` ;weight=, the admin API, the shared store's records). */
export const MIN_NODE_WEIGHT = 1;
export const MAX_NODE_WEIGHT = 1000;

/** An integer weight in that range (any value: a JSON body or a store record may hold anything). */
export function isNodeWeight(weight: unknown): weight is number {
  return typeof weight === 'number' && Number.isInteger(weight) && weight >= MIN_NODE_WEIGHT && weight <= MAX_NODE_WEIGHT;
}

/**
 * The addresses of an *IpLoadBalancerAddress field (a checked comma list, config/keys.ts): the
 * first is the one advertised, every one of them names this balancer. Empty when unset.
 */
export function vipAddressList(value: string | null): string[] {
  return value === null ? [] : value.split(',');
}
