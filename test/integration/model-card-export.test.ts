/**
 * The model card in an export, through the engine as the browser and the CLI both run it: the base README.md
 * becomes the generated card with the base card's license and its text, byte for byte, below (streamed in
 * chunks, past the 64 KiB front-matter window); measured results appear when given; the manifest's SHA-256 of
 * README.md is the card's; the same export in different chunk sizes gives the same card.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel } from '../../src/engine/ablate';
import { MemoryModelFolder } from '../../src/ports/folder';
import { generateModelFolder } from '../helpers/generate-models';
import { listFiles } from './ablate-helpers';
import { MemoryOutputFolder } from '../helpers/memory-output-folder';

const FRONT_MATTER = '---\nlicense: apache-2.0\ntags:\n- base-tag\n---\n';
/** A base card text longer than the front-matter window, with multi-byte characters across chunk edges. */
const BASE_TEXT = `\n# Base model\n\n${'Weiß — 模型 text line.\n'.repeat(5000)}`;

let workDir: string;
let input: MemoryModelFolder;
let baseFiles: Map<string, Uint8Array>;
let direction: Float32Array;

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'model-card-'));
  const model = await generateModelFolder(path.join(workDir, 'base'), { kind: 'llama-bias', dtype: 'F32', shards: 1, seed: 2 });
  const files = new Map<string, Uint8Array>();
  for (const file of await listFiles(model.dir)) files.set(file, new Uint8Array(await fs.readFile(path.join(model.dir, file))));
  const config = JSON.parse(new TextDecoder().decode(files.get('config.json')));
  files.set('config.json', new TextEncoder().encode(JSON.stringify({ ...config, _name_or_path: 'example-org/base-model' })));
  files.set('README.md', new TextEncoder().encode(FRONT_MATTER + BASE_TEXT));
  baseFiles = files;
  input = new MemoryModelFolder('base', files);
  const d = config.hidden_size as number;
  direction = Float32Array.from({ length: d }, (_, i) => (i === 0 ? 1 : 0));
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

describe('the model card in an export', () => {
  it('replaces README.md with the card, keeps the base text byte for byte, and the manifest hashes it', async () => {
    const small = new MemoryOutputFolder();
    const manifest = await ablateModel(input, small, {
      direction,
      scale: 1,
      targets: ['attn', 'mlp'],
      maxChunkBytes: 4096,
      directionSource: { file: 'direction.json', sha256: 'b'.repeat(64), layer: null },
      results: { source: 'a test', refusal: { base: 1, ablated: 0.5, count: 4 } },
    });
    const card = small.files.get('README.md')!.bytes();
    const text = new TextDecoder().decode(card);
    expect(text.startsWith('---\nbase_model: example-org/base-model\nlibrary_name: transformers\nlicense: apache-2.0\npipeline_tag: text-generation\ntags:\n- abliterated\n- abliteration-workbench\n---\n')).toBe(true);
    expect(text).not.toContain('base-tag'); // only the license is copied from the base front matter
    expect(text).toContain('| refusal rate | 100.0 % | 50.0 % | 4 harmful |');
    expect(text).toContain("*The base model's card follows, unchanged.*\n\n");
    const baseBytes = Buffer.from(BASE_TEXT, 'utf8');
    expect(Buffer.from(card.subarray(card.byteLength - baseBytes.byteLength)).equals(baseBytes)).toBe(true);
    expect(manifest.files['README.md']).toEqual({ sha256: createHash('sha256').update(card).digest('hex'), bytes: card.byteLength });

    const large = new MemoryOutputFolder();
    await ablateModel(input, large, {
      direction,
      scale: 1,
      targets: ['attn', 'mlp'],
      maxChunkBytes: 1 << 24,
      directionSource: { file: 'direction.json', sha256: 'b'.repeat(64), layer: null },
      results: { source: 'a test', refusal: { base: 1, ablated: 0.5, count: 4 } },
    });
    expect(Buffer.from(large.files.get('README.md')!.bytes()).equals(Buffer.from(card))).toBe(true);
  });

  it('writes a card when the base folder has none', async () => {
    const files = new Map([...baseFiles].filter(([name]) => name !== 'README.md'));
    const output = new MemoryOutputFolder();
    const manifest = await ablateModel(new MemoryModelFolder('base', files), output, { direction, scale: 1, targets: ['mlp'] });
    const text = new TextDecoder().decode(output.files.get('README.md')!.bytes());
    expect(text).toContain('Not measured for this export.');
    expect(text).not.toContain("base model's card follows");
    expect(Object.keys(manifest.files)).toContain('README.md');
  });
});
