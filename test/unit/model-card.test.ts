/**
 * The model card's text: Hugging Face front matter (base_model, library_name, the base card's license lines,
 * tags), the recipe, the direction's provenance, the results table or the "not measured" line, the ONNX note,
 * and the base card's text below, unchanged. Expected strings are written out here, not built by the module.
 */
import { describe, expect, it } from 'vitest';
import { baseModelId, buildModelCard, copiedFrontMatterLines, evaluationFiguresFromJson, resultsFromEvaluation, splitFrontMatter, type ModelCardFacts } from '../../src/formats/model-card';

const facts: ModelCardFacts = {
  baseModel: 'Qwen/Qwen3.5-0.8B',
  libraryName: 'transformers',
  onnx: 'copied',
  recipe: { method: 'standard', direction: 14, projection: 'none', components: { attn: 1, mlp: 1 } },
  direction: { file: 'directions.safetensors', fileSha256: 'f'.repeat(64), layer: 14, sha256: 'a'.repeat(64) },
  results: null,
  tool: { name: 'abliteration-workbench', version: '0.1.0' },
  manifestFile: 'abliteration.json',
};

const BASE_CARD = `---
license: other
license_name: qwen-research
license_link: https://huggingface.co/Qwen/LICENSE
language:
- en
pipeline_tag: text-generation
---

# Qwen3.5-0.8B

The base model's own text.
`;

describe('model card', () => {
  it('splits a base card into front matter and text, and copies only its license lines', () => {
    const { frontMatter, body } = splitFrontMatter(BASE_CARD);
    expect(body).toBe('\n# Qwen3.5-0.8B\n\nThe base model\'s own text.\n');
    expect(copiedFrontMatterLines(frontMatter)).toEqual(['license: other', 'license_name: qwen-research', 'license_link: https://huggingface.co/Qwen/LICENSE']);
    expect(copiedFrontMatterLines('license:\n- mit\n- apache-2.0\ntags:\n- x')).toEqual(['license:', '- mit', '- apache-2.0']);
    expect(splitFrontMatter('# no front matter\n---\n')).toEqual({ frontMatter: null, body: '# no front matter\n---\n' });
    expect(splitFrontMatter('---\nunclosed: yes\n')).toEqual({ frontMatter: null, body: '---\nunclosed: yes\n' });
  });

  it('names the base model by its Hub id when config.json has one, else by the folder', () => {
    expect(baseModelId({ _name_or_path: 'Qwen/Qwen3.5-0.8B' }, '/tmp/x/qwen')).toBe('Qwen/Qwen3.5-0.8B');
    expect(baseModelId({ _name_or_path: '/home/me/models/qwen' }, '/tmp/x/qwen-local')).toBe('qwen-local');
    expect(baseModelId({}, 'C:\\models\\llama\\')).toBe('llama');
    expect(baseModelId({ _name_or_path: './rel/path' }, 'demo')).toBe('demo');
  });

  it('writes the front matter, recipe, direction, "not measured" and the base text below a rule', () => {
    const card = buildModelCard(facts, BASE_CARD);
    expect(card.split('\n').slice(0, 12)).toEqual([
      '---',
      'base_model: Qwen/Qwen3.5-0.8B',
      'library_name: transformers',
      'license: other',
      'license_name: qwen-research',
      'license_link: https://huggingface.co/Qwen/LICENSE',
      'pipeline_tag: text-generation',
      'tags:',
      '- abliterated',
      '- abliteration-workbench',
      '---',
      '',
    ]);
    expect(card).toContain('# Qwen/Qwen3.5-0.8B — abliterated');
    expect(card).toContain('made with abliteration-workbench 0.1.0.');
    expect(card).toContain('```json\n{\n  "method": "standard",\n  "direction": 14,\n  "projection": "none",\n  "components": {\n    "attn": 1,\n    "mlp": 1\n  }\n}\n```');
    expect(card).toContain(`- File: \`directions.safetensors\` (SHA-256 \`${'f'.repeat(64)}\`), row 14 (hidden state 14: after block 13).`);
    expect(card).toContain(`SHA-256 \`${'a'.repeat(64)}\``);
    expect(card).toContain('Not measured for this export.');
    expect(card).toContain('do **not** include the ablation');
    expect(card.endsWith("---\n\n*The base model's card follows, unchanged.*\n\n\n# Qwen3.5-0.8B\n\nThe base model's own text.\n")).toBe(true);
    // The base card's own front matter is not repeated below.
    expect(card.match(/^license: other$/gm)).toHaveLength(1);
  });

  it('tabulates measured results with their prompt counts, and tags ONNX-only exports', () => {
    const results = resultsFromEvaluation(
      { base: { refusalRate: 0.9 }, ablated: { refusalRate: 0.125 }, klFirstToken: 0.0123456, counts: { harmful: 16, harmless: 20 }, agent: { count: 8, base: { actionRate: 0.25 }, ablated: { actionRate: 0.75 } } },
      'eval.json: layer 14, the held-out split',
    );
    const card = buildModelCard({ ...facts, results, onnx: 'ablated', libraryName: 'transformers.js', baseModel: 'my model' }, null);
    expect(card).toContain('base_model: "my model"\nlibrary_name: transformers.js\npipeline_tag: text-generation\ntags:\n- abliterated\n- abliteration-workbench\n- onnx\n- transformers.js\n---');
    expect(card).toContain(
      [
        'From eval.json: layer 14, the held-out split.',
        '',
        '| measure | base | abliterated | prompts |',
        '|---|---|---|---|',
        '| refusal rate | 90.0 % | 12.5 % | 16 harmful |',
        '| first-token KL(base ‖ abliterated) | — | 0.01235 | 20 harmless |',
        '| action rate (agent requests) | 25.0 % | 75.0 % | 8 agent |',
      ].join('\n'),
    );
    expect(card).toContain('`onnx/` holds abliterated graphs');
    expect(card).not.toContain("base model's card follows");
  });

  it('reads the figures of an eval.json for `ablate --eval`, and names the file when they are missing', () => {
    const text = JSON.stringify({ base: { refusalRate: 1 }, ablated: { refusalRate: 0.25 }, klFirstToken: 0.5, counts: { harmful: 8, harmless: 6 }, samples: [], agent: { count: 3, base: { actionRate: 0 }, ablated: { actionRate: 1 }, samples: [] } });
    expect(evaluationFiguresFromJson('eval.json', text)).toEqual({ base: { refusalRate: 1 }, ablated: { refusalRate: 0.25 }, klFirstToken: 0.5, counts: { harmful: 8, harmless: 6 }, agent: { count: 3, base: { actionRate: 0 }, ablated: { actionRate: 1 } } });
    expect(() => evaluationFiguresFromJson('out/eval.json', '{"base": {"refusalRate": 2}}')).toThrow(/^out\/eval\.json: is not an eval\.json of abliterate eval\/run/);
    expect(() => evaluationFiguresFromJson('out/eval.json', '{')).toThrow(/^out\/eval\.json: is not valid JSON/);
  });
});
