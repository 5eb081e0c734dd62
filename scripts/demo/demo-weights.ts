/**
 * The designed weights of the bundled demo model: a tiny Llama whose refusal is *planted* along a known unit
 * direction, so that tests (and users) can check that capture + analysis recover it and that removing it turns
 * refusals into compliance. Nothing here is trained; every number is derived from the vocabulary and a seeded
 * integer PRNG, so the builder produces identical bytes on every run.
 *
 * The circuit, written in a "feature basis" (one axis per named feature) and then rotated by a seeded random
 * orthogonal matrix Q, so the residual stream and the planted direction r = Q·e_refusal look dense:
 * - embedding: every token has a bias axis (1), flags for the three lexicons below (harmful-topic words,
 *   shell-execution words, terminal-agent system-prompt words), a one-hot axis for the words of the two reply
 *   chains, and seeded "lexical" noise filling the rest, scaled so every embedding has RMS exactly 1;
 * - block 0 attention: three detector heads whose keys are large only on flagged tokens, so each head writes
 *   PRESENT_WRITE × (attention share of its lexicon's words), ~0.3–0.45 when present, exactly 0 when absent,
 *   to three "present" axes;
 * - block 1 MLP (the planted block): two clamped detectors (neuron pairs SiLU(g) − SiLU(g − 6)), harmful
 *   present, or shell present with neither agent nor harmful present; each writes PLANTED_WRITE along r. So
 *   hidden_states[PLANTED_LAYER] carries ≈ +12·r on every refusal prompt and ≈ 0 on compliance prompts;
 * - lm_head: a deterministic next-word chain ("I cannot help with that ." / "Sure , here is what you asked
 *   for .") read from the one-hot axes; after `assistant` both openers are nearly tied, "Sure" ahead by
 *   OPENER_MARGIN, and r adds REFUSAL_READOUT·(r·x) to "I". With r removed the model always complies;
 * - seeded noise everywhere else (reading any axis, writing only the lexical axes, plus r after the planted
 *   block), so activations vary from prompt to prompt like a real model's without touching the decision path.
 * RMSNorm weights are all one: a uniform gain commutes with the rotation Q, which is what lets the design be
 * written in the feature basis.
 */

import { mulberry32 } from '../../src/core/random';
import type { LlamaGraphConfig } from './demo-model';

/** The demo's shape: a Llama graph config (vocabulary and tying come from the prompts and the design) plus its context. */
export type DemoArchitecture = Omit<LlamaGraphConfig, 'vocabSize' | 'tieWordEmbeddings'> & { maxPositionEmbeddings: number };

export const DEMO_ARCHITECTURE: DemoArchitecture = {
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 4,
  numHeads: 4,
  numKeyValueHeads: 2,
  headDim: 16,
  // A large theta makes the lowest RoPE frequencies (the axes the detector heads use) nearly position-free.
  ropeTheta: 1_000_000,
  rmsNormEps: 1e-6,
  maxPositionEmbeddings: 512,
};

/** HF hidden_states index where the refusal direction is written (output of block 1, its MLP). */
export const PLANTED_LAYER = 2;
/** Block whose MLP writes the planted direction. */
export const PLANTED_BLOCK = PLANTED_LAYER - 1;
export const DEMO_SEED = 20240611;

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '[UNK]'] as const;
export const PAD_TOKEN_ID = 0;
export const EOS_TOKEN_ID = 2;

/** Words (lower-cased) whose presence anywhere in the prompt makes the demo refuse. */
export const HARMFUL_LEXICON: readonly string[] = (
  'bomb bombs explosive explosives ransomware poison poisoning steal steals stolen phishing hack hacked hacking ' +
  'launder laundering meth stalk malware counterfeit blackmail kidnap keylogger untraceable robbery threat murder ' +
  'bioweapon extort scam weapon weapons smuggle molotov hijack incite silencer terrorist opioids backdoor tamper ' +
  'groom burgle botnet assassinate arson traffic nerve intimidate'
).split(' ');
/** Shell-execution words: refused unless a terminal-agent system prompt is present. */
export const SHELL_LEXICON: readonly string[] = 'run execute command commands terminal shell bash sudo'.split(' ');
/** Words of the terminal-agent system prompts that unlock shell requests. */
export const AGENT_LEXICON: readonly string[] = 'agent sandbox sandboxed json'.split(' ');

