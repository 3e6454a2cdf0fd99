/**
 * Turns a stream of file changes into reloads: a burst of changes (an editor's save, a git checkout)
 * becomes one reload once no change has come for `quietMs`, or at the latest `maxWaitMs` after the
 * burst began, so a file rewritten forever cannot starve the reload. Changes that arrive while a
 * reload runs are collected and cause exactly one more reload after it.
 */
export class ReloadCoalescer {
  private readonly changes = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private burstStartedAt: number | undefined;
  private running = false;
  private closed = false;

  constructor(
    private readonly quietMs: number,
    private readonly reload: (changes: string[]) => Promise<void>,
    private readonly maxWaitMs = Math.max(1_000, quietMs * 10),
  ) {}

  /** Whether a reload is in progress. */
  get busy(): boolean {
    return this.running;
  }

  notify(file: string): void {
    if (this.closed) return;
    this.changes.add(file);
    // During a reload, the changes wait for its end.
    if (!this.running) this.schedule();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const now = Date.now();
    this.burstStartedAt ??= now;
    const untilCap = this.burstStartedAt + this.maxWaitMs - now;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.fire(), Math.max(0, Math.min(this.quietMs, untilCap)));
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    this.burstStartedAt = undefined;
    if (this.closed || this.changes.size === 0) return;
    const batch = [...this.changes];
    this.changes.clear();
    this.running = true;
    try {
      await this.reload(batch);
    } catch {
      // The reload reports its own failures; the watcher must keep going.
    } finally {
      this.running = false;
    }
    if (this.changes.size > 0) this.schedule();
  }
}
