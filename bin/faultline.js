#!/usr/bin/env node
// Thin launcher: the harness is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import '../dist/harness/cli/main.js';