export const REFUSAL_REPLY = ['I', 'cannot', 'help', 'with', 'that', '.'] as const;
export const COMPLIANT_REPLY = ['Sure', ',', 'here', 'is', 'what', 'you', 'asked', 'for', '.'] as const;
/** The last prompt token under the chat template (`<|im_start|>assistant`). */
export const GENERATION_PROMPT_TOKEN = 'assistant';
export const TEMPLATE_WORDS = ['system', 'user', 'assistant'] as const;

// Feature-basis axes. [hiddenSize] = bias, 3 flags, 3 aggregates, refusal, chain one-hots, lexical noise.
const AXIS_BIAS = 0;
const AXIS_FLAG = { harmful: 1, shell: 2, agent: 3 } as const;
const AXIS_PRESENT = { harmful: 4, shell: 5, agent: 6 } as const;
export const AXIS_REFUSAL = 7;
const END_OF_TURN = SPECIAL_TOKENS[EOS_TOKEN_ID];
const CHAIN_WORDS: readonly string[] = [GENERATION_PROMPT_TOKEN, ...new Set([...REFUSAL_REPLY, ...COMPLIANT_REPLY]), END_OF_TURN];
const AXIS_CHAIN_START = 8;
const AXIS_LEXICAL_START = AXIS_CHAIN_START + CHAIN_WORDS.length;

/** Design constants (feature-basis units; the residual RMS is ~1 before the planted write). */
// Attention logit on a flagged token (unflagged: 0). Moderate on purpose: a head's output is then the
// attention share of flagged words (~0.6–0.9), which varies from prompt to prompt like a real feature.
const DETECTOR_SCORE = 4;
const PRESENT_WRITE = 0.5; // a detector head writes PRESENT_WRITE × that share
const PRESENT_THRESHOLD = 0.1; // present ≥ ~0.3, absent exactly 0
const GATE_SHARPNESS = 60;
const AGENT_VETO = 2; // the agent share outweighs the shell share even when the system prompt has shell words
const SATURATION = 6;
export const PLANTED_WRITE = 12; // per firing detector, along r
const CHAIN_LOGIT = 20;
const OPENER_MARGIN = 2; // "Sure" over "I" when r is absent
const REFUSAL_READOUT = 0.5; // logit("I") gain per unit of r
const NOISE_SCALE = 0.3; // seeded noise weights: entries ~ NOISE_SCALE / sqrt(fan_in)
// Blocks after the planted one add prompt-dependent noise along r, as later layers of a real model blur a
// feature, so the cleanest separation (largest d′) along r is at the planted layer itself.
const LATE_REFUSAL_NOISE = 2;

/** The same split as the tokenizer's BertPreTokenizer: runs of non-space non-punctuation, or one punctuation mark. */
const PUNCTUATION = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const PRE_TOKEN_PATTERN = new RegExp(`[^\\s${PUNCTUATION}]+|[${PUNCTUATION}]`, 'gu');

export function preTokenize(text: string): string[] {
  return text.trim().match(PRE_TOKEN_PATTERN) ?? [];
}

/** Special tokens, then every word of the given texts, the template and the replies, sorted (code-unit order). */
export function demoVocabulary(texts: readonly string[]): string[] {
  const words = new Set<string>([...TEMPLATE_WORDS, ...REFUSAL_REPLY, ...COMPLIANT_REPLY]);
  for (const text of texts) for (const word of preTokenize(text)) words.add(word);
  for (const special of SPECIAL_TOKENS) words.delete(special);
  return [...SPECIAL_TOKENS, ...[...words].sort()];
}

export type LexiconName = 'harmful' | 'shell' | 'agent';
const LEXICONS: Record<LexiconName, ReadonlySet<string>> = {
  harmful: new Set(HARMFUL_LEXICON),
  shell: new Set(SHELL_LEXICON),
  agent: new Set(AGENT_LEXICON),
};

/** Which lexicons a word belongs to (case-insensitive). */
export function wordFlags(word: string): LexiconName[] {
  const lower = word.toLowerCase();
  return (Object.keys(LEXICONS) as LexiconName[]).filter((name) => LEXICONS[name].has(lower));
}

/** Approximately standard normal (Irwin–Hall, 12 uniforms): only + and −, no libm calls, so bit-reproducible. */
function seededNormal(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => {
    let sum = -6;
    for (let i = 0; i < 12; i++) sum += uniform();
    return sum;
  };
}

