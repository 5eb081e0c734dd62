// HF config parsing (flat and nested text_config, Qwen3.5) and the shard map (single file, unindexed
// shards, index with missing or hostile shard names).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidFileError } from '../../src/base/errors';
import { MemoryModelFolder } from '../../src/ports/folder';
import { encodeSafetensors } from '../../src/formats/safetensors';
import { parseModelConfig, readModelConfig, readShardMap } from '../../src/formats/hf-folder';
import path from 'node:path';
import { TOY_LLAMA_DIR, QWEN3_5_GRAPH_DIR } from '../helpers/fixtures';

const QWEN_CONFIG = path.join(QWEN3_5_GRAPH_DIR, 'config.json');
const LLAMA_CONFIG = path.join(TOY_LLAMA_DIR, 'config.json');

function tensorFile(names: string[]): Uint8Array {
  return encodeSafetensors(names.map((name) => ({ name, dtype: 'F32' as const, shape: [2], data: new Uint8Array(8) })));
}
const text = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

describe('parseModelConfig', () => {
  it('reads the toy Llama config (flat)', () => {
    const config = parseModelConfig('config.json', readFileSync(LLAMA_CONFIG, 'utf8'));
    const raw = JSON.parse(readFileSync(LLAMA_CONFIG, 'utf8'));
    expect(config).toMatchObject({
      modelType: 'llama',
      architectures: ['LlamaForCausalLM'],
      hiddenSize: raw.hidden_size,
      numLayers: raw.num_hidden_layers,
      vocabSize: raw.vocab_size,
      tieWordEmbeddings: false,
      layerTypes: null,
      numExperts: null,
    });
    expect(config.text).toBe(config.raw);
  });

  it('reads Qwen3.5 with its nested text_config and hybrid layer types', () => {
    const json = readFileSync(QWEN_CONFIG, 'utf8');
    const raw = JSON.parse(json);
    const config = parseModelConfig(QWEN_CONFIG, json);
    expect(config.modelType).toBe('qwen3_5');
    expect(config.hiddenSize).toBe(raw.text_config.hidden_size);
    expect(config.numLayers).toBe(raw.text_config.num_hidden_layers);
    expect(config.vocabSize).toBe(raw.text_config.vocab_size);
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.layerTypes).toEqual(raw.text_config.layer_types);
    expect(config.layerTypes!.filter((kind) => kind === 'full_attention')).toHaveLength(raw.text_config.num_hidden_layers / raw.text_config.full_attention_interval);
    expect(config.text).toEqual(raw.text_config);
    expect(config.raw.vision_config).toBeDefined();
  });

  it('takes tie_word_embeddings from text_config first, then the root, then the model type default', () => {
    const base = { model_type: 'qwen3_5', text_config: { hidden_size: 8, num_hidden_layers: 2, vocab_size: 10 } };
    expect(parseModelConfig('c', JSON.stringify({ ...base, tie_word_embeddings: false })).tieWordEmbeddings).toBe(false);
    expect(parseModelConfig('c', JSON.stringify({ ...base, tie_word_embeddings: false, text_config: { ...base.text_config, tie_word_embeddings: true } })).tieWordEmbeddings).toBe(true);
    expect(parseModelConfig('c', JSON.stringify(base)).tieWordEmbeddings).toBe(true);
    expect(parseModelConfig('c', JSON.stringify({ model_type: 'mistral', hidden_size: 8, num_hidden_layers: 2, vocab_size: 10 })).tieWordEmbeddings).toBe(false);
  });

  it('falls back to the class default vocab size for Gemma 3, whose text_config leaves it out', () => {
    const gemma = { architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', text_config: { hidden_size: 2560, model_type: 'gemma3_text', num_hidden_layers: 34 } };
    const config = parseModelConfig('c', JSON.stringify(gemma));
    expect(config).toMatchObject({ vocabSize: 262_208, hiddenSize: 2560, numLayers: 34, tieWordEmbeddings: true });
    expect(() => parseModelConfig('c', JSON.stringify({ model_type: 'llama', hidden_size: 8, num_hidden_layers: 2 }))).toThrow(/has no vocab_size/);
  });

  it('reads MoE expert counts under their various names', () => {
    const base = { hidden_size: 8, num_hidden_layers: 2, vocab_size: 10 };
    expect(parseModelConfig('c', JSON.stringify({ ...base, model_type: 'qwen3_moe', num_experts: 128 })).numExperts).toBe(128);
    expect(parseModelConfig('c', JSON.stringify({ ...base, model_type: 'mixtral', num_local_experts: 8 })).numExperts).toBe(8);
    expect(parseModelConfig('c', JSON.stringify({ ...base, model_type: 'deepseek_v3', n_routed_experts: 256 })).numExperts).toBe(256);
  });

  it('refuses broken configs with the file and the field named', () => {
    const bad = (json: string, problem: RegExp) => {
      const error = (() => {
        try {
          parseModelConfig('m/config.json', json);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(InvalidFileError);
      expect((error as Error).message).toMatch(/^m\/config\.json: /);
      expect((error as Error).message).toMatch(problem);
    };
    bad('{', /not valid JSON/);
    bad('[]', /must contain a JSON object/);
    bad('{"hidden_size":8}', /has no model_type/);
    bad('{"model_type":"llama","num_hidden_layers":2,"vocab_size":3}', /has no hidden_size \/ n_embd \/ d_model/);
    bad('{"model_type":"llama","hidden_size":8.5,"num_hidden_layers":2,"vocab_size":3}', /hidden_size is 8.5, not a positive integer/);
    bad('{"model_type":"llama","hidden_size":8,"num_hidden_layers":0,"vocab_size":3}', /num_hidden_layers is 0/);
    bad('{"model_type":"q","text_config":{"hidden_size":8,"num_hidden_layers":2,"vocab_size":3,"layer_types":["a"]}}', /text_config.layer_types has 1 entries but num_hidden_layers is 2/);
    bad('{"model_type":"q","text_config":{"hidden_size":8,"vocab_size":3}}', /has no num_hidden_layers \/ n_layer \/ num_layers in text_config/);
    bad('{"model_type":"q","text_config":7}', /text_config must be an object/);
    bad('{"model_type":"llama","hidden_size":8,"num_hidden_layers":2,"vocab_size":3,"tie_word_embeddings":"yes"}', /tie_word_embeddings is "yes"/);
  });

  it('readModelConfig names the folder when config.json is missing', async () => {
    await expect(readModelConfig(new MemoryModelFolder('empty-model', new Map()))).rejects.toThrow(/^empty-model: has no config.json/);
  });
});

describe('readShardMap', () => {
  it('maps a single model.safetensors by reading its header', async () => {
    const folder = new MemoryModelFolder('m', new Map([['model.safetensors', tensorFile(['a', 'b'])], ['config.json', text('{}')]]));
    const map = await readShardMap(folder);
    expect(map.indexFile).toBeNull();
    expect(map.shards).toEqual(['model.safetensors']);
    expect([...map.tensorToShard]).toEqual([
      ['a', 'model.safetensors'],
      ['b', 'model.safetensors'],
    ]);
  });

  it('maps unindexed shards and refuses a tensor present in two of them', async () => {
    const folder = new MemoryModelFolder('m', new Map([['b.safetensors', tensorFile(['y'])], ['a.safetensors', tensorFile(['x'])], ['sub/c.safetensors', tensorFile(['z'])]]));
    const map = await readShardMap(folder);
    expect(map.shards).toEqual(['a.safetensors', 'b.safetensors']);
    expect(map.tensorToShard.get('y')).toBe('b.safetensors');
    const clash = new MemoryModelFolder('m', new Map([['a.safetensors', tensorFile(['x'])], ['b.safetensors', tensorFile(['x'])]]));
    await expect(readShardMap(clash)).rejects.toThrow(/m\/b.safetensors: tensor "x" is also in a.safetensors/);
  });

  it('reads a sharded index with its metadata', async () => {
    const index = { metadata: { total_size: 32 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } };
    const folder = new MemoryModelFolder(
      'm',
      new Map([
        ['model.safetensors.index.json', text(index)],
        ['model-00001-of-00002.safetensors', tensorFile(['a', 'c'])],
        ['model-00002-of-00002.safetensors', tensorFile(['b'])],
      ]),
    );
    const map = await readShardMap(folder);
    expect(map.indexFile).toBe('model.safetensors.index.json');
    expect(map.shards).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(Object.fromEntries(map.tensorToShard)).toEqual(index.weight_map);
    expect(map.metadata).toEqual(index.metadata);
  });

  it('refuses a broken index, naming the index and the problem', async () => {
    const withIndex = (index: string | object, extra: [string, Uint8Array][] = []) =>
      readShardMap(new MemoryModelFolder('m', new Map([['model.safetensors.index.json', text(index)], ...extra])));
    await expect(withIndex({ weight_map: { a: 'model-00002-of-00002.safetensors' } })).rejects.toThrow(
      /^m\/model.safetensors.index.json: names shard "model-00002-of-00002.safetensors", which is missing from m$/,
    );
    await expect(withIndex({ weight_map: { a: '../outside.safetensors' } })).rejects.toThrow(/not a file inside the folder/);
    await expect(withIndex({ weight_map: { a: 3 } })).rejects.toThrow(/weight_map entry for "a" is not a file name/);
    await expect(withIndex({ metadata: {} })).rejects.toThrow(/has no weight_map object/);
    await expect(withIndex({ weight_map: {} })).rejects.toThrow(/weight_map is empty/);
    await expect(withIndex('{"weight_map":{"a":"s.safetensors","a":"t.safetensors"}}', [['s.safetensors', tensorFile(['a'])]])).rejects.toThrow(/duplicate key "a"/);
    await expect(withIndex('{"weight_map":')).rejects.toThrow(/is not valid JSON/);
  });

  it('says so when a folder has no safetensors weights at all', async () => {
    await expect(readShardMap(new MemoryModelFolder('m', new Map([['config.json', text('{}')]])))).rejects.toThrow(/^m: has no safetensors weights/);
  });
});
