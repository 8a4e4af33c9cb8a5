// A sprayer tier on one machine, in network namespaces: a client host, a sprayer host holding the
// virtual IP (siplb-advisor programs its nftables), three balancer hosts (real siplb processes
// sharing one redis-server), two node hosts (siplb-demo-node, real SIP servers that answer by the
// Via) and the Redis host. Used by test/e2e/sprayer.test.ts and bench/sprayer.ts.
//
//   client 10.241.1.2 ── 10.241.1.1 sprayer (VIP 10.241.0.100) 10.241.2.1 ── switch ── b1 .11, b2 .12, b3 .13
//                                                                                   ├─ n1 .21, n2 .22
//                                                                                   └─ redis .30
//
// Everybody on the bridge has the sprayer as default gateway, so what a balancer sends to a
// client leaves through the sprayer, which gives it the VIP as source. Addresses exist only
// inside the namespaces; nothing here reaches any other network.

import { terminate, type OwnedChild, LineBuffer, captureOutput, spawnOwned } from './children.ts';
import { startDemoNode, type DemoNodeHandle } from './demo-node.ts';
import { assertNetnsUsable, curlIn, execIn, Netns } from './netns.ts';
import { runRepoScript, type RepoScript } from './repo-script.ts';
import { startSiplb, type SiplbHandle } from './siplb.ts';

export const VIP = '10.241.0.100';
export const SIP_PORT = 5060;
export const CLIENT_IP = '10.241.1.2';
export const BALANCER_IPS = ['10.241.2.11', '10.241.2.12', '10.241.2.13'] as const;
export const NODE_IPS = ['10.241.2.21', '10.241.2.22'] as const;
const SPRAYER_LAN = '10.241.2.1';
const REDIS_IP = '10.241.2.30';
const NODE_PORT = 5080;
const HEARTBEAT_PORT = 2610;
const API_PORT = 2006;
const ADVISOR_HTTP = '127.0.0.1:2016';

export interface AdvisorTiming {
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface BalancerSetup {
  /**
   * Via names the VIP (useIpLoadBalancerAddressInViaHeaders): a node's response may reach any
   * balancer, so a UDP call survives the loss of the balancer that forwarded its INVITE. Over TCP
   * the client's connection lives on one balancer, whose own address the Via must then name.
   */
  viaVip: boolean;
  /** shutdownAnnounceTime, ms (0: off). */
  announceMs?: number;
}

export interface AdvisorBalancerState {
  address: string;
  state: string;
  reason?: string;
}

export class SprayerBed {
  readonly net: Netns;
  readonly timing: AdvisorTiming;
  readonly balancers: (SiplbHandle | null)[] = [null, null, null];
  readonly nodes: DemoNodeHandle[] = [];
  private redis: OwnedChild | null = null;
  private advisor: RepoScript | null = null;
  private setup: BalancerSetup = { viaVip: true };

  private constructor(net: Netns, timing: AdvisorTiming) {
    this.net = net;
    this.timing = timing;
  }

  /** Builds the namespaces and starts Redis, the nodes, three balancers and the advisor. */
  static async start(timing: AdvisorTiming, setup: BalancerSetup): Promise<SprayerBed> {
    assertNetnsUsable();
    const bed = new SprayerBed(new Netns('slb'), timing);
    try {
      bed.build();
      await bed.startRedis();
      for (let i = 0; i < BALANCER_IPS.length; i++) await bed.startBalancer(i, setup);
      const heartbeatTo = BALANCER_IPS.map((ip) => `${ip}:${HEARTBEAT_PORT}`).join(';');
      for (let i = 0; i < NODE_IPS.length; i++) {
        bed.nodes.push(await startDemoNode({ port: NODE_PORT, ip: NODE_IPS[i], balancers: heartbeatTo, netns: bed.net.ns(`n${i + 1}`) }));
      }
      await bed.startAdvisor();
      await bed.waitForAdvisor('every balancer up', 15_000, (s) => s.every((b) => b.state === 'up'));
      return bed;
    } catch (err) {
      await bed.close();
      throw err;
    }
  }

  private build(): void {
    const n = this.net;
    // The segment of balancers, nodes and Redis is a switch of its own: see Netns.bridge.
    n.add('sw');
    n.bridge('sw');
    n.add('sp');
    n.plug('sw', 'sp', `${SPRAYER_LAN}/24`);
    n.sysctl('sp', 'net.ipv4.ip_forward', '1');
    n.sysctl('sp', 'net.ipv4.conf.all.send_redirects', '0');
    n.add('c');
    n.link('c', `${CLIENT_IP}/24`, 'sp', '10.241.1.1/24');
    execIn(n.ns('c'), 'ip', ['route', 'add', 'default', 'via', '10.241.1.1']);
    // The sprayer holds the VIP; its nftables rules turn packets for it into packets for a balancer.
    execIn(n.ns('sp'), 'ip', ['addr', 'add', `${VIP}/32`, 'dev', 'lo']);
    BALANCER_IPS.forEach((ip, i) => n.attach('sw', { name: `b${i + 1}`, address: `${ip}/24`, gateway: SPRAYER_LAN }));
    NODE_IPS.forEach((ip, i) => n.attach('sw', { name: `n${i + 1}`, address: `${ip}/24`, gateway: SPRAYER_LAN }));
    n.attach('sw', { name: 'r', address: `${REDIS_IP}/24` });
  }

