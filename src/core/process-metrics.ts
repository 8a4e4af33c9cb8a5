// prom-client's process metrics (CPU, memory, event-loop lag, GC) for siplb's commands. They
// install observers prom-client cannot stop, so each prefix gets one registry per process, made
// on first use and shared by every exposition that shows them.

import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

const registries = new Map<string, Registry>();

/** The process-wide registry of prom-client's default metrics under `prefix` (siplb_, siplb_advisor_). */
export function processMetrics(prefix: string): Registry {
  let registry = registries.get(prefix);
  if (registry === undefined) {
    registry = new Registry();
    // The event-loop lag monitor samples every 100 ms rather than prom-client's 10: lag that
    // matters lasts longer than that, and ten wake-ups a second cost less than a hundred.
    collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: 100 });
    // prom-client's nodejs_active_{handles,requests,resources}_total are gauges named like
    // counters, which promtool (and Prometheus' conventions) reject; the same numbers by type
    // (nodejs_active_handles{type}...) stay, and sum to them.
    for (const m of registry.getMetricsAsArray()) {
      if (m.name.endsWith('_total') && !(m instanceof Counter)) registry.removeSingleMetric(m.name);
    }
    registries.set(prefix, registry);
  }
  return registry;
}