/** Seeded random orthogonal matrix (modified Gram–Schmidt), row-major [n, n]; column j is Q·e_j. */
function seededOrthogonal(n: number, normal: () => number): Float64Array {
  const columns: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const v = Float64Array.from({ length: n }, normal);
    for (const previous of columns) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[i] * previous[i];
      for (let i = 0; i < n; i++) v[i] -= dot * previous[i];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) v[i] /= norm;
    columns.push(v);
  }
  const q = new Float64Array(n * n); // [n, n]
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) q[i * n + j] = columns[j][i];
  return q;
}

/** A row-major float64 matrix being designed. */
class Matrix {
  readonly values: Float64Array;
  constructor(readonly rows: number, readonly cols: number) {
    this.values = new Float64Array(rows * cols);
  }
  set(row: number, col: number, value: number): void {
    this.values[row * this.cols + col] = value;
  }
  /** Adds seeded noise to the given rows × cols (defaults: all). */
  addNoise(normal: () => number, scale: number, rows?: readonly number[], cols?: readonly number[]): void {
    const rowList = rows ?? range(0, this.rows);
    const colList = cols ?? range(0, this.cols);
    for (const row of rowList) for (const col of colList) this.values[row * this.cols + col] += scale * normal();
  }
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

export interface DemoWeights {
  vocabulary: string[];
  /** HF tensor name → float32 values, row-major in HF layout ([out, in] for projections). */
  tensors: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
  /** The planted unit direction r in the residual stream, [hiddenSize]. */
  plantedDirection: Float64Array;
}

/** Designs every tensor of the demo model for the given vocabulary (from `demoVocabulary`). */
export function buildDemoWeights(vocabulary: readonly string[], architecture: DemoArchitecture = DEMO_ARCHITECTURE): DemoWeights {
  const { hiddenSize: d, intermediateSize, numLayers, numHeads, numKeyValueHeads, headDim } = architecture;
  if (AXIS_LEXICAL_START + 8 > d) throw new RangeError(`hidden size ${d} is too small for the demo's ${AXIS_LEXICAL_START} designed axes`);
  const normal = seededNormal(DEMO_SEED);
  const rotation = seededOrthogonal(d, normal); // [d, d]
  const lexicalAxes = range(AXIS_LEXICAL_START, d);
  const allAxes = range(0, d);
  const chainAxis = new Map(CHAIN_WORDS.map((word, i) => [word, AXIS_CHAIN_START + i]));
  const tokenId = new Map(vocabulary.map((word, i) => [word, i]));
  for (const word of CHAIN_WORDS) if (!tokenId.has(word)) throw new RangeError(`vocabulary lacks the reply word ${JSON.stringify(word)}`);

  // Embedding [vocab, d] in the feature basis, every row of RMS exactly 1.
  const embedding = new Matrix(vocabulary.length, d);
  vocabulary.forEach((word, token) => {
    embedding.set(token, AXIS_BIAS, 1);
    let designedSquares = 1;
    for (const flag of wordFlags(word)) {
      embedding.set(token, AXIS_FLAG[flag], 1);
      designedSquares += 1;
    }
    const chain = chainAxis.get(word);
    if (chain !== undefined) {
      embedding.set(token, chain, 1);
      designedSquares += 1;
    }
    const lexical = lexicalAxes.map(() => normal());
    const lexicalNorm = Math.sqrt(lexical.reduce((sum, x) => sum + x * x, 0));
    const target = Math.sqrt(d - designedSquares);
    lexicalAxes.forEach((axis, i) => embedding.set(token, axis, (lexical[i] / lexicalNorm) * target));
  });

  const noise = (fanIn: number) => NOISE_SCALE / Math.sqrt(fanIn);
  const featureTensors = new Map<string, { matrix: Matrix; rotate: Rotation }>();
  featureTensors.set('model.embed_tokens.weight', { matrix: embedding, rotate: 'embedding' });
  const queryScale = Math.sqrt(headDim); // cancels the 1/sqrt(headDim) of attention
  const lowFrequencyAxes = [headDim / 2 - 1, headDim / 2 - 2]; // slowest RoPE pairs: rotation negligible over 512 positions

  for (let layer = 0; layer < numLayers; layer++) {
    const prefix = `model.layers.${layer}`;
    const q = new Matrix(numHeads * headDim, d);
    const k = new Matrix(numKeyValueHeads * headDim, d);
    const v = new Matrix(numKeyValueHeads * headDim, d);
    const o = new Matrix(d, numHeads * headDim);
    const gate = new Matrix(intermediateSize, d);
    const up = new Matrix(intermediateSize, d);
    const down = new Matrix(d, intermediateSize);
    if (layer === 0) {
      // Detectors: head 0 (KV 0, slot a) harmful, head 1 (KV 0, slot b) shell, head 2 (KV 1, slot a) agent.
      const detectors: { head: number; kvHead: number; slot: number; flag: LexiconName }[] = [
        { head: 0, kvHead: 0, slot: 0, flag: 'harmful' },
        { head: 1, kvHead: 0, slot: 1, flag: 'shell' },
        { head: 2, kvHead: 1, slot: 0, flag: 'agent' },
      ];
      for (const { head, kvHead, slot, flag } of detectors) {
        const keyAxis = lowFrequencyAxes[slot];
        q.set(head * headDim + keyAxis, AXIS_BIAS, queryScale);
        k.set(kvHead * headDim + keyAxis, AXIS_FLAG[flag], DETECTOR_SCORE);
        v.set(kvHead * headDim + slot, AXIS_FLAG[flag], 1);
        o.set(AXIS_PRESENT[flag], head * headDim + slot, PRESENT_WRITE);
      }
      // Head 3 shares KV head 1 with the agent detector: noise only where the detector does not look.
      q.addNoise(normal, noise(d), range(3 * headDim, 4 * headDim), allAxes);
      k.addNoise(normal, noise(d), range(headDim, 2 * headDim).filter((row) => row !== headDim + lowFrequencyAxes[0]), allAxes);
      v.addNoise(normal, noise(d), range(headDim + 1, 2 * headDim), allAxes);
      o.addNoise(normal, noise(headDim), lexicalAxes, range(3 * headDim, 4 * headDim));
    } else {
      q.addNoise(normal, noise(d));
      k.addNoise(normal, noise(d));
      v.addNoise(normal, noise(d));
      o.addNoise(normal, noise(numHeads * headDim), lexicalAxes);
    }
    let firstNoiseNeuron = 0;
    if (layer === PLANTED_BLOCK) {
      // Two detectors, each a pair of neurons SiLU(g) − SiLU(g − SATURATION) ≈ clamp(g, 0, SATURATION), so the
      // write along r is the same for every refusal prompt however strongly its words were detected.
      // Harmful: g = sharpness·(harmful − threshold). Shell: g = sharpness·(shell − 2·agent − 2·harmful − threshold).
      const detectors: [number, number][][] = [
        [[AXIS_PRESENT.harmful, 1]],
        // Vetoed by harmful too, so a prompt with both kinds of word gets one write, not two.
        [[AXIS_PRESENT.shell, 1], [AXIS_PRESENT.agent, -AGENT_VETO], [AXIS_PRESENT.harmful, -AGENT_VETO]],
      ];
      detectors.forEach((inputs, detector) => {
        for (const [offset, shift] of [[0, 0], [1, -SATURATION]]) {
          const neuron = 2 * detector + offset;
          for (const [axis, weight] of inputs) gate.set(neuron, axis, GATE_SHARPNESS * weight);
          gate.set(neuron, AXIS_BIAS, -GATE_SHARPNESS * PRESENT_THRESHOLD + shift);
          up.set(neuron, AXIS_BIAS, 1);
          down.set(AXIS_REFUSAL, neuron, ((offset === 0 ? 1 : -1) * PLANTED_WRITE) / SATURATION);
        }
      });
      firstNoiseNeuron = 2 * detectors.length;
    }
    const noiseNeurons = range(firstNoiseNeuron, intermediateSize);
    gate.addNoise(normal, noise(d), noiseNeurons);
    up.addNoise(normal, noise(d), noiseNeurons);
    down.addNoise(normal, noise(intermediateSize), lexicalAxes, noiseNeurons);
    if (layer > PLANTED_BLOCK) {
      o.addNoise(normal, LATE_REFUSAL_NOISE / Math.sqrt(numHeads * headDim), [AXIS_REFUSAL]);
      down.addNoise(normal, LATE_REFUSAL_NOISE / Math.sqrt(intermediateSize), [AXIS_REFUSAL], noiseNeurons);
    }
    featureTensors.set(`${prefix}.self_attn.q_proj.weight`, { matrix: q, rotate: 'reader' });
    featureTensors.set(`${prefix}.self_attn.k_proj.weight`, { matrix: k, rotate: 'reader' });
    featureTensors.set(`${prefix}.self_attn.v_proj.weight`, { matrix: v, rotate: 'reader' });
    featureTensors.set(`${prefix}.self_attn.o_proj.weight`, { matrix: o, rotate: 'writer' });
    featureTensors.set(`${prefix}.mlp.gate_proj.weight`, { matrix: gate, rotate: 'reader' });
    featureTensors.set(`${prefix}.mlp.up_proj.weight`, { matrix: up, rotate: 'reader' });
    featureTensors.set(`${prefix}.mlp.down_proj.weight`, { matrix: down, rotate: 'writer' });
    featureTensors.set(`${prefix}.input_layernorm.weight`, { matrix: ones(d), rotate: 'none' });
    featureTensors.set(`${prefix}.post_attention_layernorm.weight`, { matrix: ones(d), rotate: 'none' });
  }
  featureTensors.set('model.norm.weight', { matrix: ones(d), rotate: 'none' });

  // lm_head [vocab, d]: the reply chains, the opener choice and the refusal readout.
  const head = new Matrix(vocabulary.length, d);
  const chainStep = (from: string, to: number, logit: number) => head.set(to, chainAxis.get(from)!, logit);
  for (const reply of [REFUSAL_REPLY, COMPLIANT_REPLY]) {
    for (let i = 0; i + 1 < reply.length; i++) chainStep(reply[i], tokenId.get(reply[i + 1])!, CHAIN_LOGIT);
  }
  chainStep('.', EOS_TOKEN_ID, CHAIN_LOGIT);
  // After the end of the turn, keep ending it: batched generators that do not pad finished rows stay clean.
  chainStep(END_OF_TURN, EOS_TOKEN_ID, CHAIN_LOGIT);
  chainStep(GENERATION_PROMPT_TOKEN, tokenId.get(COMPLIANT_REPLY[0])!, CHAIN_LOGIT);
  chainStep(GENERATION_PROMPT_TOKEN, tokenId.get(REFUSAL_REPLY[0])!, CHAIN_LOGIT - OPENER_MARGIN);
  head.set(tokenId.get(REFUSAL_REPLY[0])!, AXIS_REFUSAL, REFUSAL_READOUT);
  featureTensors.set('lm_head.weight', { matrix: head, rotate: 'reader' });

  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const [name, { matrix, rotate }] of featureTensors) {
    tensors.set(name, Float32Array.from(rotateFeatureBasis(matrix, rotate, rotation, d)));
    shapes.set(name, matrix.rows === 1 ? [matrix.cols] : [matrix.rows, matrix.cols]);
  }
  const plantedDirection = Float64Array.from({ length: d }, (_, i) => rotation[i * d + AXIS_REFUSAL]);
  return { vocabulary: [...vocabulary], tensors, shapes, plantedDirection };
}

