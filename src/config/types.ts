// The one typed configuration every part reads. Produced by loadConfig() from lb.properties
// (Restcomm key names) or from built-in defaults; never mutated after start-up.

export type Transport = 'udp' | 'tcp';

export interface StaticNodeSpec {
  host: string;        // IP literal (v4 or v6, no brackets) or DNS name
  port: number;
  transport: Transport;
  weight: number;      // >= 1, default 1
}

export interface HostPort {
  host: string;        // IP literal or DNS name, no brackets
  port: number | null; // null: any port on that host
}

export interface Config {
  host: string;                         // host; default 127.0.0.1
  externalHost: string;                 // externalHost; default = host
  internalHost: string;                 // internalHost; default = host
  externalPort: number;                 // externalPort; default 5060
  internalPort: number | null;          // internalPort; default null = one port for both sides
  externalTransports: Transport[];      // externalTransport (comma list); default ['udp','tcp']
  internalTransports: Transport[];      // internalTransport (comma list); default ['udp','tcp']
  nodes: StaticNodeSpec[];              // nodes (siplb key); default []
  extraServerNodes: HostPort[];         // extraServerNodes; default []
  algorithmClass: string;               // algorithmClass, raw; resolved by src/algorithms/catalog.ts
  callIdAffinityMaxTimeInCache: number; // seconds; default 500
  callIdAffinityGroupFailover: boolean; // default false
  callIdAffinityMaxEntries: number;     // siplb key; default 2_000_000 (oldest evicted beyond it)
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
  healthCheckInterval: number;          // ms; default 7000; 0 disables active OPTIONS checks
  healthCheckTimeout: number;           // ms; siplb key; default 2000
  healthCheckFailures: number;          // default 1
  healthCheckSuccesses: number;         // default 1
  responsesStatusCodeNodeRemoval: number[]; // default [503]
  maxNumberResponsesWithError: number;  // default 5
  maxErrorTime: number;                 // ms; default 300000
  trafficRampupCyclePeriod: number;     // ms; default 0 = no ramp-up
  trafficPercentageIncrease: number;    // %; default 10
  externalIpLoadBalancerAddress: string | null;
  externalIpLoadBalancerPort: number | null;
  internalIpLoadBalancerAddress: string | null;
  internalIpLoadBalancerPort: number | null;
  useIpLoadBalancerAddressInViaHeaders: boolean; // default false
  maxMessageSize: number;               // bytes; default 65535 (siplb key)
  viaSecret: string | null;             // siplb key; null = random per process
}

/** What loadConfig hands back besides the Config: lines for the CLI to log (the loader never logs). */
export interface LoadedConfig {
  config: Config;
  warnings: string[]; // e.g. unknown keys, one line each naming the key
  infos: string[];    // e.g. one line listing ignored javax.sip.* / gov.nist.* keys
}
