// A gentle call generator for `npm run demo`: a UDP user agent client that places a call every
// half second through siplb, holds it a few seconds and hangs up, following the Record-Route set
// as a real phone would, so the dashboard shows calls moving from the start. Bounded: at most 40
// calls up at once; a call not answered in 8 s counts as failed.

import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';

interface Call {
  readonly callId: string;
  readonly fromTag: string;
  toTag: string | null;
  routes: string[];
  target: string;
  state: 'inviting' | 'up' | 'ending';
  timer: NodeJS.Timeout | null;
}

export interface DemoCallerOptions {
  readonly balancer: { host: string; port: number };
  readonly callsPerSecond: number;
  readonly holdMs: number;
  readonly report: (line: string) => void;
}

const MAX_UP = 40;
const ANSWER_TIMEOUT_MS = 8000;

export class DemoCaller {
  private readonly socket = dgram.createSocket('udp4');
  private readonly calls = new Map<string, Call>();
  private readonly opts: DemoCallerOptions;
  private placer: NodeJS.Timeout | null = null;
  private reporter: NodeJS.Timeout | null = null;
  private completed = 0;
  private failed = 0;
  private seq = 0;

  constructor(opts: DemoCallerOptions) {
    this.opts = opts;
    this.socket.on('message', (m) => this.onMessage(m.toString('latin1')));
    this.socket.on('error', () => undefined);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.placer = setInterval(() => this.place(), Math.max(50, Math.round(1000 / this.opts.callsPerSecond)));
    this.reporter = setInterval(() => {
      this.opts.report(`calls: ${this.completed} completed, ${this.failed} failed, ${this.calls.size} up`);
    }, 10_000);
  }

  stop(): void {
    if (this.placer !== null) clearInterval(this.placer);
    if (this.reporter !== null) clearInterval(this.reporter);
    for (const c of this.calls.values()) if (c.timer !== null) clearTimeout(c.timer);
    this.socket.close();
  }

  private place(): void {
    if (this.calls.size >= MAX_UP) return;
    const { host, port } = this.opts.balancer;
    const call: Call = {
      callId: `demo-${++this.seq}-${randomBytes(4).toString('hex')}@demo`, fromTag: randomBytes(4).toString('hex'),
      toTag: null, routes: [], target: `sip:service@${host}:${port}`, state: 'inviting', timer: null,
    };
    this.calls.set(call.callId, call);
    call.timer = setTimeout(() => this.fail(call), ANSWER_TIMEOUT_MS);
    const sdp = 'v=0\r\no=demo 1 1 IN IP4 127.0.0.1\r\ns=demo\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n';
    this.send('INVITE', call, 1, [], ['Content-Type: application/sdp'], sdp, call.target);
  }

  private onMessage(text: string): void {
    const callId = /^(?:Call-ID|i)\s*:\s*(.+)$/mi.exec(text)?.[1].trim() ?? '';
    const call = this.calls.get(callId);
    if (call === undefined || !text.startsWith('SIP/2.0 ')) return;
    const status = Number(text.slice(8, 11));
    const method = /^CSeq\s*:\s*\d+\s+(\w+)/mi.exec(text)?.[1] ?? '';
    if (method === 'INVITE' && status >= 200 && call.state === 'inviting') {
      if (call.timer !== null) clearTimeout(call.timer);
      call.toTag = /^(?:To|t)\s*:.*;\s*tag=([^;\s>]+)/mi.exec(text)?.[1] ?? null;
      if (status >= 300) {
        this.fail(call);
        return;
      }
      // RFC 3261 §12.1.2: the route set is the Record-Route list reversed; the remote target the Contact.
      const rr: string[] = [];
      for (const m of text.matchAll(/^Record-Route\s*:\s*(.+)$/gmi)) rr.push(...m[1].split(/,(?=\s*<)/).map((v) => v.trim()));
      call.routes = rr.reverse();
      call.target = /^(?:Contact|m)\s*:.*<([^>]+)>/mi.exec(text)?.[1] ?? call.target;
      call.state = 'up';
      this.send('ACK', call, 1, call.routes, [], '', call.target);
      call.timer = setTimeout(() => {
        call.state = 'ending';
        call.timer = setTimeout(() => this.fail(call), ANSWER_TIMEOUT_MS);
        this.send('BYE', call, 2, call.routes, [], '', call.target);
      }, this.opts.holdMs);
    } else if (method === 'BYE' && status >= 200 && call.state === 'ending') {
      if (call.timer !== null) clearTimeout(call.timer);
      this.calls.delete(callId);
      this.completed++;
    }
  }

  private fail(call: Call): void {
    if (call.timer !== null) clearTimeout(call.timer);
    this.calls.delete(call.callId);
    this.failed++;
  }

  private send(method: string, call: Call, cseq: number, routes: string[], extra: string[], body: string, ruri: string): void {
    const { host, port } = this.opts.balancer;
    const local = this.socket.address().port;
    const lines = [
      `${method} ${ruri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70', ...routes.map((r) => `Route: ${r}`),
      `From: <sip:caller@demo>;tag=${call.fromTag}`, `To: <sip:service@demo>${call.toTag === null ? '' : `;tag=${call.toTag}`}`,
      `Call-ID: ${call.callId}`, `CSeq: ${cseq} ${method}`, `Contact: <sip:caller@127.0.0.1:${local}>`,
      ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body,
    ];
    // Everything goes through siplb: it is the first hop of the route set too.
    this.socket.send(lines.join('\r\n'), port, host);
  }
}
