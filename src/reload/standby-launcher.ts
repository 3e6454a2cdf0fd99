import path from 'node:path';
import type { Logger } from 'pino';
import type { CorralConfig } from '../config/resolve.js';
import type { SpawnLauncher, WorkerLauncher } from '../worker/launcher.js';
import type { MasterMessage } from '../worker/protocol.js';
import type { Worker, WorkerSpawnSpec } from '../worker/worker.js';
import type { WatchRules } from './matcher.js';
import { StandbyPool, type StandbyProcess } from './standby.js';

/**
 * corral's own modules in a worker: the entry script and the corral_runtime package. Every worker
 * imports them before the app, so a standby has them already; they are not the app's dependencies.
 */
export function isCorralModule(name: string): boolean {
  return name === 'corral_worker' || name === 'corral_runtime' || name.startsWith('corral_runtime.');
}

/** A standby as the launcher hands it out: a worker that waits for "go" (ProcessWorker, ForkedWorker). */
export type StandbyWorker = Worker & StandbyProcess & { send(message: MasterMessage): void };

/** The settings of a standby, and of a cold worker in reload mode (every worker reports its modules). */
export const STANDBY_SETTINGS = { standby: true, report_modules: true } as const;
export const COLD_SETTINGS = { report_modules: true } as const;

/**
 * Where reload mode's processes come from: spawned (SpawnStandbys, --start-method spawn) or forked
 * from a fork server kept across saves (ForkStandbys in fork-standby.ts, the default).
 */
export interface StandbyBackend {
  /** A standby that imports `preload` (what it lacks of it) and waits for "go". */
  startStandby(preload: readonly string[]): StandbyWorker;
  /** A worker of `spec`, started without a standby. */
  startCold(spec: WorkerSpawnSpec): Worker;
  prepareGeneration(generation: number): Promise<void> | undefined;
  retireGeneration(generation: number): void;
  reconfigure(config: CorralConfig): void;
  close(): Promise<void>;
  /** The pool's options that depend on where standbys come from. */
  readonly pool?: {
    snapshotAtStart: boolean;
    environmentChange: { since: string; then: string };
  };
  /** The import path changed: what comes next must not share anything imported before. */
  environmentChanged?(): void;
  /** A standby waits for "go"; `imported` is what it imported itself. */
  standbyReady?(standby: StandbyWorker, imported: readonly string[]): void;
}

/** --start-method spawn: each standby and each cold worker is a fresh interpreter. */
export class SpawnStandbys implements StandbyBackend {
  constructor(private readonly spawner: SpawnLauncher) {}

  startStandby(preload: readonly string[]): StandbyWorker {
    const standby = this.spawner.start({ slot: 0, generation: 0, role: 'respawn' }, STANDBY_SETTINGS);
    standby.send({ type: 'preload', modules: preload });
    return standby;
  }

  startCold(spec: WorkerSpawnSpec): Worker {
    return this.spawner.start(spec, COLD_SETTINGS);
  }

  prepareGeneration(generation: number): Promise<void> | undefined {
    return this.spawner.prepareGeneration(generation);
  }

  retireGeneration(generation: number): void {
    this.spawner.retireGeneration(generation);
  }

  reconfigure(config: CorralConfig): void {
    this.spawner.reconfigure(config);
  }

  close(): Promise<void> {
    return this.spawner.close();
  }
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
 * Reload mode's launcher: warm standbys in front of the backend's workers. A launch takes a standby
 * when one is ready (a waiting one, else one still importing) and hands it the slot; else it starts
 * the worker cold. Every worker reports its modules once ready; the standbys preload those from
 * outside the watched code (a forked standby has most of them from its fork server already).
 */
export class StandbyLauncher implements WorkerLauncher {
  private readonly pool: StandbyPool<StandbyWorker>;
  private readonly warm = new WeakSet<Worker>();

  constructor(
    private readonly backend: StandbyBackend,
    private readonly options: StandbyLauncherOptions,
  ) {
    this.pool = new StandbyPool<StandbyWorker>({
      size: options.size,
      spawnStandby: (preload) => backend.startStandby(preload),
      bootTimeoutMs: options.bootTimeoutMs,
      log: options.log,
      isWatchedDirectory: (directory) => options.rules.isInWatchedTree(path.join(directory, '__init__.py')),
      ...(backend.pool ?? {}),
      onEnvironmentChanged: () => backend.environmentChanged?.(),
      onReady: (standby, imported) => backend.standbyReady?.(standby, imported),
    });
  }

  prepareGeneration(generation: number): Promise<void> | undefined {
    return this.backend.prepareGeneration(generation);
  }

  launch(spec: WorkerSpawnSpec): Worker {
    const standby = this.pool.take(spec);
    const worker = standby ?? this.backend.startCold(spec);
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
    this.backend.retireGeneration(generation);
  }

  reconfigure(config: CorralConfig): void {
    this.backend.reconfigure(config);
  }

  /** Stops the standbys and starts no more: at the stop, before the workers have drained. */
  closeStandbys(): void {
    this.pool.close();
  }

  async close(): Promise<void> {
    this.closeStandbys();
    await this.backend.close();
  }

  /** Every module the worker imported from outside the watched code: what the next standby preloads. */
  private learnModules(modules: Record<string, string>): void {
    const preload = Object.entries(modules)
      .filter(([name, file]) => !isCorralModule(name) && !this.options.rules.isInWatchedTree(file))
      .map(([name]) => name);
    this.pool.setPreload(preload);
  }
}
