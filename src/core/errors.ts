// Errors carry a stable `code` so callers (CLI exit paths, admin API, tests) branch on the code,
// never on message text. The SIP data path never throws these on network input: it returns
// parse results and drops or answers; these are for configuration, start-up and admin calls.

export class SiplbError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration key holds a value siplb cannot run with. Start-up stops with exit code 2. */
export class ConfigError extends SiplbError {
  readonly key: string;
  readonly value: string;
  readonly reason: string;
  constructor(key: string, value: string, reason: string) {
    super('ERR_CONFIG', `invalid configuration: ${key}=${JSON.stringify(value)}: ${reason}`);
    this.key = key;
    this.value = value;
    this.reason = reason;
  }
}

/** A socket could not be bound (port in use, address not local). Start-up stops with exit code 1. */
export class BindError extends SiplbError {
  constructor(message: string) {
    super('ERR_BIND', message);
  }
}
