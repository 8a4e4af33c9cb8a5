// The HTTPS listener's certificate material: reloaded without dropping what is open (SIGHUP in
// the CLI calls the same reloadTls), and client certificates by tlsClientAuth / tlsCaFile.
// Certificates are made with openssl for each run.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { readTlsFiles } from '../../src/transport/tls-files.ts';
import { startHttpBalancer } from '../helpers/http-balancer.ts';
import { startTomcatNode } from '../helpers/tomcat-node.ts';
import { nextEvent } from '../helpers/wait.ts';

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: 'ignore' });
  } catch {
    assert.fail('openssl is needed to make test certificates: apt-get install openssl');
  }
}

/** A folder with a self-signed server certificate per name, a CA, and a client certificate the CA signed. */
function certificates(t: TestContext): (name: string) => string {
  const dir = mkdtempSync(join(tmpdir(), 'siplb-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = (name: string): string => join(dir, name);
  for (const cn of ['first', 'second']) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path(`${cn}.key`), '-out', path(`${cn}.pem`), '-days', '1', '-subj', `/CN=${cn}`]);
  }
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path('ca.key'), '-out', path('ca.pem'), '-days', '1', '-subj', '/CN=test-ca']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', path('client.key'), '-out', path('client.csr'), '-subj', '/CN=client']);
  openssl(['x509', '-req', '-in', path('client.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial', '-out', path('client.pem'), '-days', '1']);
  return path;
}

async function handshake(port: number, options: { cert?: Buffer; key?: Buffer } = {}): Promise<TLSSocket> {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  await nextEvent(socket, 'secureConnect', 3000);
  return socket;
}

/** One HTTP/1.1 request on an open TLS socket; resolves with the status line. */
async function get(socket: TLSSocket): Promise<string> {
  socket.write('GET /app HTTP/1.1\r\nHost: localhost\r\n\r\n');
  let text = '';
  for (;;) {
    const [chunk] = await nextEvent<[Buffer]>(socket, 'data', 3000);
    text += chunk.toString('latin1');
    const head = text.indexOf('\r\n\r\n');
    const length = /content-length:\s*(\d+)/i.exec(text);
    if (head !== -1 && length !== null && text.length >= head + 4 + Number(length[1])) return text.split('\r\n')[0];
  }
}

function commonName(socket: TLSSocket): string {
  return String(socket.getPeerCertificate().subject?.CN);
}

test('reloadTls: new handshakes get the new certificate; a connection already open keeps working on the old one', async (t) => {
  const path = certificates(t);
  const node = await startTomcatNode('node1');
  t.after(() => node.kill());
  const lb = await startHttpBalancer(t, [{ port: node.port, jvmRoute: 'node1' }], {
    httpPort: null, httpsPort: 0, tlsCertFile: path('first.pem'), tlsKeyFile: path('first.key'),
  });
  const open = await handshake(lb.port);
  t.after(() => open.destroy());
  assert.equal(commonName(open), 'first');
  assert.equal(await get(open), 'HTTP/1.1 200 OK');

  assert.equal(lb.balancer.reloadTls(readTlsFiles(path('second.pem'), path('second.key'))), 1);
  const fresh = await handshake(lb.port);
  t.after(() => fresh.destroy());
  assert.equal(commonName(fresh), 'second');
  assert.equal(await get(fresh), 'HTTP/1.1 200 OK');
  assert.equal(await get(open), 'HTTP/1.1 200 OK', 'the connection opened before the reload still carries requests');
});

test('a bad file is refused naming the key (what SIGHUP then reports, the listener keeping its certificate)', async (t) => {
  const path = certificates(t);
  assert.throws(() => readTlsFiles(path('second.pem'), path('first.key')), (err: unknown) => (err as { key?: string }).key === 'tlsKeyFile');
  assert.throws(() => readTlsFiles(path('second.pem'), path('second.key'), path('missing.pem')), (err: unknown) => (err as { key?: string }).key === 'tlsCaFile');
  assert.throws(() => readTlsFiles(path('second.pem'), path('second.key'), path('second.key')), (err: unknown) => (err as { key?: string }).key === 'tlsCaFile');
});

test('tlsClientAuth=require: a client without a certificate the CA signed is refused; one with it is served', async (t) => {
  const path = certificates(t);
  const node = await startTomcatNode('node1');
  t.after(() => node.kill());
  const lb = await startHttpBalancer(t, [{ port: node.port, jvmRoute: 'node1' }], {
    httpPort: null, httpsPort: 0, tlsCertFile: path('first.pem'), tlsKeyFile: path('first.key'),
    tlsCaFile: path('ca.pem'), tlsClientAuth: 'require',
  });
  const withCert = await handshake(lb.port, { cert: readFileSync(path('client.pem')), key: readFileSync(path('client.key')) });
  t.after(() => withCert.destroy());
  assert.equal(await get(withCert), 'HTTP/1.1 200 OK');

  // TLS 1.3 finishes the client's side of the handshake before the server checks its
  // certificate: the refusal arrives as an alert on the first read.
  const without = connect({ host: '127.0.0.1', port: lb.port, rejectUnauthorized: false });
  t.after(() => without.destroy());
  const outcome = await new Promise<string>((resolve) => {
    without.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    without.on('secureConnect', () => without.write('GET /app HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    without.on('data', (d: Buffer) => resolve(`data ${d.toString('latin1').split('\r\n')[0]}`));
    without.on('close', () => resolve('closed'));
  });
  assert.ok(!outcome.startsWith('data HTTP/1.1 200'), `served without a client certificate: ${outcome}`);
});

test('tlsClientAuth=request: a client without a certificate is still served', async (t) => {
  const path = certificates(t);
  const node = await startTomcatNode('node1');
  t.after(() => node.kill());
  const lb = await startHttpBalancer(t, [{ port: node.port, jvmRoute: 'node1' }], {
    httpPort: null, httpsPort: 0, tlsCertFile: path('first.pem'), tlsKeyFile: path('first.key'),
    tlsCaFile: path('ca.pem'), tlsClientAuth: 'request',
  });
  const socket = await handshake(lb.port);
  t.after(() => socket.destroy());
  assert.equal(await get(socket), 'HTTP/1.1 200 OK');
});
