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

  /** How long the replacement of a worker that lived `uptimeMs` would wait, without recording its death. */
  nextDelay(uptimeMs: number): number {
    return this.delayFor(this.deathsAfter(uptimeMs));
  }

  /** Records one death of a worker that lived `uptimeMs`, and returns how long to wait before its replacement. */
  delayAfterDeath(uptimeMs: number): number {
    this.quickDeaths = this.deathsAfter(uptimeMs);
    return this.delayFor(this.quickDeaths);
  }

  private deathsAfter(uptimeMs: number): number {
    return (uptimeMs >= this.options.stableAfterMs ? 0 : this.quickDeaths) + 1;
  }

  private delayFor(quickDeaths: number): number {
    if (quickDeaths === 1) return 0;
    return Math.min(this.options.firstDelayMs * 2 ** (quickDeaths - 2), this.options.maxDelayMs);
  }

  /** How many deaths in a row came soon after a start. */
  get consecutiveQuickDeaths(): number {
    return this.quickDeaths;
  }
}
