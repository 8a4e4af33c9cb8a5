// A real browser SIP client for tests: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) running SIP.js over the browser's own WebSocket (RFC 7118), so what siplb sees
// on its WS/WSS listeners is exactly what a WebRTC phone sends: the `sip` subprotocol offer, one
// SIP message per text frame, SIP.js's `*.invalid` Via and Contact hosts, Supported: path/outbound.
//
// A loopback HTTP server serves one page and SIP.js's native ES modules; each SipPhone is a page
// (its own UserAgent) in the one browser. The test drives it through page.evaluate against a
// small API the page module installs on globalThis.sipTest.
//
// Media: SIP.js's WebRTC SessionDescriptionHandler needs a WebRTC (ICE/DTLS) answer, which a
// scripted SIP node does not produce, so the page installs a SessionDescriptionHandler that offers
// and accepts a plain static audio SDP. Chromium still gets the fake-device flags so nothing can
// ever block on a permission prompt or a missing sound card.
//
// Every wait is bounded twice: by a timer inside the page (precise message) and by a slightly
// longer one here (a hung or crashed page). Failures carry the page's recent SIP trace.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchChromium, type LaunchedChromium } from './chromium.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SIPJS_LIB = join(REPO_ROOT, 'node_modules', 'sip.js', 'lib');
const DEFAULT_TIMEOUT_MS = 5_000;
// Margin for the node-side bound over the page-side one: the page's own message is the better one.
const OUTER_MARGIN_MS = 2_000;
const MAX_DIAGNOSTICS = 2_000;

export type PhoneEventName = 'reinvite' | 'bye' | 'invite';

/** What waitFor() resolves with. */
export interface PhoneEvent {
  readonly type: PhoneEventName;
  readonly callId: string;
  /** reinvite: the status the browser answered (200, or 488 when it could not take the offer). */
  readonly status?: number;
  /** invite: the Request-URI of the incoming INVITE as the browser received it. */
  readonly requestUri?: string;
  /** invite: Route header values the browser received (siplb removes its own). */
  readonly route?: readonly string[];
  /** bye: whether the browser could send its 200 (false when its transport was gone). */
  readonly answered?: boolean;
  /** reinvite/invite: the SDP the browser was offered. */
  readonly remoteSdp?: string;
}

export interface CallResult {
  readonly callId: string;
  readonly status: number;
  /** Record-Route header values of the 2xx, in order, as the browser received them. */
  readonly recordRoute: readonly string[];
}

// The API the page module installs (see PAGE_MODULE); every method bounds its own wait.
interface PageApi {
  connect(wsUrl: string, aor: string, timeoutMs: number): Promise<void>;
  register(timeoutMs: number): Promise<number>;
  call(targetUri: string, timeoutMs: number): Promise<CallResult>;
  waitFor(event: PhoneEventName, timeoutMs: number): Promise<PhoneEvent>;
  hangup(timeoutMs: number): Promise<number>;
  disconnect(timeoutMs: number): Promise<void>;
  stop(timeoutMs: number): Promise<void>;
  log(): string[];
}

export interface SipPhone {
  readonly label: string;
  /** Opens the WebSocket (ws:// or wss://) with the `sip` subprotocol and starts a UserAgent for aor. */
  connect(wsUrl: string, aor: string, timeoutMs?: number): Promise<void>;
  /** Sends REGISTER; resolves with the final status. */
  register(timeoutMs?: number): Promise<number>;
  /** INVITE to targetUri; resolves once the call is established (2xx received and ACKed). */
  call(targetUri: string, timeoutMs?: number): Promise<CallResult>;
  /**
   * Next not yet consumed event of this kind: 'reinvite' (an in-dialog INVITE answered),
   * 'bye' (the remote hung up), 'invite' (an incoming call, auto-answered and established).
   */
  waitFor(event: PhoneEventName, timeoutMs?: number): Promise<PhoneEvent>;
  /** BYE for the current call; resolves with its final status. */
  hangup(timeoutMs?: number): Promise<number>;
  /**
   * Kills the transport under SIP.js: closes the raw WebSocket without any SIP (no un-REGISTER,
   * no BYE), as a tab being closed or a network change does; resolves once it is closed.
   */
  disconnect(timeoutMs?: number): Promise<void>;
  /** SIP.js log lines with the SIP trace, oldest first (bounded). */
  log(): Promise<string[]>;
  /** Closes the page (and with it its WebSocket). Idempotent. */
  close(): Promise<void>;
}

