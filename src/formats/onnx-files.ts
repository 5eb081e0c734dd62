/**
 * Where a transformers.js-layout export keeps its graphs: `onnx/*.onnx` beside config.json, one decoder per
 * precision, an optional separate embedding graph, and each graph's external-data files next to it.
 */
export interface OnnxGraphFiles {
  /** The decoder graph, folder-relative (e.g. `onnx/model.onnx`). */
  decoder: string;
  /** The separate embedding graph of `inputs_embeds` exports, when the folder has one. */
  embedding: string | null;
  /** External-data files of the decoder (`model.onnx_data`, `model.onnx_data_1`, …), folder-relative. */
  externalData: string[];
  embeddingExternalData: string[];
}

/** Preference among the graphs of a transformers.js export: full precision first, quantized last. */
const DECODER_PREFERENCE = ['model', 'decoder_model_merged', 'model_fp16', 'decoder_model_merged_fp16', 'model_quantized', 'decoder_model_merged_quantized', 'model_q8', 'model_int8', 'model_uint8', 'model_q4', 'model_q4f16', 'model_bnb4'];

/**
 * Picks the graph `analyze` captures from in a transformers.js layout (`onnx/*.onnx`); null when there is none.
 * The embedding graph matching the decoder's precision suffix comes with it (Qwen3.5-style exports).
 */
export function findOnnxGraphFiles(paths: readonly string[]): OnnxGraphFiles | null {
  const graphs = paths.filter((path) => /^onnx\/[^/]+\.onnx$/.test(path));
  const stem = (path: string) => path.slice('onnx/'.length, -'.onnx'.length);
  const decoders = graphs.filter((path) => !/^(embed_tokens|vision_encoder|audio_encoder|encoder_model)/.test(stem(path)));
  if (decoders.length === 0) return null;
  const rank = (path: string) => {
    const index = DECODER_PREFERENCE.indexOf(stem(path));
    return index < 0 ? DECODER_PREFERENCE.length : index;
  };
  const decoder = [...decoders].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0];
  const suffix = /(_(?:fp16|quantized|q8|int8|uint8|q4|q4f16|bnb4))$/.exec(stem(decoder))?.[1] ?? '';
  const embedding = graphs.find((path) => stem(path) === `embed_tokens${suffix}`) ?? graphs.find((path) => stem(path).startsWith('embed_tokens')) ?? null;
  const dataOf = (graph: string) => paths.filter((path) => path.startsWith(`${graph}_data`));
  return { decoder, embedding, externalData: dataOf(decoder), embeddingExternalData: embedding ? dataOf(embedding) : [] };
}
