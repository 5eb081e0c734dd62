/**
 * One decision for tied embeddings: the export's target scan and the hook preview's folder check agree on
 * Gemma-style configs that omit tie_word_embeddings (tied by the architecture's default), on folders without
 * an lm_head tensor (tied whatever the config says), and on ONNX-only folders (config alone).
 */
import { describe, expect, it } from 'vitest';
import { folderTiedEmbeddings } from '../../src/engine/tied-embeddings';
import { parseModelConfig } from '../../src/formats/hf-folder';
import { encodeSafetensors } from '../../src/formats/safetensors';
import { scanAblationTargets } from '../../src/model/tensor-roles';
import { MemoryModelFolder } from '../../src/ports/folder';

const D = 4;

function configJson(modelType: string, tie?: boolean): string {
  return JSON.stringify({ model_type: modelType, hidden_size: D, num_hidden_layers: 1, vocab_size: 8, ...(tie === undefined ? {} : { tie_word_embeddings: tie }) });
}

function weights(withLmHead: boolean): Uint8Array {
  const tensor = (name: string, shape: number[]) => ({ name, dtype: 'F32' as const, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 4)) });
  return encodeSafetensors([
    tensor('model.embed_tokens.weight', [8, D]),
    tensor('model.layers.0.self_attn.o_proj.weight', [D, D]),
    tensor('model.layers.0.mlp.down_proj.weight', [D, 6]),
    ...(withLmHead ? [tensor('lm_head.weight', [8, D])] : []),
  ]);
}

const NAMES = (withLmHead: boolean) => ['model.embed_tokens.weight', 'model.layers.0.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight', ...(withLmHead ? ['lm_head.weight'] : [])];

const cases: { title: string; modelType: string; tie?: boolean; lmHead: boolean | null; tied: boolean }[] = [
  { title: 'Gemma 3 config without the flag, lm_head present', modelType: 'gemma3_text', lmHead: true, tied: true },
  { title: 'Gemma config without the flag, ONNX-only folder', modelType: 'gemma', lmHead: null, tied: true },
  { title: 'Llama config without the flag, lm_head present', modelType: 'llama', lmHead: true, tied: false },
  { title: 'Llama config without the flag, no lm_head tensor', modelType: 'llama', lmHead: false, tied: true },
  { title: 'Llama config saying false, no lm_head tensor', modelType: 'llama', tie: false, lmHead: false, tied: true },
  { title: 'Gemma config saying false explicitly, lm_head present', modelType: 'gemma3_text', tie: false, lmHead: true, tied: false },
  { title: 'Llama config saying true, ONNX-only', modelType: 'llama', tie: true, lmHead: null, tied: true },
];

describe('tied embeddings: export and preview decide alike', () => {
  it.each(cases)('$title → tied $tied', async ({ modelType, tie, lmHead, tied }) => {
    const json = configJson(modelType, tie);
    const files = new Map<string, Uint8Array>([['config.json', new TextEncoder().encode(json)]]);
    if (lmHead !== null) files.set('model.safetensors', weights(lmHead));
    else files.set('onnx/model.onnx', new Uint8Array(1));
    const preview = await folderTiedEmbeddings(new MemoryModelFolder('model', files));
    expect(preview).toBe(tied);
    if (lmHead !== null) expect(scanAblationTargets(NAMES(lmHead), parseModelConfig('config.json', json)).tiedEmbeddings).toBe(tied);
  });
});

describe('tied embeddings: no second decision', () => {
  it('no engine, model or worker module reads tie_word_embeddings from config.json itself', async () => {
    // The hook preview (evaluate.ts, recipe-hook-models.ts) once re-read the flag and defaulted it to false;
    // the config parser (formats/hf-folder.ts) applies the per-architecture default and the decision lives in
    // model/tied-embeddings.ts. Every other module must ask folderTiedEmbeddings or the target scan.
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '../..');
    const readers: string[] = [];
    for (const dir of ['src/engine', 'src/model', 'workers']) {
      for (const name of readdirSync(join(root, dir))) {
        if (!name.endsWith('.ts') || name === 'tied-embeddings.ts') continue;
        const code = readFileSync(join(root, dir, name), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
        if (code.includes('tie_word_embeddings')) readers.push(`${dir}/${name}`);
      }
    }
    expect(readers).toEqual([]);
  });
});
