import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// Cross-origin isolation gives the wasm backend SharedArrayBuffer, hence threads.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const demoModelDirectory = join(import.meta.dirname, 'public', 'models', 'demo');
const demoManifestId = 'virtual:demo-model-manifest';

function listFiles(root: string): { path: string; size: number }[] {
  const found: { path: string; size: number }[] = [];
  const walk = (directory: string) => {
    let names: string[];
    try {
      names = readdirSync(directory);
    } catch {
      return; // no demo model built yet: the manifest is empty and the UI says so
    }
    for (const name of names.sort()) {
      const full = join(directory, name);
      const stats = statSync(full);
      if (stats.isDirectory()) walk(full);
      else found.push({ path: relative(root, full).split(sep).join('/'), size: stats.size });
    }
  };
  walk(root);
  return found;
}

/**
 * The demo model is served as static files; a static server cannot list a folder (and `vite preview` answers an
 * unknown path with index.html and status 200), so the file list is baked in at build time.
 */
function demoModelManifest(): Plugin {
  return {
    name: 'demo-model-manifest',
    resolveId(id) {
      return id === demoManifestId ? '\0' + demoManifestId : undefined;
    },
    load(id) {
      if (id !== '\0' + demoManifestId) return undefined;
      return `export default ${JSON.stringify(listFiles(demoModelDirectory))};`;
    },
  };
}

export default defineConfig({
  plugins: [react(), demoModelManifest()],
  server: { host: '127.0.0.1', port: 5173, strictPort: true, headers: isolationHeaders },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true, headers: isolationHeaders },
  worker: { format: 'es', plugins: () => [demoModelManifest()] },
  optimizeDeps: { exclude: ['onnxruntime-web', '@huggingface/transformers'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 8000 },
});
