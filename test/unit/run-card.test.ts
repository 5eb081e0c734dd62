/**
 * The run card round-trips a session: what buildRunCard zips, readRunCard restores (directions bit for bit
 * from directions.safetensors, report text byte for byte), the prompt files hash as SHA256SUMS says (checked
 * with node:crypto), and reproduce.sh holds the analyze command with the report's own settings.
 */
import { createHash } from 'node:crypto';
import { strFromU8 } from 'fflate';
import { describe, expect, it } from 'vitest';
import { analyzeContrast, DEFAULT_LAYER_RANGE } from '../../src/core/analysis';
import { seededRandom, seededSplit } from '../../src/core/statistics';
import { buildReport, serializeReport } from '../../src/formats/report';
import { InvalidFileError } from '../../src/base/errors';
import { unzipFiles, zipFiles } from '../../src/platform/zip-archive';
import type { AnalysisResult, PromptInput } from '../../src/protocol/analysis-api';
import type { SweepResult } from '../../src/protocol/chat-api';
import { layerChoiceRows, recommendLayer } from '../../src/state/layer-choice';
import { promptsToJsonl, reproduceArguments, runCardFiles, snapshotFromRunCard, type RunCardInput } from '../../src/state/run-card';

const buildRunCard = (input: RunCardInput) => zipFiles(runCardFiles(input), new Date(input.snapshot.savedAt));
const readRunCard = (name: string, bytes: Uint8Array) => snapshotFromRunCard(name, unzipFiles(name, bytes));
const unzipSync = (bytes: Uint8Array) => unzipFiles('card.zip', bytes);
import { SESSION_FORMAT, SESSION_VERSION, type SessionSnapshot } from '../../src/state/session';

const layerCount = 4;
const hiddenSize = 6;

function activationSet(promptCount: number, seed: number, offset: number) {
  const random = seededRandom(seed);
  const activations = new Float32Array(promptCount * layerCount * hiddenSize); // [prompt, layer, dModel]
  for (let i = 0; i < activations.length; i++) {
    const layer = Math.floor(i / hiddenSize) % layerCount;
    activations[i] = layer === 0 ? 1 : random() + (i % hiddenSize === 0 ? offset * layer * 0.4 : 0);
  }
  return { activations, promptCount };
}

const prompts = (label: string, count: number): PromptInput[] =>
  Array.from({ length: count }, (_, index) => ({ messages: [{ role: 'user' as const, content: `${label} prompt "${index}", with a comma` }] }));

function snapshot(withSweep: boolean): SessionSnapshot {
  const split = { harmful: seededSplit(12, 0.25, 3, 0), harmless: seededSplit(10, 0.25, 3, 1) };
  const analysis = analyzeContrast({ layerCount, hiddenSize, harmful: activationSet(12, 1, 1), harmless: activationSet(10, 2, 0), split });
  const report = buildReport({ model: { name: 'demo' }, hiddenSize, position: -1, harmfulCount: 12, harmlessCount: 10, heldOutFraction: 0.25, seed: 3, analysis, layerRange: DEFAULT_LAYER_RANGE, reference: null, projectedOutComplianceMean: false });
  report.capture = { backend: 'onnxruntime-web wasm', batchSize: 8, seconds: 1 };
  const result: AnalysisResult = {
    report,
    reportText: serializeReport(report),
    crossLayerCosine: analysis.cosineMatrix,
    projections: analysis.layers.map((layer) => ({ harmful: [...layer.projections.heldOutHarmful], harmless: [...layer.projections.heldOutHarmless] })),
    directions: analysis.layers.map((layer) => Float32Array.from(layer.direction)),
    split,
    backend: 'wasm',
    fromCache: false,
    notes: [],
  };
  const sweep: SweepResult = {
    rows: [1, 2, 3].map((layer) => ({ layer, refusalRate: layer === 3 ? 0 : 0.5, refusalInterval: [0, 0.6], klFirstToken: 0.01 * layer, withinKLBound: true })),
    skipped: [{ layer: 0, reason: 'zero direction' }],
    baseRefusalRate: 1,
    baseRefusalInterval: [0.7, 1],
    klBound: 0.5,
    recommendation: { layer: 3, withinKLBound: true, reason: 'lowest refusal rate' },
    counts: { harmful: 4, harmless: 4 },
    backend: 'wasm',
    seconds: 2,
  };
  const empty = { text: '', system: '', source: '' };
  return {
    format: SESSION_FORMAT,
    version: SESSION_VERSION,
    savedAt: '2026-01-02T03:04:05.000Z',
    model: { label: 'demo model', name: 'demo', fingerprint: 'abc', modelType: 'llama', numLayers: 3, hiddenSize },
    prompts: { harmful: { ...empty, text: 'x' }, harmless: empty, referenceA: empty, referenceB: empty },
    promptPreset: '',
    settings: { position: -1, heldOutFraction: 0.25, seed: 3 },
    result,
    resultPrompts: { harmful: prompts('A', 12), harmless: prompts('B', 10), referenceA: [], referenceB: [] },
    selectedLayer: 2,
    ablation: { scale: 1, targets: ['attn', 'embed', 'mlp'] },
    heldOut: { harmful: { prompts: prompts('eval A', 4), source: 'a.jsonl', imported: true }, harmless: { prompts: prompts('eval B', 4), source: 'b.jsonl', imported: true } },
    evaluation: null,
    sweep: withSweep ? sweep : null,
  };
}

