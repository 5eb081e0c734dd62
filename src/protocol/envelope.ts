/**
 * How every worker call answers: its value, or the error serialized so the client rebuilds it as the same named
 * class (src/base/errors.ts). comlink would otherwise turn a thrown error into a plain Error.
 */
import type { SerializedError } from '../base/errors';

export type Envelope<T> = { ok: true; value: T } | { ok: false; error: SerializedError };
