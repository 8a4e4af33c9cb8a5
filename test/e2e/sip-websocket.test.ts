// End to end: SIP over WebSocket (RFC 7118) through the real siplb process, with a real browser
// client (headless Chromium running SIP.js, test/helpers/browser-sip.ts) and a scripted UDP node
// (test/helpers/scripted-uas.ts) as registrar and callee.
//
// Over WS and over WSS (self-signed certificate), a browser registers and calls the node; the
// node's in-dialog requests (re-INVITE, BYE) come back through siplb on the browser's very
// WebSocket although its Contact host is `*.invalid`, thanks to the flow token siplb writes into
// the Record-Route entry that faces the client. When that WebSocket is gone the node gets 430, a
// tampered token gets 403, and a registrar reaches the browser with a new INVITE through the Path
// siplb added to the REGISTER. With the `ws` package as a bare client: the handshake must offer
// the `sip` subprotocol, a CRLFCRLF keep-alive is answered with CRLF, and garbage on one
// connection does not disturb another client's call.
//
// One siplb, one node and one browser for the whole file; each case uses its own page (phone).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { registerCleanup } from './harness/children.ts';
import { allocatePorts, releasePorts } from './harness/ports.ts';
import { startSiplb, type SiplbHandle } from './harness/siplb.ts';
import { startBrowserSip, type BrowserSip, type SipPhone } from '../helpers/browser-sip.ts';
import { ScriptedUas } from '../helpers/scripted-uas.ts';
import { sleep } from '../helpers/wait.ts';
import { nameAddrUri, parseSipUri } from '../../src/sip/uri.ts';

const CASE_TIMEOUT_MS = 20_000;
const WS_CLIENT_TIMEOUT_MS = 3_000;

interface Secure {
  readonly name: 'WS' | 'WSS';
  readonly scheme: 'ws' | 'wss';
}
const FLAVOURS: readonly Secure[] = [{ name: 'WS', scheme: 'ws' }, { name: 'WSS', scheme: 'wss' }];

// ---------------------------------------------------------------------------------------------
// Plumbing