describe('run card', () => {
  it('zips the session and reads it back with the same report, directions, prompts and sweep', () => {
    const original = snapshot(true);
    const zip = buildRunCard({ snapshot: original, plots: { auc: '<svg xmlns="http://www.w3.org/2000/svg"></svg>' } });
    const files = unzipSync(zip);
    expect(Object.keys(files).sort()).toEqual(
      ['README.md', 'directions.safetensors', 'layers.csv', 'plots/auc.svg', 'prompts/SHA256SUMS', 'prompts/eval-harmful.jsonl', 'prompts/eval-harmless.jsonl', 'prompts/harmful.jsonl', 'prompts/harmless.jsonl', 'recipe.json', 'report.json', 'reproduce.sh', 'session.json', 'sweep.csv', 'sweep.json'].sort(),
    );
    expect(strFromU8(files['report.json']!)).toBe(original.result!.reportText);
    // Each hash line matches the file, hashed independently.
    for (const line of strFromU8(files['prompts/SHA256SUMS']!).trim().split('\n')) {
      const [hash, name] = line.split(/\s+/);
      expect(createHash('sha256').update(files[`prompts/${name}`]!).digest('hex')).toBe(hash);
    }
    expect(strFromU8(files['prompts/harmful.jsonl']!)).toBe(promptsToJsonl(original.resultPrompts!.harmful));
    expect(JSON.parse(strFromU8(files['recipe.json']!))).toEqual({ method: 'standard', direction: 2, projection: 'none', components: { embed: 1, attn: 1, mlp: 1 } });

    const restored = readRunCard('card.zip', zip);
    expect(restored.result!.reportText).toBe(original.result!.reportText);
    restored.result!.directions.forEach((row, index) => expect([...row]).toEqual([...original.result!.directions[index]!]));
    expect(restored.result!.projections).toEqual(original.result!.projections);
    expect(restored.sweep).toEqual(original.sweep);
    expect(restored.resultPrompts).toEqual(original.resultPrompts);
    expect(restored.result!.split).toEqual(original.result!.split);
  });

  it('writes the analyze command with the report\'s position, split, seed and batch size', () => {
    const args = reproduceArguments(snapshot(false), 'public/models/demo');
    expect(args).toEqual(['analyze', '--model', 'public/models/demo', '--harmful', '$RUN_CARD/prompts/harmful.jsonl', '--harmless', '$RUN_CARD/prompts/harmless.jsonl', '--position', '-1', '--held-out', '0.25', '--seed', '3', '--batch-size', '8', '--out', '$RUN_CARD/reproduced']);
    const script = strFromU8(unzipSync(buildRunCard({ snapshot: snapshot(false), plots: {} }))['reproduce.sh']!);
    expect(script).toContain('npx abliterate analyze --model public/models/demo --harmful "$RUN_CARD/prompts/harmful.jsonl"');
  });

  it('rejects what is not a run card, naming the file and the problem', () => {
    expect(() => readRunCard('notes.zip', new TextEncoder().encode('not a zip'))).toThrow(InvalidFileError);
    expect(() => readRunCard('notes.zip', new TextEncoder().encode('not a zip'))).toThrow(/^notes\.zip: is not a zip file/);
  });
});

describe('layer choice', () => {
  it('lets the sweep decide when there is one, else the capture\'s AUC, and says which', () => {
    const withSweep = snapshot(true);
    expect(recommendLayer(withSweep.result!, withSweep.sweep)).toMatchObject({ layer: 3, source: 'sweep' });
    expect(recommendLayer(withSweep.result!, null)).toMatchObject({ layer: withSweep.result!.report.bestLayer, source: 'auc' });
    expect(recommendLayer(withSweep.result!, null).rule).toMatch(/held-out AUC/);
  });

  it('maps misclassified held-out projections back to prompt indices of their sets', () => {
    const session = snapshot(false);
    const result = session.result!;
    const rows = layerChoiceRows(result, null);
    for (const row of rows.slice(1)) {
      const projections = result.projections[row.layer]!;
      const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
      const threshold = (mean(projections.harmful) + mean(projections.harmless)) / 2;
      const expectedA = result.split!.harmful.heldOut.filter((_, position) => projections.harmful[position]! <= threshold);
      const expectedB = result.split!.harmless.heldOut.filter((_, position) => projections.harmless[position]! >= threshold);
      expect(row.misclassified).toEqual({ harmful: expectedA, harmless: expectedB });
    }
    expect(rows[0]!.misclassified).toBeNull(); // the degenerate layer has no direction
  });
});
