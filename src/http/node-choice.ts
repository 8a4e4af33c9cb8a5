// Which node an HTTP request (or WebSocket handshake) goes to, in this order:
//   1. Session stickiness (session-id.ts): a session id whose route is the jvmRoute of a live
//      node (active or draining, as for a SIP call's node) with an HTTP side goes there: a hit.
//      A route that names a node that is down, or no node at all, counts a miss and falls
//      through: the application issues a new session wherever the request lands.
//   2. A session id without a route (a container without jvmRoute) is hashed over the HTTP nodes
//      that take new sessions, as Restcomm does, so one balancer or several agree, unless the
//      request carries the affinity key, which ranks above it.
//   3. The algorithm's pickHttp: with httpAffinityKey in the query, the hash algorithms map it
//      with the same assignments and the same node view as the SIP side (a converged session's
//      SIP calls and HTTP requests meet on one node); without it, the algorithm's own spread
//      (round robin for Call-ID affinity). A node without an HTTP side, or out of new HTTP
//      sessions (http-health.ts), is not taken: the request falls through.
//   4. Smooth weighted round robin over the HTTP nodes that take new sessions.
// "Take new sessions" is the snapshot's selectable (active) minus the nodes HTTP health took
// out, unless that leaves none. The per-snapshot work (route table, HTTP node list) is done once
// per snapshot, not per request.

import type { Algorithm, HttpPickRequest } from '../algorithms/algorithm.ts';
import { httpKeyReader, type HttpKeyReader } from '../algorithms/affinity-key.ts';
import { hashKey, rendezvous } from '../algorithms/hashing.ts';
import { SmoothWeightedRoundRobin } from '../algorithms/smooth-round-robin.ts';
import type { SipNode } from '../cluster/node.ts';
import type { ClusterSnapshot } from '../cluster/snapshot.ts';
import type { HttpHealth } from './http-health.ts';
import { routeOf, sessionIds } from './session-id.ts';
import type { HttpStats } from './stats.ts';

/** An HTTP request as the chooser reads it. */
export interface RoutedRequest extends HttpPickRequest {
  /** The Cookie header (Node joins several with '; '). */
  readonly cookie: string | undefined;
  /** Set by the chooser: the request went where its session route said. */
  sticky: boolean;
}

/** What one snapshot means for HTTP, computed once per snapshot. */
class HttpView {
  readonly snapshot: ClusterSnapshot;
  /** jvmRoute → the live HTTP node carrying it (an active one first when two claim a route). */
  readonly liveRoutes = new Map<string, SipNode>();
  /** jvmRoute → any known node carrying it, live or down (to count a miss against it). */
  readonly allRoutes = new Map<string, SipNode>();
  /** HTTP nodes that take new sessions, by id. */
  readonly selectable: readonly SipNode[];
  readonly weightOf: (n: SipNode) => number;
  /** The candidate list with HTTP health applied, and the health version it was made for. */
  candidates: readonly SipNode[];
  candidatesVersion = -1;

  constructor(snapshot: ClusterSnapshot) {
    this.snapshot = snapshot;
    this.selectable = snapshot.selectable.filter((n) => n.http !== undefined);
    this.candidates = this.selectable;
    this.weightOf = (n) => snapshot.weightOf(n);
    for (const n of snapshot.selectable) this.addRoute(n, true);
    for (const n of snapshot.alive) this.addRoute(n, true);
  }

  /** Route of a node that is not alive: for counting misses only. */
  addDead(n: SipNode): void {
    const route = n.http?.jvmRoute;
    if (route !== undefined && !this.allRoutes.has(route)) this.allRoutes.set(route, n);
  }

  private addRoute(n: SipNode, live: boolean): void {
    const route = n.http?.jvmRoute;
    if (route === undefined) return;
    if (live && !this.liveRoutes.has(route)) this.liveRoutes.set(route, n);
    if (!this.allRoutes.has(route)) this.allRoutes.set(route, n);
  }
}

export interface ChooserOptions {
  algorithm: Algorithm;
  health: HttpHealth;
  stats: HttpStats;
  /** httpAffinityKey: a routeless session id is hashed only when the request does not carry it. */
  affinityKey: string;
  /** Every node the registry knows, down ones included (to name the node of a dead route). */
  knownNodes(): Iterable<SipNode>;
}

