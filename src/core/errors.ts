// Every error siplb throws on purpose is a SiplbError subclass with a stable `code` in siplb's
// own namespace (SIPLB_*), so callers (the CLIs' exit paths, the admin API, tests) branch on the
// class or the code, never on message text. The class also decides how a command ends: 2 for a
// command line or configuration it cannot run with, 1 for a resource it could not get.
//
// The SIP data path and the network handlers never throw these at a peer: input is answered or
// dropped and counted. These are for start-up, configuration, the command line and admin calls.

export const ERROR_CODES = {
  config: 'SIPLB_CONFIG',
  usage: 'SIPLB_USAGE',
  bind: 'SIPLB_BIND',
  registration: 'SIPLB_REGISTRATION',
  nftables: 'SIPLB_NFTABLES',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Exit code of a command that stops for a bad command line or configuration. */
export const EXIT_USAGE = 2;
/** Exit code of a command that stops because a socket could not be bound. */
export const EXIT_BIND = 1;

export abstract class SiplbError extends Error {
  abstract readonly code: ErrorCode;
  /** How a command that stops on this error exits. */
  abstract readonly exitCode: number;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A configuration key holds a value siplb cannot run with. Start-up stops with exit code 2. */
export class ConfigError extends SiplbError {
  readonly code = ERROR_CODES.config;
  readonly exitCode = EXIT_USAGE;
  readonly key: string;
  readonly value: string;
  readonly reason: string;
  constructor(key: string, value: string, reason: string) {
    super(`invalid configuration: ${key}=${JSON.stringify(value)}: ${reason}`);
    this.key = key;
    this.value = value;
    this.reason = reason;
  }
}

/** A command line the program cannot run with. The command prints it on one line and exits 2. */
export class UsageError extends SiplbError {
  readonly code = ERROR_CODES.usage;
  readonly exitCode = EXIT_USAGE;
}

/** A socket could not be bound (port in use, address not local). Start-up stops with exit code 1. */
export class BindError extends SiplbError {
  readonly code = ERROR_CODES.bind;
  readonly exitCode = EXIT_BIND;
}

/**
 * A node registration without what every node must have (a UDP or TCP SIP port). The heartbeat
 * endpoint validates first and answers 400, so reaching this is a caller's bug, not a peer's.
 */
export class RegistrationError extends SiplbError {
  readonly code = ERROR_CODES.registration;
  readonly exitCode = EXIT_USAGE;
}

/**
 * Why siplb-advisor cannot program the kernel: nft is missing, it lacks CAP_NET_ADMIN, a table of
 * its name belongs to someone else (exit 2: the host or the command line must change), or nft
 * refused a script (exit 1: a resource it could not get, as a port in use is for siplb).
 */
export class NftablesError extends SiplbError {
  readonly code = ERROR_CODES.nftables;
  readonly exitCode: number;
  readonly kind: 'missing' | 'permission' | 'foreign-table' | 'failed';
  constructor(kind: NftablesError['kind'], message: string) {
    super(message);
    this.kind = kind;
    this.exitCode = kind === 'failed' ? EXIT_BIND : EXIT_USAGE;
  }
}
