/**
 * Acceptance "hook graph ≡ weight edit" on the demo model: with the planted direction r, the hook graph on the
 * demo's ONNX gives the logits of the demo graph rebuilt (the demo builder's buildDemoOnnx) from safetensors
 * orthogonalized by the project's CPU weight math (src/core/orthogonalize.ts).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyRows, orthogonalizeColumns } from '../../src/core/orthogonalize';
import type { ModelProto } from '../../src/formats/onnx';
import { buildDemoOnnx } from '../../scripts/demo/demo-model';
import { buildHookGraph } from '../../src/model/hook-graph';
import type { HookTarget } from '../../src/model/hook-graph';
import { findResidualPoints } from '../../src/model/residual-finder';
import { llamaConfigFromJson, loadSafetensorsAsFloat32 } from '../helpers/llama-reference-forward';
import type { LlamaReferenceConfig } from '../helpers/llama-reference-forward';
import { chatTokenIds, maxAbsDifference, runLeftPadded } from '../helpers/toy-llama-session';

const DEMO = 'public/models/demo';
const LOGITS_TOLERANCE = 1e-4;
/**
 * The tied case edits the embedding that also serves as lm_head, so float32 rounding of the edited table meets
 * logits up to ~64 directly (ulp 7.6e-6); it is bounded relative to the largest logit instead.
 */
const TIED_RELATIVE_TOLERANCE = 1e-5;
const MIN_EFFECT = 0.05;

function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function toFloat32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

describe('hook graph ≡ weight edit on the demo model', () => {
  let configJson: Record<string, unknown>;
  let config: LlamaReferenceConfig;
  let weights: Map<string, Float32Array>;
  let model: ModelProto;
  let direction: Float32Array;
  let batch: number[][];

  beforeAll(async () => {
    configJson = JSON.parse(readFileSync(`${DEMO}/config.json`, 'utf8'));
    config = llamaConfigFromJson(configJson);
    weights = await loadSafetensorsAsFloat32(`${DEMO}/model.safetensors`);
    // Rebuilt rather than read from onnx/model.onnx, so base and edited graphs differ only in their weights.
    model = buildDemoOnnx(configJson, weights);
    direction = Float32Array.from((JSON.parse(readFileSync(`${DEMO}/planted_direction.json`, 'utf8')) as { direction: number[] }).direction);
    const prompts = ['harmful.test.jsonl', 'harmless.test.jsonl'].flatMap((file) =>
      readFileSync(`public/prompts/${file}`, 'utf8').split('\n').filter((line) => line.trim()).slice(0, 2).map((line) => [{ role: 'user', content: (JSON.parse(line) as { prompt: string }).prompt }]),
    );
    batch = await chatTokenIds('public/models/', 'demo', prompts);
  });

  it('is found as a demo-style graph with L + 1 residual points', () => {
    const residual = findResidualPoints(model, { numLayers: config.numLayers });
    expect(residual.style).toBe('demo');
    expect(residual.points).toEqual(['/model/embed_tokens/Gather_output_0', ...[0, 1, 2, 3].map((layer) => `/model/layers.${layer}/Add_1_output_0`)]);
  });

  /** Embedding, o_proj and down_proj orthogonalized by src/core/orthogonalize.ts. */
  function orthogonalized(source: Map<string, Float32Array>, scale: number, direction: Float32Array): Map<string, Float32Array> {
    const d = config.hiddenSize;
    const edited = new Map(source);
    const embedding = source.get('model.embed_tokens.weight') as Float32Array; // [vocab, d]
    edited.set('model.embed_tokens.weight', toFloat32(applyRows(floatBytes(embedding), 'F32', config.vocabSize, d, direction, scale)));
    for (let layer = 0; layer < config.numLayers; layer++) {
      for (const name of [`model.layers.${layer}.self_attn.o_proj.weight`, `model.layers.${layer}.mlp.down_proj.weight`]) {
        const weight = source.get(name) as Float32Array; // [d, in]
        edited.set(name, toFloat32(orthogonalizeColumns(floatBytes(weight), 'F32', d, weight.length / d, direction, scale)));
      }
    }
    return edited;
  }

  it('with a tied lm_head, hooking its input too equals editing the shared embedding (α = 0.6)', async () => {
    // The demo's embedding rows are orthogonal to the planted direction (E r = 0 leaves a tied head unchanged),
    // so this case uses a generic direction.
    const generic = Float32Array.from({ length: config.hiddenSize }, (_, k) => Math.cos(1.3 * k + 0.2));
    const length = Math.hypot(...generic);
    const direction = generic.map((value) => value / length);
    const tiedConfig = { ...configJson, tie_word_embeddings: true };
    const tiedWeights = new Map([...weights].filter(([name]) => name !== 'lm_head.weight'));
    const tiedModel = buildDemoOnnx(tiedConfig, tiedWeights);
    const rebuilt = buildDemoOnnx(tiedConfig, orthogonalized(tiedWeights, 0.6, direction));
    const hook = buildHookGraph(tiedModel, { direction, scale: 0.6, targets: ['embed', 'attn', 'mlp'], tiedEmbeddings: true });
    expect(hook.sites.map((site) => site.target)).toContain('lm_head');
    const untiedHook = buildHookGraph(tiedModel, { direction, scale: 0.6, targets: ['embed', 'attn', 'mlp'] });
    const [fromHook, fromUntiedHook, fromWeights] = await Promise.all([hook.model, untiedHook.model, rebuilt].map((graph) => runLeftPadded(graph, batch, config, ['logits'])));
    const difference = maxAbsDifference(fromHook.logits.data as Float32Array, fromWeights.logits.data as Float32Array);
    const withoutHeadHook = maxAbsDifference(fromUntiedHook.logits.data as Float32Array, fromWeights.logits.data as Float32Array);
    const largest = (fromWeights.logits.data as Float32Array).reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    console.info(`demo (tied) hook vs rebuilt: max |Δ logits| = ${difference.toExponential(2)} (largest |logit| ${largest.toFixed(1)}); without the lm_head hook ${withoutHeadHook.toFixed(3)}`);
    expect(difference).toBeLessThan(TIED_RELATIVE_TOLERANCE * Math.max(1, largest));
    expect(withoutHeadHook).toBeGreaterThan(MIN_EFFECT);
  });

  it('gives the logits of the graph rebuilt from orthogonalized safetensors (embed + attn + mlp, α = 1)', async () => {
    const targets: HookTarget[] = ['embed', 'attn', 'mlp'];
    const edited = orthogonalized(weights, 1, direction);
    const rebuilt = buildDemoOnnx(configJson, edited);
    const hook = buildHookGraph(model, { direction, scale: 1, targets, tiedEmbeddings: config.tieWordEmbeddings });
    const fromHook = await runLeftPadded(hook.model, batch, config, ['logits']);
    const fromWeights = await runLeftPadded(rebuilt, batch, config, ['logits']);
    const base = await runLeftPadded(model, batch, config, ['logits']);
    const difference = maxAbsDifference(fromHook.logits.data as Float32Array, fromWeights.logits.data as Float32Array);
    const effect = maxAbsDifference(fromWeights.logits.data as Float32Array, base.logits.data as Float32Array);
    console.info(`demo hook vs rebuilt orthogonalized graph: max |Δ logits| = ${difference.toExponential(2)}, effect of the edit = ${effect.toFixed(3)}; inserted ${hook.insertedNodes.length} nodes`);
    expect(effect).toBeGreaterThan(MIN_EFFECT);
    expect(difference).toBeLessThan(LOGITS_TOLERANCE);
  });
});
