/**
 * SHA-256 for the browser export: hash-wasm's hand-written WebAssembly SHA-256, incremental, at several times the
 * speed of the portable TypeScript one (src/core/sha256.ts, which stays for small synchronous digests). Node uses
 * node:crypto instead. The wasm module is embedded in the package, so nothing is fetched.
 */
import { createSHA256 } from 'hash-wasm';
import type { IncrementalHash } from '../engine/output-writer';

export async function createWasmSha256(): Promise<IncrementalHash> {
  const hasher = await createSHA256();
  hasher.init();
  return {
    update: (bytes: Uint8Array) => hasher.update(bytes),
    hexDigest: () => hasher.digest('hex'),
  };
}
