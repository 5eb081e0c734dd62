/**
 * A strict JSON parser for untrusted headers. `JSON.parse` is not enough for safetensors headers:
 * it silently keeps the last of duplicate keys, turns `1.0` and `1e3` into integers, and rounds
 * integers above 2^53 without a word. This parser keeps numbers as their source text (the caller
 * decides what an integer is), rejects duplicate keys, bounds nesting depth (no stack overflow on
 * `[[[[...`), and never loops without consuming input.
 */

/** A JSON number kept as written, so integer checks see exactly what the file says. */
export class JsonNumber {
  constructor(readonly text: string) {}
  /** The value as a safe non-negative integer, or null when the text is anything else (sign, fraction, exponent, too big). */
  asNonNegativeSafeInteger(): number | null {
    if (!/^(0|[1-9][0-9]*)$/.test(this.text) || this.text.length > 16) return null;
    const value = Number(this.text);
    return Number.isSafeInteger(value) ? value : null;
  }
  asNumber(): number {
    return Number(this.text);
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** Keys in file order; duplicates are a parse error. */
export type JsonObject = Map<string, JsonValue>;

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    readonly problem: string,
    readonly position: number,
  ) {
    super(`${problem} at character ${position}`);
  }
}

/** Deep enough for any real header (safetensors needs 3, HF configs a handful), shallow enough for any stack. */
export const STRICT_JSON_MAX_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const ZERO = 0x30;
const DOT = 0x2e;
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be caught
const NEEDS_SLOW_STRING_PATH = /[\\\u0000-\u001f\ud800-\udfff]/;

/**
 * Parses `text` strictly. With `onRootEntry`, a root object's entries are handed over one by one as they are
 * parsed and not kept (the returned root is an empty Map): a 100 MB header of a million entries is converted
 * entry by entry instead of first becoming a million-entry tree. Duplicate root keys are still an error.
 */
