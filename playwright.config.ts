import { defineConfig } from '@playwright/test';

// Debian's Chromium (README "Requirements"): the tests never download a browser.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
// E2E_PORT lets two checkouts run their e2e suites side by side (each serves its own build).
const port = Number(process.env.E2E_PORT ?? 4173);

export default defineConfig({
  testDir: 'e2e',
  // The ≥ 1 GB export memory measurement takes minutes: opt in with EXPORT_MEMORY_BYTES=<bytes>.
  // Likewise the ≥ 2.5 GB external-data chat (LARGE_MODEL_BYTES=<bytes>).
  testIgnore: [...(process.env.EXPORT_MEMORY_BYTES ? [] : ['**/export-memory.spec.ts']), ...(process.env.LARGE_MODEL_BYTES ? [] : ['**/chat-large-model.spec.ts'])],
  timeout: 300_000,
  expect: { timeout: 60_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    // A laptop-sized window: the workbench lays its plots out two by two from 1200 px on.
    viewport: { width: 1440, height: 1000 },
    acceptDownloads: true,
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: chromiumPath,
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: `npm run build && npx vite preview --host 127.0.0.1 --port ${port} --strictPort`,
    url: `http://127.0.0.1:${port}`,
    timeout: 300_000,
    reuseExistingServer: !process.env.CI,
  },
});
