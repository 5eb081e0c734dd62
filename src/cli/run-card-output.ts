/**
 * The run card from the CLI: `analyze`, `run` and `optimize` write, beside their own outputs, the files of the
 * workbench's run card (formats/run-card.ts) into OUT/ — recipe.json, the prompt sets with SHA-256, the sweep,
 * reproduce.sh with the exact command that was run (prompt flags reading the card's copies, --out inside the
 * card) and the model card README.md — so OUT/ is the same bundle `session.download` saves.
 * Not written here: plots/*.svg and layers.csv (the workbench renders its plots with Plotly in the page, and
 * its layer table lives in the UI's state; the CLI prints the table instead) and session.json (workbench state).
 */
import { basename } from 'node:path';
import type { PromptRecord } from '../formats/prompts';
import { baseModelId, buildModelCard, TOOL, type ModelCardResults } from '../formats/model-card';
import { cardArguments, reproduceScript, runCardFiles, type PromptSetName } from '../formats/run-card';
import { sha256Hex } from '../core/sha256';

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
  /** sweep.json's content, when the command swept layers. */
  sweep?: unknown;
  /** Files the command writes itself (report.json, directions.safetensors, eval.json, trials.jsonl…), for the README's list. */
  written: readonly string[];
}

/** Prompt sets as the card stores them, from the Conversation (messages) lists the engine uses. */
export function promptRecords(conversations: readonly (readonly PromptRecord['messages'][number][])[]): PromptRecord[] {
  return conversations.map((messages) => ({ messages: [...messages] }));
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
