/**
 * `abliterate eval` (docs/contracts.md): greedy replies on the refusal prompts and first-token KL on the compliance
 * prompts, base vs hook-ablated, written as eval.json. The output file appears only when complete
 * (written as FILE.partial, then renamed).
 */
import { readModelConfig } from '../formats/hf-folder';
import { openNodeModelFolder } from '../platform/node-files';
import { contextLengthOf, DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS } from '../engine/generate';
import { EvaluationSession, type EvaluationReport } from '../engine/evaluate';
import { integerOption, numberOption, parseCommandArgs, requireOption } from './args';
import {
  checkOutputFileFree,
  DIRECTION_ABLATION_OPTIONS,
  readInputFile,
  readMarkerFile,
  readPromptConversations,
  withInterrupt,
  writeFileAtomically,
} from './common';
import { createProgressPrinter } from './progress-bar';
import { agentHelp, AGENT_OPTIONS, PROTECT_HELP, PROTECT_OPTIONS, formatAgentEvaluation, protectShorthandDirection, readAgentOptions } from './agent-options';
import { RECIPE_HELP, RECIPE_OPTION, readCommandSelection } from './recipe-options';
import { evaluateAgentForAblation } from '../engine/agent-evaluation';
import { isShorthandSelection } from '../engine/ablation-selection';
import { evaluateSteering } from '../engine/steering';
import { InvalidInputError } from '../base/errors';
import { parseDirectionFile } from '../formats/direction-file';

