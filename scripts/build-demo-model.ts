/**
 * Builds the bundled demo model into public/models/demo/ (deterministic: the same bytes on every run).
 * The vocabulary is every word of the default prompt sets (public/prompts/*.jsonl), the chat-template role
 * words and the two reply chains. Usage: npm run build:demo [-- --out DIR]
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSafetensors } from '../src/formats/safetensors';
import { encodeOnnxModel } from '../src/formats/onnx';
import { buildDemoOnnx } from './demo/demo-model';
import { demoFiles } from './demo/demo-files';
import { buildDemoWeights, demoVocabulary } from './demo/demo-weights';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every prompt and system text of the prompt sets, in file-name order. */
export async function readPromptTexts(promptDir: string): Promise<string[]> {
  const files = (await readdir(promptDir)).filter((name) => name.endsWith('.jsonl')).sort();
  const texts: string[] = [];
  for (const file of files) {
    const lines = (await readFile(join(promptDir, file), 'utf8')).split('\n').filter((line) => line.trim() !== '');
    lines.forEach((line, index) => {
      const row = JSON.parse(line) as { prompt?: unknown; system?: unknown };
      if (typeof row.prompt !== 'string') throw new Error(`${file} line ${index + 1}: "prompt" must be a string`);
      texts.push(row.prompt);
      if (typeof row.system === 'string') texts.push(row.system);
    });
  }
  return texts;
}

/** Every file of the demo folder, relative path → bytes, built from the prompt sets in `promptDir`. */
export async function buildDemoFolder(promptDir: string): Promise<Map<string, Uint8Array>> {
  const vocabulary = demoVocabulary(await readPromptTexts(promptDir));
  const design = buildDemoWeights(vocabulary);
  const files = demoFiles(design);
  const out = new Map<string, Uint8Array>();
  const encoder = new TextEncoder();
  for (const [name, json] of Object.entries(files.json)) out.set(name, encoder.encode(`${JSON.stringify(json, null, 2)}\n`));
  out.set(
    'model.safetensors',
    encodeSafetensors(
      [...design.tensors].map(([name, values]) => ({
        name,
        dtype: 'F32' as const,
        shape: design.shapes.get(name)!,
        data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      })),
      { format: 'pt' },
    ),
  );
  out.set('onnx/model.onnx', encodeOnnxModel(buildDemoOnnx(files.config, design.tensors)));
  return out;
}

export const DEMO_PROMPT_DIR = join(root, 'public/prompts');
export const DEMO_MODEL_DIR = join(root, 'public/models/demo');

async function main(): Promise<void> {
  const outIndex = process.argv.indexOf('--out');
  const outDir = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : DEMO_MODEL_DIR;
  const files = await buildDemoFolder(DEMO_PROMPT_DIR);
  for (const [name, bytes] of files) {
    await mkdir(dirname(join(outDir, name)), { recursive: true });
    await writeFile(join(outDir, name), bytes);
  }
  const total = [...files.values()].reduce((sum, bytes) => sum + bytes.byteLength, 0);
  process.stderr.write(`demo model: ${files.size} files, ${(total / 1e6).toFixed(2)} MB → ${outDir}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`build-demo-model: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
