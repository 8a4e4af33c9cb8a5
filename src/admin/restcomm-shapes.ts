// Restcomm's /lbstat and /lbinfo bodies, field for field as Restcomm's Gson wrote them
// (StatisticObject under "Metrics", NodesInfoObject under "Nodes info"), so the scripts and
// monitoring built against Restcomm keep reading them. Fields siplb has no equivalent for
// (SMPP, the JVM heap) are there with 0 rather than missing.

import type { AdminTarget } from './target.ts';

export function restcommStat(t: AdminTarget): Record<string, unknown> {
  const sip = t.stats;
  const http = t.http?.stats.toJSON() as { local?: Record<string, number>; nodes?: Record<string, Record<string, number>> } | undefined;
  let httpRequests = 0;
  for (const c of Object.values(http?.nodes ?? {})) httpRequests += c['requests'] ?? 0;
  const usage = process.cpuUsage();
  const uptimeUs = Math.max(1, (Date.now() - t.startedAt) * 1000);
  return {
    Metrics: {
      releaseName: 'siplb',
      releaseVersion: t.version,
      activeNodes: t.registry.snapshot().selectable.length,
      JvmCpuUsage: Math.round(((usage.user + usage.system) / uptimeUs) * 100),
      JvmHeapSize: process.memoryUsage().rss,
      NumberOfActiveHttpConnections: 0,
      NumberOfActiveSipConnections: t.transports.connections.size,
      NumberOfActiveSmppConnections: 0,
      NumberOfBytesTransferred: 0,
      NumberOfHttpBytesToClient: 0,
      NumberOfHttpBytesToServer: 0,
      NumberOfHttpRequests: httpRequests,
      NumberOfRequestsProcessed: sip.requestsIn,
      NumberOfResponsesProcessed: sip.responsesIn,
      NumberOfSmppBytesToClient: 0,
      NumberOfSmppBytesToServer: 0,
      NumberOfSmppRequestsToClient: 0,
      NumberOfSmppRequestsToServer: 0,
      NumberOfActiveCalls: t.calls.size,
    },
  };
}

export function restcommInfo(t: AdminTarget): Record<string, unknown> {
  const v4: unknown[] = [];
  const v6: unknown[] = [];
  const snap = t.registry.snapshot();
  for (const e of t.registry.list()) {
    const n = e.node;
    const properties: Record<string, string> = { version: e.version };
    for (const [transport, port] of Object.entries(n.ports)) properties[`${transport}Port`] = String(port);
    if (n.http !== undefined) {
      properties['httpPort'] = String(n.http.port);
      if (n.http.sslPort !== undefined) properties['sslPort'] = String(n.http.sslPort);
      if (n.http.jvmRoute !== undefined) properties['jvmRoute'] = n.http.jvmRoute;
    }
    if (e.sessionId !== null) properties['sessionId'] = e.sessionId;
    const node = {
      hostName: e.registration?.hostName ?? n.ip,
      ip: n.ip,
      timeStamp: e.source === 'static' ? e.joinedAt : e.lastHeard,
      properties,
      gracefulShutdown: e.draining,
      bad: snap.stateOf(n.id) === 'down',
      failCounter: 0,
      weightIndex: n.weight,
    };
    (n.ip.includes(':') ? v6 : v4).push(node);
  }
  return { 'Nodes info': { nodesIPv4: v4, nodesIPv6: v6, smppRemoteServers: [] } };
}

/** What Restcomm's /lbstop answers (423 Locked) while it stops. */
export const RESTCOMM_BYE_PAGE = '<!DOCTYPE html><html><head><title>siplb</title></head><body><h1>siplb is stopping</h1><p>New calls are refused; calls in progress go on until shutdownTimeout.</p></body></html>\n';
