import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReloadCoalescer } from '../../../src/reload/coalescer.js';

/** A reload that stays running until the test ends it. */
function controllableReload() {
  const batches: string[][] = [];
  const finishers: (() => void)[] = [];
  const reload = (changes: string[]) => {
    batches.push(changes);
    return new Promise<void>((resolve) => finishers.push(resolve));
  };
  const finishCurrent = async () => {
    finishers.shift()?.();
    // Let the coalescer's continuation after `await reload()` run.
    await vi.advanceTimersByTimeAsync(0);
  };
  return { batches, reload, finishCurrent };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ReloadCoalescer', () => {
  it('turns a burst of changes into one reload after the quiet period', async () => {
    const { batches, reload } = controllableReload();
    const coalescer = new ReloadCoalescer(100, reload);
    coalescer.notify('a.py');
    await vi.advanceTimersByTimeAsync(50);
    coalescer.notify('b.py');
    coalescer.notify('a.py');
    await vi.advanceTimersByTimeAsync(99);
    expect(batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([['a.py', 'b.py']]);
  });

  it('does not let an endless burst starve the reload', async () => {
    const { batches, reload } = controllableReload();
    const coalescer = new ReloadCoalescer(100, reload, 1_000);
    for (let elapsed = 0; elapsed < 1_500; elapsed += 50) {
      coalescer.notify('log.py');
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(batches.length).toBe(1);
  });

  it('queues exactly one more reload for any number of changes during a reload', async () => {
    const { batches, reload, finishCurrent } = controllableReload();
    const coalescer = new ReloadCoalescer(100, reload);
    coalescer.notify('a.py');
    await vi.advanceTimersByTimeAsync(100);
    expect(batches).toHaveLength(1);
    expect(coalescer.busy).toBe(true);
    coalescer.notify('b.py');
    await vi.advanceTimersByTimeAsync(500);
    coalescer.notify('c.py');
    coalescer.notify('b.py');
    await vi.advanceTimersByTimeAsync(500);
    // Still one: the changes wait for the running reload.
    expect(batches).toHaveLength(1);
    await finishCurrent();
    await vi.advanceTimersByTimeAsync(100);
    expect(batches).toEqual([['a.py'], ['b.py', 'c.py']]);
    await finishCurrent();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(batches).toHaveLength(2);
  });

  it('keeps going after a reload that fails', async () => {
    const batches: string[][] = [];
    const coalescer = new ReloadCoalescer(10, async (changes) => {
      batches.push(changes);
      throw new Error('boom');
    });
    coalescer.notify('a.py');
    await vi.advanceTimersByTimeAsync(10);
    coalescer.notify('b.py');
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([['a.py'], ['b.py']]);
  });

  it('reloads nothing after close', async () => {
    const { batches, reload } = controllableReload();
    const coalescer = new ReloadCoalescer(100, reload);
    coalescer.notify('a.py');
    coalescer.close();
    coalescer.notify('b.py');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(batches).toEqual([]);
  });
});
