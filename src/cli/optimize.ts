/**
 * `abliterate optimize` (docs/contracts.md): analyze, then a multi-objective search over ablation recipes
 * minimizing (refusal rate on the evaluation refusal prompts, first-token KL on the evaluation compliance
 * prompts). Writes OUT/report.json and OUT/directions.safetensors (as analyze), OUT/trials.jsonl (appended as
 * each trial ends), OUT/pareto.json, and prints the Pareto trials.
 */
import { join } from 'node:path';
import { DEFAULT_HELD_OUT_FRACTION, DEFAULT_SEED } from '../core/analysis';
import { PARAMETER_NAMES } from '../core/search-space';
import { DEFAULT_STARTUP_TRIALS } from '../core/tpe';
import { findOnnxGraphFiles } from '../formats/onnx-files';
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS } from '../engine/generate';
import { DEFAULT_KL_BOUND } from '../engine/layer-sweep';
import { chooseTrial, DEFAULT_SEARCH_TRIALS, runRecipeSearch } from '../engine/recipe-search';
import { encodeDirectionsSafetensors } from '../formats/direction-file';
import { readModelConfig } from '../formats/hf-folder';
import { serializeReport } from '../formats/report';
import { openNodeModelFolder } from '../platform/node-files';
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { DEFAULT_ACTION_KEYS } from '../core/action';
import { AGENT_OPTIONS, readAgentOptions } from './agent-options';
import { integerOption, numberOption, parseCommandArgs, requireOption } from './args';
import { parseSplitOptions, readMarkerFile, readPromptConversations, SPLIT_OPTIONS, withInterrupt } from './common';
import { openSearchOutput, PARETO_FILE, paretoTable, TRIALS_FILE } from './optimize-output';
import { promptRecords, writeCliRunCard } from './run-card-output';
import { parseSpaceOverrides } from './optimize-space';
import { prepareSearch } from './optimize-setup';
import { createProgressPrinter } from './progress-bar';

export const help = `Usage: abliterate optimize --model DIR --harmful FILE --harmless FILE --out OUT
                         [--eval-harmful FILE --eval-harmless FILE] [--trials ${DEFAULT_SEARCH_TRIALS}] [--seed 0]
                         [--max-new-tokens ${DEFAULT_MAX_NEW_TOKENS}] [--direction-range A-B] [--range NAME=A-B]... [--pin NAME=VALUE]...
                         [--sampler motpe|random] [--startup-trials ${DEFAULT_STARTUP_TRIALS}] [--kl-bound ${DEFAULT_KL_BOUND}] [--resume OUT]
                         [--agent FILE [--action-keys cmd,command]]

Searches ablation recipes (direction, projection, method, per-component weight kernels) for the ones that
remove the most refusals while changing the compliant answers' first token the least:
  1. analyze   per-layer directions and harmless means from the train split of --harmful/--harmless
  2. search    each trial proposes a recipe (multi-objective TPE after ${DEFAULT_STARTUP_TRIALS} random trials), hook-ablates the
               model (one onnxruntime session for every trial: the recipe's numbers are its inputs) and measures refusal rate on the evaluation refusal prompts and first-token KL on the
               evaluation compliance prompts (both minimized; a trial already dominated by its refusals is
               stopped early), plus false refusals on the compliance prompts and, with --agent, the
               action rate on the agent prompts (reported per trial, not optimized)
Writes OUT/report.json, OUT/directions.safetensors, OUT/trials.jsonl (one line as each trial ends),
OUT/pareto.json (the non-dominated trials, ascending refusal rate), and prints the Pareto trials with the
chosen one (lowest refusal rate with KL ≤ --kl-bound) marked. OUT is written as OUT.partial/ and renamed
when the search ends; Ctrl-C keeps OUT.partial/ with every finished trial: continue it with --resume.

Search parameters (--range NAME=A-B sets a range, --pin NAME=VALUE fixes one):
  ${PARAMETER_NAMES.join(', ')}
  directionMode: index | per-layer; method: standard | norm-preserving (the latter needs the safetensors);
  projection: none | harmless-mean | biprojected;
  attn.*/mlp.* are heretic's kernel {max, peak, min, distance} over blocks; embed a constant weight.
  Default direction range: the hidden-state indices whose held-out AUC is within 0.05 of the best.

Options:
  --model DIR             HF folder with onnx/model.onnx and the tokenizer
  --harmful FILE          refusal prompts (.txt or .jsonl): directions from their train split
  --harmless FILE         compliance prompts
  --eval-harmful FILE     refusal prompts the trials are scored on (default: the held-out split of --harmful)
  --eval-harmless FILE    compliance prompts the trials are scored on (default: the held-out split of --harmless)
  --trials N              total trials (default ${DEFAULT_SEARCH_TRIALS}; with --resume, previous trials count)
  --seed N                seed of the split and of the sampler (default ${DEFAULT_SEED})
  --held-out F            held-out fraction of each prompt file (default ${DEFAULT_HELD_OUT_FRACTION})
  --position N            token position for the analysis (default -1)
  --max-new-tokens N      reply length for refusal classification (default ${DEFAULT_MAX_NEW_TOKENS})
  --batch-size N          prompts per forward pass (default ${DEFAULT_BATCH_SIZE})
  --direction-range A-B   direction index range (fractional allowed), instead of the AUC-derived one
  --sampler NAME          motpe (default) or random (the baseline)
  --startup-trials N      random trials before the TPE model is used (default ${DEFAULT_STARTUP_TRIALS})
  --kl-bound K            KL bound of the chosen trial (default ${DEFAULT_KL_BOUND})
  --no-false-refusals     skip generating on the compliance prompts (faster; falseRefusalRate null)
  --markers FILE          refusal markers instead of the default list
  --resume DIR            continue the search in DIR (a finished OUT or a cancelled OUT.partial); --out defaults to it
  --threads N             onnxruntime threads for the capture (default: all cores)
  --agent FILE            agent-prompted requests: every finished trial records its "actionRate" (a reply with a
                          JSON command counts); report.json's optimize.agent holds the base model's rate
  --action-keys LIST      comma-separated JSON keys whose non-empty string makes a reply an action
                          (default ${DEFAULT_ACTION_KEYS.join(',')})`;

