// The CLI's TypeScript, bundled by esbuild into node_modules/.cache/abliterate-cli/<key>/ on first use and
// rebuilt whenever a file under src/ changes (the key hashes every source file's path, size and modification
// time, and esbuild's version). Why: compiling on the fly with tsx cost ~0.4 s and 0.6–0.7 CPU-s at every start
// (its loader hooks answer each import across threads, in the main thread and again in every kernel thread),
// a quarter of a 1 GB ablation's CPU. Packages stay external, resolved from the repository's node_modules as before.
// Anything that goes wrong here returns null, and bin/abliterate.mjs compiles with tsx instead.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheRoot = join(root, 'node_modules', '.cache', 'abliterate-cli');
const COMPLETE_MARKER = 'complete';
/** Bundles of earlier sources are removed once this old (a run that started from one may still be using it). */
const STALE_BUNDLE_MS = 24 * 60 * 60 * 1000;

function sourceKey(esbuildVersion) {
  const hash = createHash('sha256').update(`esbuild ${esbuildVersion}\n`);
  const walk = (folder) => {
    for (const name of readdirSync(folder).sort()) {
      const full = join(folder, name);
      const stats = statSync(full);
      if (stats.isDirectory()) walk(full);
      else hash.update(`${full}\0${stats.size}\0${stats.mtimeMs}\n`);
    }
  };
  walk(join(root, 'src'));
  const self = statSync(fileURLToPath(import.meta.url)); // the build's own options
  hash.update(`bundle ${self.size}\0${self.mtimeMs}\n`);
  return hash.digest('hex').slice(0, 20);
}

function build(esbuild, folder) {
  // Built beside its final place and renamed into it, so a run never sees half a bundle, and two runs
  // building at once both end up with a complete one.
  const building = `${folder}.building-${process.pid}-${Date.now()}`;
  try {
    esbuild.buildSync({
      entryPoints: { main: join(root, 'src/cli/main.ts'), 'kernel-worker': join(root, 'src/cli/kernel-worker.ts') },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outdir: building,
      outExtension: { '.js': '.mjs' },
      logLevel: 'silent',
    });
    // The hashing thread's body is plain JavaScript, loaded beside the code that starts it.
    copyFileSync(join(root, 'src/cli/hash-worker.mjs'), join(building, 'hash-worker.mjs'));
    writeFileSync(join(building, COMPLETE_MARKER), '');
    try {
      renameSync(building, folder);
    } catch {
      if (!existsSync(join(folder, COMPLETE_MARKER))) throw new Error(`could not move the bundle into ${folder}`);
    }
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
}

function pruneOld(current) {
  for (const name of readdirSync(cacheRoot)) {
    const folder = join(cacheRoot, name);
    if (folder === current) continue;
    try {
      if (Date.now() - statSync(folder).mtimeMs > STALE_BUNDLE_MS) rmSync(folder, { recursive: true, force: true });
    } catch {
      /* another run removed it */
    }
  }
}

/** The URL of the bundled CLI's main module, building it first if the sources changed; null when that fails. */
export async function bundledCliEntry() {
  try {
    // esbuild's version from its package file: loading esbuild itself (~35 ms) is left to the runs that build.
    const { version } = createRequire(import.meta.url)('esbuild/package.json');
    const folder = join(cacheRoot, sourceKey(version));
    if (!existsSync(join(folder, COMPLETE_MARKER))) {
      mkdirSync(cacheRoot, { recursive: true });
      build(await import('esbuild'), folder);
      pruneOld(folder);
    }
    return pathToFileURL(join(folder, 'main.mjs')).href;
  } catch {
    return null;
  }
}
