// Reading `perf script` output of a siplb process recorded with call graphs (perf record -g) and
// Node's --perf-basic-prof (which names JIT-compiled JavaScript frames "JS:*name file:line").
// Unlike V8's own profiler, perf sees the kernel and Node's C++: V8's profile charges the
// sendmsg system call (the loopback delivery to the receiver included) to dgram's doSend as
// JavaScript self time, and does not show the receive side at all.

/** One sample: the thread's name and its frames, leaf first. */
export interface Stack {
  thread: string;
  frames: Frame[];
}

export interface Frame {
  symbol: string;
  /** The binary or map the symbol is in: `[kernel.kallsyms]`, the node binary, `/tmp/perf-PID.map`. */
  module: string;
}

/** Parses `perf script` text (default fields) into stacks. Samples without frames are kept. */
export function parsePerfScript(text: string): Stack[] {
  const stacks: Stack[] = [];
  let current: Stack | null = null;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    if (line.charCodeAt(0) === 9 || line.charCodeAt(0) === 32) {
      if (current === null) continue;
      // "\t    7f18...  JS:*'parse file:///x.ts:1:2+0x18d5 (/tmp/perf-1.map)"
      const body = line.trim();
      const space = body.indexOf(' ');
      if (space === -1) continue;
      let rest = body.slice(space + 1);
      let module = '';
      const open = rest.lastIndexOf(' (');
      if (open !== -1 && rest.endsWith(')')) {
        module = rest.slice(open + 2, -1);
        rest = rest.slice(0, open);
      }
      current.frames.push({ symbol: rest.replace(/\+0x[0-9a-f]+$/, ''), module });
    } else {
      // "MainThread 18539 11671.619924:     500000 cpu-clock: "
      current = { thread: line.trim().split(/\s+/)[0] ?? '', frames: [] };
      stacks.push(current);
    }
  }
  return stacks;
}

export const isKernel = (f: Frame): boolean => f.module.includes('kernel');
/** A JavaScript frame: named from Node's perf map, or in the map's code but not named there. */
const isJs = (f: Frame): boolean => f.symbol.startsWith('JS:') || /perf-\d+\.map$/.test(f.module);

/** A layer of siplb's work, recognised by a frame somewhere in the sample's stack. */
interface Layer {
  name: string;
  matches: (frames: readonly Frame[]) => boolean;
}

const has = (frames: readonly Frame[], needle: string): boolean => frames.some((f) => f.symbol.includes(needle));

/** In order: the first layer that matches a sample gets it. */
const LAYERS: readonly Layer[] = [
  { name: 'send: kernel (sendmsg, loopback delivery to the receiver)', matches: (s) => has(s, 'sendmsg') && s.some(isKernel) },
  { name: 'send: Node (dgram send, SendWrap)', matches: (s) => has(s, 'Socket.send node:dgram') },
  { name: 'receive: kernel (epoll, recvmsg)', matches: (s) => s.some(isKernel) && (has(s, 'recvmsg') || has(s, 'epoll')) },
  { name: 'parse (parseSipMessage)', matches: (s) => has(s, 'parseSipMessage') },
  { name: 'request path (onRequest, without send)', matches: (s) => has(s, "'onRequest ") },
  { name: 'response path (ResponsePath.handle, without send)', matches: (s) => has(s, "'handle ") && has(s, 'response-path') },
  { name: 'other JavaScript (dgram callback, metrics, timers)', matches: (s) => s.some(isJs) || has(s, 'Builtins_JSEntry') },
  { name: 'receive: Node and libuv (buffers, rinfo, callback entry)', matches: (s) => has(s, 'uv__udp_io') || has(s, 'UDPWrap') },
  { name: 'other kernel (scheduling, timers)', matches: (s) => s.some(isKernel) },
];

export interface Share {
  name: string;
  samples: number;
}

/**
 * Samples by layer (main thread), plus V8's and libuv's helper threads as one line: where a
 * call's CPU goes, kernel and runtime included.
 */
export function layerShares(stacks: readonly Stack[], mainThread = 'MainThread'): Share[] {
  const counts = new Map<string, number>();
  const add = (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1);
  for (const s of stacks) {
    if (s.thread !== mainThread) {
      add('helper threads (GC, compilers, libuv pool)');
      continue;
    }
    const layer = LAYERS.find((l) => l.matches(s.frames));
    add(layer?.name ?? 'other native (allocator, runtime; stack not walked)');
  }
  return [...counts].map(([name, samples]) => ({ name, samples })).sort((a, b) => b.samples - a.samples);
}

/**
 * Samples by JavaScript function, each charged with the builtins, runtime and native code it
 * called (its nearest JS frame), sends apart: which of siplb's own functions cost what.
 */
export function jsShares(stacks: readonly Stack[], mainThread = 'MainThread'): Share[] {
  const counts = new Map<string, number>();
  for (const s of stacks) {
    if (s.thread !== mainThread) continue;
    let name: string | null = null;
    if (has(s.frames, 'Socket.send node:dgram')) name = '(dgram send, kernel included)';
    else {
      const js = s.frames.find(isJs);
      if (js !== undefined) name = js.symbol.startsWith('JS:') ? shortJsName(js.symbol) : '(JavaScript not named in the perf map)';
    }
    if (name !== null) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([n, samples]) => ({ name: n, samples })).sort((a, b) => b.samples - a.samples);
}

/** "JS:*'onRequest file:///repo/src/proxy/proxy.ts:203:20" -> "onRequest proxy/proxy.ts:203". */
export function shortJsName(symbol: string): string {
  const m = /^JS:[*+~^]?'?(.*?) (?:file:\/\/\/?.*?\/src\/|file:\/\/\/?.*?\/node_modules\/|)([^ ]*?)(?::\d+)?$/.exec(symbol);
  if (m === null) return symbol.slice(3);
  const fn = m[1] === '' ? '(anonymous)' : m[1];
  return `${fn} ${m[2]}`;
}
