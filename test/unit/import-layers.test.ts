/**
 * The layer rule over the real import graph of src/ and workers/ (the same list eslint enforces file by file):
 * no import into a layer the list does not allow, no restricted package outside its layers, no cycle. The
 * checker itself is tested on small hand-made graphs first, so a checker that accepts everything fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importCycles, layerListCycles, layerViolations, parseImports, readImportGraph, repositoryRoot, type ImportEdge, type LayerList } from '../helpers/import-graph';

const list = JSON.parse(readFileSync(join(repositoryRoot, 'scripts/import-layers.json'), 'utf8')) as LayerList;
const edge = (from: string, to: string, typeOnly = false): ImportEdge => ({ from, specifier: to, to, typeOnly });

describe('the import checker', () => {
  it('rejects an upward import, accepts a downward one, and accepts types only where the list says so', () => {
    expect(layerViolations([edge('src/core/a.ts', 'src/base/errors.ts')], list)).toEqual(['src/core/a.ts: core may not import src/base/errors.ts (base)']);
    expect(layerViolations([edge('src/engine/a.ts', 'src/base/errors.ts')], list)).toEqual([]);
    expect(layerViolations([edge('src/protocol/a.ts', 'src/engine/b.ts', true)], list)).toEqual([]);
    expect(layerViolations([edge('src/protocol/a.ts', 'src/engine/b.ts', false)], list)).toHaveLength(1);
    expect(layerViolations([edge('src/ui/a.tsx', 'src/platform/browser-drop.ts')], list)).toEqual([]);
    expect(layerViolations([edge('src/ui/a.tsx', 'src/platform/ort-web.ts')], list)).toHaveLength(1);
  });

  it('rejects a restricted package outside its layers', () => {
    const pkg = (from: string, specifier: string): ImportEdge => ({ from, specifier, to: null, typeOnly: false });
    expect(layerViolations([pkg('src/ui/a.tsx', 'onnxruntime-web/webgpu')], list)).toHaveLength(1);
    expect(layerViolations([pkg('src/engine/a.ts', 'node:fs')], list)).toHaveLength(1);
    expect(layerViolations([pkg('src/platform/a.ts', 'onnxruntime-web/webgpu'), pkg('src/cli/a.ts', 'node:fs')], list)).toEqual([]);
  });

  it('finds a cycle of three modules and a self-import, and nothing in a chain', () => {
    expect(importCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts'), edge('c.ts', 'a.ts'), edge('c.ts', 'd.ts')])).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(importCycles([edge('a.ts', 'a.ts')])).toEqual([['a.ts']]);
    expect(importCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts'), edge('a.ts', 'c.ts')])).toEqual([]);
  });

  it('reads imports, re-exports, type-only imports and dynamic imports from source text', () => {
    const modules = new Set(['src/ui/a.ts', 'src/ui/b.ts', 'src/state/c.ts', 'src/state/d.ts', 'src/state/e.ts']);
    const text = "import { x } from './b';\nimport type { Y } from '../state/c';\nimport { type Z } from '../state/d';\nexport { w } from '../state/e';\nconst p = import('plotly.js-dist-min');\n";
    expect(parseImports('src/ui/a.ts', text, modules)).toEqual([
      { from: 'src/ui/a.ts', specifier: './b', to: 'src/ui/b.ts', typeOnly: false },
      { from: 'src/ui/a.ts', specifier: '../state/c', to: 'src/state/c.ts', typeOnly: true },
      { from: 'src/ui/a.ts', specifier: '../state/d', to: 'src/state/d.ts', typeOnly: true },
      { from: 'src/ui/a.ts', specifier: '../state/e', to: 'src/state/e.ts', typeOnly: false },
      { from: 'src/ui/a.ts', specifier: 'plotly.js-dist-min', to: null, typeOnly: false },
    ]);
  });
});

describe('src/ and workers/', () => {
  const edges = readImportGraph(repositoryRoot, ['src', 'workers']);

  it('the layer list is itself acyclic', () => {
    expect(layerListCycles(list)).toEqual([]);
  });

  it('every import goes down the layer list', () => {
    expect(edges.length).toBeGreaterThan(300);
    expect(layerViolations(edges, list)).toEqual([]);
  });

  it('no module imports itself through others', () => {
    expect(importCycles(edges)).toEqual([]);
  });
});
