// The fuzzer's seeds: RFC 4475 torture messages and the shapes sipp and the demo nodes send,
// one file each under corpus/. Files are kept readable: a `.sip` file is written with LF line
// ends (made CRLF here), `\xHH` stands for a byte that would not survive an editor (NUL, DEL,
// UTF-8 the RFC spells out in hex), and `{len}` in a Content-Length is the body's real length,
// so a seed that is meant to be valid stays valid when it is edited. A `.raw` file is taken as
// it is.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const CORPUS_DIR = join(import.meta.dirname, 'corpus');

export interface Seed {
  readonly name: string;
  readonly data: Buffer;
}

export function decodeSeed(text: string): Buffer {
  let s = text.replace(/\r?\n/g, '\r\n');
  s = s.replace(/\\x([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  const blank = s.indexOf('\r\n\r\n');
  if (blank !== -1 && s.includes('{len}')) {
    s = s.replace('{len}', String(s.length - blank - 4));
  }
  return Buffer.from(s, 'latin1');
}

export function loadSeeds(dir = CORPUS_DIR): Seed[] {
  const out: Seed[] = [];
  for (const name of readdirSync(dir).sort()) {
    const raw = readFileSync(join(dir, name));
    if (name.endsWith('.raw')) out.push({ name, data: raw });
    else if (name.endsWith('.sip')) out.push({ name, data: decodeSeed(raw.toString('latin1')) });
  }
  return out;
}
