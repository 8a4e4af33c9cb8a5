// The node directory over the shared tier: one hash field per registered node, written by
// whichever balancer heard its heartbeat, a second hash (`<key>:admin-drains`) with one field
// per node an operator drained or activated, written by the balancer whose admin API was used,
// a third (`<key>:admin-weights`) with the operators' weights the same way, and a fourth
// (`<key>:pins`) with Restcomm's /lbnoderegex pins by pattern. Apart because
// the heartbeat record is rewritten by whoever hears the node next (a drain kept in it would be
// overwritten), and a drain and a weight are set independently, each the latest of its kind. Anything can write to Redis, so every field is validated
// before it is believed; an invalid one is skipped (and reported, rate-limited).

import type { NodeRegistration } from '../../heartbeat/protocol.ts';
import { rateLimit } from '../../core/log.ts';
import { isNodeWeight } from '../../config/types.ts';
import type { AdminDrainRecord, AdminWeightRecord, NodeDirectory, PinRecord, SharedNodeRecord } from '../store.ts';
import { isObject, parseJson } from './connection.ts';
import type { SharedTier } from './shared-tier.ts';

function isPort(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536;
}

function toRegistration(v: unknown): NodeRegistration | null {
  if (!isObject(v)) return null;
  if (typeof v.ip !== 'string' || typeof v.sessionId !== 'string' || typeof v.version !== 'string') return null;
  if (!isObject(v.ports) || !Object.values(v.ports).every(isPort)) return null;
  return v as unknown as NodeRegistration;
}

/** A directory field as written by publish(); null for anything else (another writer, a bad version). */
function toNodeRecord(field: string, json: string): SharedNodeRecord | null {
  const v = parseJson(json);
  if (!isObject(v)) return null;
  const { id, draining, heardAt, by } = v;
  if (id !== field || typeof draining !== 'boolean' || typeof by !== 'string') return null;
  if (typeof heardAt !== 'number' || !Number.isFinite(heardAt)) return null;
  const registration = toRegistration(v.registration);
  if (registration === null) return null;
  return { id, registration, draining, heardAt, by };
}

/** An admin drain field as written by setAdminDrain(); null for anything else. */
function toAdminDrainRecord(field: string, json: string): AdminDrainRecord | null {
  const v = parseJson(json);
  if (!isObject(v)) return null;
  const { id, drained, at, by } = v;
  if (id !== field || typeof drained !== 'boolean' || typeof by !== 'string') return null;
  if (typeof at !== 'number' || !Number.isFinite(at)) return null;
  return { id, drained, at, by };
}

/** An admin weight field as written by setAdminWeight(); null for anything else (a weight out of range included). */
function toAdminWeightRecord(field: string, json: string): AdminWeightRecord | null {
  const v = parseJson(json);
  if (!isObject(v)) return null;
  const { id, weight, at, by } = v;
  if (id !== field || typeof by !== 'string') return null;
  if (weight !== null && !isNodeWeight(weight)) return null;
  if (typeof at !== 'number' || !Number.isFinite(at)) return null;
  return { id, weight, at, by };
}

/** A pin field as written by setPin(); null for anything else. */
function toPinRecord(field: string, json: string): PinRecord | null {
  const v = parseJson(json);
  if (!isObject(v)) return null;
  const { pattern, nodeId, at, by } = v;
  if (pattern !== field || (nodeId !== null && typeof nodeId !== 'string') || typeof by !== 'string') return null;
  if (typeof at !== 'number' || !Number.isFinite(at)) return null;
  return { pattern, nodeId, at, by };
}

export class RedisNodeDirectory implements NodeDirectory {
  private readonly tier: SharedTier;
  private readonly key: string;
  private readonly drainsKey: string;
  private readonly weightsKey: string;
  private readonly pinsKey: string;
  private readonly warnInvalid = rateLimit(60_000);

  constructor(tier: SharedTier, key: string) {
    this.tier = tier;
    this.key = key;
    this.drainsKey = `${key}:admin-drains`;
    this.weightsKey = `${key}:admin-weights`;
    this.pinsKey = `${key}:pins`;
  }

  publish(rec: SharedNodeRecord): void {
    const json = JSON.stringify(rec);
    this.tier.fire((c) => c.hSet(this.key, rec.id, json));
  }

  remove(id: string): void {
    this.tier.fire((c) => c.hDel(this.key, id));
  }

  async list(): Promise<SharedNodeRecord[] | null> {
    const fields = await this.tier.read((c) => c.hGetAll(this.key), this.tier.slowReadMs);
    if (fields === null) return null;
    const records: SharedNodeRecord[] = [];
    for (const [field, json] of Object.entries(fields)) {
      const rec = toNodeRecord(field, json);
      if (rec !== null) records.push(rec);
      else if (this.warnInvalid()) this.tier.log.warn({ key: this.key, field }, 'redis state store: skipping an invalid node record');
    }
    return records;
  }

  setAdminDrain(rec: AdminDrainRecord): void {
    const json = JSON.stringify({ id: rec.id, drained: rec.drained, at: rec.at, by: rec.by });
    this.tier.fire((c) => c.hSet(this.drainsKey, rec.id, json));
  }

  removeAdminDrain(id: string): void {
    this.tier.fire((c) => c.hDel(this.drainsKey, id));
  }

  adminDrains(): Promise<AdminDrainRecord[] | null> {
    return this.readAll(this.drainsKey, toAdminDrainRecord, 'admin drain');
  }

  setAdminWeight(rec: AdminWeightRecord): void {
    const json = JSON.stringify({ id: rec.id, weight: rec.weight, at: rec.at, by: rec.by });
    this.tier.fire((c) => c.hSet(this.weightsKey, rec.id, json));
  }

  removeAdminWeight(id: string): void {
    this.tier.fire((c) => c.hDel(this.weightsKey, id));
  }

  adminWeights(): Promise<AdminWeightRecord[] | null> {
    return this.readAll(this.weightsKey, toAdminWeightRecord, 'admin weight');
  }

  setPin(rec: PinRecord): void {
    const json = JSON.stringify({ pattern: rec.pattern, nodeId: rec.nodeId, at: rec.at, by: rec.by });
    this.tier.fire((c) => c.hSet(this.pinsKey, rec.pattern, json));
  }

  removePin(pattern: string): void {
    this.tier.fire((c) => c.hDel(this.pinsKey, pattern));
  }

  pins(): Promise<PinRecord[] | null> {
    return this.readAll(this.pinsKey, toPinRecord, 'pin');
  }

  /** Every valid field of one admin hash; null when the tier does not answer. */
  private async readAll<R>(key: string, parse: (field: string, json: string) => R | null, what: string): Promise<R[] | null> {
    const fields = await this.tier.read((c) => c.hGetAll(key), this.tier.slowReadMs);
    if (fields === null) return null;
    const records: R[] = [];
    for (const [field, json] of Object.entries(fields)) {
      const rec = parse(field, json);
      if (rec !== null) records.push(rec);
      else if (this.warnInvalid()) this.tier.log.warn({ key, field }, `redis state store: skipping an invalid ${what} record`);
    }
    return records;
  }
}
