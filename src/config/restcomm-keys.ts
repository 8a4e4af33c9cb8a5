// Restcomm configuration keys siplb reads but does not act on, so that none of a migrating
// operator's file is silently ignored. Two kinds: keys that have no meaning here (the Java
// machinery Restcomm needed: RMI, JMX, JBoss Cache, log4j), reported in one info line; and
// features siplb does not offer (the SMPP balancer, Java keystores), reported in one warning
// each that lists the keys found.

/** Keys with no meaning in siplb, and why. */
export const NO_MEANING_KEYS: ReadonlyMap<string, string> = new Map([
  ['rmiRegistryPort', 'nodes register over HTTP heartbeats (heartbeatPort), not RMI'],
  ['rmiRemoteObjectPort', 'nodes register over HTTP heartbeats (heartbeatPort), not RMI'],
  ['jmxHtmlAdapterPort', 'there is no JMX; the admin API and metrics take its place'],
  ['persistentConsistentHashCacheConfiguration', 'there is no JBoss Cache; shared state lives in Redis (stateStore=redis)'],
  ['cacheConfiguration', 'there is no JBoss Cache; shared state lives in Redis (stateStore=redis)'],
  ['cacheConfigFile', 'there is no JBoss Cache; shared state lives in Redis (stateStore=redis)'],
  ['logConfigFile', 'log4j is not used; siplb logs JSON lines to standard output'],
  ['usePrettyEncoding', 'JAIN-SIP message encoding; siplb forwards messages as they came'],
  ['isUseWithNexmo', 'siplb never relies on received/rport in its own Via, so there is nothing to strip'],
  ['earlyDialogWorstCase', "only Restcomm's worst-case test algorithm reads it, and siplb does not offer that algorithm"],
  ['keepalivePeriod', 'JAIN-SIP connection keep-alive; siplb keeps TCP connections open as long as peers do'],
]);

/** Older Restcomm switches a newer key replaced: what to write instead. */
export const SUPERSEDED_KEYS: ReadonlyMap<string, string> = new Map([
  ['removeNodesOn500Response', 'write responsesStatusCodeNodeRemoval=500,503 to count 500 responses as node errors'],
]);

/** Restcomm's SMPP load balancer: not part of siplb. */
export const SMPP_KEYS: ReadonlySet<string> = new Set([
  'smppName', 'smppHost', 'smppPort', 'smppSslPort', 'smppInternalHost', 'smppExternalHost', 'remoteServers',
  'maxConnectionSize', 'nonBlockingSocketsEnabled', 'defaultSessionCountersEnabled', 'timeoutResponse',
  'timeoutConnection', 'timeoutEnquire', 'reconnectPeriod', 'timeoutConnectionCheckClientSide',
  'timeoutConnectionCheckServerSide', 'isUseRrSendSmppRequestToClient', 'muxMode', 'toNodeAlgorithmClass',
  'toProviderAlgorithmClass',
]);

/** Java keystore settings (properties spelling and the XML <ssl> leaves). */
export const KEYSTORE_KEYS: ReadonlySet<string> = new Set([
  'javax.net.ssl.keyStore', 'javax.net.ssl.keyStorePassword', 'javax.net.ssl.trustStore', 'javax.net.ssl.trustStorePassword',
  'keyStore', 'keyStorePassword', 'trustStore', 'trustStorePassword', 'tlsClientProtocols', 'enabledCipherSuites',
]);

export const SMPP_WARNING = 'the SMPP load balancer is not part of siplb: no SMPP listener is opened and these keys are ignored';
export const KEYSTORE_WARNING = 'Java keystores are not read (siplb will take PEM files for TLS); these keys are ignored';
