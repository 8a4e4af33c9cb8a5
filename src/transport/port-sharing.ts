// Whether this process's listeners share their ports with other processes (SO_REUSEPORT): on in
// each worker of a multi-worker siplb (wiring/workers.ts), so that every worker binds the same SIP
// ports and the kernel spreads clients over them by the hash of their address and port. It is a
// property of the process, set once before any endpoint binds; an endpoint's own
// EndpointOptions.reusePort, when given, wins.

import type { EndpointOptions } from './types.ts';

let shared = false;

/** Every endpoint bound from now on in this process shares its port (true) or binds it alone. */
export function sharePorts(on: boolean): void {
  shared = on;
}

/** SO_REUSEPORT for this endpoint: its own option, else the process's setting. */
export function reusePortFor(opts: EndpointOptions): boolean {
  return opts.reusePort ?? shared;
}
