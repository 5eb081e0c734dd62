import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['.*/', 'dist/', 'node_modules/', 'test-results/', 'playwright-report/', 'public/', '.vitest/', '**/*.partial/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // src/core is pure math: it must not reach into other layers (DESIGN.md import direction).
      'no-restricted-imports': 'off',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['../*', '!../core/*'], message: 'src/core is pure math: import nothing outside core.' }] },
      ],
    },
  },
  {
    files: ['src/ui/**/*.{ts,tsx}', 'src/state/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'onnxruntime-web', message: 'The UI never imports ORT: go through a worker client.' },
            { name: 'onnxruntime-node', message: 'The UI never imports ORT.' },
          ],
          patterns: [{ group: ['**/gpu/*', '**/engine/*'], message: 'The UI talks to workers through src/clients and src/protocol.' }],
        },
      ],
    },
  },
  {
    files: ['bin/**/*.mjs', 'scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