export class HttpNodeChooser {
  private readonly opts: ChooserOptions;
  private readonly rotation = new SmoothWeightedRoundRobin();
  private readonly hasAffinityKey: HttpKeyReader;
  private view: HttpView | null = null;

  constructor(opts: ChooserOptions) {
    this.opts = opts;
    this.hasAffinityKey = httpKeyReader(opts.affinityKey);
  }

  /**
   * The node for a request, or null when no HTTP node can take it. Counts sticky hits and misses.
   * A Promise only when the algorithm has to ask the shared store for the affinity key's node
   * (a bounded read); it never rejects.
   */
  choose(req: RoutedRequest, cluster: ClusterSnapshot): SipNode | null | Promise<SipNode | null> {
    const view = this.viewOf(cluster);
    const ids = sessionIds(req.url, req.cookie);
    let routeless: string | null = null;
    if (ids.length !== 0) {
      let missed: string | null = null;
      for (let i = 0; i < ids.length; i++) {
        const route = routeOf(ids[i]);
        if (route === null) {
          routeless ??= ids[i];
          continue;
        }
        const n = view.liveRoutes.get(route);
        if (n !== undefined) {
          this.opts.stats.node(n.id).stickyHits++;
          req.sticky = true;
          return n;
        }
        missed ??= route;
      }
      if (missed !== null) {
        const dead = view.allRoutes.get(missed);
        if (dead !== undefined) this.opts.stats.node(dead.id).stickyMisses++;
        else this.opts.stats.local.unknownRoutes++;
      }
    }
    const candidates = this.candidates(view);
    if (candidates.length === 0) return null;
    if (routeless !== null && this.hasAffinityKey(req.url) === null) {
      return rendezvous(hashKey(routeless), candidates, allEqualWeights(candidates, view) ? undefined : view.weightOf);
    }
    const picked = this.opts.algorithm.pickHttp?.(req, cluster) ?? null;
    if (picked instanceof Promise) {
      return picked.then((n) => this.afterPick(n, candidates, view), () => this.afterPick(null, candidates, view));
    }
    return this.afterPick(picked, candidates, view);
  }

  /** The algorithm's answer if it is an HTTP node taking new sessions, else round robin. */
  private afterPick(picked: SipNode | null, candidates: readonly SipNode[], view: HttpView): SipNode | null {
    if (picked !== null && picked.http !== undefined && !this.opts.health.isOut(picked.id)) return picked;
    return this.rotation.pick(candidates, view.weightOf);
  }

  /**
   * Another node for a request whose node failed before it got the request (a retry): round robin
   * over the candidates without the failed node; null when there is no other.
   */
  another(failedId: string, cluster: ClusterSnapshot): SipNode | null {
    const candidates = this.candidates(this.viewOf(cluster));
    let others: SipNode[] | null = null;
    for (const n of candidates) if (n.id !== failedId) (others ??= []).push(n);
    return others === null ? null : this.rotation.pick(others, this.viewOf(cluster).weightOf);
  }

  private viewOf(cluster: ClusterSnapshot): HttpView {
    let view = this.view;
    if (view === null || view.snapshot !== cluster) {
      view = new HttpView(cluster);
      for (const n of this.opts.knownNodes()) if (!cluster.isAlive(n)) view.addDead(n);
      this.view = view;
    }
    return view;
  }

  /** HTTP nodes taking new sessions minus those HTTP health took out (all of them if that leaves none). */
  private candidates(view: HttpView): readonly SipNode[] {
    const health = this.opts.health;
    if (health.outCount === 0) return view.selectable;
    if (view.candidatesVersion !== health.version) {
      const kept = view.selectable.filter((n) => !health.isOut(n.id));
      view.candidates = kept.length === 0 ? view.selectable : kept;
      view.candidatesVersion = health.version;
    }
    return view.candidates;
  }
}

const equalWeights = new WeakMap<readonly SipNode[], boolean>();

/** Whether rendezvous may rank these candidates unweighted (cached per list). */
function allEqualWeights(nodes: readonly SipNode[], view: HttpView): boolean {
  let eq = equalWeights.get(nodes);
  if (eq === undefined) {
    eq = nodes.every((n) => view.weightOf(n) === view.weightOf(nodes[0]));
    equalWeights.set(nodes, eq);
  }
  return eq;
}
