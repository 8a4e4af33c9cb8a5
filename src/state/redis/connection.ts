// What every part of the Redis store shares about the connection: the commands it sends, the
// contract a backend (standalone or cluster) keeps, and the few helpers and limits more than one
// part relies on. Kept free of any part so that the parts only ever import from here, never from
// each other in a circle.

import type { SetOptions } from 'redis';

const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2000;
/** A blackholed Redis must not hold start() (and each reconnect attempt) for long. */
export const CONNECT_TIMEOUT_MS = 2000;
/** Bounds the commands node-redis holds for a connected but silent server. */
export const QUEUE_MAX = 100_000;
/** close() lets in-flight writes land for this long, then cuts the connection. */
export const CLOSE_GRACE_MS = 1000;

/** Delay before reconnect attempt `retries` (0-based): 100 ms doubling, capped at 2 s. */
export function reconnectDelayMs(retries: number): number {
  return Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(retries, 16), BACKOFF_MAX_MS);
}

/** The commands this store sends; both the standalone and the cluster client provide them. */
export interface Commands {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options?: SetOptions): Promise<unknown>;
  pExpire(key: string, ms: number): Promise<unknown>;
  hSet(key: string, field: string, value: string): Promise<unknown>;
  hDel(key: string, field: string): Promise<unknown>;
  hGetAll(key: string): Promise<Record<string, string>>;
}

/** What the standalone and the cluster client both offer around the commands. */
export interface Client extends Commands {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

/** One way of talking to Redis; it reports through Events on everything that may change ready(). */
export interface Backend {
  readonly commands: Commands;
  /** Connected, and (cluster) every master's connection is up. */
  ready(): boolean;
  /** Begin connecting; never throws, keeps retrying in the background. */
  connect(): void;
  /** Resolves when every server answered a PING. */
  ping(): Promise<unknown>;
  close(): Promise<void>;
}

export interface Events {
  /** Re-evaluate ready(); `failure` is an error that means "not reachable" (also before the first connect). */
  changed(failure?: unknown): void;
  /** An error worth naming in the next outage warning, which by itself says nothing about readiness. */
  noted(err: unknown): void;
}

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, onTimeout);
    p.then(
      (v) => { clearTimeout(timer); resolve(v); },
      () => { clearTimeout(timer); resolve(onTimeout); },
    );
  });
}

export function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0]);
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

// Hash fields are JSON another balancer (or anyone with access to Redis) wrote: the readers
// validate them with these before trusting a single field.

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