export interface BrowserSip {
  /** Origin of the page the phones run in (for siplb's wsAllowedOrigins). */
  readonly origin: string;
  /** A new phone: a new page with its own UserAgent. */
  newPhone(label?: string): Promise<SipPhone>;
  /** Console messages, page errors and failed requests of every page so far. */
  diagnostics(): string[];
  /** Closes the browser, the HTTP server and the browser's temp profile. Idempotent. */
  close(): Promise<void>;
}

export interface BrowserSipOptions {
  /**
   * Accept any server certificate (a self-signed one on a wss:// listener). Default true: these
   * are loopback tests against a throwaway certificate.
   */
  ignoreCertificateErrors?: boolean;
  /** Bound on the browser launch; default 30 000 ms. */
  launchTimeoutMs?: number;
}

// The page: SIP.js over the browser's WebSocket, a static-SDP SessionDescriptionHandler, and the
// test API on globalThis.sipTest. Plain JavaScript (it runs in the browser as served).
const PAGE_MODULE = String.raw`
import { Inviter, Registerer, SessionState, UserAgent } from '/sip.js/index.js';

// Every WebSocket the page opens, so disconnect() can kill SIP.js's transport under it.
const NativeWebSocket = globalThis.WebSocket;
const sockets = [];
globalThis.WebSocket = class TrackedWebSocket extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    sockets.push(this);
  }
};

const MAX_LOG = 1000;
const logLines = [];
function record(line) {
  logLines.push(new Date().toISOString().slice(11, 23) + ' ' + line);
  if (logLines.length > MAX_LOG) logLines.splice(0, logLines.length - MAX_LOG);
}

const queues = { reinvite: [], bye: [], invite: [] };
const waiters = { reinvite: [], bye: [], invite: [] };
function emit(type, detail) {
  record('event ' + type + ' ' + JSON.stringify(detail).slice(0, 200));
  const event = { type, ...detail };
  const waiter = waiters[type].shift();
  if (waiter !== undefined) waiter(event);
  else queues[type].push(event);
}

function bounded(promise, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(what + ': not within ' + timeoutMs + ' ms')), timeoutMs);
    promise.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (err) => { clearTimeout(timer); reject(err); },
    );
  });
}

let sdhCount = 0;
function staticSdp(id, version) {
  return ['v=0', 'o=browser ' + id + ' ' + version + ' IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    'm=audio 9 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
}

// Offers and answers a fixed audio SDP; accepts any SDP that has an audio stream.
class StaticSessionDescriptionHandler {
  constructor() {
    this.id = 1000 + ++sdhCount;
    this.version = 0;
    this.remote = null;
  }
  close() {}
  getDescription() {
    this.version++;
    return Promise.resolve({ body: staticSdp(this.id, this.version), contentType: 'application/sdp' });
  }
  hasDescription(contentType) {
    return contentType === 'application/sdp';
  }
  setDescription(sdp) {
    if (!/^v=0\r?\n/.test(sdp) || !/\nm=audio /.test(sdp)) return Promise.reject(new Error('not an audio SDP: ' + sdp.slice(0, 120)));
    this.remote = sdp;
    return Promise.resolve();
  }
  rollbackDescription() {
    return Promise.resolve();
  }
  sendDtmf() {
    return false;
  }
}

let ua = null;
let registerer = null;
let session = null;

function watch(s) {
  session = s;
  s.stateChange.addListener((state) => record('session ' + state));
  s.delegate = {
    onInvite(request, _response, statusCode) {
      emit('reinvite', { callId: request.callId, status: statusCode, remoteSdp: request.body });
    },
    onBye(bye) {
      let answered = true;
      try {
        bye.accept();
      } catch (err) {
        answered = false;
        record('could not answer BYE: ' + err);
      }
      emit('bye', { callId: bye.request.callId, answered });
    },
  };
}

function onIncoming(invitation) {
  watch(invitation);
  const request = invitation.request;
  invitation.stateChange.addListener((state) => {
    if (state === SessionState.Established) {
      emit('invite', { callId: request.callId, requestUri: String(request.ruri), route: request.getHeaders('route'), remoteSdp: request.body });
    }
  });
  invitation.accept().catch((err) => record('could not accept INVITE: ' + err));
}

function requireUa() {
  if (ua === null) throw new Error('connect() first');
  return ua;
}

globalThis.sipTest = {
  async connect(wsUrl, aor, timeoutMs) {
    const uri = UserAgent.makeURI(aor);
    if (uri === undefined) throw new Error('not a SIP URI: ' + aor);
    ua = new UserAgent({
      uri,
      transportOptions: { server: wsUrl, traceSip: true, connectionTimeout: Math.max(1, Math.ceil(timeoutMs / 1000)) },
      sessionDescriptionHandlerFactory: () => new StaticSessionDescriptionHandler(),
      logBuiltinEnabled: false,
      logLevel: 'log',
      logConnector: (level, category, label, content) => record(level + ' ' + category + ': ' + content),
      // A dropped connection must stay dropped: the test decides what happens next.
      reconnectionAttempts: 0,
      delegate: {
        onInvite: onIncoming,
        onDisconnect: (error) => record('transport disconnected' + (error ? ': ' + error.message : '')),
      },
    });
    await bounded(ua.start(), timeoutMs, 'WebSocket connect to ' + wsUrl);
  },

  register(timeoutMs) {
    const agent = requireUa();
    registerer ??= new Registerer(agent, { expires: 300 });
    return bounded(new Promise((resolve, reject) => {
      registerer.register({
        requestDelegate: {
          onAccept: (response) => resolve(response.message.statusCode),
          onReject: (response) => resolve(response.message.statusCode),
        },
      }).catch(reject);
    }), timeoutMs, 'final response to REGISTER');
  },

  call(targetUri, timeoutMs) {
    const agent = requireUa();
    const target = UserAgent.makeURI(targetUri);
    if (target === undefined) throw new Error('not a SIP URI: ' + targetUri);
    const inviter = new Inviter(agent, target);
    watch(inviter);
    return bounded(new Promise((resolve, reject) => {
      inviter.invite({
        requestDelegate: {
          // Called once the 2xx is ACKed and the session is Established.
          onAccept: (response) => resolve({
            callId: response.message.callId,
            status: response.message.statusCode,
            recordRoute: response.message.getHeaders('record-route'),
          }),
          onReject: (response) => reject(new Error('call to ' + targetUri + ' rejected: ' + response.message.statusCode + ' ' + response.message.reasonPhrase)),
        },
      }).catch(reject);
    }), timeoutMs, 'call to ' + targetUri + ' established');
  },

  waitFor(type, timeoutMs) {
    if (!(type in queues)) return Promise.reject(new Error('unknown event ' + type));
    if (queues[type].length > 0) return Promise.resolve(queues[type].shift());
    return new Promise((resolve, reject) => {
      const waiter = (event) => { clearTimeout(timer); resolve(event); };
      const timer = setTimeout(() => {
        const i = waiters[type].indexOf(waiter);
        if (i !== -1) waiters[type].splice(i, 1);
        reject(new Error("no '" + type + "' event within " + timeoutMs + ' ms'));
      }, timeoutMs);
      waiters[type].push(waiter);
    });
  },

  hangup(timeoutMs) {
    if (session === null || session.state !== SessionState.Established) {
      return Promise.reject(new Error('no established call to hang up (state ' + (session === null ? 'none' : session.state) + ')'));
    }
    const s = session;
    return bounded(new Promise((resolve, reject) => {
      s.bye({
        requestDelegate: {
          onAccept: (response) => resolve(response.message.statusCode),
          onReject: (response) => resolve(response.message.statusCode),
        },
      }).catch(reject);
    }), timeoutMs, 'final response to BYE');
  },

  disconnect(timeoutMs) {
    const open = sockets.filter((ws) => ws.readyState === NativeWebSocket.OPEN || ws.readyState === NativeWebSocket.CONNECTING);
    if (open.length === 0) return Promise.reject(new Error('no open WebSocket to kill'));
    return bounded(Promise.all(open.map((ws) => new Promise((resolve) => {
      ws.addEventListener('close', () => resolve(undefined), { once: true });
      ws.close();
    }))).then(() => undefined), timeoutMs, 'WebSocket closed');
  },

  async stop(timeoutMs) {
    if (ua !== null) await bounded(ua.stop(), timeoutMs, 'UserAgent stopped');
  },

  log() {
    return logLines.slice();
  },
};
globalThis.sipTestReady = true;
`;