export async function run(argv: string[]): Promise<number> {
  const values = parseCommandArgs('optimize', argv, {
    model: { type: 'string' },
    harmful: { type: 'string' },
    harmless: { type: 'string' },
    'eval-harmful': { type: 'string' },
    'eval-harmless': { type: 'string' },
    out: { type: 'string' },
    trials: { type: 'string' },
    ...SPLIT_OPTIONS,
    'max-new-tokens': { type: 'string' },
    'batch-size': { type: 'string' },
    'direction-range': { type: 'string' },
    range: { type: 'string', multiple: true },
    pin: { type: 'string', multiple: true },
    sampler: { type: 'string' },
    'startup-trials': { type: 'string' },
    'kl-bound': { type: 'string' },
    'no-false-refusals': { type: 'boolean' },
    markers: { type: 'string' },
    resume: { type: 'string' },
    threads: { type: 'string' },
    ...AGENT_OPTIONS,
  });
  const modelDir = requireOption('optimize', values, 'model');
  const harmfulPath = requireOption('optimize', values, 'harmful');
  const harmlessPath = requireOption('optimize', values, 'harmless');
  const resume = values.resume as string | undefined;
  const outDir = (values.out as string | undefined) ?? (resume === undefined ? requireOption('optimize', values, 'out') : undefined);
  const rawTrials = values.trials as string | undefined;
  const trials = rawTrials === undefined ? DEFAULT_SEARCH_TRIALS : Number(rawTrials);
  if (!Number.isInteger(trials) || trials < 1) throw new InvalidInputError(`--trials ${rawTrials}: the number of trials must be a whole number ≥ 1`);
  const { position, heldOutFraction, seed } = parseSplitOptions(values);
  const maxNewTokens = integerOption(values, 'max-new-tokens', DEFAULT_MAX_NEW_TOKENS, (n) => n >= 1 && n <= 4096);
  const batchSize = integerOption(values, 'batch-size', DEFAULT_BATCH_SIZE, (n) => n >= 1 && n <= 1024);
  const startupTrials = integerOption(values, 'startup-trials', DEFAULT_STARTUP_TRIALS, (n) => n >= 0);
  const klBound = numberOption(values, 'kl-bound', DEFAULT_KL_BOUND, (n) => n >= 0);
  const threads = integerOption(values, 'threads', 0, (n) => n >= 0);
  const sampler = (values.sampler as string | undefined) ?? 'motpe';
  if (sampler !== 'motpe' && sampler !== 'random') throw new InvalidInputError(`--sampler ${sampler}: use motpe or random`);
  const overrides = parseSpaceOverrides(values['direction-range'] as string | undefined, values.range as string[] | undefined, values.pin as string[] | undefined);
  const markers = values.markers === undefined ? undefined : await readMarkerFile(values.markers as string);
  const agent = await readAgentOptions(values);
  if ((values['eval-harmful'] === undefined) !== (values['eval-harmless'] === undefined)) throw new InvalidInputError('give both --eval-harmful and --eval-harmless, or neither');

  // Everything cheap is read and checked before anything is computed.
  const harmful = await readPromptConversations(harmfulPath, 'harmful prompt file');
  const harmless = await readPromptConversations(harmlessPath, 'harmless prompt file');
  const evalFiles = values['eval-harmful'] === undefined ? null : {
    harmful: await readPromptConversations(values['eval-harmful'] as string, 'evaluation harmful prompt file'),
    harmless: await readPromptConversations(values['eval-harmless'] as string, 'evaluation harmless prompt file'),
    harmfulPath: values['eval-harmful'] as string,
    harmlessPath: values['eval-harmless'] as string,
  };
  const folder = await openNodeModelFolder(modelDir);
  const config = await readModelConfig(folder);
  const graphs = findOnnxGraphFiles(folder.list());
  if (!graphs) throw new InvalidFileError(join(modelDir, 'onnx'), 'no ONNX graph found; optimize needs a transformers.js export (onnx/model.onnx) beside the tokenizer');
  const output = await openSearchOutput(outDir, resume);
  const shownOut = outDir ?? output.finalPath;
  const onProgress = createProgressPrinter();
  const started = Date.now();

  const result = await withInterrupt(async (signal) => {
    const prepared = await prepareSearch(
      { folder, modelDir, graphs, numLayers: config.numLayers, harmful, harmless, harmfulPath, harmlessPath, evalFiles, position, heldOutFraction, seed, batchSize, threads, maxNewTokens, falseRefusals: !values['no-false-refusals'], overrides, ...(markers ? { markers } : {}), ...(agent ? { agent } : {}) },
      { signal, onProgress },
    );
    try {
      for (const note of prepared.notes) process.stderr.write(`optimize: ${note}\n`);
      await output.writeFile('report.json', serializeReport(prepared.outcome.report));
      await output.writeFile('directions.safetensors', encodeDirectionsSafetensors(prepared.outcome.directions, prepared.outcome.means));
      const search = await runRecipeSearch(prepared.evaluator, {
        space: prepared.space,
        trials,
        seed,
        sampler,
        startupTrials,
        previous: output.previous,
        signal,
        onProgress,
        onTrial: (record) => output.appendTrial(record),
      });
      return { outcome: prepared.outcome, search, space: prepared.space, counts: prepared.counts, agentBase: prepared.agentBase };
    } finally {
      await prepared.dispose();
    }
  });
  const { search } = result;
  if (search.cancelled) {
    process.stderr.write(`optimize: cancelled after ${search.trials.length} finished trial(s), kept in ${output.partialPath}/${TRIALS_FILE}; continue with --resume ${output.partialPath}\n`);
    return 130;
  }
  const chosen = chooseTrial(search.trials, klBound);
  const newTrials = search.trials.length - output.previous.length;
  const minutes = (Date.now() - started) / 60000;
  const report = result.outcome.report as Record<string, unknown>;
  report.optimize = {
    trials: search.trials.length,
    sampler,
    seed,
    startupTrials,
    space: result.space,
    evaluation: { source: evalFiles ? 'files' : 'held-out split', ...result.counts, maxNewTokens },
    ...(result.agentBase && agent ? { agent: { file: agent.path, count: result.agentBase.count, actionKeys: agent.actionKeys, base: { actionRate: result.agentBase.actionRate } } } : {}),
    paretoTrials: search.pareto.map((trial) => trial.trial),
    chosen: chosen ? { trial: chosen.trial, klBound, recipe: chosen.recipe, refusalRate: chosen.refusalRate, klFirstToken: chosen.klFirstToken, ...(chosen.actionRate !== undefined ? { actionRate: chosen.actionRate } : {}) } : null,
    trialsPerMinute: newTrials / minutes,
  };
  await output.writeFile('report.json', serializeReport(report as typeof result.outcome.report));
  if (chosen) {
    await writeCliRunCard((path, bytes) => output.writeFile(path, bytes), {
      command: 'optimize', argv, modelDir, config: config.raw, recipe: chosen.recipe, directions: encodeDirectionsSafetensors(result.outcome.directions),
      layer: typeof chosen.recipe.direction === 'number' && Number.isInteger(chosen.recipe.direction) ? chosen.recipe.direction : null,
      prompts: { harmful: promptRecords(harmful), harmless: promptRecords(harmless), ...(evalFiles ? { evalHarmful: promptRecords(evalFiles.harmful), evalHarmless: promptRecords(evalFiles.harmless) } : {}) },
      results: { source: `trial ${chosen.trial} in trials.jsonl (the lowest refusal rate with KL ≤ ${klBound})`, refusal: { base: null, ablated: chosen.refusalRate, count: result.counts.harmful }, klFirstToken: { value: chosen.klFirstToken, count: result.counts.harmless } },
      report: result.outcome.report, written: ['report.json', 'directions.safetensors', TRIALS_FILE, PARETO_FILE],
    });
  }
  await output.commit(search.trials);
  process.stdout.write(
    [
      '',
      `Pareto trials (${search.pareto.length} of ${search.trials.length}; refusal on ${result.counts.harmful} evaluation refusal prompts, KL on ${result.counts.harmless} compliance prompts):`,
      paretoTable(search.trials, chosen),
      '',
      chosen ? `chosen: trial ${chosen.trial} (lowest refusal rate with KL ≤ ${klBound})` : 'no trial finished',
      `${newTrials} trial(s) in ${(minutes * 60).toFixed(1)} s (${(newTrials / minutes).toFixed(1)} trials/min)`,
      `files written: ${shownOut}/report.json, directions.safetensors, trials.jsonl, pareto.json${chosen ? ', and the run card (recipe.json of the chosen trial, prompts/, reproduce.sh, README.md)' : ''}`,
      '',
    ].join('\n'),
  );
  return 0;
}
