/**
 * Errors that cross worker boundaries. They travel as `{name, message, data}` and are rebuilt as the same
 * named class on the other side (never `String(err)`), so the UI can tell a bad file from a cancel.
 * Every message says what went wrong *and* what the user can do about it.
 */
export interface SerializedError {
  name: string;
  message: string;
  data?: Record<string, unknown>;
}

export class WorkbenchError extends Error {
  override name = 'WorkbenchError';
  constructor(
    message: string,
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A file is malformed, truncated or hostile. `data.file` names it. */
export class InvalidFileError extends WorkbenchError {
  override name = 'InvalidFileError';
  constructor(file: string, problem: string, data: Record<string, unknown> = {}) {
    super(`${file}: ${problem}`, { file, problem, ...data });
  }
}

/** Input that is well-formed but cannot be used as asked (wrong direction length, unknown architecture...). */
export class InvalidInputError extends WorkbenchError {
  override name = 'InvalidInputError';
}

/** The model's architecture or graph has no structure we know how to edit or capture. */
export class UnsupportedModelError extends WorkbenchError {
  override name = 'UnsupportedModelError';
}

/** The user cancelled; not a failure, the UI shows no error banner for it. */
export class CancelledError extends WorkbenchError {
  override name = 'CancelledError';
  constructor(message = 'Cancelled.') {
    super(message);
  }
}

/** The compute backend (WebGPU device lost, EP failure) failed; the caller may retry on another backend. */
export class BackendError extends WorkbenchError {
  override name = 'BackendError';
}

const errorClasses = {
  WorkbenchError,
  InvalidFileError,
  InvalidInputError,
  UnsupportedModelError,
  CancelledError,
  BackendError,
} as const;

export function serializeError(error: unknown): SerializedError {
  if (error instanceof WorkbenchError) return { name: error.name, message: error.message, data: error.data };
  if (error instanceof DOMException && error.name === 'AbortError') return { name: 'CancelledError', message: 'Cancelled.' };
  if (error instanceof Error) return { name: 'WorkbenchError', message: error.message, data: { originalName: error.name } };
  return { name: 'WorkbenchError', message: String(error) };
}

export function deserializeError(serialized: SerializedError): WorkbenchError {
  const data = serialized.data ?? {};
  let error: WorkbenchError;
  switch (serialized.name) {
    case 'InvalidFileError':
      error = new InvalidFileError(String(data.file ?? 'file'), String(data.problem ?? serialized.message), data);
      break;
    case 'CancelledError':
      error = new CancelledError(serialized.message);
      break;
    default: {
      const ErrorClass = errorClasses[serialized.name as keyof typeof errorClasses] ?? WorkbenchError;
      error = new (ErrorClass as typeof WorkbenchError)(serialized.message, data);
    }
  }
  error.message = serialized.message;
  return error;
}

/** Throws CancelledError when the signal has fired; call between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}
