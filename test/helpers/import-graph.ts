/**
 * The import graph of src/ and workers/, parsed with the TypeScript compiler, and the two checks the layer rule
 * asks of it (docs/architecture.md): every import goes to a layer scripts/import-layers.json allows, and no
 * module reaches itself again through its imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import ts from 'typescript';

export interface LayerSpec {
  dir: string;
  imports: string[];
  typeImports?: string[];
  packages?: string[];
}
export interface LayerList {
  layers: Record<string, LayerSpec>;
  restrictedPackages: string[];
}

export interface ImportEdge {
  from: string; // repository-relative module path, e.g. src/engine/capture.ts
  specifier: string;
  to: string | null; // the resolved module for relative imports; null for packages
  typeOnly: boolean;
}

const SOURCE = /\.(ts|tsx)$/;

export function listModules(root: string, dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const dir of dirs) walk(dir);
  return out.sort();
}

/** Every import, re-export and dynamic import() of one module's source text. */
export function parseImports(path: string, text: string, modules: ReadonlySet<string>): ImportEdge[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, false, path.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  const add = (specifier: string, typeOnly: boolean) => edges.push({ from: path, specifier, to: resolve(path, specifier, modules), typeOnly });
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const allNamedAreTypes = !!bindings && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((element) => element.isTypeOnly) && !clause?.name;
      add(node.moduleSpecifier.text, !!clause && (clause.isTypeOnly || allNamedAreTypes));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.exportClause;
      const allNamedAreTypes = !!clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((element) => element.isTypeOnly);
      add(node.moduleSpecifier.text, node.isTypeOnly || allNamedAreTypes);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

function resolve(from: string, specifier: string, modules: ReadonlySet<string>): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = posix.normalize(posix.join(posix.dirname(from), specifier.replace(/\?.*$/, '')));
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, `${base}/index.ts`]) if (modules.has(candidate)) return candidate;
  return base; // outside src/ and workers/ (package.json, a .json or .css file)
}

export function readImportGraph(root: string, dirs: readonly string[]): ImportEdge[] {
  const modules = listModules(root, dirs);
  const known = new Set(modules);
  return modules.flatMap((path) => parseImports(path, readFileSync(join(root, path), 'utf8'), known));
}

/** The layer a module belongs to: the one whose directory holds it; null for files outside every layer. */
export function layerOf(path: string, list: LayerList): string | null {
  let best: string | null = null;
  for (const [name, layer] of Object.entries(list.layers)) {
    if ((path === layer.dir || path.startsWith(`${layer.dir}/`)) && (best === null || layer.dir.length > list.layers[best].dir.length)) best = name;
  }
  return best;
}

const packageName = (specifier: string) => (specifier.startsWith('node:') ? 'node:' : specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/').replace(/\?.*$/, ''));

/** One line per import that breaks the layer list. */
export function layerViolations(edges: readonly ImportEdge[], list: LayerList): string[] {
  const problems: string[] = [];
  for (const edge of edges) {
    const layer = layerOf(edge.from, list);
    if (layer === null) {
      problems.push(`${edge.from}: not in any layer of scripts/import-layers.json`);
      continue;
    }
    const spec = list.layers[layer];
    if (edge.to === null) {
      const pkg = packageName(edge.specifier);
      if (list.restrictedPackages.includes(pkg) && !(spec.packages ?? []).includes(pkg)) problems.push(`${edge.from}: ${layer} may not use the package ${edge.specifier}`);
      continue;
    }
    const target = layerOf(edge.to, list);
    if (target === null || target === layer) continue; // JSON/CSS assets and imports within a layer
    const module = edge.to.slice(list.layers[target].dir.length + 1).replace(SOURCE, '');
    const allowed = spec.imports.includes(target) || spec.imports.includes(`${target}/${module}`) || (edge.typeOnly && (spec.typeImports ?? []).includes(target));
    if (!allowed) problems.push(`${edge.from}: ${layer} may not import ${edge.to} (${target}${(spec.typeImports ?? []).includes(target) ? ', types only' : ''})`);
  }
  return problems;
}

/** Every cycle among the modules (strongly connected components with more than one module, or a self-import). */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const edge of edges) {
    if (edge.to === null || !SOURCE.test(edge.to)) continue;
    if (!next.has(edge.from)) next.set(edge.from, new Set());
    next.get(edge.from)!.add(edge.to);
  }
  // Tarjan's strongly connected components, iteratively over a sorted node list for stable output.
  const nodes = [...new Set([...next.keys(), ...[...next.values()].flatMap((set) => [...set])])].sort();
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let counter = 0;
  const connect = (root: string) => {
    const work: { node: string; children: string[] }[] = [];
    const enter = (node: string) => {
      index.set(node, counter);
      low.set(node, counter++);
      stack.push(node);
      onStack.add(node);
      work.push({ node, children: [...(next.get(node) ?? [])].sort() });
    };
    enter(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const child = frame.children.shift();
      if (child !== undefined) {
        if (!index.has(child)) enter(child);
        else if (onStack.has(child)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!));
        continue;
      }
      work.pop();
      if (work.length > 0) low.set(work[work.length - 1].node, Math.min(low.get(work[work.length - 1].node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || next.get(frame.node)?.has(frame.node)) cycles.push(component.sort());
      }
    }
  };
  for (const node of nodes) if (!index.has(node)) connect(node);
  return cycles;
}

/** Whether the layer list itself is acyclic: no layer can reach itself through what it may import. */
export function layerListCycles(list: LayerList): string[] {
  const edges: ImportEdge[] = [];
  for (const [name, layer] of Object.entries(list.layers)) {
    for (const entry of [...layer.imports, ...(layer.typeImports ?? [])]) {
      edges.push({ from: `${name}.ts`, specifier: entry, to: `${entry.split('/')[0]}.ts`, typeOnly: false });
    }
  }
  return importCycles(edges).map((cycle) => cycle.map((node) => node.replace(SOURCE, '')).join(' ↔ '));
}

export const repositoryRoot = relative(process.cwd(), join(dirname(new URL(import.meta.url).pathname), '..', '..')) || '.';
