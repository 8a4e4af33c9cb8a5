// Active health checks in the manner of WebSphere's SIP advisor: a SIP OPTIONS to each node every
// interval, over UDP (retransmitted as RFC 3261 §17.1.2 does, so one lost datagram is not a
// failure) or over a fresh TCP connection (a refused connection is a failure). A final answer
// below 500 means the node's SIP stack is up; 5xx/6xx, silence until the timeout or a refused
// connection count as failures. Consecutive results past the thresholds flip the node's health
// flag in the registry; down nodes keep being probed.
//
// A node that sent siplb good SIP traffic (requests, or responses that are not errors) within
// the last interval has just proved it is alive: it is not probed, and that counts as a success.
// Busy nodes therefore see no OPTIONS at all.
//
// Silence is only evidence against a node that is known to answer OPTIONS. A node that has never
// answered one (some SIP stacks, sipp's built-in UAS among them, ignore OPTIONS) is judged by its
// port: an ICMP port-unreachable on the UDP probe (each probe uses its own connected socket, so
// the kernel reports it) or a refused TCP connection is a failure, an open port a success (but
// not for a node passive health took out for leaving requests unanswered: a hung node's port is
// open too). A 5xx/6xx answer counts as a failure for every node.

import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net, { isIPv6 } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { StreamFramer } from '../sip/framing.ts';
import { isParseFailure, parseSipMessage } from '../sip/message.ts';
import { formatHost } from '../sip/uri.ts';
import type { NodeEntry, NodeRegistry } from './node-registry.ts';
import type { PassiveHealth } from './passive-health.ts';

export interface ActiveHealthOptions {
  intervalMs: number;
  timeoutMs: number;
  failures: number;
  successes: number;
  /** Address the probes are sent from (the internal side). */
  bindHost: string;
  log: Logger;
}

/** What a reload may change: healthCheckInterval, healthCheckTimeout, healthCheckFailures, healthCheckSuccesses. */
export type ActiveHealthSettings = Pick<ActiveHealthOptions, 'intervalMs' | 'timeoutMs' | 'failures' | 'successes'>;

/** `answered`: the node sent a final response (so it speaks OPTIONS); `refused`: nothing listens. */
type ProbeResult = { ok: true; status: number } | { ok: false; reason: string; answered: boolean; refused: boolean };

interface Streak {
  ok: number;
  failed: number;
  /** Passive health had taken the node out when this streak was last updated. */
  passive: boolean;
  /** The node has answered an OPTIONS at least once: its silence means something. */
  answers: boolean;
  /** Told the log once that this node ignores OPTIONS. */
  notedSilent: boolean;
}

const RETRANSMIT_MS = [500, 1000, 2000, 4000];

type ProbeTransport = 'UDP' | 'TCP' | 'TLS' | 'WS' | 'WSS';

export class ActiveHealthCheck {
  private readonly registry: NodeRegistry;
  private readonly passiveHealth: PassiveHealth;
  private opts: ActiveHealthOptions;
  // Keyed by entry, not node id: a node that re-registers (new session) starts with a clean slate.
  private readonly streaks = new WeakMap<NodeEntry, Streak>();
  private readonly inFlight = new Set<string>();
  /** Ends each probe in flight (clears its timers, closes its socket once). */
  private readonly aborts = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private closed = false;
  probesSent = 0;
  /**
   * Probe results by node: answered with a success, failed (timeout, refused, an error status),
   * or silent on an open port (counted as up, see record()). Entries of removed nodes go with them.
   */
  readonly results = new Map<string, { ok: number; failed: number; silent: number }>();

  constructor(registry: NodeRegistry, passiveHealth: PassiveHealth, opts: ActiveHealthOptions) {
    this.registry = registry;
    this.passiveHealth = passiveHealth;
    this.opts = opts;
  }

