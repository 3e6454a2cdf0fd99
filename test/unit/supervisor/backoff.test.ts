import { describe, expect, it } from 'vitest';
import { RespawnBackoff } from '../../../src/supervisor/backoff.js';

const options = { firstDelayMs: 500, maxDelayMs: 4_000, stableAfterMs: 10_000 };

describe('RespawnBackoff', () => {
  it('respawns at once after a stable run', () => {
    const backoff = new RespawnBackoff(options);
    expect(backoff.delayAfterDeath(60_000)).toBe(0);
    expect(backoff.delayAfterDeath(60_000)).toBe(0);
  });

  it('doubles the delay while replacements die soon after start, up to the cap', () => {
    const backoff = new RespawnBackoff(options);
    const delays = [1, 2, 3, 4, 5, 6, 7].map(() => backoff.delayAfterDeath(100));
    expect(delays).toEqual([0, 500, 1_000, 2_000, 4_000, 4_000, 4_000]);
    expect(backoff.consecutiveQuickDeaths).toBe(7);
  });

  it('resets after a replacement lives through the stable period', () => {
    const backoff = new RespawnBackoff(options);
    backoff.delayAfterDeath(100);
    backoff.delayAfterDeath(100);
    expect(backoff.delayAfterDeath(100)).toBe(1_000);
    expect(backoff.delayAfterDeath(10_000)).toBe(0);
    expect(backoff.delayAfterDeath(100)).toBe(500);
  });

  it('tells the next delay without recording a death', () => {
    const backoff = new RespawnBackoff(options);
    backoff.delayAfterDeath(100);
    expect(backoff.nextDelay(100)).toBe(500);
    expect(backoff.nextDelay(100)).toBe(500);
    expect(backoff.nextDelay(10_000)).toBe(0);
    expect(backoff.consecutiveQuickDeaths).toBe(1);
    expect(backoff.delayAfterDeath(100)).toBe(500);
  });
});
