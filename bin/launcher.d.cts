// Types of launcher.cjs, for the tests that import it (test/packaging/launcher.test.ts).

/** [major, minor, patch] of "v24.1.0", "24.1", "24" (a pre-release or build tag ignored); null otherwise. */
export function parseVersion(text: string): [number, number, number] | null;
/** Whether a Node.js version satisfies an engines range (comparators, spaces, ||); throws on other syntax. */
export function satisfies(version: string, range: string): boolean;
/** null when `found` satisfies `range`, else "needs Node.js <range> (found <found>)". */
export function nodeProblem(found: string, range: string): string | null;
/** A digest of the paths and contents of every file dist/ is built from (src/, the tsconfig files). */
export function sourceStamp(root: string): string;
/** Where the build records sourceStamp (root/.dist-stamp). */
export function stampPath(root: string): string;
/** Whether the recorded stamp is today's sourceStamp. */
export function builtFromCurrentSource(root: string): boolean;
/**
 * dist/cli/<command>.js for an installed package, or a checkout whose dist/ was built from its
 * src/ as it is now (unless env.SIPLB_FROM_SOURCE is "1"); else src/cli/<command>.ts.
 */
export function entryPoint(root: string, command: string, env?: Record<string, string | undefined>): string;
/** Checks the running Node, then runs the command's module. */
export function launch(command: string): void;
