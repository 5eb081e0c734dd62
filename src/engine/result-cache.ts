/**
 * Results worth keeping between calls (the base model's replies and logits, reused by every ablation a sweep
 * evaluates), keyed on what determines them rather than on object identity, and bounded so a long session of
 * sweeps does not grow without limit.
 */
import { sha256Hex } from '../core/sha256';

/** A least-recently-used map with at most `capacity` entries. */
export class BoundedCache<Value> {
  private readonly entries = new Map<string, Value>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`cache capacity ${capacity} must be a whole number ≥ 1`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Value | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used entry.
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Value): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** The cached value for `key`, computing and storing it on a miss (a failed computation stores nothing). */
  async getOrCompute(key: string, compute: () => Promise<Value>): Promise<Value> {
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    const value = await compute();
    this.set(key, value);
    return value;
  }
}

/** A key for JSON-representable content: the SHA-256 of its JSON text. */
export function contentKey(value: unknown): string {
  return sha256Hex(new TextEncoder().encode(JSON.stringify(value)));
}
