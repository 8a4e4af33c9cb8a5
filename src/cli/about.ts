// What every siplb command says about itself with --version: package.json's version, read at run
// time so the TypeScript of a checkout and the dist/ JavaScript of an installed package say the
// same (src/cli/ and dist/cli/ both sit two levels below package.json).

import { readFileSync } from 'node:fs';

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/** package.json's version ("0.1.0"). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error(`${PACKAGE_JSON.pathname}: no version`);
  return pkg.version;
}

/** The line `<program> --version` prints: "siplb 0.1.0 (Node.js v24.21.0)". */
export function versionLine(program: string): string {
  return `${program} ${packageVersion()} (Node.js ${process.version})`;
}
