/**
 * `abliterate ablate`: orthogonalize a safetensors model folder against a direction (docs/contracts.md).
 * Everything is validated (direction, config, every shard header, the index) before the output folder is created;
 * the output is written as OUT.partial/ and renamed to OUT only when complete.
 */
import { createHash } from 'node:crypto';
import { readModelConfig } from '../formats/hf-folder';
import { openNodeModelFolder } from '../platform/node-files';
import { createNodeOutputFolder } from '../platform/node-output';
import { createNodeKernelPool, defaultKernelThreads, type NodeKernelPool } from './kernel-pool';
import { HashThread } from './hash-thread';
import { checkEditsFitChunk, DEFAULT_MAX_CHUNK_BYTES, MANIFEST_FILE, planAblation, writeAblation, type AblationManifest } from '../engine/ablate';
import { integerOption, numberOption, parseCommandArgs, requireOption } from './args';
import { DIRECTION_ABLATION_OPTIONS, printNote, readInputText, withInterrupt } from './common';
import { evaluationFiguresFromJson, resultsFromEvaluation } from '../formats/model-card';
import { basename } from 'node:path';
import { createProgressPrinter } from './progress-bar';
import { RECIPE_HELP, RECIPE_OPTION, readCommandSelection } from './recipe-options';

export const help = `Usage: abliterate ablate --model DIR --direction FILE [--layer N] [--scale 1]
                        [--targets embed,attn,mlp] [--layers A-B] [--onnx] --out DIR
       abliterate ablate --model DIR --direction directions.safetensors --recipe recipe.json [--onnx] --out DIR

Orthogonalizes the weights of a Hugging Face safetensors model against a direction r (unit length):
  embedding E            E ← E − α (E r) rᵀ
  attention-out / MLP-down W (and their biases)   W ← W − α r (rᵀ W)
streaming shard by shard, so memory stays bounded whatever the model's size. Writes the same shard names,
the index, every other file of DIR byte for byte, README.md (a model card: base_model, tags, the recipe and
direction, with DIR's own README.md kept below it), and abliteration.json (direction sha256, layer, scale,
targets, edited tensors, sha256 of every output file). Output goes to OUT.partial/, renamed to OUT at the end.

Options:
  --model DIR        model folder with config.json and *.safetensors (single file or sharded with an index)
  --direction FILE   .safetensors (tensor 'direction' [d] or 'directions' [L+1, d]), .npy or .json
  --layer N          row of a per-layer direction file (hidden_states index: 0 = embedding output)
  --scale α          strength (default 1; 0 leaves the weights unchanged, 2 reflects)
  --targets LIST     comma-separated subset of embed,attn,mlp (default all three)
  --layers A-B       only blocks A..B (inclusive, 0-based) for attn/mlp; the embedding is governed by --targets
  --recipe FILE      recipe.json instead of --layer/--scale/--targets/--layers (see "Ablation recipes" below)
  --onnx             also abliterate the ONNX graphs in DIR/onnx/ (every decoder and its embed_tokens graph;
                     same file names, external data as <graph>.onnx_data): float weights are edited in place
                     like the safetensors, quantized ones (q4 MatMulNBits, q8, QDQ) get the ablation baked into
                     the graph as hook nodes (standard method only). A folder with ONNX and no safetensors
                     ablates with --onnx. Without it onnx/ is copied unchanged. The manifest says
                     "onnx": "ablated" | "copied".
  --eval FILE        an eval.json (abliterate eval or run) whose refusal rate, first-token KL and action rate
                     the model card README.md reports; without it the card says "not measured"
  --out DIR          output folder (must not exist or be empty)
  --chunk-mb N       largest chunk read at once, in MiB (default ${DEFAULT_MAX_CHUNK_BYTES / 1024 / 1024})
  --threads N        worker threads for the edit (default: one per core but one, 1 to 4, here ${defaultKernelThreads()}; 0 = the main
                     thread only); the output is the same bytes whatever N

${RECIPE_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('ablate', argv, {
    model: { type: 'string' },
    ...DIRECTION_ABLATION_OPTIONS,
    ...RECIPE_OPTION,
    out: { type: 'string' },
    'chunk-mb': { type: 'string' },
    threads: { type: 'string' },
    onnx: { type: 'boolean' },
    eval: { type: 'string' },
  });
  const modelDir = requireOption('ablate', values, 'model');
  const directionPath = requireOption('ablate', values, 'direction');
  const outDir = requireOption('ablate', values, 'out');
  const chunkMebibytes = numberOption(values, 'chunk-mb', DEFAULT_MAX_CHUNK_BYTES / 1024 / 1024, (n) => n >= 0.001 && n <= 4096);
  const threads = integerOption(values, 'threads', defaultKernelThreads(), (n) => n >= 0 && n <= 256);

  // The threads start now, so their start-up (a V8 isolate and the kernels each) overlaps validation.
  const pool = threads > 0 ? createNodeKernelPool(threads, true) : null;
  // With worker threads the hashes run on one more; --threads 0 keeps everything on the main thread.
  const hashThread = threads > 0 ? new HashThread() : null;
  try {
    return await validateAndWrite(values, { modelDir, directionPath, outDir, chunkMebibytes, pool, hashThread });
  } finally {
    await Promise.all([pool?.close(), hashThread?.close()]);
  }
}

async function validateAndWrite(
  values: Record<string, string | boolean | undefined>,
  { modelDir, directionPath, outDir, chunkMebibytes, pool, hashThread }: { modelDir: string; directionPath: string; outDir: string; chunkMebibytes: number; pool: NodeKernelPool | null; hashThread: HashThread | null },
): Promise<number> {
  const input = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(input);
  const { selection, directionSource } = await readCommandSelection(values, directionPath, config);
  const evalPath = values.eval as string | undefined;
  const results = evalPath === undefined ? null : resultsFromEvaluation(evaluationFiguresFromJson(evalPath, await readInputText(evalPath, 'eval file')), `${basename(evalPath)} (given with --eval)`);
  const maxChunkBytes = Math.max(16, Math.floor(chunkMebibytes * 1024 * 1024));
  // Validate the whole input before creating anything on disk.
  const plan = await planAblation(input, selection, directionSource.layer, { onnx: values.onnx === true });
  checkEditsFitChunk(plan, maxChunkBytes);
  const output = await createNodeOutputFolder(outDir, { inputs: [modelDir, directionPath, ...(typeof values.recipe === 'string' ? [values.recipe] : []), ...(evalPath ? [evalPath] : [])], onNote: printNote });

  const started = Date.now();
  const manifest = await withInterrupt((signal) =>
    writeAblation(plan, output, {
      ...selection,
      ...(pool ? { backend: pool } : {}),
      maxChunkBytes,
      directionSource,
      results,
      // node:crypto hashes gigabytes ~20× faster than the portable implementation the browser uses.
      createHash: hashThread
        ? () => hashThread.createHash()
        : () => {
            const hash = createHash('sha256');
            return { update: (bytes: Uint8Array) => hash.update(bytes), hexDigest: () => hash.digest('hex') };
          },
      signal,
      onProgress: createProgressPrinter(),
    }),
  );
  process.stdout.write(summarize(manifest, outDir, (Date.now() - started) / 1000));
  return 0;
}

function describeRecipe(manifest: AblationManifest): string {
  const { method, direction, projection } = manifest.recipe as { method: string; direction: number | string; projection: string };
  const strength = manifest.scale !== null ? `scale ${manifest.scale}` : 'per-block weights';
  return `${method} edit, ${strength}, direction ${direction}${projection !== 'none' ? ` (${projection})` : ''}, targets ${manifest.targets.join(',')}`;
}

function summarize(manifest: AblationManifest, outDir: string, seconds: number): string {
  const byRole = new Map<string, number>();
  for (const edit of manifest.edits) byRole.set(edit.role, (byRole.get(edit.role) ?? 0) + 1);
  const roles = [...byRole].map(([role, count]) => `${count} ${role}`).join(', ');
  const totalBytes = Object.values(manifest.files).reduce((sum, file) => sum + file.bytes, 0);
  const lines = [
    `Ablated ${manifest.editedTensors.length} tensors (${roles}) with ${describeRecipe(manifest)}` +
      (manifest.layers ? `, blocks ${manifest.layers[0]}-${manifest.layers[1]}` : ''),
    `  direction: ${manifest.direction.file}${manifest.direction.layer !== null ? ` layer ${manifest.direction.layer}` : ''} (unit vector sha256 ${manifest.direction.sha256.slice(0, 16)}…)`,
    `  output:    ${outDir} (${Object.keys(manifest.files).length} files, ${(totalBytes / 1e6).toFixed(1)} MB, ${seconds.toFixed(1)} s)`,
    `  manifest:  ${outDir}/${MANIFEST_FILE}`,
    `  onnx:      ${manifest.onnx}${manifest.onnxGraphs.length > 0 ? ` (${manifest.onnxGraphs.map((graph) => `${graph.file}: ${graph.editedInitializers.length} initializers edited, ${graph.bakedHooks.length} hooks baked`).join('; ')})` : ''}`,
    ...manifest.notes.map((note) => `  note: ${note}`),
  ];
  return `${lines.join('\n')}\n`;
}
