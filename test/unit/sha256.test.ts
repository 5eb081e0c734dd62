import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256Hex } from '../../src/core/sha256';
import { seededBytes as randomBytes } from '../helpers/seeded-bytes';

describe('sha256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('matches node:crypto on random data of every length around block boundaries', () => {
    for (let length = 0; length <= 200; length++) {
      const data = randomBytes(length, length);
      expect(sha256Hex(data)).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('matches node:crypto when fed in irregular pieces', () => {
    const data = randomBytes(1_000_003, 7);
    const hash = new Sha256();
    let offset = 0;
    let step = 1;
    while (offset < data.length) {
      hash.update(data.subarray(offset, offset + step));
      offset += step;
      step = (step * 7 + 3) % 65_537;
    }
    expect(hash.hexDigest()).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('refuses to update after the digest', () => {
    const hash = new Sha256();
    hash.digest();
    expect(() => hash.update(new Uint8Array(1))).toThrow();
  });
});
