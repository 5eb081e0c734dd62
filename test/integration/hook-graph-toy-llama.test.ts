/**
 * Hook graph ≡ weight edit on toy-llama: the hook graph run on the ORIGINAL weights must give the logits (and
 * hidden states) of the float64 reference forward run on ORTHOGONALIZED weights. The orthogonalization here is
 * written out from docs/definitions.md's formulas on purpose, independent of src/core/orthogonalize.ts.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel } from '../../src/formats/onnx';
import type { ModelProto } from '../../src/formats/onnx';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { buildHookGraph } from '../../src/model/hook-graph';
import type { HookTarget } from '../../src/model/hook-graph';
import { llamaReferenceForward, loadLlamaReference } from '../helpers/llama-reference-forward';
import type { LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { TOY_LLAMA, maxAbsDifference, readPromptMessages, runLeftPadded, toyLlamaTokenIds } from '../helpers/toy-llama-session';
import { mulberry32 } from '../../src/core/random';

const LOGITS_TOLERANCE = 1e-4;
const HIDDEN_STATE_TOLERANCE = 1e-4;
/** The edit must move the logits by far more than the tolerance, or the comparison proves nothing. */
const MIN_EFFECT = 0.05;

function seededUnitDirection(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const values = Array.from({ length }, () => random() - 0.5);
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

/** docs/definitions.md weight orthogonalization in float64, rounded once to float32. */
function orthogonalizeWeights(
  weights: Map<string, Float32Array>,
  config: LlamaReferenceConfig,
  direction: Float32Array,
  scale: number,
  targets: HookTarget[],
  layers: [number, number],
): Map<string, Float32Array> {
  const edited = new Map(weights);
  const d = config.hiddenSize;
  if (targets.includes('embed')) {
    const embedding = Float32Array.from(weights.get('model.embed_tokens.weight') as Float32Array); // [vocab, d]: E ← E − α (E r) rᵀ
    for (let row = 0; row < config.vocabSize; row++) {
      let along = 0;
      for (let k = 0; k < d; k++) along += embedding[row * d + k] * direction[k];
      for (let k = 0; k < d; k++) embedding[row * d + k] = embedding[row * d + k] - scale * along * direction[k];
    }
    edited.set('model.embed_tokens.weight', embedding);
  }
  const outProjections: string[] = [];
  for (let layer = layers[0]; layer <= layers[1]; layer++) {
    if (targets.includes('attn')) outProjections.push(`model.layers.${layer}.self_attn.o_proj.weight`);
    if (targets.includes('mlp')) outProjections.push(`model.layers.${layer}.mlp.down_proj.weight`);
  }
  for (const name of outProjections) {
    const original = weights.get(name) as Float32Array; // [d, in]: W ← W − α r (rᵀW)
    const columns = original.length / d;
    const projection = new Float64Array(columns);
    for (let row = 0; row < d; row++) for (let column = 0; column < columns; column++) projection[column] += direction[row] * original[row * columns + column];
    const result = new Float32Array(original.length);
    for (let row = 0; row < d; row++) for (let column = 0; column < columns; column++) result[row * columns + column] = original[row * columns + column] - scale * direction[row] * projection[column];
    edited.set(name, result);
  }
  return edited;
}

describe('hook graph ≡ weight edit on toy-llama', () => {
  let model: ModelProto;
  let config: LlamaReferenceConfig;
  let weights: Map<string, Float32Array>;
  let batch: number[][];

  beforeAll(async () => {
    model = decodeOnnxModel('toy-llama/onnx/model.onnx', readFileSync(`${TOY_LLAMA}/onnx/model.onnx`));
    ({ config, weights } = await loadLlamaReference(TOY_LLAMA));
    batch = await toyLlamaTokenIds([...readPromptMessages('harmful_test.jsonl', 2), ...readPromptMessages('shell_nosys_test.jsonl', 2)]);
  });

  const cases: { title: string; targets: HookTarget[]; scale: number; layers?: [number, number] }[] = [
    { title: 'embedding + every attention and MLP out-projection, α = 1', targets: ['embed', 'attn', 'mlp'], scale: 1 },
    { title: 'attention out-projections of blocks 1..2 only, α = 0.7', targets: ['attn'], scale: 0.7, layers: [1, 2] },
    { title: 'MLP down-projections and the embedding, α = 2 (reflection)', targets: ['embed', 'mlp'], scale: 2 },
  ];
  for (const testCase of cases) {
    it(`logits and hidden states match: ${testCase.title}`, async () => {
      const direction = seededUnitDirection(config.hiddenSize, 7);
      const layers = testCase.layers ?? [0, config.numLayers - 1];
      const hook = buildHookGraph(model, { direction, scale: testCase.scale, targets: testCase.targets, layers: testCase.layers });
      const perBlock = (layers[1] - layers[0] + 1) * testCase.targets.filter((target) => target !== 'embed').length;
      expect(hook.sites.length).toBe(perBlock + (testCase.targets.includes('embed') ? 1 : 0));
      // Capturing from the hooked graph gives the ablated hidden states too.
      const capture = buildCaptureGraph(hook.model, { positions: [-1] });
      const outputs = await runLeftPadded(capture.model, batch, config, ['logits', ...capture.outputNames]);
      const base = await runLeftPadded(model, batch, config, ['logits']);
      const edited = orthogonalizeWeights(weights, config, direction, testCase.scale, testCase.targets, layers);

      const vocab = config.vocabSize;
      const d = config.hiddenSize;
      const width = Math.max(...batch.map((ids) => ids.length));
      let worstLogits = 0;
      let worstHidden = 0;
      let effect = 0;
      batch.forEach((ids, row) => {
        const reference = llamaReferenceForward(config, edited, ids);
        const pad = width - ids.length;
        for (let token = 0; token < ids.length; token++) {
          const offset = (row * width + pad + token) * vocab;
          const hooked = (outputs.logits.data as Float32Array).subarray(offset, offset + vocab); // [vocab]
          worstLogits = Math.max(worstLogits, maxAbsDifference(hooked, reference.logits.subarray(token * vocab, (token + 1) * vocab)));
          effect = Math.max(effect, maxAbsDifference(hooked, (base.logits.data as Float32Array).subarray(offset, offset + vocab)));
        }
        capture.outputNames.forEach((name, layer) => {
          const captured = (outputs[name].data as Float32Array).subarray(row * d, (row + 1) * d); // [dModel] at the last token
          worstHidden = Math.max(worstHidden, maxAbsDifference(captured, reference.hiddenStates[layer].subarray((ids.length - 1) * d, ids.length * d)));
        });
      });
      console.info(`toy-llama hook vs weight edit (${testCase.title}): max |Δ logits| = ${worstLogits.toExponential(2)}, max |Δ hidden| = ${worstHidden.toExponential(2)}, effect of the edit on logits = ${effect.toFixed(3)}`);
      expect(effect).toBeGreaterThan(MIN_EFFECT);
      expect(worstLogits).toBeLessThan(LOGITS_TOLERANCE);
      expect(worstHidden).toBeLessThan(HIDDEN_STATE_TOLERANCE);
    });
  }
});
