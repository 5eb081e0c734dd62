/**
 * WholeReadBlob: the Blob handed to onnxruntime-web for files past Chromium's 2 GiB Blob.arrayBuffer() limit
 * reads the file in slices into one buffer; its bytes equal the file's, and ranges read through BlobByteSource
 * still come from the file itself.
 */
import { describe, expect, it } from 'vitest';
import { BlobByteSource, WholeReadBlob } from '../../src/ports/bytes';

describe('WholeReadBlob', () => {
  it('reads a file in slices (one not a multiple of the slice) into the same bytes', async () => {
    const content = Uint8Array.from({ length: 10_007 }, (_, i) => (i * 31 + 7) & 0xff);
    const whole = new WholeReadBlob(new Blob([content]), 1000);
    expect(whole).toBeInstanceOf(Blob);
    expect(whole.size).toBe(content.length);
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(content);
  });

  it('BlobByteSource hands small files on as themselves', async () => {
    const file = new Blob([new Uint8Array([1, 2, 3, 4])]);
    const source = new BlobByteSource('f', file);
    expect(source.blob).toBe(file);
    expect(Array.from(await source.read(1, 2))).toEqual([2, 3]);
  });
});
