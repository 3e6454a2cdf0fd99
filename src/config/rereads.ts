import type { Logger } from 'pino';

/** One re-read: reads the configuration, applies what it may, and asks for the rolling restart. */
export type Reread = (reason: string, signal: AbortSignal) => Promise<void>;

/**
 * HUP's re-reads of the configuration, which run the config file in a child process while the
 * master goes on serving. One at a time: requests made during a re-read cause exactly one more
 * after it (the file may have changed after it was read), never a pile of them. Closing abandons
 * the one running (its child is killed): a stopping master waits for no config file.
 */
export class ConfigRereads {
  private running = false;
  private pending: string | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly reread: Reread,
    private readonly log: Logger,
  ) {}

  request(reason: string): void {
    if (this.abort.signal.aborted) return;
    if (this.running) {
      this.pending = reason;
      return;
    }
    this.running = true;
    void this.run(reason);
  }

  private async run(first: string): Promise<void> {
    try {
      for (let reason: string | undefined = first; reason !== undefined && !this.abort.signal.aborted; reason = this.pending) {
        this.pending = undefined;
        try {
          await this.reread(reason, this.abort.signal);
        } catch (error) {
          if (!this.abort.signal.aborted) this.log.error({ err: error, reason }, 'reload failed');
        }
      }
    } finally {
      this.running = false;
      this.pending = undefined;
    }
  }

  close(): void {
    this.abort.abort();
  }
}
