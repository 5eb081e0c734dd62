/**
 * Writes the export's model card (`README.md`, formats/model-card.ts) into an ablated folder: the facts from the
 * plan (base model id, recipe, direction, ONNX state) and the caller's measured results, then the base folder's
 * own README.md copied below it byte for byte from where its front matter ends — streamed, so a card of any size
 * costs one chunk of memory. The base card's front matter is read from its first 64 KiB.
 */
import { recipeToJson } from '../core/recipe';
import { baseModelId, modelCardHead, TOOL, splitFrontMatter, type ModelCardFacts, type ModelCardResults } from '../formats/model-card';
import { readExactly } from '../formats/safetensors';
import type { OutputFolder } from '../ports/folder';
import { throwIfAborted } from '../base/errors';
import { directionsSha256, type DirectionProvenance } from './ablate-manifest';
import { MANIFEST_FILE, type AblationPlan } from './ablate-plan';
import { type ByteMeter, type IncrementalHash, type OutputFileRecord, writeFile } from './output-writer';

export const MODEL_CARD_FILE = 'README.md';
/** How much of the base card is searched for its front matter. */
const FRONT_MATTER_WINDOW_BYTES = 64 * 1024;

export function modelCardFacts(plan: AblationPlan, options: { directionSource?: DirectionProvenance; results?: ModelCardResults | null }): ModelCardFacts {
  return {
    baseModel: baseModelId(plan.config.raw, plan.input.name),
    libraryName: plan.shards.length > 0 ? 'transformers' : 'transformers.js',
    onnx: plan.onnx ? 'ablated' : 'copied',
    recipe: recipeToJson(plan.ablation.recipe),
    direction: {
      file: options.directionSource?.file ?? null,
      fileSha256: options.directionSource?.sha256 ?? null,
      layer: options.directionSource?.layer ?? null,
      sha256: directionsSha256(plan),
    },
    results: options.results ?? null,
    tool: TOOL,
    manifestFile: MANIFEST_FILE,
  };
}

export async function writeModelCard(
  plan: AblationPlan,
  output: OutputFolder,
  facts: ModelCardFacts,
  io: { createHash: () => IncrementalHash; meter: ByteMeter; maxChunkBytes: number; signal?: AbortSignal },
): Promise<OutputFileRecord> {
  const base = plan.otherFiles.find((file) => file.path === MODEL_CARD_FILE)?.source ?? null;
  let frontMatter: string | null = null;
  let bodyStart = 0;
  if (base) {
    const head = new TextDecoder().decode(await readExactly(base, 0, Math.min(base.size, FRONT_MATTER_WINDOW_BYTES)));
    const split = splitFrontMatter(head);
    if (split.frontMatter !== null) {
      frontMatter = split.frontMatter;
      bodyStart = new TextEncoder().encode(head.slice(0, head.length - split.body.length)).byteLength;
    }
  }
  const hasBaseText = base !== null && bodyStart < base.size;
  return writeFile(output, MODEL_CARD_FILE, io.createHash, async (sink) => {
    await sink.write(new TextEncoder().encode(modelCardHead(facts, frontMatter, hasBaseText)));
    if (!base) return;
    for (let offset = bodyStart; offset < base.size; offset += io.maxChunkBytes) {
      throwIfAborted(io.signal);
      await sink.write(await readExactly(base, offset, Math.min(io.maxChunkBytes, base.size - offset)));
    }
    io.meter.advance(base.size, MODEL_CARD_FILE);
  });
}
