// The default StateStore: everything in this process, no server needed. Assignments live only in
// their local table (there is no shared tier to fetch from); the node directory and call board
// hold what this balancer published, so a single balancer behaves exactly like a group of one.

import type {
  AdminDrainRecord, AdminWeightRecord, AssignmentMap, PinRecord, AssignmentOptions, CallCountBoard, NodeDirectory, SharedNodeRecord, StateStore,
} from './store.ts';
import { TableBackedMap } from './table-backed-map.ts';

export class LocalAssignmentMap extends TableBackedMap implements AssignmentMap {
  get(key: string): string | undefined {
    return this.table.get(key);
  }

  fetch(): null {
    return null;
  }

  set(key: string, nodeId: string): void {
    this.table.set(key, nodeId);
  }

  /** No other balancer to agree with: the caller's set() records its choice, without a Promise. */
  claim(): null {
    return null;
  }

  end(key: string): void {
    this.table.close(key);
  }
}

class LocalNodeDirectory implements NodeDirectory {
  private readonly records = new Map<string, SharedNodeRecord>();
  private readonly drains = new Map<string, AdminDrainRecord>();
  private readonly weights = new Map<string, AdminWeightRecord>();
  private readonly pinRecords = new Map<string, PinRecord>();

  publish(rec: SharedNodeRecord): void {
    this.records.set(rec.id, { ...rec });
  }

  remove(id: string): void {
    this.records.delete(id);
  }

  list(): Promise<SharedNodeRecord[]> {
    return Promise.resolve([...this.records.values()].map((r) => ({ ...r })));
  }

  setAdminDrain(rec: AdminDrainRecord): void {
    this.drains.set(rec.id, { ...rec });
  }

  removeAdminDrain(id: string): void {
    this.drains.delete(id);
  }

  adminDrains(): Promise<AdminDrainRecord[]> {
    return Promise.resolve([...this.drains.values()].map((r) => ({ ...r })));
  }

  setAdminWeight(rec: AdminWeightRecord): void {
    this.weights.set(rec.id, { ...rec });
  }

  removeAdminWeight(id: string): void {
    this.weights.delete(id);
  }

  adminWeights(): Promise<AdminWeightRecord[]> {
    return Promise.resolve([...this.weights.values()].map((r) => ({ ...r })));
  }

  setPin(rec: PinRecord): void {
    this.pinRecords.set(rec.pattern, { ...rec });
  }

  removePin(pattern: string): void {
    this.pinRecords.delete(pattern);
  }

  pins(): Promise<PinRecord[]> {
    return Promise.resolve([...this.pinRecords.values()].map((r) => ({ ...r })));
  }
}

class LocalCallCountBoard implements CallCountBoard {
  private readonly boards = new Map<string, Map<string, number>>();

  publish(balancerId: string, counts: ReadonlyMap<string, number>): void {
    this.boards.set(balancerId, new Map(counts));
  }

  others(balancerId: string): Promise<Map<string, number>> {
    const sum = new Map<string, number>();
    for (const [id, counts] of this.boards) {
      if (id === balancerId) continue;
      for (const [node, n] of counts) sum.set(node, (sum.get(node) ?? 0) + n);
    }
    return Promise.resolve(sum);
  }
}

export class MemoryStateStore implements StateStore {
  readonly kind = 'memory';
  /** In this process: nothing to wait for. */
  readonly latencyMs = null;
  readonly nodes: NodeDirectory = new LocalNodeDirectory();
  readonly calls: CallCountBoard = new LocalCallCountBoard();
  readonly available = true;
  readonly outages = 0;
  private readonly maps: AssignmentMap[] = [];
  private secret: string | null = null;

  start(): Promise<void> {
    return Promise.resolve();
  }

  assignments(_namespace: string, opts: AssignmentOptions): AssignmentMap {
    const m = new LocalAssignmentMap(opts);
    this.maps.push(m);
    return m;
  }

  sharedSecret(candidate: string): Promise<string> {
    this.secret ??= candidate;
    return Promise.resolve(this.secret);
  }

  onAvailable(): void {
    // Always available: nothing to reconcile.
  }

  close(): Promise<void> {
    for (const m of this.maps) m.close();
    return Promise.resolve();
  }
}
