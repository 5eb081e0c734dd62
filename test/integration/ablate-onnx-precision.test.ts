/**
 * `ablate --onnx` on ONNX-only folders of every precision users run (generated from toy-llama, onnx-precision.ts):
 * q4 (MatMulNBits) and q8 (QDQ) out-projections get the hook baked in, so the export must equal the hook preview
 * to float32 noise; fp16-stored weights are edited in place in float16, so the export differs from the hook
 * preview by the rounding of the edited weights only.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ablateModel } from '../../src/engine/ablate';
import { parsePromptFile } from '../../src/formats/prompts';
import type { HookTarget } from '../../src/model/hook-graph';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeOutputFolder } from '../../src/platform/node-output';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';
import { compareExportWithHookPreview, onnxCheckerErrors, pythonWithOnnx } from '../helpers/onnx-export-check';
import { convertGraphPrecision, type Precision } from '../helpers/onnx-precision';

const PROMPTS = 4;
const MAX_NEW_TOKENS = 8;
/** The ablation must move some first-token logit by more than this, or the comparison proves nothing. */
const MIN_EFFECT = 1e-2;
/**
 * Export vs hook preview: float32 noise where hooks are baked; for float16-stored weights the edited weight is
 * rounded to float16 (relative 2⁻¹¹) where the hook computes in float32 — on toy-llama's logits (|z| ≲ 10) that
 * moves a logit by at most ~1e-2.
 */
const TOLERANCE: Record<Precision, number> = { q4: 1e-4, q8: 1e-4, fp16: 2e-2 };
const EXPECTED: Record<Precision, { edited: number; baked: number }> = { q4: { edited: 1, baked: 8 }, q8: { edited: 1, baked: 8 }, fp16: { edited: 9, baked: 0 } };

const python = pythonWithOnnx();
let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'ablate-onnx-precision-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function unitDirection(size: number): Float32Array {
  const values = Array.from({ length: size }, (_, k) => Math.cos(0.8 * k + 0.5) + 0.2 * Math.sin(2.1 * k));
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

describe('ablate --onnx on quantized and float16 ONNX-only folders', () => {
  for (const precision of ['q4', 'q8', 'fp16'] as Precision[]) {
    it(`${precision}: ${EXPECTED[precision].baked > 0 ? 'baked hooks' : 'float16 weights edited in place'}, export ≡ hook preview`, async () => {
      const input = join(workDir, `${precision}-in`);
      cpSync(TOY_LLAMA_DIR, input, { recursive: true, filter: (source) => !source.endsWith('.safetensors') });
      convertGraphPrecision(join(input, 'onnx/model.onnx'), precision);
      const spec = { direction: unitDirection(64), scale: 1, targets: ['embed', 'attn', 'mlp'] as HookTarget[] };
      const out = join(workDir, `${precision}-out`);
      const manifest = await ablateModel(await openNodeModelFolder(input), await createNodeOutputFolder(out), { ...spec, onnx: true });
      expect(manifest.onnx).toBe('ablated');
      expect(manifest.onnxGraphs[0].editedInitializers).toHaveLength(EXPECTED[precision].edited);
      expect(manifest.onnxGraphs[0].bakedHooks).toHaveLength(EXPECTED[precision].baked);
      const promptFile = join(TOY_LLAMA_DIR, 'prompts/harmful_test.jsonl');
      const prompts = parsePromptFile(promptFile, readFileSync(promptFile, 'utf8')).slice(0, PROMPTS).map((record) => record.messages);
      const comparison = await compareExportWithHookPreview(input, out, spec, prompts, MAX_NEW_TOKENS);
      console.log(`ablate --onnx ${precision}: export vs hook preview, max first-token logit difference ${comparison.maxLogitDifference.toExponential(2)} (ablation effect ${comparison.effect.toFixed(3)})`);
      expect(comparison.effect).toBeGreaterThan(MIN_EFFECT);
      expect(comparison.maxLogitDifference).toBeLessThan(TOLERANCE[precision]);
      expect(comparison.exportedReplies).toEqual(comparison.previewReplies);
      // MatMulNBits is com.microsoft, outside the checker's schemas: it still checks the graph around it (names,
      // topological order, every standard op including the baked hooks).
      if (python) expect(onnxCheckerErrors(python, join(out, 'onnx/model.onnx'))).toBe('');
    }, 120_000);
  }
});
