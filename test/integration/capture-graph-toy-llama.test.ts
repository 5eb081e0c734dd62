/**
 * Acceptance: residuals read out of toy-llama's own ONNX graph by the capture graph equal the hidden states of
 * an independent TypeScript float64 forward pass over its safetensors, for a left-padded batch of real prompts.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel } from '../../src/formats/onnx';
import type { ModelProto } from '../../src/formats/onnx';
import { activationName } from '../../src/model/activation-names';
import { buildCaptureGraph } from '../../src/model/capture-graph';
import { engineCaptureGraph } from '../../src/engine/capture';
import { llamaReferenceForward, loadLlamaReference } from '../helpers/llama-reference-forward';
import type { LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { TOY_LLAMA, maxAbsDifference, readPromptMessages, runLeftPadded, toyLlamaTokenIds } from '../helpers/toy-llama-session';

/** ONNX float32 vs float64 reference: 1e-4 is the bound the capture must meet. */
const HIDDEN_STATE_TOLERANCE = 1e-4;
const LOGITS_TOLERANCE = 1e-4;
const PROMPTS_PER_FILE = 3;

describe('capture graph on toy-llama', () => {
  let model: ModelProto;
  let config: LlamaReferenceConfig;
  let weights: Map<string, Float32Array>;
  let batch: number[][];

  beforeAll(async () => {
    model = decodeOnnxModel('toy-llama/onnx/model.onnx', readFileSync(`${TOY_LLAMA}/onnx/model.onnx`));
    ({ config, weights } = await loadLlamaReference(TOY_LLAMA));
    const conversations = ['harmful_test.jsonl', 'harmless_test.jsonl', 'shell_agent_test.jsonl'].flatMap((file) => readPromptMessages(file, PROMPTS_PER_FILE));
    batch = await toyLlamaTokenIds(conversations);
  });

  it('returns every hidden state at the last two positions within 1e-4 of the reference forward, logits too', async () => {
    expect(new Set(batch.map((ids) => ids.length)).size).toBeGreaterThan(1); // the batch really is left-padded
    const positions = [-2, -1];
    const capture = buildCaptureGraph(model, { positions, numLayers: config.numLayers });
    expect(capture.outputNames).toEqual([0, 1, 2, 3, 4].map((layer) => activationName(layer)));
    const outputs = await runLeftPadded(capture.model, batch, config, [...capture.outputNames, 'logits']);

    const d = config.hiddenSize;
    const width = Math.max(...batch.map((ids) => ids.length));
    let worstHidden = 0;
    let worstLogits = 0;
    batch.forEach((ids, row) => {
      const reference = llamaReferenceForward(config, weights, ids);
      capture.outputNames.forEach((name, layer) => {
        const tensor = outputs[name];
        expect(tensor.type).toBe('float32');
        expect(tensor.dims).toEqual([batch.length, positions.length, d]);
        positions.forEach((position, slot) => {
          const token = ids.length + position;
          const captured = (tensor.data as Float32Array).subarray((row * positions.length + slot) * d, (row * positions.length + slot + 1) * d); // [dModel]
          const expected = reference.hiddenStates[layer].subarray(token * d, (token + 1) * d);
          worstHidden = Math.max(worstHidden, maxAbsDifference(captured, expected));
        });
      });
      const vocab = config.vocabSize;
      const logits = (outputs.logits.data as Float32Array).subarray((row * width + width - 1) * vocab, (row * width + width) * vocab); // [vocab] at the last token
      worstLogits = Math.max(worstLogits, maxAbsDifference(logits, reference.logits.subarray((ids.length - 1) * vocab, ids.length * vocab)));
    });
    console.info(`toy-llama capture vs reference forward: max |Δ hidden| = ${worstHidden.toExponential(2)}, max |Δ logits| = ${worstLogits.toExponential(2)} over ${batch.length} prompts`);
    expect(worstHidden).toBeLessThan(HIDDEN_STATE_TOLERANCE);
    expect(worstLogits).toBeLessThan(LOGITS_TOLERANCE);
  });

  it('keeps the original outputs bit-identical to the unmodified graph', async () => {
    const capture = buildCaptureGraph(model, { positions: [-1] });
    const original = await runLeftPadded(model, batch.slice(0, 2), config, ['logits', 'present.3.value']);
    const captured = await runLeftPadded(capture.model, batch.slice(0, 2), config, ['logits', 'present.3.value']);
    expect(maxAbsDifference(captured.logits.data as Float32Array, original.logits.data as Float32Array)).toBe(0);
    expect(maxAbsDifference(captured['present.3.value'].data as Float32Array, original['present.3.value'].data as Float32Array)).toBe(0);
  });

  it('the engine graph (residual outputs only) returns the same residuals bit for bit without the LM head', async () => {
    const full = buildCaptureGraph(model, { positions: [-1], numLayers: config.numLayers });
    const engine = engineCaptureGraph(buildCaptureGraph(model, { positions: [-1], numLayers: config.numLayers }));
    expect(engine.outputNames).toEqual(full.outputNames);
    expect((engine.model.graph?.output ?? []).map((info) => info.name)).toEqual(full.outputNames);
    // Every graph input stays declared, so the engine's feeds (built from the session's inputs) still fit.
    expect((engine.model.graph?.input ?? []).map((info) => info.name)).toEqual((full.model.graph?.input ?? []).map((info) => info.name));
    // The LM head (the MatMul producing logits) and its weight are gone, and so is the final norm's gain.
    const lmHead = (full.model.graph?.node ?? []).find((node) => node.output?.includes('logits'));
    const initializers = new Set((engine.model.graph?.initializer ?? []).map((tensor) => tensor.name));
    expect(lmHead?.opType).toBe('MatMul');
    expect(initializers.has(lmHead?.input?.[1] ?? '')).toBe(false);
    expect(initializers.has('m.model.norm.weight')).toBe(false);
    expect((engine.model.graph?.node ?? []).some((node) => node.output?.includes('logits'))).toBe(false);
    expect(engine.model.graph?.node?.length).toBeLessThan(full.model.graph?.node?.length ?? 0);
    const fullOutputs = await runLeftPadded(full.model, batch, config, full.outputNames);
    const engineOutputs = await runLeftPadded(engine.model, batch, config, engine.outputNames);
    for (const name of full.outputNames) {
      expect(engineOutputs[name].dims).toEqual(fullOutputs[name].dims);
      expect(maxAbsDifference(engineOutputs[name].data as Float32Array, fullOutputs[name].data as Float32Array)).toBe(0);
    }
  });
});
