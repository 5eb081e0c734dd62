/**
 * `abliterate eval` (CONTRACTS.md): greedy replies on the refusal prompts and first-token KL on the compliance
 * prompts, base vs hook-ablated, written as eval.json. The output file appears only when complete
 * (written as FILE.partial, then renamed).
 */
import { parseDirectionFile, selectDirection } from '../formats/direction-file';
import { readModelConfig } from '../formats/hf-folder';
import { openNodeModelFolder } from '../platform/node-files';
import { contextLengthOf, DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS } from '../engine/generate';
import { EvaluationSession, type EvaluationReport } from '../engine/evaluate';
import { integerOption, parseCommandArgs, requireOption } from './args';
import {
  checkOutputFileFree,
  DIRECTION_ABLATION_OPTIONS,
  parseAblationOptions,
  readInputFile,
  readMarkerFile,
  readPromptConversations,
  withInterrupt,
  writeFileAtomically,
} from './common';
import { createProgressPrinter } from './progress-bar';

export const help = `Usage: abliterate eval --model DIR --direction FILE [--layer N] [--scale 1]
                     --harmful FILE --harmless FILE [--max-new-tokens ${DEFAULT_MAX_NEW_TOKENS}] --out FILE.json

Greedy generation, base vs hook-ablated (the ablation applied as graph hooks on DIR/onnx/model.onnx, which
equals the weight edit of 'abliterate ablate' with the same direction, scale and targets):
  refusal rate   replies to the --harmful prompts containing a refusal marker (DESIGN.md list), or empty
  klFirstToken   KL(base ‖ ablated) of the first reply token's distribution on the --harmless prompts,
                 averaged over prompts
Writes {"base":{"refusalRate":x},"ablated":{"refusalRate":y},"klFirstToken":k,"samples":[...]} plus
per-prompt KL, counts and settings.

Options:
  --model DIR            HF folder with config.json, tokenizer files and onnx/model.onnx
  --direction FILE       .safetensors (tensor 'direction' [d] or 'directions' [L+1, d]), .npy or .json
  --layer N              row of a per-layer direction file (0 = embedding output)
  --scale α              ablation strength (default 1)
  --targets LIST         comma-separated subset of embed,attn,mlp (default all three)
  --layers A-B           only blocks A..B for attn/mlp
  --harmful FILE         refusal prompts (.txt one per line, or .jsonl)
  --harmless FILE        compliance prompts
  --max-new-tokens N     reply length (default ${DEFAULT_MAX_NEW_TOKENS})
  --batch-size N         prompts per forward pass (default ${DEFAULT_BATCH_SIZE})
  --markers FILE         refusal markers instead of the default list (.json array or .txt one per line)
  --out FILE.json        where to write the result (a new file: an existing one is never overwritten)`;

export function formatEvaluation(report: EvaluationReport): string {
  const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
  return [
    `refusal rate  base ${percent(report.base.refusalRate)}  →  ablated ${percent(report.ablated.refusalRate)}  (${report.counts.harmful} prompts)`,
    `first-token KL(base ‖ ablated)  ${report.klFirstToken.toFixed(4)}  (${report.counts.harmless} prompts)`,
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('eval', argv, {
    model: { type: 'string' },
    ...DIRECTION_ABLATION_OPTIONS,
    harmful: { type: 'string' },
    harmless: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'batch-size': { type: 'string' },
    markers: { type: 'string' },
    out: { type: 'string' },
  });
  const modelDir = requireOption('eval', values, 'model');
  const directionPath = requireOption('eval', values, 'direction');
  const harmfulPath = requireOption('eval', values, 'harmful');
  const harmlessPath = requireOption('eval', values, 'harmless');
  const outPath = requireOption('eval', values, 'out');
  const { layer, scale, targets, layers } = parseAblationOptions(values);
  const maxNewTokens = integerOption(values, 'max-new-tokens', DEFAULT_MAX_NEW_TOKENS, (n) => n >= 1 && n <= 4096);
  const batchSize = integerOption(values, 'batch-size', DEFAULT_BATCH_SIZE, (n) => n >= 1 && n <= 1024);
  const markers = values.markers === undefined ? undefined : await readMarkerFile(values.markers as string);

  // Everything is read and validated before the model is loaded.
  await checkOutputFileFree(outPath);
  const folder = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(folder);
  const context = contextLengthOf(config.raw);
  const harmful = await readPromptConversations(harmfulPath, 'harmful prompt file', context);
  const harmless = await readPromptConversations(harmlessPath, 'harmless prompt file', context);
  const direction = selectDirection(parseDirectionFile(directionPath, await readInputFile(directionPath, 'direction file')), {
    layer,
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
  });

  const report = await withInterrupt(async (signal) => {
    const onProgress = createProgressPrinter();
    const session = await EvaluationSession.open(folder, { signal, onProgress });
    try {
      session.checkPromptsFit(harmful, harmfulPath);
      session.checkPromptsFit(harmless, harmlessPath);
      return await session.evaluate(
        { direction, scale, targets, ...(layers ? { layers } : {}) },
        { harmful, harmless },
        { maxNewTokens, batchSize, ...(markers ? { markers } : {}), signal, onProgress },
      );
    } finally {
      await session.dispose();
    }
  });
  const output = { ...report, direction: { file: directionPath, layer: layer ?? null } };
  await writeFileAtomically(outPath, `${JSON.stringify(output, null, 1)}\n`);
  process.stdout.write(`${formatEvaluation(report)}\nwrote ${outPath}\n`);
  return 0;
}
