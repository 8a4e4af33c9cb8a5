#!/usr/bin/env node
// siplb-advisor: see bin/launcher.cjs (the Node.js version check, then src/cli/siplb-advisor.ts or dist/cli/siplb-advisor.js).
require('./launcher.cjs').launch('siplb-advisor');
