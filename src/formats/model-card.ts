/**
 * The model card (`README.md`) of an abliterated model: Hugging Face model-card front matter (`base_model`,
 * `tags: [abliterated, …]`, `library_name`, the base card's license), then what was done — the recipe, where
 * the direction came from, the refusal / KL / action results when they were measured, the tool and its version
 * — and below a rule the base model's own card text, kept as it was. Written by every export (the CLI's
 * `ablate` and `run`, the browser's export) and by the run card, all through `modelCardHead` / `buildModelCard`,
 * so the same inputs give the same bytes everywhere.
 */
import packageJson from '../../package.json';
import { InvalidFileError } from '../base/errors';

/** This tool, as cards and manifests name it. */
export const TOOL = { name: packageJson.name, version: packageJson.version } as const;

/** Measured figures, each with the number of prompts behind it. Any may be absent. */
export interface ModelCardResults {
  /** Where the figures come from, e.g. "eval.json: the recommended layer on the held-out split". */
  source: string;
  /** base: null when only the abliterated side was measured (a search trial). */
  refusal?: { base: number | null; ablated: number; count: number };
  klFirstToken?: { value: number; count: number };
  action?: { base: number | null; ablated: number; count: number };
}

export interface ModelCardFacts {
  /** A Hub id ("owner/name") when the base config names one, else the base folder's name. */
  baseModel: string;
  /** `transformers` when the folder holds safetensors, `transformers.js` for an ONNX-only folder. */
  libraryName: 'transformers' | 'transformers.js';
  /** 'ablated': onnx/ holds abliterated graphs; 'copied': ONNX files (if any) are the base model's; null: not an export. */
  onnx: 'ablated' | 'copied' | null;
  /** The recipe as recipe.json holds it. */
  recipe: Record<string, unknown>;
  direction: { file: string | null; fileSha256: string | null; layer: number | null; sha256: string | null };
  results: ModelCardResults | null;
  tool: { name: string; version: string };
  /** Files beside the card worth naming (e.g. "abliteration.json" with every file's SHA-256). */
  manifestFile: string | null;
}

const FRONT_MATTER_FENCE = /^---[ \t]*\r?\n/;
const FRONT_MATTER_END = /^(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/m;
/** Front-matter keys copied from the base card: the license and, for "other" licenses, its name and link. */
const COPIED_KEYS = ['license', 'license_name', 'license_link'];

/** The base card split into its YAML front matter (without fences; null when there is none) and its text. */
export function splitFrontMatter(text: string): { frontMatter: string | null; body: string } {
  const text0 = text.replace(/^\uFEFF/, '');
  const open = FRONT_MATTER_FENCE.exec(text0);
  if (!open) return { frontMatter: null, body: text };
  const rest = text0.slice(open[0].length);
  const close = FRONT_MATTER_END.exec(rest);
  if (!close) return { frontMatter: null, body: text };
  return { frontMatter: rest.slice(0, close.index), body: rest.slice(close.index + close[0].length) };
}

/** The top-level `license*` entries of a front matter, as their YAML lines (a scalar or a block list). */
export function copiedFrontMatterLines(frontMatter: string | null): string[] {
  if (!frontMatter) return [];
  const lines = frontMatter.split(/\r?\n/);
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const key = /^([A-Za-z_][\w-]*):/.exec(lines[i])?.[1];
    if (!key || !COPIED_KEYS.includes(key)) continue;
    kept.push(lines[i]);
    // A block value (a list or an indented mapping) continues on indented or "- " lines.
    while (i + 1 < lines.length && /^(\s+\S|-\s)/.test(lines[i + 1])) kept.push(lines[++i]);
  }
  return kept;
}

/** The base model's id: config.json's `_name_or_path` when it is a Hub id, else the folder's name. */
export function baseModelId(config: Record<string, unknown>, folderName: string): string {
  const named = config._name_or_path;
  if (typeof named === 'string' && /^[\w.-]+\/[\w.-]+$/.test(named) && !named.startsWith('.')) return named;
  const segments = folderName.split(/[\\/]/).filter((segment) => segment.length > 0);
  return segments[segments.length - 1] ?? 'model';
}

/** A YAML scalar: plain when it is safe, else a double-quoted (JSON) string, which YAML reads the same. */
function yamlScalar(value: string): string {
  return /^[A-Za-z0-9][\w./-]*$/.test(value) ? value : JSON.stringify(value);
}

const percent = (value: number | null) => (value === null ? '—' : `${(value * 100).toFixed(1)} %`);

function resultsSection(results: ModelCardResults | null): string[] {
  if (!results || (!results.refusal && !results.klFirstToken && !results.action)) {
    return ['Not measured for this export. `npx abliterate eval --model BASE --recipe recipe.json --harmful … --harmless …` measures the', 'refusal rate and the first-token KL of the same recipe (hook-ablated, identical to these weights).'];
  }
  const rows = ['| measure | base | abliterated | prompts |', '|---|---|---|---|'];
  if (results.refusal) rows.push(`| refusal rate | ${percent(results.refusal.base)} | ${percent(results.refusal.ablated)} | ${results.refusal.count} harmful |`);
  if (results.klFirstToken) rows.push(`| first-token KL(base ‖ abliterated) | — | ${results.klFirstToken.value.toPrecision(4)} | ${results.klFirstToken.count} harmless |`);
  if (results.action) rows.push(`| action rate (agent requests) | ${percent(results.action.base)} | ${percent(results.action.ablated)} | ${results.action.count} agent |`);
  return [`From ${results.source}.`, '', ...rows];
}

