import path from 'node:path';
import type { Logger } from 'pino';
import type { CorralConfig } from '../config/resolve.js';
import type { SpawnLauncher, WorkerLauncher } from '../worker/launcher.js';
import type { ProcessWorker } from '../worker/process-worker.js';
import type { Worker, WorkerSpawnSpec } from '../worker/worker.js';
import type { WatchRules } from './matcher.js';
import { StandbyPool } from './standby.js';

/**
 * corral's own modules in a worker: the entry script and the corral_runtime package. Every worker
 * imports them before the app, so a standby has them already; they are not the app's dependencies.
 */
export function isCorralModule(name: string): boolean {
  return name === 'corral_worker' || name === 'corral_runtime' || name.startsWith('corral_runtime.');
}

export interface StandbyLauncherOptions {
  /** One standby per worker, so a reload of `-w N` is warm for all N. */
  size: number;
  bootTimeoutMs: number;
  /** The watched code: its modules are never preloaded (they are what changed). */
  rules: WatchRules;
  log: Logger;
}

/**
 * Reload mode's launcher: spawn per worker, with warm standbys in front. A launch takes a standby
 * when one is ready (a waiting one, else one still importing) and hands it the slot; else it starts
 * the worker cold. Every worker reports its modules once ready; the standbys preload those from
 * outside the watched code.
 */
export class StandbyLauncher implements WorkerLauncher {
  private readonly pool: StandbyPool<ProcessWorker>;
  private readonly warm = new WeakSet<Worker>();

  constructor(
    private readonly spawner: SpawnLauncher,
    private readonly options: StandbyLauncherOptions,
  ) {
    this.pool = new StandbyPool({
      size: options.size,
      spawnStandby: (preload) => {
        const standby = spawner.start({ slot: 0, generation: 0, role: 'respawn' }, { standby: true, report_modules: true });
        standby.send({ type: 'preload', modules: preload });
        return standby;
      },
      bootTimeoutMs: options.bootTimeoutMs,
      log: options.log,
      isWatchedDirectory: (directory) => options.rules.isInWatchedTree(path.join(directory, '__init__.py')),
    });
  }

  prepareGeneration(generation: number): Promise<void> | undefined {
    return this.spawner.prepareGeneration(generation);
  }

  launch(spec: WorkerSpawnSpec): Worker {
    const standby = this.pool.take(spec);
    const worker = standby ?? this.spawner.start(spec, { report_modules: true });
    if (standby) this.warm.add(worker);
    worker.once('modules', (modules) => this.learnModules(modules));
    return worker;
  }

  /** Whether this worker was a warm standby. */
  wasWarm(worker: Worker): boolean {
    return this.warm.has(worker);
  }

  /** Starts standbys until there is one per worker: call it when the workers are not booting. */
  fillStandbys(): void {
    this.pool.fill();
  }

  retireGeneration(generation: number): void {
    this.spawner.retireGeneration(generation);
  }

  reconfigure(config: CorralConfig): void {
    this.spawner.reconfigure(config);
  }

  /** Stops the standbys and starts no more: at the stop, before the workers have drained. */
  closeStandbys(): void {
    this.pool.close();
  }

  async close(): Promise<void> {
    this.closeStandbys();
    await this.spawner.close();
  }

  /** Every module the worker imported from outside the watched code: what the next standby preloads. */
  private learnModules(modules: Record<string, string>): void {
    const preload = Object.entries(modules)
      .filter(([name, file]) => !isCorralModule(name) && !this.options.rules.isInWatchedTree(file))
      .map(([name]) => name);
    this.pool.setPreload(preload);
  }
}
