/**
 * Progress events of every long call, keyed on `status` (the transformers.js convention).
 * Invariants (tested): `fraction` stays in [0, 1] and never decreases within one call; exactly one
 * `done` ends a successful call and nothing follows it.
 */
export type Progress =
  | { status: 'start'; task: string; total?: number }
  | { status: 'progress'; task: string; fraction: number; detail?: string; bytes?: number; totalBytes?: number }
  | { status: 'message'; task: string; text: string }
  | { status: 'done'; task: string };

/** Options every long-running call takes. */
export interface LongCallOptions {
  signal?: AbortSignal;
  onProgress?: (event: Progress) => void;
}

/** Emits progress for one task and enforces the invariants, so callers cannot report a fraction that goes back. */
export class ProgressReporter {
  private last = 0;
  private finished = false;

  constructor(
    private readonly task: string,
    private readonly onProgress?: (event: Progress) => void,
  ) {
    onProgress?.({ status: 'start', task });
  }

  report(fraction: number, detail?: string, extra?: { bytes?: number; totalBytes?: number }): void {
    if (this.finished) return;
    const clamped = Math.min(1, Math.max(this.last, Number.isFinite(fraction) ? fraction : this.last));
    this.last = clamped;
    this.onProgress?.({ status: 'progress', task: this.task, fraction: clamped, ...(detail ? { detail } : {}), ...extra });
  }

  message(text: string): void {
    if (!this.finished) this.onProgress?.({ status: 'message', task: this.task, text });
  }

  done(): void {
    if (this.finished) return;
    this.report(1);
    this.finished = true;
    this.onProgress?.({ status: 'done', task: this.task });
  }
}
