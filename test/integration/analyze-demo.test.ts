/**
 * The bundled demo model plants its refusal along a known direction at a known layer
 * (public/models/demo/planted_direction.json): the analysis engine must recover it from the default prompt sets.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cosineSimilarity } from '../../src/core/statistics';
import { analyzeModel } from '../../src/engine/analyze';
import { openCaptureSession } from '../../src/engine/capture';
import { loadChatTokenizer } from '../../src/engine/tokenize';
import { parseDirectionFile } from '../../src/formats/direction-file';
import { parsePromptFile } from '../../src/formats/prompts';
import { openNodeModelFolder } from '../../src/platform/node-files';
import { createNodeSessionFactory } from '../../src/platform/ort-node';
import type { Progress } from '../../src/base/progress';
import { findOnnxGraphFiles } from '../../src/formats/onnx-files';

const demoDir = 'public/models/demo';
const promptsDir = 'public/prompts';
/** At the planted layer, cosine(recovered, planted) ≥ 0.99 and AUC ≥ 0.99. */
const PLANTED_MINIMUM = 0.99;

const planted = JSON.parse(readFileSync(`${demoDir}/planted_direction.json`, 'utf8')) as { layer: number; direction: number[] };
const prompts = (file: string) => parsePromptFile(file, readFileSync(`${promptsDir}/${file}`, 'utf8'));

describe('demo model', () => {
  for (const [refusal, compliance] of [
    ['shell_nosys', 'shell_agent'],
    ['harmful', 'harmless'],
  ] as const) {
    it(`recovers the planted direction from ${refusal} vs ${compliance}`, async () => {
      const folder = await openNodeModelFolder(demoDir);
      const graphs = findOnnxGraphFiles(folder.list());
      expect(graphs?.decoder).toBe('onnx/model.onnx');
      const capture = await openCaptureSession(createNodeSessionFactory({ threads: 2 }), { bytes: readFileSync(`${demoDir}/onnx/model.onnx`), name: 'demo/onnx/model.onnx' });
      const events: Progress[] = [];
      try {
        const outcome = await analyzeModel(
          capture,
          await loadChatTokenizer(folder),
          {
            harmful: [...prompts(`${refusal}.train.jsonl`), ...prompts(`${refusal}.test.jsonl`)],
            harmless: [...prompts(`${compliance}.train.jsonl`), ...prompts(`${compliance}.test.jsonl`)],
            reference: { kind: 'direction', file: parseDirectionFile(`${demoDir}/planted_direction.json`, new Uint8Array(readFileSync(`${demoDir}/planted_direction.json`))) },
            batchSize: 16,
          },
          { onProgress: (event) => events.push(event) },
        );
        const layer = outcome.analysis.layers[planted.layer];
        expect(layer.auc).toBeGreaterThanOrEqual(PLANTED_MINIMUM);
        expect(layer.cosineReference).toBeGreaterThanOrEqual(PLANTED_MINIMUM);
        expect(cosineSimilarity(outcome.directions[planted.layer], planted.direction)).toBeGreaterThanOrEqual(PLANTED_MINIMUM);
        // Nothing is planted before the planted layer's block writes it.
        expect(outcome.analysis.layers[0].degenerate).toBe(true);
        expect(outcome.report.bestLayer).toBe(outcome.analysis.recommendedLayer);
        expect(events.filter((event) => event.status === 'done').map((event) => event.task)).toEqual(['capture harmful', 'capture harmless', 'analyze']);
      } finally {
        await capture.release();
      }
    });
  }
});
