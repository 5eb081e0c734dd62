/**
 * Float64 forward pass of the tiny genai-style Qwen3.5 architecture (generate-genai-model.ts), written
 * independently of the ONNX builder: token by token, the linear-attention layers in their recurrent form
 * (S_t = g_t S_{t−1} + β_t k_t v_tᵀ, o_t = S_tᵀ q_t) where the graph uses the parallel decay-matrix form,
 * the conv as an explicit sum over the last K inputs, attention as plain loops. One unpadded sequence at a time.
 */
import { mropeAxis } from './genai-onnx-builder';
import { GENAI_PREFIX, type GenaiConfig } from './generate-genai-model';

export interface GenaiReferenceResult {
  /** L + 1 arrays, each [seq, hiddenSize]: index 0 the embedding, l the output of block l − 1 (HF hidden_states). */
  hiddenStates: Float64Array[];
  /** [seq, vocab] */
  logits: Float64Array;
}

const L2_EPSILON = 1e-6;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** y = W x for HF-layout W [rows, cols], one row vector x [cols]. */
function matVec(weight: Float32Array, rows: number, cols: number, x: Float64Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += weight[r * cols + c] * x[c];
    out[r] = sum;
  }
  return out;
}

/** RMS norm of x[offset .. offset + width) scaled by `scale(k)`. */
function rmsNormed(x: Float64Array, offset: number, width: number, eps: number, scale: (k: number) => number): Float64Array {
  let squares = 0;
  for (let k = 0; k < width; k++) squares += x[offset + k] ** 2;
  const inverse = 1 / Math.sqrt(squares / width + eps);
  return Float64Array.from({ length: width }, (_, k) => x[offset + k] * inverse * scale(k));
}

export interface GenaiReferenceOptions {
  /** Per mRoPE axis (temporal, height, width), the position of each token; default 0..n−1 on all three. */
  positions?: [number[], number[], number[]];
}