function directionLines(direction: ModelCardFacts['direction']): string[] {
  const lines: string[] = [];
  if (direction.file) {
    lines.push(`- File: \`${direction.file}\`${direction.fileSha256 ? ` (SHA-256 \`${direction.fileSha256}\`)` : ''}${direction.layer !== null ? `, row ${direction.layer} (hidden state ${direction.layer}: ${direction.layer === 0 ? 'the embedding output' : `after block ${direction.layer - 1}`})` : ''}.`);
  } else {
    lines.push('- Given in memory (no file).');
  }
  if (direction.sha256) lines.push(`- The unit vector(s) used, float32 little-endian: SHA-256 \`${direction.sha256}\`.`);
  return lines;
}

/**
 * The card down to (and including) the rule above the base card's text. `baseFrontMatter` is the base card's
 * front matter (splitFrontMatter), whose license is copied.
 */
export function modelCardHead(facts: ModelCardFacts, baseFrontMatter: string | null, hasBaseText: boolean): string {
  const tags = ['abliterated', 'abliteration-workbench', ...(facts.onnx === 'ablated' || facts.libraryName === 'transformers.js' ? ['onnx', 'transformers.js'] : [])];
  const front = [
    '---',
    `base_model: ${yamlScalar(facts.baseModel)}`,
    `library_name: ${facts.libraryName}`,
    ...copiedFrontMatterLines(baseFrontMatter),
    'pipeline_tag: text-generation',
    'tags:',
    ...tags.map((tag) => `- ${tag}`),
    '---',
  ];
  const onnxLine =
    facts.onnx === 'ablated'
      ? '`onnx/` holds abliterated graphs (transformers.js layout): they load in transformers.js and the workbench like the base model.'
      : facts.onnx === 'copied'
        ? 'Any ONNX files in `onnx/` are the base model\'s, unchanged: they do **not** include the ablation (export with `--onnx` for that).'
        : null;
  const lines = [
    ...front,
    '',
    `# ${facts.baseModel} — abliterated`,
    '',
    `${facts.baseModel} with its refusal direction removed from the weights by orthogonalization ("abliteration",`,
    `Arditi et al. 2024), made with ${facts.tool.name} ${facts.tool.version}.${facts.manifestFile ? ` \`${facts.manifestFile}\` lists every edited tensor and the SHA-256 of every file.` : ''}`,
    ...(onnxLine ? ['', onnxLine] : []),
    '',
    '## Recipe',
    '',
    '```json',
    JSON.stringify(facts.recipe, null, 2),
    '```',
    '',
    '## Direction',
    '',
    ...directionLines(facts.direction),
    '',
    '## Results',
    '',
    ...resultsSection(facts.results),
    '',
  ];
  if (hasBaseText) lines.push('---', '', '*The base model\'s card follows, unchanged.*', '', '');
  return lines.join('\n');
}

/** The whole card, with the base card (if any) below. */
export function buildModelCard(facts: ModelCardFacts, baseCard: string | null): string {
  const { frontMatter, body } = baseCard === null ? { frontMatter: null, body: '' } : splitFrontMatter(baseCard);
  return modelCardHead(facts, frontMatter, body.length > 0) + body;
}

/** The figures of an evaluation as eval.json (CLI) and the workbench's evaluation hold them. */
export interface EvaluationFigures {
  base: { refusalRate: number };
  ablated: { refusalRate: number };
  klFirstToken: number;
  counts: { harmful: number; harmless: number };
  agent?: { count: number; base: { actionRate: number }; ablated: { actionRate: number } } | null;
}

export function resultsFromEvaluation(evaluation: EvaluationFigures, source: string): ModelCardResults {
  return {
    source,
    refusal: { base: evaluation.base.refusalRate, ablated: evaluation.ablated.refusalRate, count: evaluation.counts.harmful },
    klFirstToken: { value: evaluation.klFirstToken, count: evaluation.counts.harmless },
    ...(evaluation.agent ? { action: { base: evaluation.agent.base.actionRate, ablated: evaluation.agent.ablated.actionRate, count: evaluation.agent.count } } : {}),
  };
}

const isRate = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1;
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

/** eval.json's figures (as `abliterate eval`/`run` write it), checked; one clear error naming the file otherwise. */
export function evaluationFiguresFromJson(file: string, text: string): EvaluationFigures {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidFileError(file, `is not valid JSON (${(error as Error).message})`);
  }
  const base = value?.base as Record<string, unknown> | undefined;
  const ablated = value?.ablated as Record<string, unknown> | undefined;
  const counts = value?.counts as Record<string, unknown> | undefined;
  if (!isRate(base?.refusalRate) || !isRate(ablated?.refusalRate) || typeof value.klFirstToken !== 'number' || !Number.isFinite(value.klFirstToken) || !isCount(counts?.harmful) || !isCount(counts?.harmless)) {
    throw new InvalidFileError(file, 'is not an eval.json of abliterate eval/run (needs base.refusalRate, ablated.refusalRate, klFirstToken and counts)');
  }
  const agent = value.agent as { count?: unknown; base?: { actionRate?: unknown }; ablated?: { actionRate?: unknown } } | undefined;
  const hasAgent = agent !== undefined && agent !== null && isCount(agent.count) && isRate(agent.base?.actionRate) && isRate(agent.ablated?.actionRate);
  return {
    base: { refusalRate: base!.refusalRate as number },
    ablated: { refusalRate: ablated!.refusalRate as number },
    klFirstToken: value.klFirstToken,
    counts: { harmful: counts!.harmful as number, harmless: counts!.harmless as number },
    ...(hasAgent ? { agent: { count: agent.count as number, base: { actionRate: agent.base!.actionRate as number }, ablated: { actionRate: agent.ablated!.actionRate as number } } } : {}),
  };
}
