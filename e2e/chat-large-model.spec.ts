/**
 * Opt-in (LARGE_MODEL_BYTES=2600000000 E2E_PORT=… npx playwright test e2e/chat-large-model.spec.ts): a generated
 * ≥ 2.5 GB model whose weights live in ONNX external data, picked as a folder, loaded on wasm and asked one chat
 * question, while the JS heap and ArrayBuffer memory of the page and of every worker are sampled (CDP:
 * Performance.getMetrics for the page, Runtime.getHeapUsage through Target auto-attach for the workers).
 *
 * The model is the demo with its MLPs widened by zero rows and columns to reach the size: SiLU(0)·0 = 0, so it
 * computes the demo's function and its reply must equal the demo's (asked first, in the same page). Takes minutes and several GB of memory, so playwright.config.ts leaves it out of the default run.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { buildDemoOnnx } from '../scripts/demo/demo-model';
import { encodeOnnxModel, onnx } from '../src/formats/onnx';
import { loadSafetensorsAsFloat32 } from '../test/helpers/llama-reference-forward';
import { firstPrompt } from './chat-helpers';
import { DEMO_MODEL_DIR, PROMPTS_DIR, expectModelReady, openWorkbench, selectBackend } from './workbench-helpers';

const TARGET_BYTES = Number(process.env.LARGE_MODEL_BYTES ?? 0);
const SAMPLE_INTERVAL_MS = 250;
const DATA_FILE = 'model.onnx_data';
if (!TARGET_BYTES) throw new Error('e2e/chat-large-model.spec.ts: set LARGE_MODEL_BYTES (e.g. 2600000000) to the model size to measure');

/** The demo with intermediate_size widened (zero-padded gate/up rows and down columns) to about `targetBytes`. */
async function generateWideDemo(dir: string, targetBytes: number): Promise<number> {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const file of ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO_MODEL_DIR, file), join(dir, file));
  const config = JSON.parse(readFileSync(join(DEMO_MODEL_DIR, 'config.json'), 'utf8')) as { hidden_size: number; intermediate_size: number; num_hidden_layers: number };
  const d = config.hidden_size;
  const narrow = config.intermediate_size;
  // 3 matrices of d × I float32 per layer.
  const wide = Math.ceil(targetBytes / (config.num_hidden_layers * 3 * d * 4) / 64) * 64;
  const weights = await loadSafetensorsAsFloat32(join(DEMO_MODEL_DIR, 'model.safetensors'));
  for (let layer = 0; layer < config.num_hidden_layers; layer++) {
    for (const name of ['gate_proj', 'up_proj']) {
      const key = `model.layers.${layer}.mlp.${name}.weight`; // [I, d]
      const padded = new Float32Array(wide * d);
      padded.set(weights.get(key)!);
      weights.set(key, padded);
    }
    const key = `model.layers.${layer}.mlp.down_proj.weight`; // [d, I]
    const original = weights.get(key)!;
    const padded = new Float32Array(d * wide);
    for (let row = 0; row < d; row++) padded.set(original.subarray(row * narrow, (row + 1) * narrow), row * wide);
    weights.set(key, padded);
  }
  const wideConfig = { ...config, intermediate_size: wide };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(wideConfig, null, 2));
  const model = buildDemoOnnx(wideConfig, weights);
  weights.clear();
  // Every initializer of 1 KiB or more goes to the external-data file, 64-byte aligned, written as it goes.
  const fd = openSync(join(dir, 'onnx', DATA_FILE), 'w');
  let offset = 0;
  try {
    for (const tensor of model.graph?.initializer ?? []) {
      const raw = tensor.rawData;
      if (!raw || raw.byteLength < 1024) continue;
      const padding = (64 - (offset % 64)) % 64;
      if (padding) writeSync(fd, new Uint8Array(padding));
      offset += padding;
      writeSync(fd, raw);
      tensor.externalData = [
        onnx.StringStringEntryProto.create({ key: 'location', value: DATA_FILE }),
        onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
        onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.byteLength) }),
      ];
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.rawData = new Uint8Array(0);
      offset += raw.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(join(dir, 'onnx', 'model.onnx'), encodeOnnxModel(model));
  return offset;
}

