/**
 * The run card from the CLI: `analyze`, `run` and `optimize` write, beside their own outputs, the files of the
 * workbench's run card (formats/run-card.ts) into OUT/ — recipe.json, the prompt sets with SHA-256, the sweep,
 * reproduce.sh with the exact command that was run (prompt flags reading the card's copies, --out inside the
 * card) and the model card README.md — so OUT/ is the same bundle `session.download` saves.
 * The plots are drawn by formats/svg-chart.ts (AUC and reference cosine per layer): the workbench's other plots
 * (heatmap, histograms, the layer-choice view) are Plotly figures of the page, which Node does not have. Not
 * written: layers.csv (the workbench's layer table lives in its UI state; the CLI prints the table instead) and
 * session.json (workbench state).
 */
import { basename } from 'node:path';
import type { PromptRecord } from '../formats/prompts';
import { baseModelId, buildModelCard, TOOL, type ModelCardResults } from '../formats/model-card';
import { cardArguments, reproduceScript, runCardFiles, type PromptSetName } from '../formats/run-card';
import { sha256Hex } from '../core/sha256';
import { lineChartSvg } from '../formats/svg-chart';

export interface CliRunCard {
  command: 'analyze' | 'run' | 'optimize';
  /** The command's arguments as given (after the command name). */
  argv: readonly string[];
  modelDir: string;
  /** config.json's fields (for the base model's Hub id), or null. */
  config: Record<string, unknown> | null;
  prompts: Partial<Record<PromptSetName, readonly PromptRecord[]>>;
  /** The recipe the card describes (the recommended layer, or the chosen trial's). */
  recipe: Record<string, unknown>;
  /** The directions.safetensors row the recipe's direction is, or null for a fractional / per-layer direction. */
  layer: number | null;
  directions: Uint8Array;
  results: ModelCardResults | null;
  /** report.json's per-layer figures, for the plots. */
  report: { bestLayer: number; counts: { heldOut: number }; layers: { index: number; auc: number; aucTrain: number; cosineReference?: number | null }[] };
  /** sweep.json's content, when the command swept layers. */
  sweep?: unknown;
  /** Files the command writes itself (report.json, directions.safetensors, eval.json, trials.jsonl…), for the README's list. */
  written: readonly string[];
}

/** Prompt sets as the card stores them, from the Conversation (messages) lists the engine uses. */
export function promptRecords(conversations: readonly (readonly PromptRecord['messages'][number][])[]): PromptRecord[] {
  return conversations.map((messages) => ({ messages: [...messages] }));
}

/** plots/auc.svg (held-out and train AUC per layer) and, with a reference, plots/cosine.svg. */
export function reportPlots(report: CliRunCard['report']): Record<string, string> {
  const marker = { x: report.bestLayer, label: `recommended ${report.bestLayer}` };
  const plots: Record<string, string> = {
    auc: lineChartSvg({
      title: 'Separation of A and B along each layer\'s direction',
      xLabel: 'layer (hidden-state index; 0 = embedding output)',
      yLabel: 'AUC',
      yRange: [0, 1],
      series: [
        { name: report.counts.heldOut > 0 ? 'AUC (held-out)' : 'AUC (train; none held out)', color: '#1f77b4', points: report.layers.map((layer) => [layer.index, layer.auc]) },
        { name: 'AUC (train)', color: '#ff7f0e', points: report.layers.map((layer) => [layer.index, layer.aucTrain]) },
      ],
      marker,
    }),
  };
  if (report.layers.some((layer) => typeof layer.cosineReference === 'number')) {
    plots.cosine = lineChartSvg({
      title: 'Cosine with the reference direction',
      xLabel: 'layer (hidden-state index; 0 = embedding output)',
      yLabel: 'cosine',
      yRange: [-1, 1],
      series: [{ name: 'cos(r_l, reference)', color: '#2ca02c', points: report.layers.map((layer) => [layer.index, typeof layer.cosineReference === 'number' ? layer.cosineReference : null]) }],
      marker,
    });
  }
  return plots;
}

export function cliRunCardFiles(card: CliRunCard): Record<string, Uint8Array> {
  const present = new Set(Object.entries(card.prompts).filter(([, prompts]) => prompts && prompts.length > 0).map(([set]) => set as PromptSetName));
  const args = cardArguments([card.command, ...card.argv], present);
  const modelCard = buildModelCard(
    {
      baseModel: baseModelId(card.config ?? {}, basename(card.modelDir.replace(/[\\/]+$/, '')) || card.modelDir),
      libraryName: 'transformers',
      onnx: null,
      recipe: card.recipe,
      direction: { file: 'directions.safetensors', fileSha256: sha256Hex(card.directions), layer: card.layer, sha256: null },
      results: card.results,
      tool: TOOL,
      manifestFile: null,
    },
    null,
  );
  return runCardFiles(
    {
      recipe: card.recipe,
      prompts: card.prompts,
      ...(card.sweep !== undefined && card.sweep !== null ? { sweep: { json: `${JSON.stringify(card.sweep, null, 2)}\n` } } : {}),
      plots: reportPlots(card.report),
      reproduce: reproduceScript(args, [
        `Re-runs \`abliterate ${card.command}\` on this card's prompt files into $RUN_CARD/reproduced/. Run it where`,
        'npx abliterate resolves (a checkout of the Abliteration Workbench), with RUN_CARD set to this folder; --model',
        'is the path given originally (relative to where the command ran).',
      ]),
      modelCard,
    },
    card.written,
  );
}

/** Writes the card's files through `write` (an output folder's, relative paths). */
export async function writeCliRunCard(write: (path: string, bytes: Uint8Array) => Promise<void>, card: CliRunCard): Promise<void> {
  for (const [path, bytes] of Object.entries(cliRunCardFiles(card))) await write(path, bytes);
}
