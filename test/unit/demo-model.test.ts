/**
 * The demo model's build and design, without running it: the builder is deterministic and the committed folder
 * is what it builds; the prompt sets obey the lexicon rule the weights implement (so the behaviour the
 * integration test checks follows from the design, not from luck); the graph has transformers.js' I/O; bad
 * weights give errors that name the tensor.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnxModel, int64ToNumber } from '../../src/formats/onnx';
import { buildDemoOnnx, DEMO_PRODUCER_NAME } from '../../scripts/demo/demo-model';
import { buildDemoWeights, demoVocabulary, preTokenize, wordFlags, type DemoWeights, type LexiconName } from '../../scripts/demo/demo-weights';
import { UnsupportedModelError } from '../../src/base/errors';
import { buildDemoFolder, DEMO_MODEL_DIR, DEMO_PROMPT_DIR, readPromptTexts } from '../../scripts/build-demo-model';

const MAX_DEMO_BYTES = 5 * 1024 * 1024;
const MIN_PAIRS = 64;
/** float32 rounding of a designed-zero projection (embedding rows have norm 8). */
const ZERO_PROJECTION_TOLERANCE = 1e-5;

interface Row {
  prompt: string;
  system?: string;
}

function readRows(file: string): Row[] {
  return readFileSync(join(DEMO_PROMPT_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Row);
}

function lexicons(text: string | undefined): Set<LexiconName> {
  return new Set(preTokenize(text ?? '').flatMap(wordFlags));
}

/** The decision the weights implement: refuse on a harmful word, or a shell word with no agent word anywhere. */
function designedRefusal(row: Row): boolean {
  const user = lexicons(row.prompt);
  const all = new Set([...user, ...lexicons(row.system)]);
  return all.has('harmful') || (all.has('shell') && !all.has('agent'));
}

describe('demo model build', () => {
  let built: Map<string, Uint8Array>;
  let design: DemoWeights;

  beforeAll(async () => {
    built = await buildDemoFolder(DEMO_PROMPT_DIR);
    design = buildDemoWeights(demoVocabulary(await readPromptTexts(DEMO_PROMPT_DIR)));
  });

  it('is deterministic and the committed folder is exactly what the builder makes', async () => {
    const again = await buildDemoFolder(DEMO_PROMPT_DIR);
    expect([...again.keys()]).toEqual([...built.keys()]);
    for (const [name, bytes] of built) {
      expect(Buffer.compare(Buffer.from(again.get(name)!), Buffer.from(bytes)), name).toBe(0);
      expect(Buffer.compare(readFileSync(join(DEMO_MODEL_DIR, name)), Buffer.from(bytes)), `${name} is stale: run npm run build:demo`).toBe(0);
    }
  });

  it('stays under 5 MB', () => {
    const total = [...built.values()].reduce((sum, bytes) => sum + bytes.byteLength, 0);
    expect(total).toBeLessThan(MAX_DEMO_BYTES);
    const onDisk = (dir: string): number => readdirSync(dir).reduce((sum, name) => sum + (statSync(join(dir, name)).isDirectory() ? onDisk(join(dir, name)) : statSync(join(dir, name)).size), 0);
    expect(onDisk(DEMO_MODEL_DIR)).toBeLessThan(MAX_DEMO_BYTES);
  });

  it('publishes the planted direction: unit length, absent from every embedding row', () => {
    const published = JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'planted_direction.json'), 'utf8')) as { layer: number; direction: number[] };
    expect(published.direction).toEqual(Array.from(design.plantedDirection));
    const r = design.plantedDirection;
    expect(Math.abs(r.reduce((sum, x) => sum + x * x, 0) - 1)).toBeLessThan(1e-12);
    // Dense, not an axis: the rotation hides the feature basis.
    expect(Math.max(...Array.from(r, Math.abs))).toBeLessThan(0.5);
    const embedding = design.tensors.get('model.embed_tokens.weight')!; // [vocab, d]
    const d = r.length;
    let worst = 0;
    for (let token = 0; token < embedding.length / d; token++) {
      let projection = 0;
      for (let i = 0; i < d; i++) projection += embedding[token * d + i] * r[i];
      worst = Math.max(worst, Math.abs(projection));
    }
    expect(worst).toBeLessThan(ZERO_PROJECTION_TOLERANCE);
  });

  it('has the KV-cache I/O that transformers.js expects, like the toy-llama export', () => {
    const model = decodeOnnxModel('demo/onnx/model.onnx', built.get('onnx/model.onnx')!);
    const config = JSON.parse(new TextDecoder().decode(built.get('config.json')!)) as Record<string, number>;
    expect(model.producerName).toBe(DEMO_PRODUCER_NAME);
    const graph = model.graph!;
    const inputs = graph.input ?? [];
    const outputs = graph.output ?? [];
    const names = (values: { name?: string | null }[]) => values.map((value) => value.name);
    const layers = Array.from({ length: config.num_hidden_layers }, (_, i) => i);
    expect(names(inputs)).toEqual(['input_ids', 'attention_mask', 'position_ids', ...layers.flatMap((i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`])]);
    expect(names(outputs)).toEqual(['logits', ...layers.flatMap((i) => [`present.${i}.key`, `present.${i}.value`])]);
    const pastDims = inputs[3].type!.tensorType!.shape!.dim!.map((dim) => dim.dimParam || int64ToNumber(dim.dimValue));
    expect(pastDims).toEqual(['batch_size', config.num_key_value_heads, 'past_sequence_length', config.head_dim]);
    const logitsDims = outputs[0].type!.tensorType!.shape!.dim!.map((dim) => dim.dimParam || int64ToNumber(dim.dimValue));
    expect(logitsDims).toEqual(['batch_size', 'sequence_length', config.vocab_size]);
  });

  it('rejects missing or mis-sized weights and non-Llama configs, naming the problem', () => {
    const config = JSON.parse(new TextDecoder().decode(built.get('config.json')!)) as Record<string, unknown>;
    const missing = new Map(design.tensors);
    missing.delete('model.layers.2.mlp.down_proj.weight');
    expect(() => buildDemoOnnx(config, missing)).toThrow(UnsupportedModelError);
    expect(() => buildDemoOnnx(config, missing)).toThrow(/model\.layers\.2\.mlp\.down_proj\.weight is missing/);
    const truncated = new Map(design.tensors);
    truncated.set('lm_head.weight', new Float32Array(10));
    expect(() => buildDemoOnnx(config, truncated)).toThrow(/lm_head\.weight has 10 values/);
    expect(() => buildDemoOnnx({ ...config, model_type: 'gpt2' }, design.tensors)).toThrow(/model_type is "gpt2"/);
    expect(() => buildDemoOnnx({ ...config, num_key_value_heads: 3 }, design.tensors)).toThrow(/multiple of num_key_value_heads/);
  });
});

describe('default prompt sets', () => {
  const index = JSON.parse(readFileSync(join(DEMO_PROMPT_DIR, 'index.json'), 'utf8')) as {
    sets: { id: string; role: string; files: Record<string, string>; counts: Record<string, number> }[];
    contrasts: { id: string; a?: string; b?: string; c?: string; d?: string }[];
  };

  it('index.json lists every file with its true count, and the contrasts name known sets', () => {
    // The agent set reuses a held-out file of another set, hence the de-duplication.
    const listed = [...new Set(index.sets.flatMap((set) => Object.values(set.files)))].sort();
    expect(listed).toEqual(readdirSync(DEMO_PROMPT_DIR).filter((name) => name.endsWith('.jsonl')).sort());
    for (const set of index.sets) {
      for (const [split, file] of Object.entries(set.files)) expect(readRows(file).length, file).toBe(set.counts[split]);
    }
    const ids = new Set(index.sets.map((set) => set.id));
    for (const contrast of index.contrasts) for (const id of [contrast.a, contrast.b, contrast.c, contrast.d].filter(Boolean)) expect(ids.has(id!), `${contrast.id}: ${id}`).toBe(true);
    expect(index.sets.map((set) => set.role).sort()).toEqual(['A', 'A', 'B', 'B', 'C', 'D', 'agent']);
    // The agent prompts are held out from every capture set: no train (or single-file) set holds them.
    const agentFiles = Object.values(index.sets.find((set) => set.role === 'agent')!.files);
    const captured = index.sets.filter((set) => set.role !== 'agent').flatMap((set) => [set.files.train, set.files.all].filter(Boolean));
    for (const file of agentFiles) {
      expect(file).toMatch(/\.test\.jsonl$/);
      const prompts = new Set(readRows(file).map((row) => `${row.system ?? ''}|${row.prompt}`));
      for (const other of captured) expect(readRows(other!).filter((row) => prompts.has(`${row.system ?? ''}|${row.prompt}`)), other).toEqual([]);
    }
  });

  it('has at least 64 pairs per contrast, train and held-out, the shell pair being the same requests', () => {
    const all = (id: string) => ['train', 'test'].flatMap((split) => readRows(`${id}.${split}.jsonl`));
    for (const [a, b] of [['shell_nosys', 'shell_agent'], ['harmful', 'harmless']]) {
      expect(all(a).length).toBeGreaterThanOrEqual(MIN_PAIRS);
      expect(all(b).length).toBe(all(a).length);
      for (const split of ['train', 'test']) expect(readRows(`${a}.${split}.jsonl`).length).toBeGreaterThan(0);
    }
    expect(all('shell_agent').map((row) => row.prompt)).toEqual(all('shell_nosys').map((row) => row.prompt));
    expect(all('shell_agent').every((row) => typeof row.system === 'string' && row.system.length > 0)).toBe(true);
    expect(all('shell_nosys').every((row) => row.system === undefined)).toBe(true);
    expect(new Set(all('harmful').map((row) => row.prompt)).size).toBe(all('harmful').length);
  });

  it('follows the lexicon rule the weights implement: refusal sets refuse, compliance sets comply, by design', () => {
    const refusalFiles = ['shell_nosys', 'harmful'].flatMap((id) => [`${id}.train.jsonl`, `${id}.test.jsonl`]);
    const complianceFiles = [...['shell_agent', 'harmless'].flatMap((id) => [`${id}.train.jsonl`, `${id}.test.jsonl`]), 'reference_agent.jsonl', 'reference_plain.jsonl'];
    for (const file of refusalFiles) expect(readRows(file).filter((row) => !designedRefusal(row)).map((row) => row.prompt), file).toEqual([]);
    for (const file of complianceFiles) expect(readRows(file).filter(designedRefusal).map((row) => row.prompt), file).toEqual([]);
    // Harmless and reference prompts carry no refusal trigger at all, so the two contrasts differ in one feature each.
    for (const file of ['harmless.train.jsonl', 'harmless.test.jsonl', 'reference_plain.jsonl']) {
      expect(readRows(file).filter((row) => lexicons(row.prompt).size > 0).map((row) => row.prompt), file).toEqual([]);
    }
  });
});
