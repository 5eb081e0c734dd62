/**
 * The realistic-width capture models: a Llama graph built by the demo's builder (scripts/demo/demo-model.ts) at
 * hidden 1024, 8 layers, MLP 2816, 16 query / 8 key-value heads, a 32000-token vocabulary (Llama 2's; real
 * models of this width have 32k–152k) with untied embeddings (≈ 160 M parameters, 0.64 GB fp32), random weights,
 * the demo's tokenizer and prompts (ids below 1029) — wide enough that onnxruntime's per-op overhead no longer
 * dominates, as it does on the 64-wide demo, and with an LM head of realistic weight, which the capture engine's
 * pruned graph leaves out. Also its q8 variant (QDQ: int8 weights, DequantizeLinear before each MatMul,
 * made by the same converter as the precision tests). Written once under the bench's scratch folder.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildDemoOnnx, llamaGraphConfig, llamaTensorShapes } from '../scripts/demo/demo-model';
import { mulberry32 } from '../src/core/random';
import { encodeOnnxModel } from '../src/formats/onnx';
import { convertGraphPrecision } from '../test/helpers/onnx-precision';

const DEMO_DIR = path.resolve(import.meta.dirname, '..', 'public', 'models', 'demo');
const TOKENIZER_FILES = ['generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'];
const WIDE = { vocab_size: 32000, hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 64 };
/** Weight scale ~ 1/√fan-in keeps the residual stream finite through 8 random layers. */
const WEIGHT_SCALE = 0.03;

export type WidePrecision = 'fp32' | 'q8';

/** Writes (or reuses) the wide model of `precision` under `root`; returns its folder. */
export async function wideCaptureModel(root: string, precision: WidePrecision): Promise<string> {
  const dir = path.join(root, `llama-wide-${precision}`);
  const graphPath = path.join(dir, 'onnx', 'model.onnx');
  // complete.json records the shape it was made with: a model kept from a run with another shape is remade.
  const marker = JSON.stringify(WIDE);
  if ((await fs.readFile(path.join(dir, 'complete.json'), 'utf8').catch(() => '')) === marker) return dir;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, 'onnx'), { recursive: true });
  const demoConfig = JSON.parse(await fs.readFile(path.join(DEMO_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
  const config = { ...demoConfig, ...WIDE };
  const random = mulberry32(1024);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of llamaTensorShapes(llamaGraphConfig(config))) {
    const size = shape.reduce((product, dim) => product * dim, 1);
    // Norm weights 1 (as trained models start), matrices uniform in ±WEIGHT_SCALE.
    weights.set(name, shape.length === 1 ? new Float32Array(size).fill(1) : Float32Array.from({ length: size }, () => (random() - 0.5) * 2 * WEIGHT_SCALE));
  }
  await fs.writeFile(graphPath, encodeOnnxModel(buildDemoOnnx(config, weights)));
  weights.clear();
  if (precision === 'q8') convertGraphPrecision(graphPath, 'q8');
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const file of TOKENIZER_FILES) await fs.copyFile(path.join(DEMO_DIR, file), path.join(dir, file));
  await fs.writeFile(path.join(dir, 'complete.json'), marker);
  return dir;
}
