import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The import rule: every layer of src/ and workers/ may import only the layers scripts/import-layers.json lists
 * for it (docs/architecture.md), and only its own restricted packages. test/unit/import-layers.test.ts checks
 * the same list over the whole import graph and also rejects cycles.
 */
const { layers, restrictedPackages } = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('./scripts/import-layers.json')), 'utf8'));

const packagePattern = (name) => (name === 'node:' ? ['node:*'] : [name, `${name}/*`]);

function layerRule(name, layer) {
  const allowed = new Set([name, ...layer.imports.filter((entry) => !entry.includes('/'))]);
  const allowedModules = layer.imports.filter((entry) => entry.includes('/'));
  const typeOnly = new Set(layer.typeImports ?? []);
  const patterns = [];
  for (const other of Object.keys(layers)) {
    if (allowed.has(other)) continue;
    const dirName = layers[other].dir.split('/').pop();
    const group = [`**/${dirName}/*`, ...allowedModules.filter((module) => module.startsWith(`${other}/`)).map((module) => `!**/${module}`)];
    patterns.push({
      group,
      message: `${name} may not import ${other} (scripts/import-layers.json, docs/architecture.md).`,
      ...(typeOnly.has(other) ? { allowTypeImports: true } : {}),
    });
  }
  const ownPackages = new Set(layer.packages ?? []);
  const forbiddenPackages = restrictedPackages.filter((pkg) => !ownPackages.has(pkg));
  if (forbiddenPackages.length > 0) {
    patterns.push({ group: forbiddenPackages.flatMap(packagePattern), message: `${name} may not use this package (scripts/import-layers.json).` });
  }
  return {
    files: [`${layer.dir}/**/*.{ts,tsx}`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  };
}

export default tseslint.config(
  { ignores: ['kernels/', '.*/', 'dist/', 'node_modules/', 'test-results/', 'playwright-report/', 'public/', '.vitest/', '**/*.partial/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  ...Object.entries(layers).map(([name, layer]) => layerRule(name, layer)),
  {
    files: ['bin/**/*.mjs', 'scripts/**/*.mjs', 'bench/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
  },
);
