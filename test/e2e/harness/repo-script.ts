// Runs one of this repository's TypeScript entry points (src/cli/*.ts) as an owned child process
// with the pinned Node, its stdout and stderr collected line by line.

import { captureOutput, LineBuffer, spawnOwned, type OwnedChild } from './children.ts';
import { REPO_ROOT, nodeBinary } from './siplb.ts';

export interface RepoScript {
  child: OwnedChild;
  lines: LineBuffer;
  /** Settles when the process has exited and its output has been read to the end. */
  closed: Promise<void>;
}

/** `netns`: run it in that network namespace (`ip netns exec`, which keeps the pid). */
export function runRepoScript(relativePath: string, args: readonly string[], netns?: string): RepoScript {
  const argv = [nodeBinary(), `${REPO_ROOT}${relativePath}`, ...args];
  const child = netns === undefined
    ? spawnOwned(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT })
    : spawnOwned('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  const lines = new LineBuffer(10_000);
  captureOutput(child, lines);
  const closed = new Promise<void>((resolve) => child.process.once('close', () => resolve()));
  return { child, lines, closed };
}
