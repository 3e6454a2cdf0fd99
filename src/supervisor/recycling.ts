import type { Logger } from 'pino';
import type { Arbiter } from './arbiter.js';
import { formatBytes, sampleTrees, type ResourceUsage } from '../worker/resources.js';
import type { Worker } from '../worker/worker.js';

export interface RecyclingSettings {
  /**
   * Limit of a worker's process tree's unique memory (USS) in bytes; 0 disables. Not RSS: RSS counts
   * every page a worker shares with its siblings (a fork server's preloaded code, a mapped file).
   */
  maxMemory: number;
  /** How often workers' CPU and memory are sampled. */
  sampleIntervalMs: number;
  /** Lifetime of a worker in ms; 0 disables. */
  maxLifetimeMs: number;
  /** Random extra lifetime, up to this, per worker, so workers started together do not recycle together. */
  maxLifetimeJitterMs: number;
}

/** Samples the trees of the given root pids (the real one reads /proc; tests give their own). */
export type TreeSampler = (roots: readonly number[]) => Promise<Map<number, ResourceUsage>>;

/** Samples after which a worker over the memory limit is recycled: one high sample may be a spike. */
const SAMPLES_OVER_LIMIT = 2;

/**
 * Decides when a worker should be replaced (max-requests announced by the worker, max-memory,
 * max-lifetime) and asks the arbiter, which starts the replacement before draining the worker.
 * Also keeps every worker's latest resource sample current for status and metrics.
 */
export class Recycler {
  private readonly overLimit = new Map<Worker, number>();
  private readonly lifetimes = new Map<Worker, number>();
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  /** Samples of workers that have just become ready, still being taken. */
  private readonly firstSamples = new Set<Promise<void>>();
  /** Whether the log already said that some USS is RSS: once is enough, each sample would repeat it. */
  private fallbackLogged = false;

  constructor(
    private readonly arbiter: Arbiter,
    private settings: RecyclingSettings,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
    private readonly sampler: TreeSampler = sampleTrees,
  ) {
    arbiter.on('worker-spawn', (worker) => this.watch(worker));
    arbiter.on('worker-exit', (worker) => {
      this.overLimit.delete(worker);
      this.lifetimes.delete(worker);
    });
    arbiter.on('stopping', () => this.close());
  }

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.settings.sampleIntervalMs);
    this.timer.unref();
  }

  updateSettings(settings: RecyclingSettings): void {
    this.settings = settings;
    this.close();
    this.start();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private watch(worker: Worker): void {
    worker.on('retiring', (reason) => {
      if (reason === 'max-requests') this.arbiter.requestRecycle(worker, 'max-requests', { requests: worker.requests });
    });
    if (this.settings.maxLifetimeMs > 0) {
      this.lifetimes.set(worker, this.settings.maxLifetimeMs + Math.floor(this.random() * this.settings.maxLifetimeJitterMs));
    }
    // Sampled at once when ready, so /metrics and `corral status` show its CPU and memory from the
    // first look rather than after the next --memory-check-interval.
    worker.once('ready', () => {
      const sample = this.sampleOne(worker).finally(() => this.firstSamples.delete(sample));
      this.firstSamples.add(sample);
    });
  }

  /** Resolves once every worker that has become ready so far has its first sample (for a scrape). */
  async settled(): Promise<void> {
    await Promise.all([...this.firstSamples]);
  }

  private async sampleOne(worker: Worker): Promise<void> {
    if (worker.pid === undefined) return;
    try {
      const usage = await this.sampler([worker.pid]);
      this.record(worker, usage.get(worker.pid));
    } catch (error) {
      this.log.warn({ err: error, worker: worker.slot, pid: worker.pid }, 'resource sample failed');
    }
  }

  /** One round: sample every worker, then apply the memory and lifetime limits. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const workers = this.arbiter.liveWorkers().filter((worker) => worker.pid !== undefined);
      const usage = await this.sampler(workers.map((worker) => worker.pid!));
      for (const worker of workers) {
        this.record(worker, usage.get(worker.pid!));
        if (worker.state === 'ready' && worker.stopReason === undefined) this.check(worker);
      }
    } catch (error) {
      // A failed sample must never take the master down: the next one comes in a few seconds.
      this.log.warn({ err: error }, 'resource sample failed');
    } finally {
      this.sampling = false;
    }
  }

  /** Keeps a worker's latest sample (a worker gone mid-sample keeps its previous one until its exit). */
  private record(worker: Worker, usage: ResourceUsage | undefined): void {
    if (usage === undefined) return;
    worker.usage = usage;
    if (usage.memoryFallback && !this.fallbackLogged) {
      this.fallbackLogged = true;
      this.log.warn(
        { worker: worker.slot, pid: usage.memoryFallback.pid, reason: usage.memoryFallback.reason },
        `unique memory unreadable: ${usage.memoryFallback.reason}; --max-memory and the USS and PSS figures use RSS for such processes`,
      );
    }
  }

  private check(worker: Worker): void {
    const { maxMemory } = this.settings;
    const { uss = 0, rss = 0 } = worker.usage ?? {};
    if (maxMemory > 0 && uss > maxMemory) {
      const count = (this.overLimit.get(worker) ?? 0) + 1;
      this.overLimit.set(worker, count);
      if (count === SAMPLES_OVER_LIMIT) {
        this.log.warn(
          { worker: worker.slot, pid: worker.pid, uss, rss, limit: maxMemory },
          `worker over --max-memory (unique memory ${formatBytes(uss)} > ${formatBytes(maxMemory)})`,
        );
        this.arbiter.requestRecycle(worker, 'max-memory', { uss, limit: maxMemory });
      }
    } else {
      this.overLimit.delete(worker);
    }
    const lifetime = this.lifetimes.get(worker);
    if (lifetime !== undefined && Date.now() - worker.startedAt > lifetime) {
      this.lifetimes.delete(worker);
      this.arbiter.requestRecycle(worker, 'max-lifetime', { age: (Date.now() - worker.startedAt) / 1000 });
    }
  }
}
