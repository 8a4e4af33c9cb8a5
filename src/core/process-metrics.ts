// prom-client's process metrics (CPU, memory, event-loop lag, GC) for siplb's commands. They
// install observers prom-client cannot stop, so each prefix gets one registry per process, made
// on first use and shared by every exposition that shows them.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

const registries = new Map<string, Registry>();
/** How often the event-loop delay monitor samples, ms (prom-client's default is 10). */
const LAG_RESOLUTION_MS = 100;
const LAG_STATS = ['min', 'max', 'mean', 'p50', 'p90', 'p99'] as const;

/** The process-wide registry of prom-client's default metrics under `prefix` (siplb_, siplb_advisor_). */
export function processMetrics(prefix: string): Registry {
  let registry = registries.get(prefix);
  if (registry === undefined) {
    registry = new Registry();
    // The event-loop lag monitor samples every 100 ms rather than prom-client's 10: lag that
    // matters lasts longer than that, and ten wake-ups a second cost less than a hundred.
    collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: LAG_RESOLUTION_MS });
    lagWithoutResolution(registry, prefix);
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

/**
 * Node's event-loop delay histogram records the whole time between two runs of its timer, the
 * resolution included, so prom-client's lag statistics read 100 ms on an idle loop. They are
 * replaced, under the same names, by gauges over a histogram of our own with the resolution taken
 * off. The gauges are collected in the order they were registered, synchronously, so the last one
 * resets the histogram for the next scrape, as prom-client's did.
 */
function lagWithoutResolution(registry: Registry, prefix: string): void {
  const histogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  histogram.enable();
  const resolutionNs = LAG_RESOLUTION_MS * 1e6;
  const read: Record<(typeof LAG_STATS)[number], () => number> = {
    min: () => histogram.min, max: () => histogram.max, mean: () => histogram.mean,
    p50: () => histogram.percentile(50), p90: () => histogram.percentile(90), p99: () => histogram.percentile(99),
  };
  for (const stat of LAG_STATS) {
    const name = `${prefix}nodejs_eventloop_lag_${stat}_seconds`;
    const help = registry.getSingleMetric(name) === undefined ? null : `Event-loop delay beyond the monitor's ${LAG_RESOLUTION_MS} ms resolution, ${stat} since the last scrape, in seconds.`;
    if (help === null) continue;
    registry.removeSingleMetric(name);
    const last = stat === LAG_STATS[LAG_STATS.length - 1];
    new Gauge({
      name, help, registers: [registry],
      collect() {
        const ns = histogram.count > 0 ? read[stat]() : resolutionNs;
        this.set(Math.max(0, ns - resolutionNs) / 1e9);
        if (last) histogram.reset();
      },
    });
  }
}
