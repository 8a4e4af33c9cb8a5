// The configuration as GET /api/v1/config shows it: every key, secrets replaced, so the
// answer can be pasted into a ticket.

import type { Config } from '../config/types.ts';

const SECRET_FIELDS = new Set<string>(['password', 'viaSecret', 'apiToken', 'heartbeatToken']);

export function maskedConfig(cfg: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(cfg)) {
    if (SECRET_FIELDS.has(key)) out[key] = value === null ? null : '(hidden)';
    else if (key === 'redisUrl' && typeof value === 'string') out[key] = value.replace(/\/\/([^@/]*)@/, '//(hidden)@');
    else if (value instanceof RegExp) out[key] = value.source;
    else out[key] = value;
  }
  return out;
}
