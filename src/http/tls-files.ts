// The PEM certificate and key of the HTTPS listener (tlsCertFile, tlsKeyFile), read and checked
// at start-up: a file that is missing, unreadable, not PEM, or a key that does not belong to the
// certificate stops start-up with a ConfigError naming the key, rather than a listener that
// fails every handshake.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../core/errors.ts';

export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

function readKeyFile(key: 'tlsCertFile' | 'tlsKeyFile', path: string): Buffer {
  try {
    // The loader made paths from a file relative to it absolute; others are relative to the
    // working directory.
    return readFileSync(resolve(path));
  } catch (err) {
    throw new ConfigError(key, path, `cannot read the file: ${(err as Error).message}`);
  }
}

/** Reads and checks both files. */
export function readTlsFiles(certFile: string, keyFile: string): TlsFiles {
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
  return { cert, key };
}
