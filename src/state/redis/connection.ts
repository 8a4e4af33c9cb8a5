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
  /** A script over its keys (the assignment compare-and-set); EVAL when the server lacks it (NOSCRIPT). */
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** What the standalone and the cluster client both offer around the commands. */
export interface Client extends Commands {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

/**
 * One server keys live on: the standalone server, or one master of a cluster. The tier probes
 * each on its own, so that one master that does not answer costs the keys of its slots only.
 */
export interface ServerLink {
  /** host:port; stable for as long as the server holds the same keys. */
  readonly address: string;
  /** Its connection is up (node-redis `isReady`): commands are sent, not refused at once. */
  readonly connected: boolean;
  /**
   * Asks the server whether it serves keys: true if so, false when it answers but refuses them
   * (a cluster node in `cluster_state:fail`); rejects when it cannot answer. Never throws.
   */
  probe(): Promise<boolean>;
}

/** One way of talking to Redis; it reports through Events on everything that may change what servers() says. */
export interface Backend {
  readonly commands: Commands;
  /** The servers keys are spread over (stable order); empty while a cluster's layout is unknown. */
  servers(): readonly ServerLink[];
  /** Address of the server holding `key`; undefined while unknown. Called once per command: cheap. */
  serverOf(key: string): string | undefined;
  /** Begin connecting; never throws, keeps retrying in the background. */
  connect(): void;
  /** Called by the tier every probe period: restart what node-redis does not retry on its own. */
  maintain(): void;
  close(): Promise<void>;
}

export interface Events {
  /**
   * Re-evaluate servers(); `failure` is an error that means "not reachable" (also before the
   * first connect), `address` the server it is about when known.
   */
  changed(failure?: unknown, address?: string): void;
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
