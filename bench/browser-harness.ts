/**
 * The browser side of the bench: builds bench/pages/*.html with Vite (the app's own code and ORT build, bundled
 * as in production), serves the result with the cross-origin-isolation headers the wasm threads need, plus
 * byte buffers and disk files the Node side registers, and drives headless Debian Chromium with the flags of
 * playwright.config.ts (WebGPU there is SwiftShader: correct but slow).
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
/** The same flags as playwright.config.ts (no --ignore-gpu-blocklist: it is not needed and changes which adapter Chromium offers). */
export const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const repoRoot = path.resolve(import.meta.dirname, '..');
/** bench/pages/<name>.html */
export type BenchPage = 'capture' | 'kernels' | 'export';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
};

export interface BrowserHarness {
  /** Base URL of the bench server. */
  origin: string;
  browser: Browser;
  /** Serves `bytes` at `/data/<name>`. */
  addBytes(name: string, bytes: Uint8Array): string;
  /** Serves the file at `/files/<name>` (streamed from disk, Range not needed). */
  addFile(name: string, file: string): string;
  openPage(page: BenchPage): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Bundles one bench page into `outDir` (Vite's build API, no config file: the app's config is not ours). One
 * build per page, so a page whose code does not build yet does not take the other pages down with it.
 */
async function buildPage(page: BenchPage, outDir: string): Promise<void> {
  const { build } = await import('vite');
  await build({
    configFile: false,
    root: repoRoot,
    logLevel: 'silent',
    publicDir: false,
    build: {
      outDir,
      emptyOutDir: false,
      target: 'es2022',
      minify: false,
      chunkSizeWarningLimit: 100_000,
      rollupOptions: { input: { [page]: path.join(repoRoot, 'bench', 'pages', `${page}.html`) } },
    },
    worker: { format: 'es' },
  });
}

function firstLines(text: string): string {
  return text.split('\n').filter((line) => line.trim()).slice(0, 3).join(' / ').slice(0, 400);
}

export async function startBrowserHarness(log: (line: string) => void): Promise<BrowserHarness> {
  const outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'abliterate-bench-pages-'));
  const builds = new Map<BenchPage, Promise<void>>();
  const built = (page: BenchPage) => {
    if (!builds.has(page)) {
      const started = Date.now();
      builds.set(
        page,
        buildPage(page, outDir).then(
          () => log(`  bench page ${page} built in ${((Date.now() - started) / 1000).toFixed(1)} s`),
          (error: Error) => {
            throw new Error(`the ${page} bench page does not build: ${firstLines(error.message)}`);
          },
        ),
      );
    }
    return builds.get(page) as Promise<void>;
  };
  const buffers = new Map<string, Uint8Array>();
  const files = new Map<string, string>();
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const headers: Record<string, string> = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    const name = decodeURIComponent(url.pathname);
    if (name.startsWith('/data/') && buffers.has(name.slice(6))) {
      const bytes = buffers.get(name.slice(6)) as Uint8Array;
      response.writeHead(200, { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.byteLength) });
      response.end(bytes);
      return;
    }
    if (name.startsWith('/files/') && files.has(name.slice(7))) {
      const file = files.get(name.slice(7)) as string;
      void fs.stat(file).then((stats) => {
        response.writeHead(200, { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(stats.size) });
        createReadStream(file).pipe(response);
      });
      return;
    }
    const file = path.join(outDir, path.normalize(name).replace(/^(\.\.[/\\])+/, ''));
    fs.readFile(file)
      .then((bytes) => {
        response.writeHead(200, { ...headers, 'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' });
        response.end(bytes);
      })
      .catch(() => {
        response.writeHead(404, headers);
        response.end('not found');
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fs.rm(outDir, { recursive: true, force: true });
    throw error;
  }
  return {
    origin,
    browser,
    addBytes(name, bytes) {
      buffers.set(name, bytes);
      return `${origin}/data/${encodeURIComponent(name)}`;
    },
    addFile(name, file) {
      files.set(name, file);
      return `${origin}/files/${encodeURIComponent(name)}`;
    },
    async openPage(page) {
      await built(page);
      const context = await browser.newContext({ acceptDownloads: true });
      const tab = await context.newPage();
      tab.on('pageerror', (error) => log(`  [${page} page error] ${error.message}`));
      await tab.goto(`${origin}/bench/pages/${page}.html`);
      await tab.waitForFunction(() => (globalThis as { benchReady?: boolean }).benchReady === true, undefined, { timeout: 60_000 });
      return tab;
    },
    async close() {
      await browser.close().catch(() => undefined);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fs.rm(outDir, { recursive: true, force: true });
    },
  };
}