export function parseStrictJson(text: string, maxDepth = STRICT_JSON_MAX_DEPTH, onRootEntry?: (key: string, value: JsonValue) => void): JsonValue {
  let position = 0;
  const length = text.length;

  const fail = (problem: string, at = position): never => {
    throw new JsonSyntaxError(problem, at);
  };

  const skipWhitespace = () => {
    while (position < length) {
      const code = text.charCodeAt(position);
      if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) position++;
      else break;
    }
  };

  const parseString = (): string => {
    // position is at the opening quote
    position++;
    // Fast path (almost every key and value): no escape, control character or surrogate before the closing quote.
    const close = text.indexOf('"', position);
    if (close >= 0) {
      const candidate = text.slice(position, close);
      if (!NEEDS_SLOW_STRING_PATH.test(candidate)) {
        position = close + 1;
        return candidate;
      }
    }
    let result = '';
    let runStart = position;
    for (;;) {
      if (position >= length) fail('unterminated string');
      const code = text.charCodeAt(position);
      if (code === QUOTE) {
        result += text.slice(runStart, position);
        position++;
        return result;
      }
      if (code < 0x20) fail('control character inside a string');
      if (code >= 0xd800 && code <= 0xdfff) {
        const low = text.charCodeAt(position + 1);
        if (code > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) fail('unpaired surrogate inside a string');
        position += 2;
        continue;
      }
      if (code !== BACKSLASH) {
        position++;
        continue;
      }
      result += text.slice(runStart, position);
      position++;
      if (position >= length) fail('unterminated escape');
      const escape = text[position];
      position++;
      switch (escape) {
        case '"': result += '"'; break;
        case '\\': result += '\\'; break;
        case '/': result += '/'; break;
        case 'b': result += '\b'; break;
        case 'f': result += '\f'; break;
        case 'n': result += '\n'; break;
        case 'r': result += '\r'; break;
        case 't': result += '\t'; break;
        case 'u': {
          const unit = readHex4();
          if (unit >= 0xdc00 && unit <= 0xdfff) fail('lone low surrogate escape', position - 6);
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (text[position] !== '\\' || text[position + 1] !== 'u') fail('lone high surrogate escape', position - 6);
            position += 2;
            const low = readHex4();
            if (low < 0xdc00 || low > 0xdfff) fail('high surrogate escape not followed by a low one', position - 6);
            result += String.fromCharCode(unit, low);
          } else {
            result += String.fromCharCode(unit);
          }
          break;
        }
        default:
          fail(`invalid escape \\${escape}`, position - 2);
      }
      runStart = position;
    }
  };

  const readHex4 = (): number => {
    if (position + 4 > length) fail('truncated \\u escape');
    const hex = text.slice(position, position + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape');
    position += 4;
    return parseInt(hex, 16);
  };

  const parseNumber = (): JsonNumber => {
    const start = position;
    if (text.charCodeAt(position) === MINUS) position++;
    if (text.charCodeAt(position) === ZERO) position++;
    else if (isDigit(text.charCodeAt(position))) while (isDigit(text.charCodeAt(position))) position++;
    else fail('invalid number', start);
    if (text.charCodeAt(position) === DOT) {
      position++;
      if (!isDigit(text.charCodeAt(position))) fail('invalid number', start);
      while (isDigit(text.charCodeAt(position))) position++;
    }
    const exponent = text.charCodeAt(position);
    if (exponent === 0x65 || exponent === 0x45) {
      position++;
      const sign = text.charCodeAt(position);
      if (sign === 0x2b || sign === MINUS) position++;
      if (!isDigit(text.charCodeAt(position))) fail('invalid number', start);
      while (isDigit(text.charCodeAt(position))) position++;
    }
    return new JsonNumber(text.slice(start, position));
  };

  const parseLiteral = (word: string, value: JsonValue): JsonValue => {
    if (text.startsWith(word, position)) {
      position += word.length;
      return value;
    }
    return fail('unexpected token');
  };

  const parseValue = (depth: number): JsonValue => {
    skipWhitespace();
    if (position >= length) fail('unexpected end of input');
    const char = text.charCodeAt(position);
    if (char === OPEN_BRACE) {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      position++;
      const object: JsonObject = new Map();
      // The root's entries go to the visitor when there is one; only their keys are kept, to catch duplicates.
      const visitor = depth === 0 ? onRootEntry : undefined;
      const visitedKeys = visitor ? new Set<string>() : null;
      skipWhitespace();
      if (text.charCodeAt(position) === CLOSE_BRACE) {
        position++;
        return object;
      }
      for (;;) {
        skipWhitespace();
        if (text.charCodeAt(position) !== QUOTE) fail('expected a string key');
        const keyStart = position;
        const key = parseString();
        if (visitedKeys ? visitedKeys.has(key) : object.has(key)) fail(`duplicate key ${shortKey(key)}`, keyStart);
        skipWhitespace();
        if (text.charCodeAt(position) !== COLON) fail("expected ':'");
        position++;
        const value = parseValue(depth + 1);
        if (visitor && visitedKeys) {
          visitedKeys.add(key);
          visitor(key, value);
        } else {
          object.set(key, value);
        }
        skipWhitespace();
        if (text.charCodeAt(position) === COMMA) {
          position++;
          continue;
        }
        if (text.charCodeAt(position) === CLOSE_BRACE) {
          position++;
          return object;
        }
        fail("expected ',' or '}'");
      }
    }
    if (char === OPEN_BRACKET) {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      position++;
      const array: JsonValue[] = [];
      skipWhitespace();
      if (text.charCodeAt(position) === CLOSE_BRACKET) {
        position++;
        return array;
      }
      for (;;) {
        array.push(parseValue(depth + 1));
        skipWhitespace();
        if (text.charCodeAt(position) === COMMA) {
          position++;
          continue;
        }
        if (text.charCodeAt(position) === CLOSE_BRACKET) {
          position++;
          return array;
        }
        fail("expected ',' or ']'");
      }
    }
    if (char === QUOTE) return parseString();
    if (char === 0x74) return parseLiteral('true', true);
    if (char === 0x66) return parseLiteral('false', false);
    if (char === 0x6e) return parseLiteral('null', null);
    if (char === MINUS || isDigit(char)) return parseNumber();
    return fail('unexpected token');
  };

  const value = parseValue(0);
  skipWhitespace();
  if (position < length) fail('trailing characters after the JSON value');
  return value;
}

/** A key for a message: JSON-quoted and cut, so a hostile megabyte-long key cannot flood the terminal. */
function shortKey(key: string): string {
  return JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key);
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

export function isJsonObject(value: JsonValue): value is JsonObject {
  return value instanceof Map;
}

/** Converts to plain JS values (numbers via Number); for callers that have finished strict checks. */
export function toPlainJson(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return value.asNumber();
  if (Array.isArray(value)) return value.map(toPlainJson);
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    // defineProperty, not assignment: a key named "__proto__" must stay a plain key.
    for (const [key, item] of value) {
      Object.defineProperty(out, key, { value: toPlainJson(item), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
