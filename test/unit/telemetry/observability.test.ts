import { describe, expect, it } from 'vitest';
import { isReady } from '../../../src/telemetry/observability.js';
import type { Worker } from '../../../src/worker/worker.js';

describe('/readyz', () => {
  const arbiter = (stopping: boolean, states: string[]) => ({ stopping, liveWorkers: () => states.map((state) => ({ state }) as Worker) });
  it('is ready with a ready worker and not stopping', () => {
    expect(isReady(arbiter(false, []))).toBe(false);
    expect(isReady(arbiter(false, ['booting']))).toBe(false);
    expect(isReady(arbiter(false, ['booting', 'ready']))).toBe(true);
    expect(isReady(arbiter(true, ['ready']))).toBe(false);
  });
});