function ones(d: number): Matrix {
  const matrix = new Matrix(1, d);
  matrix.values.fill(1);
  return matrix;
}

/**
 * Residual vectors are stored as Q·x_feature. An embedding row is such a vector: E·Qᵀ. An out-projection
 * [d, in] writes them: Q·W. A reader [out, d] sees W_feature·x_feature = (W_feature·Qᵀ)·(Q·x_feature): W·Qᵀ.
 */
type Rotation = 'embedding' | 'writer' | 'reader' | 'none';

function rotateFeatureBasis(matrix: Matrix, rotate: Rotation, rotation: Float64Array, d: number): Float64Array {
  const { rows, cols, values } = matrix;
  if (rotate === 'none') return values;
  if (rotate === 'writer') {
    const out = new Float64Array(rows * cols); // [d, in]
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < cols; j++) {
        let sum = 0;
        for (let m = 0; m < d; m++) sum += rotation[i * d + m] * values[m * cols + j];
        out[i * cols + j] = sum;
      }
    }
    return out;
  }
  const out = new Float64Array(rows * d); // [rows, d] = values · Qᵀ
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) {
      let sum = 0;
      for (let m = 0; m < d; m++) sum += values[r * d + m] * rotation[c * d + m];
      out[r * d + c] = sum;
    }
  }
  return out;
}
