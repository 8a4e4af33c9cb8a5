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

export function runRepoScript(relativePath: string, args: readonly string[]): RepoScript {
  const child = spawnOwned(nodeBinary(), [`${REPO_ROOT}${relativePath}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  const lines = new LineBuffer(10_000);
  captureOutput(child, lines);
  const closed = new Promise<void>((resolve) => child.process.once('close', () => resolve()));
  return { child, lines, closed };
}
