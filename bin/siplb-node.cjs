#!/usr/bin/env node
// siplb-node: see bin/launcher.cjs (the Node.js version check, then src/cli/siplb-node.ts or dist/cli/siplb-node.js).
require('./launcher.cjs').launch('siplb-node');
