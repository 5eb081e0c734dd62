// The strict JSON parser behind safetensors headers and shard indexes, checked differentially against
// JSON.parse on random documents, plus the inputs where it must be stricter than JSON.parse.
import { describe, expect, it } from 'vitest';
import { JsonNumber, JsonSyntaxError, parseStrictJson, toPlainJson } from '../../src/formats/strict-json';

function createRandom(seed: number) {
  let state = seed >>> 0;
  return (maxExclusive: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 4294967296) * maxExclusive);
  };
}

const STRING_PIECES = ['a', 'é', '名', '😀', '"', '\\', '/', '\n', '\t', '\u0001', '\u2028', '__proto__', ' '];

function randomValue(random: (n: number) => number, depth: number): unknown {
  switch (random(depth > 3 ? 4 : 6)) {
    case 0:
      return random(2) === 0 ? null : random(2) === 0;
    case 1:
      return [0, -0.5, 1e21, 123456789, -7, 3.14159, 2 ** 53 - 1, 1e-7][random(8)];
    case 2:
    case 3:
      return Array.from({ length: random(5) }, () => STRING_PIECES[random(STRING_PIECES.length)]).join('');
    case 4:
      return Array.from({ length: random(4) }, () => randomValue(random, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = random(4); i > 0; i--) {
        Object.defineProperty(object, `${STRING_PIECES[random(STRING_PIECES.length)]}${i}`, {
          value: randomValue(random, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return object;
    }
  }
}

describe('parseStrictJson', () => {
  it('agrees with JSON.parse on 2,000 random documents (compact and indented)', () => {
    const random = createRandom(7);
    for (let index = 0; index < 2000; index++) {
      const value = randomValue(random, 0);
      const text = JSON.stringify(value, null, index % 2 === 0 ? undefined : 2);
      expect(toPlainJson(parseStrictJson(text))).toEqual(JSON.parse(text));
    }
  });

  it('keeps numbers as written so callers can tell 1 from 1.0 and 2^53+1 from 2^53', () => {
    const parsed = parseStrictJson('[1, 1.0, 1e0, 9007199254740993, -0, 00]'.replace(', 00', '')) as JsonNumber[];
    expect(parsed.map((number) => number.text)).toEqual(['1', '1.0', '1e0', '9007199254740993', '-0']);
    expect(parsed.map((number) => number.asNonNegativeSafeInteger())).toEqual([1, null, null, null, null]);
  });

  it('rejects what JSON.parse rejects, and also duplicate keys and excessive depth', () => {
    const invalid = ['', '{', '[1,]', '{"a":1,}', '01', '1.', '.5', '+1', '"\\x"', '"a', "'a'", 'NaN', 'tru', '{"a" 1}', '[1 2]', '{}{}'];
    for (const text of invalid) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(() => parseStrictJson(text), text).toThrow(JsonSyntaxError);
    }
    // Lone surrogates have no UTF-8 form; JSON.parse lets them through, serde_json (the reference) does not.
    for (const text of ['"\\uD800"', '"\\uDC00x"', '"\\uD800\\u0041"']) {
      expect(() => JSON.parse(text), text).not.toThrow();
      expect(() => parseStrictJson(text), text).toThrow(/surrogate/);
    }
    expect(() => parseStrictJson('{"a":1,"a":2}')).toThrow(/duplicate key "a" at character 7/);
    expect(() => parseStrictJson('[[[1]]]', 2)).toThrow(/nesting deeper than 2/);
    expect(() => parseStrictJson('['.repeat(1_000_000))).toThrow(/nesting deeper than 64/);
  });

  it('decodes escapes and surrogate pairs exactly', () => {
    const text = '"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/\\b\\f\\r\\t😀"';
    expect(parseStrictJson(text)).toBe(JSON.parse(text));
  });
});