  private async startRedis(): Promise<void> {
    const args = ['netns', 'exec', this.net.ns('r'), 'redis-server', '--bind', REDIS_IP, '--port', '6379',
      '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
    const owned = spawnOwned('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = captureOutput(owned, new LineBuffer(2000));
    this.redis = owned;
    const end = Date.now() + 10_000;
    while (!lines.snapshot().some((l) => l.includes('Ready to accept connections'))) {
      if (owned.hasExited() || Date.now() > end) throw new Error(`redis-server did not start in its namespace:\n${lines.snapshot().slice(-10).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Balancer i's lb.properties. */
  private props(i: number, setup: BalancerSetup): Record<string, string> {
    return {
      host: BALANCER_IPS[i], externalPort: String(SIP_PORT), heartbeatPort: String(HEARTBEAT_PORT), apiPort: String(API_PORT),
      externalIpLoadBalancerAddress: VIP, externalIpLoadBalancerPort: String(SIP_PORT),
      useIpLoadBalancerAddressInViaHeaders: String(setup.viaVip),
      stateStore: 'redis', redisUrl: `redis://${REDIS_IP}:6379`, redisKeyPrefix: 'sprayer:',
      // Every balancer must check the others' branches: the responses to one's Via may reach another.
      viaSecret: 'sprayer-bed-shared-secret-0123456789',
      shutdownAnnounceTime: String(setup.announceMs ?? 0),
      shutdownTimeout: '20000',
    };
  }

  /** (Re)starts balancer i with `setup`. */
  async startBalancer(i: number, setup: BalancerSetup = this.setup): Promise<SiplbHandle> {
    this.setup = setup;
    const lb = await startSiplb(this.props(i, setup), { netns: this.net.ns(`b${i + 1}`), logLevel: 'info', stopGraceMs: 25_000 });
    this.balancers[i] = lb;
    return lb;
  }

  /** Restarts all three balancers with another setup (the nodes re-register by heartbeat). */
  async restartBalancers(setup: BalancerSetup): Promise<void> {
    for (let i = 0; i < this.balancers.length; i++) {
      await this.balancers[i]?.stop();
      this.balancers[i] = null;
      await this.startBalancer(i, setup);
    }
    await this.waitForNodes();
    await this.waitForAdvisor('every balancer up again', 15_000, (s) => s.every((b) => b.state === 'up'));
  }

  /** Every balancer has both nodes active. */
  async waitForNodes(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (let i = 0; i < this.balancers.length; i++) {
      if (this.balancers[i] === null) continue;
      for (;;) {
        const body = await this.api(i, '/api/v1/nodes').catch(() => '[]');
        const active = (body.match(/"state":"active"/g) ?? []).length;
        if (active >= NODE_IPS.length) break;
        if (Date.now() > end) throw new Error(`balancer b${i + 1} does not see both nodes active: ${body.slice(0, 400)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async startAdvisor(): Promise<void> {
    const t = this.timing;
    const args = ['--vip', VIP, '--port', String(SIP_PORT),
      ...BALANCER_IPS.flatMap((ip) => ['--balancer', `${ip}:${SIP_PORT}`]),
      '--interval', String(t.intervalMs), '--timeout', String(t.timeoutMs), '--rise', String(t.rise), '--fall', String(t.fall),
      '--http', ADVISOR_HTTP, '--log-level', 'info'];
    this.advisor = runRepoScript('src/cli/siplb-advisor.ts', args, this.net.ns('sp'));
  }

  /** The advisor's view of each balancer, from its HTTP state endpoint. */
  async advisorState(): Promise<AdvisorBalancerState[]> {
    const body = await curlIn(this.net.ns('sp'), `http://${ADVISOR_HTTP}/state`);
    const parsed = JSON.parse(body) as { balancers: AdvisorBalancerState[] };
    return parsed.balancers;
  }

  /** Polls the advisor until `ok` holds; the ms it took. */
  async waitForAdvisor(what: string, timeoutMs: number, ok: (s: AdvisorBalancerState[]) => boolean, everyMs = 50): Promise<number> {
    const start = Date.now();
    let last = '';
    for (;;) {
      try {
        const s = await this.advisorState();
        if (ok(s)) return Date.now() - start;
        last = JSON.stringify(s);
      } catch (err) {
        last = (err as Error).message;
      }
      if (this.advisor?.child.hasExited() === true) {
        throw new Error(`siplb-advisor exited while waiting for ${what}:\n${this.advisor.lines.snapshot().slice(-20).join('\n')}`);
      }
      if (Date.now() - start > timeoutMs) {
        throw new Error(`advisor: not ${what} after ${timeoutMs} ms; last state ${last}\n${this.advisor?.lines.snapshot().slice(-20).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  advisorLogs(): string[] {
    return this.advisor?.lines.snapshot() ?? [];
  }

  /** A path of balancer i's admin API (reachable only inside its namespace). */
  api(i: number, path: string): Promise<string> {
    return curlIn(this.net.ns(`b${i + 1}`), `http://127.0.0.1:${API_PORT}${path}`);
  }

  /** Calls balancer i has started (siplb_calls_started_total), or null when it does not answer. */
  async callsStarted(i: number): Promise<number | null> {
    try {
      const text = await this.api(i, '/metrics');
      const m = /^siplb_calls_started_total (\d+)/m.exec(text);
      return m === null ? null : Number(m[1]);
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    if (this.advisor !== null) await terminate(this.advisor.child, 'SIGTERM', 3000);
    await Promise.allSettled(this.nodes.map((n) => n.stop()));
    await Promise.allSettled(this.balancers.map((b) => b?.stop()));
    if (this.redis !== null) await terminate(this.redis, 'SIGKILL', 1000);
    this.net.destroy();
  }
}
