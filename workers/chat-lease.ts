/**
 * A loaded model shared by concurrent calls (the base and ablated replies of one chat turn, an evaluation).
 * When the UI asks for another model, the old one is retired: it is disposed once its last user lets go, never
 * under a generation that is still running.
 */
export class Leased<T> {
  private users = 0;
  private retired = false;
  private disposed = false;

  constructor(
    readonly value: T,
    private readonly dispose: () => Promise<void>,
  ) {}

  /** One more user; the caller must call `release()` on the returned handle exactly once. */
  acquire(): { value: T; release(): void } {
    if (this.disposed) throw new Error('internal: a disposed model was acquired');
    this.users++;
    let released = false;
    return {
      value: this.value,
      release: () => {
        if (released) return;
        released = true;
        this.users--;
        this.disposeIfDone();
      },
    };
  }

  retire(): void {
    this.retired = true;
    this.disposeIfDone();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private disposeIfDone(): void {
    if (!this.retired || this.users > 0 || this.disposed) return;
    this.disposed = true;
    // A failing dispose leaves nothing to recover; the model is unreachable either way.
    void this.dispose().catch(() => undefined);
  }
}
