// Runs before the e2e tests: they drive Debian's Chromium (no browser download is possible in this project's
// set-up), so a missing binary gets one clear message on how to install it instead of a launch error.
import { accessSync, constants } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
try {
  accessSync(path, constants.X_OK);
} catch {
  console.error(
    [
      `The end-to-end tests need Chromium, and ${path} is missing or not executable.`,
      'Install Debian\'s Chromium:   apt-get install -y chromium   (as root; the binary lands in /usr/lib/chromium/chromium)',
      'or point at another build:   CHROMIUM_PATH=/path/to/chromium npm test',
    ].join('\n'),
  );
  process.exit(1);
}
