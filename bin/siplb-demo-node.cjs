#!/usr/bin/env node
// siplb-demo-node: see bin/launcher.cjs (the Node.js version check, then src/cli/siplb-demo-node.ts or dist/cli/siplb-demo-node.js).
require('./launcher.cjs').launch('siplb-demo-node');