interface SelfSigned {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A throwaway certificate for 127.0.0.1/::1/localhost; openssl is installed if missing. */
function makeCertificate(): SelfSigned {
  if (!existsSync('/usr/bin/openssl')) {
    const res = spawnSync('apt-get', ['install', '-y', 'openssl'], { stdio: 'ignore', timeout: 300_000 });
    if (res.status !== 0) throw new Error("openssl is missing and 'apt-get install -y openssl' failed: run 'apt-get install -y openssl' as root");
  }
  const dir = mkdtempSync(join(tmpdir(), 'siplb-e2e-wss-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost', '-days', '2',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  return { dir, certFile, keyFile };
}

/** A route element's URI parts; fails the test on something that is not a sip: URI. */
function routeUri(element: string): { user: string; host: string; port: number | null; params: Map<string, string> } {
  const uri = nameAddrUri(element);
  const parsed = uri === null ? null : parseSipUri(uri);
  assert.ok(parsed !== null, `not a SIP URI in a route element: ${element}`);
  return parsed;
}

/**
 * The same element with one character of the URI's user part (the flow token) changed, in the
 * middle: a token keeps any fixed prefix at its start, and the last character of a base64 text
 * may only carry padding bits, so the middle is where a change must make it fail to verify.
 */
function tamperToken(element: string): string {
  const uri = nameAddrUri(element);
  assert.ok(uri !== null);
  const colon = uri.indexOf(':');
  const at = uri.indexOf('@');
  assert.ok(at > colon + 1, `no user part to tamper with in ${element}`);
  const user = uri.slice(colon + 1, at);
  const i = Math.floor(user.length / 2);
  const replacement = user[i] === 'A' ? 'B' : 'A';
  const tampered = `${uri.slice(0, colon + 1)}${user.slice(0, i)}${replacement}${user.slice(i + 1)}${uri.slice(at)}`;
  return element.replace(uri, tampered);
}

/** Opens a `ws` client; resolves once open, rejects (bounded) on anything else. */
function openWs(url: string, protocols: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`WebSocket to ${url} not open within ${WS_CLIENT_TIMEOUT_MS} ms`));
    }, WS_CLIENT_TIMEOUT_MS);
    ws.once('open', () => {
      clearTimeout(timer);
      // Later errors (siplb dropping a misbehaving client) are the case's business, not a crash.
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The next message on ws as text; bounded. */
function nextMessage(ws: WebSocket, ms = WS_CLIENT_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${ms} ms`)), ms);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve(data.toString('utf8'));
    });
  });
}

/** What a handshake ended in: the HTTP status of a refused upgrade, or 'open'. */
function handshakeOutcome(url: string, protocols: string[]): Promise<{ status: number | 'open'; protocolHeader?: string }> {
  return new Promise((resolve, reject) => {
    const ws = protocols.length === 0 ? new WebSocket(url) : new WebSocket(url, protocols);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`handshake to ${url} neither refused nor accepted within ${WS_CLIENT_TIMEOUT_MS} ms`));
    }, WS_CLIENT_TIMEOUT_MS);
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.once('open', () => {
      clearTimeout(timer);
      const protocolHeader = ws.protocol;
      ws.terminate();
      resolve({ status: 'open', protocolHeader });
    });
    ws.once('error', (err) => {
      // ws emits 'error' after 'unexpected-response' only when that has no listener; anything
      // else (refused connection, reset) is a failure of the case.
      clearTimeout(timer);
      reject(err);
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('SIP over WebSocket: a browser (SIP.js in Chromium) through siplb to a UDP node', { timeout: 120_000 }, () => {
  let ports: number[] = [];
  let udpPort = 0;
  let wsPort = 0;
  let wssPort = 0;
  let cert: SelfSigned | undefined;
  let unregisterCert: (() => void) | undefined;
  let uas: ScriptedUas | undefined;
  let lb: SiplbHandle | undefined;
  let browser: BrowserSip | undefined;

  const node = (): ScriptedUas => {
    assert.ok(uas !== undefined, 'the scripted node did not start');
    return uas;
  };
  const phones = (): BrowserSip => {
    assert.ok(browser !== undefined, 'the browser did not start');
    return browser;
  };
  const url = (f: Secure): string => `${f.scheme}://127.0.0.1:${f.scheme === 'ws' ? wsPort : wssPort}/`;
  const listenerPort = (f: Secure): number => (f.scheme === 'ws' ? wsPort : wssPort);

  /** Runs a case with a fresh phone; a failure carries siplb's and the node's recent traffic. */
  async function withPhone(label: string, body: (phone: SipPhone) => Promise<void>): Promise<void> {
    const phone = await phones().newPhone(label);
    try {
      await body(phone);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const context = [
        message,
        '--- siplb output (last 40 lines) ---', ...(lb?.logs().slice(-40) ?? ['(not started)']),
        '--- scripted node received ---', uas?.describe() ?? '(not started)',
        '--- browser console ---', ...phones().diagnostics().slice(-20),
      ].join('\n');
      const wrapped = new Error(context);
      if (err instanceof assert.AssertionError) Object.assign(wrapped, { actual: err.actual, expected: err.expected });
      throw wrapped;
    } finally {
      await phone.close();
    }
  }

  /** Browser calls the node; returns the Call-ID once established. */
  async function establishCall(phone: SipPhone, f: Secure, aor: string): Promise<string> {
    await phone.connect(url(f), aor);
    const call = await phone.call('sip:service@example.com');
    assert.equal(call.status, 200);
    assert.ok(node().dialog(call.callId) !== undefined, `the node has no dialog for ${call.callId}`);
    return call.callId;
  }

  before(async () => {
    ports = await allocatePorts(4);
    [udpPort, wsPort, wssPort] = ports;
    const heartbeatPort = ports[3];
    cert = makeCertificate();
    const dir = cert.dir;
    unregisterCert = registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
    uas = await ScriptedUas.start();
    lb = await startSiplb({
      host: '127.0.0.1',
      externalUdpPort: String(udpPort),
      externalWsPort: String(wsPort),
      externalWssPort: String(wssPort),
      tlsCertFile: cert.certFile,
      tlsKeyFile: cert.keyFile,
      heartbeatPort: String(heartbeatPort),
      // The scripted node answers OPTIONS, so siplb's default health checks keep it up.
      nodes: `127.0.0.1:${uas.port};transport=udp`,
    }, { logLevel: 'info' });
    browser = await startBrowserSip();
  });

  after(async () => {
    await browser?.close();
    await lb?.stop();
    await uas?.close();
    if (cert !== undefined) rmSync(cert.dir, { recursive: true, force: true });
    unregisterCert?.();
    releasePorts(ports);
  });

  for (const f of FLAVOURS) {
    test(`${f.name}: register, call, the node's re-INVITE and BYE reach the browser through siplb`, { timeout: CASE_TIMEOUT_MS }, async () => {
      await withPhone(`${f.name}-call`, async (phone) => {
        const aor = `sip:alice-${f.scheme}@example.com`;
        await phone.connect(url(f), aor);
        assert.equal(await phone.register(), 200, 'REGISTER over the WebSocket');
        const call = await phone.call('sip:service@example.com');
        assert.equal(call.status, 200);
        const dialog = node().dialog(call.callId);
        assert.ok(dialog !== undefined, 'the INVITE reached the node');

        // Client side and node side differ in transport: siplb record-routes twice, the node's
        // entry first (the node sends to it), the client's entry carrying the flow token.
        const own = dialog.recordRoute.filter((e) => {
          const u = routeUri(e);
          return u.host === '127.0.0.1' && (u.port === udpPort || u.port === listenerPort(f));
        });
        assert.equal(own.length, 2, `two Record-Route entries of siplb expected, got:\n${dialog.recordRoute.join('\n')}`);
        assert.equal(routeUri(dialog.recordRoute[0]).port, udpPort, `the top Record-Route must face the node (UDP port ${udpPort}):\n${dialog.recordRoute.join('\n')}`);
        const clientSide = own.map(routeUri).find((u) => u.port === listenerPort(f));
        assert.ok(clientSide !== undefined, `no Record-Route entry for the ${f.name} listener:\n${dialog.recordRoute.join('\n')}`);
        assert.ok(clientSide.user.length > 0, 'the client-side Record-Route carries a flow token in its user part');
        assert.match(clientSide.params.get('transport') ?? '', /^wss?$/i);
        assert.ok(clientSide.params.has('lr'));
        assert.match(dialog.remoteTarget, /\.invalid/, 'SIP.js Contact host is *.invalid: only the flow can reach it');

        assert.equal(await node().reinvite(call.callId), 200, 're-INVITE from the node');
        const reinvite = await phone.waitFor('reinvite');
        assert.equal(reinvite.callId, call.callId);
        assert.equal(reinvite.status, 200);
        assert.match(reinvite.remoteSdp ?? '', /^o=uas /m, 'the browser got the node\'s SDP offer');

        assert.equal(await node().bye(call.callId), 200, 'BYE from the node');
        const bye = await phone.waitFor('bye');
        assert.equal(bye.callId, call.callId);
        assert.equal(bye.answered, true);
      });
    });

    test(`${f.name}: after the browser's WebSocket is gone, the node's next request gets 430 Flow Failed`, { timeout: CASE_TIMEOUT_MS }, async () => {
      await withPhone(`${f.name}-gone`, async (phone) => {
        const callId = await establishCall(phone, f, `sip:bob-${f.scheme}@example.com`);
        // disconnect() resolves on the browser's close event (close handshake done, TCP closed).
        // siplb sees the same FIN, but a loaded event loop may read the node's datagram first;
        // the contract is about a connection that has closed, so let that settle.
        await phone.disconnect();
        await sleep(200);
        assert.equal(await node().bye(callId), 430);
      });
    });

    test(`${f.name}: a tampered flow token in the Route gets 403, the genuine one still works`, { timeout: CASE_TIMEOUT_MS }, async () => {
      await withPhone(`${f.name}-tamper`, async (phone) => {
        const callId = await establishCall(phone, f, `sip:carol-${f.scheme}@example.com`);
        let tampered = 0;
        const status = await node().bye(callId, {
          routes: (set) => set.map((e) => {
            const u = routeUri(e);
            if (u.host !== '127.0.0.1' || u.user.length === 0 || (u.port !== udpPort && u.port !== listenerPort(f))) return e;
            tampered++;
            return tamperToken(e);
          }),
        });
        assert.ok(tampered >= 1, 'a siplb Route entry with a token was tampered with');
        assert.equal(status, 403);
        // The forged request went nowhere: the call is intact and the real route set works.
        assert.equal(node().dialog(callId)?.state, 'confirmed');
        assert.equal(await node().reinvite(callId), 200, 're-INVITE with the genuine token after the forged BYE');
        assert.equal((await phone.waitFor('reinvite')).callId, callId);
        assert.equal(await phone.hangup(), 200, 'the browser hangs up through siplb');
      });
    });

    test(`${f.name}: a registrar-initiated INVITE via the Path siplb added reaches the browser`, { timeout: CASE_TIMEOUT_MS }, async () => {
      await withPhone(`${f.name}-path`, async (phone) => {
        const aor = `sip:dave-${f.scheme}@example.com`;
        await phone.connect(url(f), aor);
        assert.equal(await phone.register(), 200);
        const binding = node().binding(aor);
        assert.ok(binding !== undefined, 'the REGISTER reached the registrar');
        const withToken = binding.path.map(routeUri).filter((u) => u.host === '127.0.0.1' && u.user.length > 0);
        assert.equal(withToken.length, 1, `one Path entry of siplb with a flow token expected, got:\n${binding.path.join('\n')}`);
        assert.ok(withToken[0].params.has('lr'), 'the Path URI is a loose route');
        assert.match(binding.contact, /\.invalid/, 'SIP.js registered its *.invalid Contact');

        const invite = await node().inviteRegistered(aor);
        assert.equal(invite.status, 200, 'the browser answered the INVITE sent through the Path');
        const incoming = await phone.waitFor('invite');
        assert.equal(incoming.callId, invite.callId);
        assert.equal(await phone.hangup(), 200, 'the browser hangs up through siplb');
      });
    });
  }

  test('WS: a handshake without the sip subprotocol gets HTTP 400 and no upgrade', { timeout: CASE_TIMEOUT_MS }, async () => {
    assert.deepEqual(await handshakeOutcome(url(FLAVOURS[0]), []), { status: 400 }, 'no Sec-WebSocket-Protocol at all');
    assert.deepEqual(await handshakeOutcome(url(FLAVOURS[0]), ['chat']), { status: 400 }, 'a subprotocol other than sip');
    assert.deepEqual(await handshakeOutcome(url(FLAVOURS[0]), ['chat', 'sip']), { status: 'open', protocolHeader: 'sip' }, 'sip among others is chosen');
  });

  test('WS: a CRLFCRLF keep-alive is answered with a CRLF', { timeout: CASE_TIMEOUT_MS }, async () => {
    const ws = await openWs(url(FLAVOURS[0]), ['sip']);
    try {
      const reply = nextMessage(ws);
      ws.send('\r\n\r\n');
      assert.equal(await reply, '\r\n');
    } finally {
      ws.terminate();
    }
  });

  test('WS: unparsable SIP from one client does not disturb another client\'s call', { timeout: CASE_TIMEOUT_MS }, async () => {
    await withPhone('WS-bystander', async (phone) => {
      const callId = await establishCall(phone, FLAVOURS[0], 'sip:erin-ws@example.com');
      const garbage = await openWs(url(FLAVOURS[0]), ['sip']);
      try {
        const closed = new Promise<void>((resolve) => garbage.once('close', () => resolve()));
        garbage.send('this is not SIP at all\r\n\r\n');
        garbage.send('INVITE sip:x@example.com SIP/2.0\r\nVia SIP/2.0/WS nowhere.invalid\r\n\r\n');
        garbage.send('\u0000\u0001\u0002 binary-ish junk in a text frame');
        garbage.send(Buffer.from([0xff, 0xfe, 0x00, 0x80]));
        // Whatever siplb does with the offender (drop the messages or the connection), give it
        // time to act before checking the bystander.
        await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 300))]);
      } finally {
        garbage.terminate();
      }
      assert.equal(lb?.hasExited(), false, 'siplb is still running');
      assert.equal(await node().reinvite(callId), 200, 'the bystander\'s call still takes a re-INVITE');
      assert.equal((await phone.waitFor('reinvite')).callId, callId);
      assert.equal(await node().bye(callId), 200, 'and a BYE');
      assert.equal((await phone.waitFor('bye')).callId, callId);
    });
  });
});
