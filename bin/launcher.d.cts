// Types of launcher.cjs, for the tests that import it (test/packaging/launcher.test.ts).

/** [major, minor, patch] of "v24.1.0", "24.1", "24" (a pre-release or build tag ignored); null otherwise. */
export function parseVersion(text: string): [number, number, number] | null;
/** Whether a Node.js version satisfies an engines range (comparators, spaces, ||); throws on other syntax. */
export function satisfies(version: string, range: string): boolean;
/** null when `found` satisfies `range`, else "needs Node.js <range> (found <found>)". */
export function nodeProblem(found: string, range: string): string | null;
/** src/cli/<command>.ts under root when it exists, else dist/cli/<command>.js. */
export function entryPoint(root: string, command: string): string;
/** Checks the running Node, then runs the command's module. */
export function launch(command: string): void;
