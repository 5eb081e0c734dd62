/** The bounded, content-keyed cache the evaluation session keeps its base-model results in. */
import { describe, expect, it } from 'vitest';
import { BoundedCache, contentKey } from '../../src/engine/result-cache';

describe('BoundedCache', () => {
  it('evicts the least recently used entry beyond its capacity', () => {
    const cache = new BoundedCache<number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.size]).toEqual([1, undefined, 3, 2]);
  });

  it('computes once per key and stores nothing when the computation fails', async () => {
    const cache = new BoundedCache<string>(4);
    let calls = 0;
    const compute = async () => `value ${++calls}`;
    expect(await cache.getOrCompute('k', compute)).toBe('value 1');
    expect(await cache.getOrCompute('k', compute)).toBe('value 1');
    await expect(cache.getOrCompute('bad', () => Promise.reject(new Error('cancelled')))).rejects.toThrow('cancelled');
    expect(cache.size).toBe(1);
    expect(calls).toBe(1);
  });

  it('refuses a capacity below one', () => {
    expect(() => new BoundedCache(0)).toThrow(RangeError);
  });
});

describe('contentKey', () => {
  it('is equal for equal content in different objects and differs when any field differs', () => {
    const prompts = () => [[{ role: 'user', content: 'hello' }]];
    expect(contentKey({ prompts: prompts(), maxNewTokens: 8 })).toBe(contentKey({ prompts: prompts(), maxNewTokens: 8 }));
    expect(contentKey({ prompts: prompts(), maxNewTokens: 8 })).not.toBe(contentKey({ prompts: prompts(), maxNewTokens: 9 }));
    expect(contentKey({ prompts: prompts(), markers: ['i cannot'] })).not.toBe(contentKey({ prompts: prompts(), markers: ['i can'] }));
  });

  it('is the SHA-256 of the JSON text', () => {
    // SHA-256 of the two bytes `[]`, computed independently (Python's hashlib).
    expect(contentKey([])).toBe('4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945');
  });
});
