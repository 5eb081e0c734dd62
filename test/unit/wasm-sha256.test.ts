/**
 * The browser export's WebAssembly SHA-256 (src/platform/wasm-sha256.ts) against node:crypto's, an independent
 * implementation: the same digests for empty input, the FIPS 180-2 "abc" vector, and megabytes fed in uneven
 * pieces (block boundaries falling anywhere in an update).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/core/random';
import { createWasmSha256 } from '../../src/platform/wasm-sha256';

function nodeDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('WebAssembly SHA-256', () => {
  it('known vectors', async () => {
    const empty = await createWasmSha256();
    expect(empty.hexDigest()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const abc = await createWasmSha256();
    abc.update(new TextEncoder().encode('abc'));
    expect(abc.hexDigest()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('megabytes in uneven pieces digest as node:crypto does on the whole', async () => {
    const random = mulberry32(7);
    const bytes = Uint8Array.from({ length: 3 * 1024 * 1024 + 17 }, () => Math.floor(random() * 256));
    const hash = await createWasmSha256();
    let offset = 0;
    for (const piece of [1, 63, 64, 65, 1000, 1 << 20, 5]) {
      hash.update(bytes.subarray(offset, offset + piece));
      offset += piece;
    }
    hash.update(bytes.subarray(offset));
    expect(hash.hexDigest()).toBe(nodeDigest(bytes));
  });

  it('separate hashes do not share state', async () => {
    const a = await createWasmSha256();
    const b = await createWasmSha256();
    a.update(new Uint8Array([1, 2, 3]));
    b.update(new Uint8Array([4]));
    expect(a.hexDigest()).toBe(nodeDigest(new Uint8Array([1, 2, 3])));
    expect(b.hexDigest()).toBe(nodeDigest(new Uint8Array([4])));
  });
});
