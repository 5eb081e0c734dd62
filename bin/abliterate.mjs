#!/usr/bin/env node
// The CLI is written in TypeScript. It runs from a bundle that bin/cli-bundle.mjs keeps in step with src/ (no
// build step for headless users); where that cannot be built, tsx compiles it on the fly.
// ABLITERATE_TSX=1 forces the tsx path.
import { bundledCliEntry } from './cli-bundle.mjs';

const bundled = process.env.ABLITERATE_TSX === '1' ? null : await bundledCliEntry();
let main;
if (bundled) {
  ({ main } = await import(bundled));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
