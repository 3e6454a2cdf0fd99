import { describe, expect, it } from 'vitest';
import { statusText, watchdogIntervalMs, workersHealthy } from '../../../src/platform/sd-notify.js';

describe('sd_notify helpers', () => {
  it('pings the watchdog at half of WATCHDOG_USEC, only when WATCHDOG_PID is ours or absent', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 10)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '10' }, 10)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '11' }, 10)).toBeUndefined();
    expect(watchdogIntervalMs({}, 10)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 10)).toBeUndefined();
  });

  it('counts the service healthy while one worker is ready with a recent heartbeat', () => {
    const now = 100_000;
    expect(workersHealthy([{ state: 'ready', lastHeartbeatAt: now - 500 }], 1_000, now)).toBe(true);
    expect(workersHealthy([{ state: 'ready', lastHeartbeatAt: now - 1_500 }], 1_000, now)).toBe(false);
    expect(workersHealthy([{ state: 'booting', lastHeartbeatAt: now }], 1_000, now)).toBe(false);
    expect(workersHealthy([{ state: 'ready', lastHeartbeatAt: now - 5_000 }, { state: 'ready', lastHeartbeatAt: now }], 1_000, now)).toBe(true);
    expect(workersHealthy([], 1_000, now)).toBe(false);
    expect(statusText(2, 4)).toBe('2 of 4 workers ready');
  });
});