test('a ≥ 2.5 GB external-data model loads and chats on wasm; peak JS memory measured', async ({ page }) => {
  test.setTimeout(3_600_000);
  const work = mkdtempSync(join(tmpdir(), 'chat-large-model-'));
  try {
    const modelDir = join(work, 'demo-wide');
    const dataBytes = await generateWideDemo(modelDir, TARGET_BYTES);
    console.log(`generated ${(dataBytes / 1e9).toFixed(2)} GB of external data`);
    const prompt = firstPrompt(join(PROMPTS_DIR, 'shell_nosys.test.jsonl'));

    // The demo's own reply first (the same function, 1 MB of weights).
    await openWorkbench(page);
    await expectModelReady(page);
    await selectBackend(page, 'wasm');
    await page.getByTestId('chat.input').fill(prompt);
    await page.getByTestId('chat.send').click();
    await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
    const demoReply = await page.getByTestId('chat.base').textContent();

    const session = await page.context().newCDPSession(page);
    await session.send('Performance.enable');
    const workers = new Map<string, string>();
    const heaps = new Map<string, { used: number; backing: number }>();
    let messageId = 1;
    session.on('Target.attachedToTarget', (event) => {
      if (event.targetInfo.type === 'worker') workers.set(event.sessionId, event.targetInfo.title || event.targetInfo.url);
    });
    session.on('Target.receivedMessageFromTarget', (event) => {
      const message = JSON.parse(event.message);
      if (message.result?.usedSize !== undefined) {
        const previous = heaps.get(event.sessionId) ?? { used: 0, backing: 0 };
        heaps.set(event.sessionId, { used: Math.max(previous.used, message.result.usedSize), backing: Math.max(previous.backing, message.result.backingStorageSize ?? 0) });
      }
    });
    await session.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    let pagePeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const metrics = await session.send('Performance.getMetrics');
        pagePeak = Math.max(pagePeak, metrics.metrics.find((metric) => metric.name === 'JSHeapUsedSize')?.value ?? 0);
        for (const sessionId of workers.keys()) {
          await session.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: messageId++, method: 'Runtime.getHeapUsage' }) }).catch(() => undefined);
        }
        await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
      }
    })();

    const started = Date.now();
    await page.getByTestId('model.folder-input').setInputFiles(modelDir);
    await expect(page.getByTestId('model.status')).toContainText('ready', { timeout: 600_000 });
    await expect(page.getByText(`external data ${DATA_FILE}`)).toBeVisible();
    await page.getByTestId('chat.input').fill(prompt);
    await page.getByTestId('chat.send').click();
    await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', /done|failed/, { timeout: 1_800_000 });
    await expect(page.getByTestId('error')).toHaveCount(0);
    await expect(page.getByTestId('chat.base')).toHaveAttribute('data-state', 'done');
    const seconds = (Date.now() - started) / 1000;
    sampling = false;
    await sampler;
    const reply = await page.getByTestId('chat.base').textContent();
    await expect(page.getByTestId('error')).toHaveCount(0);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    console.log(
      `load + one reply of a ${(dataBytes / 1e9).toFixed(2)} GB model on wasm in ${seconds.toFixed(0)} s; peak page JS heap ${mib(pagePeak)}; ` +
        [...heaps.entries()].map(([id, heap]) => `${workers.get(id)}: JS heap ${mib(heap.used)}, ArrayBuffers ${mib(heap.backing)}`).join('; '),
    );
    expect(reply).toBe(demoReply);
    expect(heaps.size, 'the workers were sampled').toBeGreaterThan(0);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
