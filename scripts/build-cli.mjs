// Builds the CLI's bundle ahead of its first run (npm's `prepare`, so `npm ci` leaves it ready); see
// bin/cli-bundle.mjs. Never fails an install: without a bundle the CLI compiles with tsx instead.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledCliEntry } from '../bin/cli-bundle.mjs';

const entry = await bundledCliEntry();
process.stdout.write(entry ? `abliterate CLI bundled: ${dirname(fileURLToPath(entry))}\n` : 'abliterate CLI: no bundle built; it will run through tsx\n');
