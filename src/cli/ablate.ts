/**
 * `abliterate ablate`: orthogonalize a safetensors model folder against a direction (CONTRACTS.md).
 * Everything is validated (direction, config, every shard header, the index) before the output folder is created;
 * the output is written as OUT.partial/ and renamed to OUT only when complete.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { Sha256 } from '../core/sha256';
import { readModelConfig } from '../formats/hf-folder';
import { parseDirectionFile, selectDirection } from '../formats/direction-file';
import { ABLATION_TARGETS, type AblationTarget } from '../model/tensor-roles';
import { createNodeOutputFolder, openNodeModelFolder } from '../platform/node-files';
import { InvalidFileError, InvalidInputError } from '../protocol/errors';
import { DEFAULT_MAX_CHUNK_BYTES, MANIFEST_FILE, planAblation, writeAblation, type AblationManifest } from '../engine/ablate';
import { integerOption, numberOption, parseCommandArgs, requireOption } from './args';
import { createProgressPrinter } from './progress-bar';

/** Direction files hold at most a few hundred rows of d_model floats; anything bigger is not one. */
const MAX_DIRECTION_FILE_BYTES = 512 * 1024 * 1024;

export const help = `Usage: abliterate ablate --model DIR --direction FILE [--layer N] [--scale 1]
                        [--targets embed,attn,mlp] [--layers A-B] --out DIR

Orthogonalizes the weights of a Hugging Face safetensors model against a direction r (unit length):
  embedding E            E ← E − α (E r) rᵀ
  attention-out / MLP-down W (and their biases)   W ← W − α r (rᵀ W)
streaming shard by shard, so memory stays bounded whatever the model's size. Writes the same shard names,
the index, every other file of DIR byte for byte, and abliteration.json (direction sha256, layer, scale,
targets, edited tensors, sha256 of every output file). Output goes to OUT.partial/, renamed to OUT at the end.

Options:
  --model DIR        model folder with config.json and *.safetensors (single file or sharded with an index)
  --direction FILE   .safetensors (tensor 'direction' [d] or 'directions' [L+1, d]), .npy or .json
  --layer N          row of a per-layer direction file (hidden_states index: 0 = embedding output)
  --scale α          strength (default 1; 0 leaves the weights unchanged, 2 reflects)
  --targets LIST     comma-separated subset of embed,attn,mlp (default all three)
  --layers A-B       only blocks A..B (inclusive, 0-based) for attn/mlp; the embedding is governed by --targets
  --out DIR          output folder (must not exist or be empty)
  --chunk-mb N       largest chunk read at once, in MiB (default ${DEFAULT_MAX_CHUNK_BYTES / 1024 / 1024})`;

export function parseTargets(raw: string | undefined): AblationTarget[] {
  if (raw === undefined) return [...ABLATION_TARGETS];
  const targets: AblationTarget[] = [];
  for (const part of raw.split(',').map((item) => item.trim())) {
    if (!(ABLATION_TARGETS as readonly string[]).includes(part)) {
      throw new InvalidInputError(`--targets ${raw}: '${part}' is not one of ${ABLATION_TARGETS.join(', ')}`);
    }
    if (!targets.includes(part as AblationTarget)) targets.push(part as AblationTarget);
  }
  return targets;
}

export function parseLayerRange(raw: string | undefined): [number, number] | undefined {
  if (raw === undefined) return undefined;
  const match = /^(\d+)(?:-(\d+))?$/.exec(raw.trim());
  const range: [number, number] | null = match ? [Number(match[1]), Number(match[2] ?? match[1])] : null;
  if (!range || range[0] > range[1]) throw new InvalidInputError(`--layers ${raw} is not a block range A-B with A ≤ B (e.g. 4-20)`);
  return range;
}

async function readDirectionFile(path: string): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await fs.stat(path)).size;
  } catch {
    throw new InvalidInputError(`${path}: the direction file does not exist or cannot be read`);
  }
  if (size > MAX_DIRECTION_FILE_BYTES) throw new InvalidFileError(path, `is ${size} bytes, too large for a direction file`);
  return new Uint8Array(await fs.readFile(path));
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('ablate', argv, {
    model: { type: 'string' },
    direction: { type: 'string' },
    layer: { type: 'string' },
    scale: { type: 'string' },
    targets: { type: 'string' },
    layers: { type: 'string' },
    out: { type: 'string' },
    'chunk-mb': { type: 'string' },
  });
  const modelDir = requireOption('ablate', values, 'model');
  const directionPath = requireOption('ablate', values, 'direction');
  const outDir = requireOption('ablate', values, 'out');
  const layer = values.layer === undefined ? undefined : integerOption(values, 'layer', 0, (n) => n >= 0);
  const scale = numberOption(values, 'scale', 1);
  const targets = parseTargets(values.targets as string | undefined);
  const layers = parseLayerRange(values.layers as string | undefined);
  const chunkMebibytes = numberOption(values, 'chunk-mb', DEFAULT_MAX_CHUNK_BYTES / 1024 / 1024, (n) => n >= 0.001 && n <= 4096);

  const directionBytes = await readDirectionFile(directionPath);
  const input = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(input);
  const direction = selectDirection(parseDirectionFile(directionPath, directionBytes), { layer, hiddenSize: config.hiddenSize });
  const selection = { direction, scale, targets, layers };
  // Validate the whole input before creating anything on disk.
  const plan = await planAblation(input, selection);
  const output = await createNodeOutputFolder(outDir);

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  let manifest: AblationManifest;
  try {
    manifest = await writeAblation(plan, output, {
      ...selection,
      maxChunkBytes: Math.max(16, Math.floor(chunkMebibytes * 1024 * 1024)),
      directionSource: { file: directionPath, sha256: new Sha256().update(directionBytes).hexDigest(), layer: layer ?? null },
      // node:crypto hashes gigabytes ~20× faster than the portable implementation the browser uses.
      createHash: () => {
        const hash = createHash('sha256');
        return { update: (bytes: Uint8Array) => hash.update(bytes), hexDigest: () => hash.digest('hex') };
      },
      signal: controller.signal,
      onProgress: createProgressPrinter(),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(summarize(manifest, outDir, (Date.now() - started) / 1000));
  return 0;
}

function summarize(manifest: AblationManifest, outDir: string, seconds: number): string {
  const byRole = new Map<string, number>();
  for (const edit of manifest.edits) byRole.set(edit.role, (byRole.get(edit.role) ?? 0) + 1);
  const roles = [...byRole].map(([role, count]) => `${count} ${role}`).join(', ');
  const totalBytes = Object.values(manifest.files).reduce((sum, file) => sum + file.bytes, 0);
  const lines = [
    `Ablated ${manifest.editedTensors.length} tensors (${roles}) with scale ${manifest.scale}, targets ${manifest.targets.join(',')}` +
      (manifest.layers ? `, blocks ${manifest.layers[0]}-${manifest.layers[1]}` : ''),
    `  direction: ${manifest.direction.file}${manifest.direction.layer !== null ? ` layer ${manifest.direction.layer}` : ''} (unit vector sha256 ${manifest.direction.sha256.slice(0, 16)}…)`,
    `  output:    ${outDir} (${Object.keys(manifest.files).length} files, ${(totalBytes / 1e6).toFixed(1)} MB, ${seconds.toFixed(1)} s)`,
    `  manifest:  ${outDir}/${MANIFEST_FILE}`,
    ...manifest.notes.map((note) => `  note: ${note}`),
  ];
  return `${lines.join('\n')}\n`;
}
