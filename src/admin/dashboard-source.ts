// What the dashboard streams each second, built from the running balancer: its identity, the
// nodes as the API shows them, and cumulative counters the page turns into rates.

import { SIP_TRANSPORTS } from '../config/types.ts';
import type { DashboardSnapshot, DashboardSource } from './dashboard.ts';
import { maskedConfig } from './masked-config.ts';
import { NodeViews } from './node-views.ts';
import type { AdminTarget } from './target.ts';

export function dashboardSource(target: AdminTarget, views: NodeViews = new NodeViews(target)): DashboardSource {
  // Masked once per configuration: a reload gives the target a new one.
  let shown = target.config;
  let config = maskedConfig(shown);
  return {
    snapshot(): DashboardSnapshot {
      const s = target.stats;
      let failures = 0;
      for (const t of SIP_TRANSPORTS) {
        // Final error responses from nodes (5xx, 6xx) and siplb's own refusals below.
        failures += s.responsesByClass[t][5] + s.responsesByClass[t][6];
      }
      for (const [status, n] of s.localReplies) if (status >= 500) failures += n;
      if (target.config !== shown) {
        shown = target.config;
        config = maskedConfig(shown);
      }
      return {
        at: Date.now(),
        balancer: { id: target.balancerId, version: target.version, startedAt: target.startedAt, stopping: target.isStopping(), config },
        nodes: views.all().map((v) => ({
          id: v.id, ip: v.ip, ports: { ...v.ports }, state: v.state, why: v.why, calls: v.calls, weight: v.weight,
          version: v.version, source: v.source, lastHeard: v.lastHeard,
        })),
        totals: { requestsIn: s.requestsIn, responsesIn: s.responsesIn, callsStarted: s.callsStarted, failures, calls: target.calls.size },
      };
    },
  };
}
