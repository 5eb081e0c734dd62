import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, whatever folder the clone lives in. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The shared fixtures sit beside the checkout (`../shared/fixtures`), in development and in CI's fresh clone;
 * ABLITERATE_FIXTURES points elsewhere when they do not.
 */
export const SHARED_FIXTURES = process.env.ABLITERATE_FIXTURES ?? path.resolve(REPO_ROOT, '..', 'shared', 'fixtures');
export const TOY_LLAMA_DIR = path.join(SHARED_FIXTURES, 'toy-llama');
export const QWEN3_5_GRAPH_DIR = path.join(SHARED_FIXTURES, 'qwen3_5-0.8b-onnx-graph');
