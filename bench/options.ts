// Command-line pieces the benchmarks share: a usage error that exits 2, and integer flags.

/** Prints `program: message` and the usage lines on stderr, then exits 2. */
export function usageExit(program: string, usageLines: string, message: string): never {
  process.stderr.write(`${program}: ${message}\n${usageLines}`);
  process.exit(2);
}

/** An integer flag in [min, max] (`fallback` when absent); anything else ends with `fail`. */
export function intOption(raw: string | undefined, fallback: number, name: string, min: number, max: number, fail: (message: string) => never): number {
  const value = Number(raw ?? String(fallback));
  if (!Number.isInteger(value) || value < min || value > max) fail(`--${name} must be an integer ${min}..${max}, got ${raw}`);
  return value;
}

/** siplb settings from repeated `--set key=value` flags; anything without a key ends with `fail`. */
export function settingsOption(raw: string[] | undefined, fail: (message: string) => never): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const kv of raw ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) fail(`--set wants key=value, got ${kv}`);
    settings[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return settings;
}

/** Node flags for siplb from `--node-flags='--a --b'`, after the CLI's own; each must start with --. */
export function nodeFlagsOption(raw: string | undefined, fail: (message: string) => never): string[] {
  const flags = (raw ?? '').split(/\s+/).filter((f) => f !== '');
  if (flags.some((f) => !f.startsWith('--'))) fail(`--node-flags takes Node flags (--...), got ${raw}`);
  return flags;
}
