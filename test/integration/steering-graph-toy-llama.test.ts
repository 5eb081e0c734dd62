/**
 * Steering graph ≡ a float64 reference forward with the vector added: the steering graph run by onnxruntime
 * on toy-llama must give the logits (and hidden states) of the TypeScript Llama forward that adds w·r to
 * hidden state l at every position, for the embedding output, a middle index and the last index.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel } from '../../src/formats/onnx';
import type { ModelProto } from '../../src/formats/onnx';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { buildSteeringGraph } from '../../src/model/steering-graph';
import { mulberry32 } from '../../src/core/random';
import { llamaReferenceForward, loadLlamaReference } from '../helpers/llama-reference-forward';
import type { LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { TOY_LLAMA, expectTopologicallySorted, maxAbsDifference, readPromptMessages, runLeftPadded, toyLlamaTokenIds } from '../helpers/toy-llama-session';

const LOGITS_TOLERANCE = 1e-4;
const HIDDEN_STATE_TOLERANCE = 1e-4;
/** Steering must move the logits by far more than the tolerance, or the comparison proves nothing. */
const MIN_EFFECT = 0.05;

function seededUnitDirection(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const values = Array.from({ length }, () => random() - 0.5);
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

describe('steering graph ≡ float64 forward with the added vector on toy-llama', () => {
  let model: ModelProto;
  let config: LlamaReferenceConfig;
  let weights: Map<string, Float32Array>;
  let batch: number[][];

  beforeAll(async () => {
    model = decodeOnnxModel('toy-llama/onnx/model.onnx', readFileSync(`${TOY_LLAMA}/onnx/model.onnx`));
    ({ config, weights } = await loadLlamaReference(TOY_LLAMA));
    batch = await toyLlamaTokenIds([...readPromptMessages('shell_agent_test.jsonl', 2), ...readPromptMessages('harmless_test.jsonl', 1)]);
  });

  for (const { layer, weight } of [{ layer: 0, weight: 1.5 }, { layer: 2, weight: 4 }, { layer: 4, weight: -3 }]) {
    it(`hidden-state index ${layer}, w = ${weight}`, async () => {
      const direction = seededUnitDirection(config.hiddenSize, 13 + layer);
      const steering = buildSteeringGraph(model, { layer, direction, weight });
      expectTopologicallySorted(steering.model);
      const capture = buildCaptureGraph(steering.model, { positions: [-1] });
      const outputs = await runLeftPadded(capture.model, batch, config, ['logits', ...capture.outputNames]);
      const base = await runLeftPadded(model, batch, config, ['logits']);
      const added = Array.from(direction, (value) => weight * value);

      const vocab = config.vocabSize;
      const d = config.hiddenSize;
      const width = Math.max(...batch.map((ids) => ids.length));
      let worstLogits = 0;
      let worstHidden = 0;
      let effect = 0;
      batch.forEach((ids, row) => {
        const reference = llamaReferenceForward(config, weights, ids, { index: layer, vector: added });
        const pad = width - ids.length;
        for (let token = 0; token < ids.length; token++) {
          const offset = (row * width + pad + token) * vocab;
          const steered = (outputs.logits.data as Float32Array).subarray(offset, offset + vocab); // [vocab]
          worstLogits = Math.max(worstLogits, maxAbsDifference(steered, reference.logits.subarray(token * vocab, (token + 1) * vocab)));
          effect = Math.max(effect, maxAbsDifference(steered, (base.logits.data as Float32Array).subarray(offset, offset + vocab)));
        }
        capture.outputNames.forEach((name, index) => {
          const captured = (outputs[name].data as Float32Array).subarray(row * d, (row + 1) * d); // [dModel] at the last token
          worstHidden = Math.max(worstHidden, maxAbsDifference(captured, reference.hiddenStates[index].subarray((ids.length - 1) * d, ids.length * d)));
        });
      });
      console.info(`toy-llama steering at index ${layer} (w = ${weight}): max |Δ logits| = ${worstLogits.toExponential(2)}, max |Δ hidden| = ${worstHidden.toExponential(2)}, effect on logits = ${effect.toFixed(3)}`);
      expect(effect).toBeGreaterThan(MIN_EFFECT);
      expect(worstLogits).toBeLessThan(LOGITS_TOLERANCE);
      expect(worstHidden).toBeLessThan(HIDDEN_STATE_TOLERANCE);
    });
  }

  it('rejects an index outside 0..L, a wrong-length direction and a non-finite weight', () => {
    const direction = seededUnitDirection(config.hiddenSize, 1);
    expect(() => buildSteeringGraph(model, { layer: config.numLayers + 1, direction, weight: 1 })).toThrow(/not a hidden-state index within 0\.\.4/);
    expect(() => buildSteeringGraph(model, { layer: 1, direction: direction.subarray(1), weight: 1 })).toThrow(/hidden size is 64/);
    expect(() => buildSteeringGraph(model, { layer: 1, direction, weight: Number.NaN })).toThrow(/finite number/);
  });
});
