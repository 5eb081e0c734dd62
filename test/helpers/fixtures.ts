import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, whatever folder the clone lives in. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The fixture models the tests read (toy-llama, the Qwen3.5-0.8B graph) are vendored in `test/fixtures/`
 * (described in its README); ABLITERATE_FIXTURES points at another copy.
 */
export const SHARED_FIXTURES = process.env.ABLITERATE_FIXTURES ?? path.resolve(REPO_ROOT, 'test', 'fixtures');
export const TOY_LLAMA_DIR = path.join(SHARED_FIXTURES, 'toy-llama');
export const QWEN3_5_GRAPH_DIR = path.join(SHARED_FIXTURES, 'qwen3_5-0.8b-onnx-graph');