export function genaiReferenceForward(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>, tokenIds: readonly number[], options: GenaiReferenceOptions = {}): GenaiReferenceResult {
  const { hiddenSize: d, vocabSize: vocab, intermediateSize: ffn, numHeads, numKeyValueHeads, headDim, rotaryDim, linearHeads, linearKeyHeadDim: dk, linearValueHeadDim: dv, convKernel, rmsNormEps: eps } = config;
  const seq = tokenIds.length;
  const weight = (name: string): Float32Array => {
    const value = weights.get(`${GENAI_PREFIX}${name}`);
    if (!value) throw new Error(`genai reference: missing tensor ${GENAI_PREFIX}${name}`);
    return value;
  };
  const rows = (x: Float64Array[], name: string, out: number, inputs: number) => x.map((row) => matVec(weight(name), out, inputs, row));
  const onePlus = (name: string) => {
    const w = weight(name);
    return (k: number) => 1 + w[k];
  };
  const positions = options.positions ?? [0, 1, 2].map(() => Array.from({ length: seq }, (_, t) => t)) as [number[], number[], number[]];
  const embedding = weight('embed_tokens.weight'); // [vocab, d]
  let hidden: Float64Array[] = tokenIds.map((token) => {
    if (!Number.isInteger(token) || token < 0 || token >= vocab) throw new Error(`genai reference: token id ${token} out of range`);
    return Float64Array.from(embedding.subarray(token * d, (token + 1) * d));
  });
  const flatten = (x: Float64Array[]) => {
    const out = new Float64Array(seq * d);
    x.forEach((row, t) => out.set(row, t * d));
    return out;
  };
  const hiddenStates = [flatten(hidden)];

  const half = rotaryDim / 2;
  const inverseFrequency = Array.from({ length: half }, (_, j) => 1 / config.ropeTheta ** ((2 * j) / rotaryDim));
  /** rotate_half RoPE on the first rotaryDim entries of one head vector, in place. */
  const rope = (vector: Float64Array, t: number) => {
    const rotated = vector.slice(0, rotaryDim);
    for (let j = 0; j < half; j++) {
      const angle = positions[mropeAxis(config, j)][t] * inverseFrequency[j];
      const [c, s] = [Math.cos(angle), Math.sin(angle)];
      vector[j] = rotated[j] * c - rotated[j + half] * s;
      vector[j + half] = rotated[j + half] * c + rotated[j] * s;
    }
  };

  const fullAttention = (layer: number, normed: Float64Array[]): Float64Array[] => {
    const w = `layers.${layer}.self_attn.`;
    const queryAndGate = rows(normed, `${w}q_proj.weight`, 2 * numHeads * headDim, d); // [seq][H · 2hd]
    const keys = rows(normed, `${w}k_proj.weight`, numKeyValueHeads * headDim, d);
    const values = rows(normed, `${w}v_proj.weight`, numKeyValueHeads * headDim, d);
    const queries = queryAndGate.map((row, t) => {
      const out = new Float64Array(numHeads * headDim);
      for (let h = 0; h < numHeads; h++) {
        const normedHead = rmsNormed(row, h * 2 * headDim, headDim, eps, onePlus(`${w}q_norm.weight`));
        rope(normedHead, t);
        out.set(normedHead, h * headDim);
      }
      return out;
    });
    const rotatedKeys = keys.map((row, t) => {
      const out = new Float64Array(numKeyValueHeads * headDim);
      for (let h = 0; h < numKeyValueHeads; h++) {
        const normedHead = rmsNormed(row, h * headDim, headDim, eps, onePlus(`${w}k_norm.weight`));
        rope(normedHead, t);
        out.set(normedHead, h * headDim);
      }
      return out;
    });
    const groups = numHeads / numKeyValueHeads;
    const gated = queries.map((query, t) => {
      const out = new Float64Array(numHeads * headDim);
      for (let h = 0; h < numHeads; h++) {
        const kv = Math.floor(h / groups);
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let k = 0; k < headDim; k++) dot += query[h * headDim + k] * rotatedKeys[s][kv * headDim + k];
          return dot / Math.sqrt(headDim);
        });
        const top = Math.max(...scores);
        const exps = scores.map((score) => Math.exp(score - top));
        const total = exps.reduce((a, b) => a + b, 0);
        for (let k = 0; k < headDim; k++) {
          let sum = 0;
          for (let s = 0; s <= t; s++) sum += (exps[s] / total) * values[s][kv * headDim + k];
          out[h * headDim + k] = sum * sigmoid(queryAndGate[t][h * 2 * headDim + headDim + k]);
        }
      }
      return out;
    });
    return rows(gated, `${w}o_proj.weight`, d, numHeads * headDim);
  };

  const linearAttention = (layer: number, normed: Float64Array[]): Float64Array[] => {
    const w = `layers.${layer}.linear_attn.`;
    const channels = linearHeads * (2 * dk + dv);
    const mixed = rows(normed, `${w}in_proj_qkv.weight`, channels, d); // [seq][C]
    const convWeight = weight(`${w}conv1d.weight`); // [C, 1, K]
    const z = rows(normed, `${w}in_proj_z.weight`, linearHeads * dv, d);
    const betaInput = rows(normed, `${w}in_proj_b.weight`, linearHeads, d);
    const decayInput = rows(normed, `${w}in_proj_a.weight`, linearHeads, d);
    const [aLog, dtBias, normWeight] = [weight(`${w}A_log`), weight(`${w}dt_bias`), weight(`${w}norm.weight`)];
    const states = Array.from({ length: linearHeads }, () => new Float64Array(dk * dv)); // [H][dk, dv]
    const outputs = mixed.map((_, t) => {
      const activated = new Float64Array(channels);
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let j = 0; j < convKernel; j++) {
          const source = t - (convKernel - 1) + j;
          if (source >= 0) sum += convWeight[c * convKernel + j] * mixed[source][c];
        }
        activated[c] = sum * sigmoid(sum);
      }
      const gatedOut = new Float64Array(linearHeads * dv);
      for (let h = 0; h < linearHeads; h++) {
        const unit = (offset: number) => {
          let squares = 0;
          for (let k = 0; k < dk; k++) squares += activated[offset + k] ** 2;
          return Float64Array.from({ length: dk }, (_, k) => activated[offset + k] / Math.sqrt(squares + L2_EPSILON));
        };
        const query = unit(h * dk).map((value) => value / Math.sqrt(dk));
        const key = unit(linearHeads * dk + h * dk);
        const value = activated.subarray(2 * linearHeads * dk + h * dv, 2 * linearHeads * dk + (h + 1) * dv);
        const beta = sigmoid(betaInput[t][h]);
        const decay = Math.exp(-Math.exp(aLog[h]) * softplus(decayInput[t][h] + dtBias[h]));
        const state = states[h];
        for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) state[i * dv + j] = decay * state[i * dv + j] + beta * key[i] * value[j];
        const output = new Float64Array(dv);
        for (let j = 0; j < dv; j++) for (let i = 0; i < dk; i++) output[j] += state[i * dv + j] * query[i];
        const normedOutput = rmsNormed(output, 0, dv, eps, (k) => normWeight[k]);
        for (let j = 0; j < dv; j++) {
          const gate = z[t][h * dv + j];
          gatedOut[h * dv + j] = normedOutput[j] * gate * sigmoid(gate);
        }
      }
      return gatedOut;
    });
    return rows(outputs, `${w}out_proj.weight`, d, linearHeads * dv);
  };

  const add = (a: Float64Array[], b: Float64Array[]) => a.map((row, t) => row.map((value, k) => value + b[t][k]));
  config.layerTypes.forEach((type, layer) => {
    const normed = hidden.map((row) => rmsNormed(row, 0, d, eps, onePlus(`layers.${layer}.input_layernorm.weight`)));
    hidden = add(hidden, type === 'linear_attention' ? linearAttention(layer, normed) : fullAttention(layer, normed));
    const mlpIn = hidden.map((row) => rmsNormed(row, 0, d, eps, onePlus(`layers.${layer}.post_attention_layernorm.weight`)));
    const gate = rows(mlpIn, `layers.${layer}.mlp.gate_proj.weight`, ffn, d);
    const up = rows(mlpIn, `layers.${layer}.mlp.up_proj.weight`, ffn, d);
    const product = gate.map((row, t) => row.map((value, k) => value * sigmoid(value) * up[t][k]));
    hidden = add(hidden, rows(product, `layers.${layer}.mlp.down_proj.weight`, d, ffn));
    hiddenStates.push(flatten(hidden));
  });
  const finalNormed = hidden.map((row) => rmsNormed(row, 0, d, eps, onePlus('norm.weight')));
  const logits = new Float64Array(seq * vocab);
  finalNormed.forEach((row, t) => logits.set(matVec(embedding, vocab, d, row), t * vocab)); // tied lm_head
  return { hiddenStates, logits };
}

/** Greedy continuation by full recomputation (no cache): the independent twin of cached generation. */
export function genaiReferenceGreedy(config: GenaiConfig, weights: ReadonlyMap<string, Float32Array>, promptIds: readonly number[], maxNewTokens: number, eosIds: readonly number[]): number[] {
  const ids = [...promptIds];
  const generated: number[] = [];
  for (let step = 0; step < maxNewTokens; step++) {
    const { logits } = genaiReferenceForward(config, weights, ids);
    const last = logits.subarray((ids.length - 1) * config.vocabSize, ids.length * config.vocabSize);
    let best = 0;
    for (let k = 1; k < last.length; k++) if (last[k] > last[best]) best = k;
    if (eosIds.includes(best)) break;
    generated.push(best);
    ids.push(best);
  }
  return generated;
}