export const help = `Usage: abliterate eval --model DIR --direction FILE [--layer N] [--scale 1]
                     --harmful FILE --harmless FILE [--max-new-tokens ${DEFAULT_MAX_NEW_TOKENS}]
                     [--agent FILE [--action-keys cmd,command]] [--protect-reference FILE]
                     [--steer-layer L --steer-weight W] --out FILE.json
       abliterate eval --model DIR --direction directions.safetensors --recipe recipe.json --harmful FILE ...

Greedy generation, base vs hook-ablated (the ablation applied as graph hooks on DIR/onnx/model.onnx, which
equals the weight edit of 'abliterate ablate' with the same direction, scale and targets):
  refusal rate   replies to the --harmful prompts containing a refusal marker (docs/definitions.md), or empty
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
  --recipe FILE          recipe.json instead of --layer/--scale/--targets/--layers (norm-preserving recipes
                         also read the folder's safetensors for their hook inputs)
  --harmful FILE         refusal prompts (.txt one per line, or .jsonl)
  --harmless FILE        compliance prompts
  --max-new-tokens N     reply length (default ${DEFAULT_MAX_NEW_TOKENS})
  --batch-size N         prompts per forward pass (default ${DEFAULT_BATCH_SIZE})
  --markers FILE         refusal markers instead of the default list (.json array or .txt one per line)
${agentHelp(25)}
${PROTECT_HELP}
  --steer-layer L        also evaluate additive steering x ← x + W·r at hidden-state index L (every position;
  --steer-weight W       r = the --direction row as selected): eval.json gains "steered" with its refusal rate,
                         first-token KL and agent figures, beside the ablation's. Steering is for preview and
                         evaluation only: no weight edit reproduces it, so 'abliterate ablate' has no such option
  --out FILE.json        where to write the result (a new file: an existing one is never overwritten)

${RECIPE_HELP}`;

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
    ...RECIPE_OPTION,
    harmful: { type: 'string' },
    harmless: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'batch-size': { type: 'string' },
    markers: { type: 'string' },
    ...AGENT_OPTIONS,
    ...PROTECT_OPTIONS,
    'steer-layer': { type: 'string' },
    'steer-weight': { type: 'string' },
    out: { type: 'string' },
  });
  const modelDir = requireOption('eval', values, 'model');
  const directionPath = requireOption('eval', values, 'direction');
  const harmfulPath = requireOption('eval', values, 'harmful');
  const harmlessPath = requireOption('eval', values, 'harmless');
  const outPath = requireOption('eval', values, 'out');
  const maxNewTokens = integerOption(values, 'max-new-tokens', DEFAULT_MAX_NEW_TOKENS, (n) => n >= 1 && n <= 4096);
  const batchSize = integerOption(values, 'batch-size', DEFAULT_BATCH_SIZE, (n) => n >= 1 && n <= 1024);
  const steer = values['steer-layer'] === undefined && values['steer-weight'] === undefined
    ? null
    : { layer: integerOption(values, 'steer-layer', -1, (n) => n >= 0), weight: numberOption(values, 'steer-weight', Number.NaN, Number.isFinite) };
  if (steer && (values['steer-layer'] === undefined || values['steer-weight'] === undefined)) throw new InvalidInputError('give both --steer-layer L and --steer-weight W');
  const markers = values.markers === undefined ? undefined : await readMarkerFile(values.markers as string);

  // Everything is read and validated before the model is loaded.
  await checkOutputFileFree(outPath);
  const folder = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(folder);
  const context = contextLengthOf(config.raw);
  const harmful = await readPromptConversations(harmfulPath, 'harmful prompt file', context);
  const harmless = await readPromptConversations(harmlessPath, 'harmless prompt file', context);
  const agent = await readAgentOptions(values);
  const { selection, directionSource } = await readCommandSelection(values, directionPath, config);
  const protectPath = values['protect-reference'] as string | undefined;
  const layer = directionSource.layer ?? undefined;
  // Protection and steering work on the shorthand's one direction.
  if (!isShorthandSelection(selection) && (protectPath || steer)) {
    throw new InvalidInputError('--protect-reference and --steer-layer/--steer-weight use the --layer direction; they cannot be combined with --recipe');
  }
  const selected = isShorthandSelection(selection) ? selection.direction : null;
  const protection = protectPath && selected ? protectShorthandDirection(selected, parseDirectionFile(protectPath, await readInputFile(protectPath, 'reference direction file')), layer, protectPath) : null;
  const spec = isShorthandSelection(selection) ? { ...selection, direction: protection?.direction ?? selection.direction } : selection;

  const report = await withInterrupt(async (signal) => {
    const onProgress = createProgressPrinter();
    const session = await EvaluationSession.open(folder, { signal, onProgress });
    try {
      session.checkPromptsFit(harmful, harmfulPath);
      session.checkPromptsFit(harmless, harmlessPath);
      if (agent) session.checkPromptsFit(agent.prompts, agent.path);
      const settings = { maxNewTokens, batchSize, ...(markers ? { markers } : {}), signal, onProgress };
      const evaluation = await session.evaluate(spec, { harmful, harmless }, settings);
      const agentEvaluation = agent ? await evaluateAgentForAblation(session, spec, agent.prompts, { ...settings, actionKeys: agent.actionKeys }) : null;
      if (steer && steer.layer > session.numLayers) throw new InvalidInputError(`--steer-layer ${steer.layer} is outside 0..${session.numLayers}`);
      const steered = steer && selected
        ? await evaluateSteering(session, { ...steer, direction: selected }, { harmful, harmless, ...(agent ? { agent: agent.prompts } : {}) }, { ...settings, ...(agent ? { actionKeys: agent.actionKeys } : {}) })
        : null;
      return { ...evaluation, ...(agentEvaluation ? { agent: agentEvaluation } : {}), ...(steered ? { steered } : {}) };
    } finally {
      await session.dispose();
    }
  });
  const output = {
    ...report,
    direction: { file: directionPath, layer: directionSource.layer, ...(protection ? { protectedAgainst: protectPath, cosineReferenceBefore: protection.cosineBefore } : {}) },
  };
  await writeFileAtomically(outPath, `${JSON.stringify(output, null, 1)}\n`);
  const steeredLine = report.steered
    ? `steering (index ${report.steered.layer}, w ${report.steered.weight}): refusal rate ${(report.steered.refusalRate * 100).toFixed(1)}%, first-token KL ${report.steered.klFirstToken.toFixed(4)}` +
      (report.steered.agent ? `, action rate ${(report.steered.agent.ablated.actionRate * 100).toFixed(1)}%` : '') + '\n'
    : '';
  process.stdout.write(`${formatEvaluation(report)}\n${report.agent ? `${formatAgentEvaluation(report.agent)}\n` : ''}${steeredLine}wrote ${outPath}\n`);
  return 0;
}
