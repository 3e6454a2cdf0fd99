/**
 * When to respawn a worker that died. The first death after a stable run is replaced at once;
 * while replacements keep dying soon after they start, the delay doubles up to a cap, and a
 * replacement that lives for `stableAfterMs` resets the policy.
 */
export interface BackoffOptions {
  firstDelayMs: number;
  maxDelayMs: number;
  stableAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { firstDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 10_000 };

export class RespawnBackoff {
  private quickDeaths = 0;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Records one death of a worker that lived `uptimeMs`, and returns how long to wait before its replacement. */
  delayAfterDeath(uptimeMs: number): number {
    if (uptimeMs >= this.options.stableAfterMs) this.quickDeaths = 0;
    this.quickDeaths += 1;
    if (this.quickDeaths === 1) return 0;
    const delay = this.options.firstDelayMs * 2 ** (this.quickDeaths - 2);
    return Math.min(delay, this.options.maxDelayMs);
  }

  /** How many deaths in a row came soon after a start. */
  get consecutiveQuickDeaths(): number {
    return this.quickDeaths;
  }
}