  start(): void {
    this.started = true;
    this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const abort of [...this.aborts]) abort();
  }

  /**
   * New settings (a reload). Streaks so far keep counting towards the new thresholds; probes in
   * flight keep their timeout; a new interval starts a new round timer (0 stops probing). When
   * probing stops, the nodes probes had taken out come back: nothing would ever bring them back
   * otherwise, and without probes siplb treats every node as up (as it does at start).
   */
  reconfigure(settings: ActiveHealthSettings): void {
    const intervalChanged = settings.intervalMs !== this.opts.intervalMs;
    this.opts = { ...this.opts, ...settings };
    if (!intervalChanged || this.closed || !this.started) return;
    this.schedule();
    if (this.opts.intervalMs <= 0) {
      for (const e of this.registry.list()) {
        if (!e.healthy) this.registry.setHealthy(e.node.id, true, 'active health checks turned off', true);
      }
    }
  }

  /** The current settings. */
  settings(): ActiveHealthSettings {
    const { intervalMs, timeoutMs, failures, successes } = this.opts;
    return { intervalMs, timeoutMs, failures, successes };
  }

  private schedule(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.closed || this.opts.intervalMs <= 0) return;
    this.timer = setInterval(() => this.round(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** One probe round over every known node (exposed for tests and the admin surface). */
  round(): void {
    const now = Date.now();
    for (const e of this.registry.list()) {
      const id = e.node.id;
      if (this.inFlight.has(id)) continue;
      const heard = this.passiveHealth.lastGood(id);
      if (e.healthy && !e.passiveDown && heard !== undefined && now - heard <= this.opts.intervalMs) {
        this.record(e, { ok: true, status: 0 });
        continue;
      }
      this.inFlight.add(id);
      this.probe(e).then((r) => {
        this.inFlight.delete(id);
        if (!this.closed) this.record(e, r);
      }, () => this.inFlight.delete(id));
    }
  }

  /** Send one OPTIONS to the node and wait for its final answer. */
  probe(e: NodeEntry): Promise<ProbeResult> {
    this.probesSent++;
    const p = e.node.ports;
    if (p.udp !== undefined) return this.probeUdp(e, p.udp);
    if (p.tcp !== undefined) return this.probeStream(e, 'TCP', p.tcp);
    if (p.tls !== undefined) return this.probeStream(e, 'TLS', p.tls);
    return p.ws !== undefined ? this.probeWebSocket(e, 'WS', p.ws) : this.probeWebSocket(e, 'WSS', p.wss as number);
  }

  private record(e: NodeEntry, result: ProbeResult): void {
    let r = result;
    const id = e.node.id;
    if (this.registry.get(id) !== e) {
      if (this.registry.get(id) === undefined) this.results.delete(id);
      return; // replaced or removed meanwhile
    }

    const s = this.streaks.get(e) ?? { ok: 0, failed: 0, passive: false, answers: false, notedSilent: false };
    this.streaks.set(e, s);
    // Successes from before passive health took the node out do not count towards its return.
    if (e.passiveDown && !s.passive) s.ok = 0;
    s.passive = e.passiveDown;
    if ((r.ok && r.status > 0) || (!r.ok && r.answered)) s.answers = true;
    if (!r.ok && !r.answered && !r.refused && !s.answers) {
      // An open port that says nothing is all a hung node shows too: for a node passive health
      // took out because it left requests unanswered, it proves nothing either way. Once its
      // port refused (the hung process is gone, the node is down) it is judged by probes again,
      // so a restarted node still comes back.
      if (e.passiveCause === 'silence' && e.healthy) return;
      // A node that never answered OPTIONS is judged by its port alone: open (silent, not
      // refused) counts as up, so such a node also comes back once it listens again.
      if (!s.notedSilent) {
        s.notedSilent = true;
        this.opts.log.info({ node: id }, 'node does not answer OPTIONS: it is taken out only when its port refuses (nothing listening), by heartbeat timeout or by passive health');
      }
      r = { ok: true, status: 0 };
    }
    const counts = this.results.get(id) ?? { ok: 0, failed: 0, silent: 0 };
    this.results.set(id, counts);
    if (!r.ok) counts.failed++;
    else if (r.status === 0) counts.silent++;
    else counts.ok++;
    if (r.ok) {
      s.ok++;
      s.failed = 0;
      if ((!e.healthy || e.passiveDown) && s.ok >= this.opts.successes) {
        this.registry.setHealthy(id, true, r.status === 0 ? 'carrying traffic' : `OPTIONS answered ${r.status}`);
      }
    } else {
      s.failed++;
      s.ok = 0;
      if (e.healthy && s.failed >= this.opts.failures) this.registry.setHealthy(id, false, r.reason);
    }
  }

  private message(e: NodeEntry, transport: ProbeTransport, port: number, via: string, callId: string): Buffer {
    const target = `${formatHost(e.node.ip)}:${port}`;
    const tag = randomBytes(6).toString('hex');
    const param = transport === 'UDP' ? '' : `;transport=${transport === 'WSS' ? 'ws' : transport.toLowerCase()}`;
    return Buffer.from([
      `OPTIONS sip:${target}${param} SIP/2.0`,
      `Via: SIP/2.0/${transport} ${via};branch=z9hG4bK-hc-${randomBytes(8).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:siplb@${via}>;tag=${tag}`,
      `To: <sip:${target}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 OPTIONS',
      'Accept: application/sdp',
      'User-Agent: siplb health check',
      'Content-Length: 0',
      '', '',
    ].join('\r\n'), 'latin1');
  }

  private probeUdp(e: NodeEntry, port: number): Promise<ProbeResult> {
    const callId = `hc-${randomBytes(10).toString('hex')}@siplb`;
    return new Promise((resolve) => {
      // A socket connected to the node: the kernel reports an ICMP port-unreachable as
      // ECONNREFUSED on it, and only the node's answers reach it.
      const socket = dgram.createSocket(isIPv6(e.node.ip) ? 'udp6' : 'udp4');
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      const finish = (r: ProbeResult): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        this.aborts.delete(abort);
        socket.close();
        resolve(r);
      };
      const abort = (): void => finish({ ok: false, reason: 'health checks stopped', answered: false, refused: false });
      this.aborts.add(abort);
      socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED'
        ? { ok: false, reason: 'UDP port unreachable (nothing listening)', answered: false, refused: true }
        : { ok: false, reason: `UDP error: ${err.message}`, answered: false, refused: false }));
      socket.on('message', (m) => {
        const msg = parseSipMessage(m, true);
        if (!isParseFailure(msg) && !msg.isRequest && msg.status >= 200 && msg.callId === callId) finish(classify(msg.status));
      });
      const bindHost = this.opts.bindHost === '0.0.0.0' || this.opts.bindHost === '::' ? undefined : this.opts.bindHost;
      socket.bind(0, bindHost, () => {
        if (settled) return;
        socket.connect(port, e.node.ip, () => {
          if (settled) return;
          const a = socket.address();
          const data = this.message(e, 'UDP', port, `${formatHost(a.address)}:${a.port}`, callId);
          const send = (): void => { if (!settled) socket.send(data); };
          send();
          for (const at of RETRANSMIT_MS) if (at < this.opts.timeoutMs) timers.push(setTimeout(send, at));
        });
      });
      timers.push(setTimeout(() => finish({ ok: false, reason: `no answer to OPTIONS within ${this.opts.timeoutMs} ms`, answered: false, refused: false }), this.opts.timeoutMs));
    });
  }

  /** OPTIONS over TCP or TLS (a node's certificate is not checked: the probe asks whether it answers, not who it is). */
  private probeStream(e: NodeEntry, transport: 'TCP' | 'TLS', port: number): Promise<ProbeResult> {
    const callId = `hc-${randomBytes(10).toString('hex')}@siplb`;
    return new Promise((resolve) => {
      let settled = false;
      const socket = transport === 'TCP' ? net.connect({ host: e.node.ip, port }) : tls.connect({ host: e.node.ip, port, rejectUnauthorized: false });
      const finish = (r: ProbeResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.aborts.delete(abort);
        socket.destroy();
        resolve(r);
      };
      const abort = (): void => finish({ ok: false, reason: 'health checks stopped', answered: false, refused: false });
      this.aborts.add(abort);
      const timer = setTimeout(() => finish({ ok: false, reason: `no answer to OPTIONS within ${this.opts.timeoutMs} ms`, answered: false, refused: false }), this.opts.timeoutMs);
      const framer = new StreamFramer(65535, {
        message: (m) => {
          const msg = parseSipMessage(m, false);
          if (!isParseFailure(msg) && !msg.isRequest && msg.status >= 200 && msg.callId === callId) finish(classify(msg.status));
        },
        ping: () => undefined,
        error: (reason) => finish({ ok: false, reason: `unreadable answer: ${reason}`, answered: true, refused: false }),
      });
      socket.on(transport === 'TCP' ? 'connect' : 'secureConnect', () => {
        const local = `${formatHost(socket.localAddress ?? '127.0.0.1')}:${socket.localPort ?? 0}`;
        socket.write(this.message(e, transport, port, local, callId));
      });
      socket.on('data', (chunk: Buffer) => framer.push(chunk));
      socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED'
        ? { ok: false, reason: `${transport} connection refused`, answered: false, refused: true }
        : { ok: false, reason: `${transport} error: ${err.message}`, answered: false, refused: false }));
      socket.on('close', () => finish({ ok: false, reason: `${transport} connection closed without an answer`, answered: false, refused: false }));
    });
  }
  /** OPTIONS over a SIP WebSocket (RFC 7118) to a node that offers only WS or WSS. */
  private probeWebSocket(e: NodeEntry, transport: 'WS' | 'WSS', port: number): Promise<ProbeResult> {
    const callId = `hc-${randomBytes(10).toString('hex')}@siplb`;
    return new Promise((resolve) => {
      let settled = false;
      const url = `${transport === 'WS' ? 'ws' : 'wss'}://${formatHost(e.node.ip)}:${port}/`;
      const socket = new WebSocket(url, 'sip', { rejectUnauthorized: false, perMessageDeflate: false, handshakeTimeout: this.opts.timeoutMs });
      const finish = (r: ProbeResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.aborts.delete(abort);
        socket.terminate();
        resolve(r);
      };
      const abort = (): void => finish({ ok: false, reason: 'health checks stopped', answered: false, refused: false });
      this.aborts.add(abort);
      const timer = setTimeout(() => finish({ ok: false, reason: `no answer to OPTIONS within ${this.opts.timeoutMs} ms`, answered: false, refused: false }), this.opts.timeoutMs);
      socket.on('open', () => socket.send(this.message(e, transport, port, `${randomBytes(6).toString('hex')}.invalid`, callId).toString('latin1')));
      socket.on('message', (data: Buffer) => {
        const msg = parseSipMessage(Buffer.isBuffer(data) ? data : Buffer.from(data), false);
        if (!isParseFailure(msg) && !msg.isRequest && msg.status >= 200 && msg.callId === callId) finish(classify(msg.status));
      });
      socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED'
        ? { ok: false, reason: `${transport} connection refused`, answered: false, refused: true }
        : { ok: false, reason: `${transport} error: ${err.message}`, answered: false, refused: false }));
      socket.on('close', () => finish({ ok: false, reason: `${transport} connection closed without an answer`, answered: false, refused: false }));
    });
  }

}

function classify(status: number): ProbeResult {
  return status < 500 ? { ok: true, status } : { ok: false, reason: `OPTIONS answered ${status}`, answered: true, refused: false };
}
