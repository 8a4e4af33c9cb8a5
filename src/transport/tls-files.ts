// The PEM certificate and key of the TLS listeners, SIP and HTTPS (tlsCertFile, tlsKeyFile), read and checked
// at start-up: a file that is missing, unreadable, not PEM, or a key that does not belong to the
// certificate stops start-up with a ConfigError naming the key, rather than a listener that
// fails every handshake.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { ConfigError } from '../core/errors.ts';

export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** CA bundle client certificates are checked against, when tlsCaFile is set. */
  readonly ca?: Buffer;
}

function readKeyFile(key: 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile', path: string): Buffer {
  try {
    // The loader made paths from a file relative to it absolute; others are relative to the
    // working directory.
    return readFileSync(resolve(path));
  } catch (err) {
    throw new ConfigError(key, path, `cannot read the file: ${(err as Error).message}`);
  }
}

/** Reads and checks the files (at start-up, and again on SIGHUP). */
export function readTlsFiles(certFile: string, keyFile: string, caFile: string | null = null): TlsFiles {
  const cert = readKeyFile('tlsCertFile', certFile);
  const key = readKeyFile('tlsKeyFile', keyFile);
  try {
    createSecureContext({ cert });
  } catch (err) {
    throw new ConfigError('tlsCertFile', certFile, `not a usable PEM certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError('tlsKeyFile', keyFile, `not a usable PEM private key for tlsCertFile: ${(err as Error).message}`);
  }
  if (caFile === null) return { cert, key };
  const ca = readKeyFile('tlsCaFile', caFile);
  // Node's TLS takes a CA bundle without a single certificate in it silently, and would then
  // refuse every client certificate: each PEM block must parse, and there must be one.
  const blocks = ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError('tlsCaFile', caFile, 'no PEM certificate (-----BEGIN CERTIFICATE-----) in the file');
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError('tlsCaFile', caFile, `not a usable PEM CA certificate: ${(err as Error).message}`);
    }
  }
  return { cert, key, ca };
}

export type ClientAuth = 'none' | 'request' | 'require';

/** Server options: certificate, key, and the client-certificate policy (tlsClientAuth, against tlsCaFile). */
export function secureServerOptions(files: TlsFiles, clientAuth: ClientAuth): TlsOptions {
  return {
    cert: files.cert, key: files.key, ...(files.ca === undefined ? {} : { ca: files.ca }),
    requestCert: clientAuth !== 'none', rejectUnauthorized: clientAuth === 'require',
  };
}
