/**
 * Writes the inputs of scripts/measure-ablate-rss.sh: a generated Qwen3.5-shaped BF16 model folder of about
 * the requested size (Qwen3.5-0.8B geometry: hidden 1024, MLP 3584, vocab 248320, blocks added to reach the size)
 * and a direction file. Usage: tsx scripts/measure-ablate-rss.ts OUT_DIR SIZE_BYTES
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { generateModelFolder } from '../test/helpers/generate-models';

const [outDir, sizeText] = process.argv.slice(2);
const targetBytes = Number(sizeText);
if (!outDir || !Number.isFinite(targetBytes) || targetBytes <= 0) {
  process.stderr.write('usage: tsx scripts/measure-ablate-rss.ts OUT_DIR SIZE_BYTES\n');
  process.exit(2);
}
const hiddenSize = 1024;
const model = await generateModelFolder(path.join(outDir, 'model'), {
  kind: 'qwen3_5',
  dtype: 'BF16',
  shards: 2,
  hiddenSize,
  intermediateSize: 3584,
  vocabSize: 248320,
  targetBytes,
});
await fs.writeFile(path.join(outDir, 'direction.json'), JSON.stringify(Array.from({ length: hiddenSize }, (_, i) => Math.sin(i * 0.37) + 0.1)));
const layers = (model.config.text_config as { num_hidden_layers: number }).num_hidden_layers;
process.stdout.write(`generated ${(model.weightBytes / 1e9).toFixed(2)} GB of BF16 weights, ${layers} blocks, in ${model.dir}\n`);