const PAGE_HTML = '<!doctype html><html><head><meta charset="utf-8"><title>siplb browser SIP</title><link rel="icon" href="data:,">' +
  '<script type="module" src="/page.js"></script></head><body>siplb browser SIP test page</body></html>';

function serve(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  const send = (status: number, type: string, body: string | Buffer): void => {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(body);
  };
  if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
  if (path === '/') return send(200, 'text/html; charset=utf-8', PAGE_HTML);
  if (path === '/page.js') return send(200, 'text/javascript; charset=utf-8', PAGE_MODULE);
  if (path.startsWith('/sip.js/')) {
    // Only files below sip.js/lib: normalize() folds any ../ before the prefix check.
    const file = normalize(join(SIPJS_LIB, decodeURIComponent(path.slice('/sip.js/'.length))));
    if (!file.startsWith(SIPJS_LIB + sep) || !existsSync(file) || !statSync(file).isFile()) return send(404, 'text/plain', 'not found\n');
    const type = file.endsWith('.js') ? 'text/javascript; charset=utf-8' : file.endsWith('.map') ? 'application/json' : 'text/plain';
    return send(200, type, readFileSync(file));
  }
  send(404, 'text/plain', 'not found\n');
}

function withOuterBound<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the page did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class Phone implements SipPhone {
  readonly label: string;
  private readonly page: Page;
  private closed = false;

  constructor(label: string, page: Page) {
    this.label = label;
    this.page = page;
  }

  connect(wsUrl: string, aor: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.invoke(`connect(${wsUrl}, ${aor})`, timeoutMs, 'connect', [wsUrl, aor, timeoutMs]);
  }

  register(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    return this.invoke('register()', timeoutMs, 'register', [timeoutMs]);
  }

  call(targetUri: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallResult> {
    return this.invoke(`call(${targetUri})`, timeoutMs, 'call', [targetUri, timeoutMs]);
  }

  waitFor(event: PhoneEventName, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PhoneEvent> {
    return this.invoke(`waitFor(${event})`, timeoutMs, 'waitFor', [event, timeoutMs]);
  }

  hangup(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    return this.invoke('hangup()', timeoutMs, 'hangup', [timeoutMs]);
  }

  disconnect(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.invoke('disconnect()', timeoutMs, 'disconnect', [timeoutMs]);
  }

  async log(): Promise<string[]> {
    if (this.closed) return [];
    return withOuterBound(
      this.page.evaluate(() => (globalThis as unknown as { sipTest: PageApi }).sipTest.log()),
      DEFAULT_TIMEOUT_MS, `${this.label} log()`,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // A polite stop first (un-REGISTER, BYE) so siplb sees a normal client going away.
      await withOuterBound(
        this.page.evaluate((ms) => (globalThis as unknown as { sipTest: PageApi }).sipTest.stop(ms), 2_000),
        2_000 + OUTER_MARGIN_MS, `${this.label} stop()`,
      );
    } catch {
      // The page may be broken already; closing it below is what matters.
    }
    await this.page.close().catch(() => undefined);
  }

  /** Calls sipTest[method] in the page; on failure, the error carries the page's SIP trace. */
  private async invoke<K extends Exclude<keyof PageApi, 'log'>>(
    what: string, timeoutMs: number, method: K, args: Parameters<PageApi[K]>,
  ): Promise<Awaited<ReturnType<PageApi[K]>>> {
    if (this.closed) throw new Error(`${this.label}: ${what} after close()`);
    try {
      const result = await withOuterBound(
        this.page.evaluate(({ method: m, args: a }) => {
          const api = (globalThis as unknown as { sipTest: Record<string, (...x: unknown[]) => unknown> }).sipTest;
          return api[m](...a);
        }, { method, args: args as unknown[] }),
        timeoutMs + OUTER_MARGIN_MS, `${this.label} ${what}`,
      );
      return result as Awaited<ReturnType<PageApi[K]>>;
    } catch (err) {
      let trace: string[] = [];
      try {
        trace = await this.log();
      } catch {
        // The page is gone: the message below says so through the original error.
      }
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${this.label} ${what} failed: ${message}\n--- page SIP log (last 60 lines) ---\n${trace.slice(-60).join('\n')}`);
    }
  }
}

/**
 * Starts the page server and Chromium. One per test file: pages (phones) are cheap, a browser is
 * not. The caller must close() it (an exit hook removes the profile directory if it does not).
 */
export async function startBrowserSip(opts: BrowserSipOptions = {}): Promise<BrowserSip> {
  const server: Server = createServer(serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const diagnostics: string[] = [];
  const note = (line: string): void => {
    diagnostics.push(line);
    if (diagnostics.length > MAX_DIAGNOSTICS) diagnostics.splice(0, diagnostics.length - MAX_DIAGNOSTICS);
  };

  const args = [
    // Media without hardware or prompts, and WebRTC allowed to use loopback addresses.
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection',
  ];
  if (opts.ignoreCertificateErrors ?? true) args.push('--ignore-certificate-errors');

  let browser: LaunchedChromium;
  try {
    browser = await launchChromium({ extraArgs: args, timeoutMs: opts.launchTimeoutMs, ignoreHTTPSErrors: opts.ignoreCertificateErrors ?? true });
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  const context = browser.context;

  let phoneCount = 0;
  let closing: Promise<void> | undefined;
  const phones: Phone[] = [];

  return {
    origin,
    async newPhone(label?: string): Promise<SipPhone> {
      const name = label ?? `phone${++phoneCount}`;
      const page = await context.newPage();
      page.on('console', (m) => note(`[${name}] console.${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => note(`[${name}] pageerror: ${e.message}`));
      page.on('requestfailed', (r) => note(`[${name}] request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
      page.on('crash', () => note(`[${name}] page crashed`));
      await page.goto(`${origin}/`, { timeout: DEFAULT_TIMEOUT_MS });
      try {
        await page.waitForFunction(() => (globalThis as { sipTestReady?: boolean }).sipTestReady === true, undefined, { timeout: DEFAULT_TIMEOUT_MS });
      } catch (err) {
        throw new Error(`${name}: the SIP.js page did not load: ${err instanceof Error ? err.message : String(err)}\n${diagnostics.slice(-20).join('\n')}`);
      }
      const phone = new Phone(name, page);
      phones.push(phone);
      return phone;
    },
    diagnostics: () => diagnostics.slice(),
    close(): Promise<void> {
      closing ??= (async () => {
        for (const phone of phones) await phone.close();
        await browser.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
