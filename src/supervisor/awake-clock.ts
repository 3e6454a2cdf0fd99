/** A tick later than its period by less than this is timer jitter, not a stall worth keeping. */
const JITTER_MS = 50;

interface Stall {
  from: number;
  to: number;
}

/**
 * The time the master was running to observe its workers. A worker's heartbeat is timed when the
 * master reads it, so while the master is stopped (SIGSTOP, a VM pause, CPU throttling, a blocked
 * event loop) every worker looks silent though its heartbeats wait in the channel. The periodic tick
 * shows such a stall: it comes later than its period. Deadlines measured with `elapsedSince` leave
 * that time out, so the master never blames its workers for its own stall.
 */
export class AwakeClock {
  private lastTick: number;
  /** Stalls still within some deadline's reach, oldest first. */
  private stalls: Stall[] = [];

  constructor(
    private readonly periodMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastTick = now();
  }

  /**
   * Called by the periodic tick, first thing: returns how long the master was stalled since the
   * previous tick (the lateness beyond one period), 0 when it ran on time.
   */
  tick(): number {
    const now = this.now();
    const late = now - this.lastTick - this.periodMs;
    this.lastTick = now;
    if (late <= JITTER_MS) return 0;
    // When in the gap the master stopped is unknown; its end is now, so the stall is put last.
    this.stalls.push({ from: now - late, to: now });
    return late;
  }

  /** Milliseconds since `since` during which the master was running. */
  elapsedSince(since: number): number {
    const now = this.now();
    let stalled = 0;
    for (const stall of this.stalls) {
      if (stall.to > since) stalled += stall.to - Math.max(stall.from, since);
    }
    return Math.max(0, now - since - stalled);
  }

  /** Drops the stalls that ended before `oldest`, the earliest time any deadline still counts from. */
  forgetBefore(oldest: number): void {
    this.stalls = this.stalls.filter((stall) => stall.to > oldest);
  }
}
