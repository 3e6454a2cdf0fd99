import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Arbiter } from '../../../src/supervisor/arbiter.js';
import { Recycler, type RecyclingSettings } from '../../../src/supervisor/recycling.js';
import type { ResourceUsage } from '../../../src/worker/resources.js';
import { WorkerRecord } from '../../../src/worker/worker.js';

const MiB = 1024 * 1024;

class FakeWorker extends WorkerRecord {
  readonly pid: number;
  constructor(pid: number) {
    super({ slot: 1, generation: 1, role: 'initial' });
    this.pid = pid;
    this.state = 'ready';
  }
  stop(): void {}
  abort(): void {}
}

/** The arbiter as the recycler sees it: live workers and the recycle requests it received. */
function fakeArbiter(workers: FakeWorker[]) {
  const emitter = new EventEmitter();
  const recycles: { pid: number | undefined; reason: string; detail: Record<string, unknown> }[] = [];
  const arbiter = Object.assign(emitter, {
    liveWorkers: () => workers,
    requestRecycle: (worker: FakeWorker, reason: string, detail: Record<string, unknown>) => recycles.push({ pid: worker.pid, reason, detail }),
  });
  return { arbiter: arbiter as unknown as Arbiter, recycles };
}

const settings: RecyclingSettings = { maxMemory: 100 * MiB, sampleIntervalMs: 60_000, maxLifetimeMs: 0, maxLifetimeJitterMs: 0 };
const usage = (figures: Partial<ResourceUsage>): ResourceUsage => ({ rss: 0, uss: 0, pss: 0, cpuSeconds: 0, cpuPercent: 0, sampledAt: 0, ...figures });

function recyclerWith(figures: Record<number, Partial<ResourceUsage>>) {
  const workers = Object.keys(figures).map((pid) => new FakeWorker(Number(pid)));
  const { arbiter, recycles } = fakeArbiter(workers);
  const log = pino({ level: 'silent' });
  const warn = vi.spyOn(log, 'warn');
  const sampler = async (roots: readonly number[]) => new Map(roots.map((pid) => [pid, usage(figures[pid]!)]));
  const recycler = new Recycler(arbiter, settings, log, () => 0, sampler);
  return { recycler, recycles, warn, workers };
}

describe('--max-memory', () => {
  it('does not recycle a worker whose RSS is over the limit through shared pages while its USS is under', async () => {
    const { recycler, recycles, workers } = recyclerWith({ 11: { rss: 400 * MiB, pss: 150 * MiB, uss: 30 * MiB } });
    for (let round = 0; round < 5; round += 1) await recycler.sample();
    expect(recycles).toEqual([]);
    // The figures are kept for status and metrics.
    expect(workers[0]!.usage).toMatchObject({ rss: 400 * MiB, pss: 150 * MiB, uss: 30 * MiB });
  });

  it('recycles a worker whose USS is over the limit on two samples in a row, once', async () => {
    const { recycler, recycles, warn } = recyclerWith({ 11: { rss: 180 * MiB, pss: 160 * MiB, uss: 150 * MiB }, 12: { rss: 90 * MiB, uss: 20 * MiB } });
    await recycler.sample();
    expect(recycles).toEqual([]);
    await recycler.sample();
    expect(recycles).toEqual([{ pid: 11, reason: 'max-memory', detail: { uss: 150 * MiB, limit: 100 * MiB } }]);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ pid: 11, uss: 150 * MiB, rss: 180 * MiB }), expect.stringMatching(/^worker over --max-memory/));
    await recycler.sample();
    expect(recycles).toHaveLength(1);
  });

  it('says once in the log that RSS stands for USS where smaps_rollup is unreadable', async () => {
    const { recycler, warn } = recyclerWith({ 11: { rss: 50 * MiB, uss: 50 * MiB, memoryFallback: { pid: 11, reason: 'permission denied' } } });
    for (let round = 0; round < 3; round += 1) await recycler.sample();
    const fallbacks = warn.mock.calls.filter(([, message]) => typeof message === 'string' && message.startsWith('unique memory unreadable'));
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]![0]).toMatchObject({ pid: 11, reason: 'permission denied' });
  });
});
