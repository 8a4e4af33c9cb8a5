#!/usr/bin/env -S node --max-semi-space-size=8 --no-maglev
// siplb: see bin/launcher.cjs (the Node.js version check, then src/cli/siplb.ts or dist/cli/siplb.js).
require('./launcher.cjs').launch('siplb');
