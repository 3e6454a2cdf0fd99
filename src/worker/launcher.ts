import type { Logger } from 'pino';
import type { CorralConfig } from '../config/resolve.js';
import { markDeadOnExit } from '../telemetry/prometheus-multiproc.js';
import { ProcessWorker, type ProcessWorkerOptions } from './process-worker.js';
import { WORKER_ENTRY } from './python.js';
import { workerEnvironment, workerSettings } from './worker-config.js';
import type { Worker, WorkerSpawnSpec } from './worker.js';

/**
 * The seam between the arbiter, which decides when a worker of which slot and generation is wanted,
 * and how a worker process comes to be. The arbiter calls, in this order for each generation:
 *
 *   prepareGeneration(g)   once, before the first worker of g (awaited when it returns a promise)
 *   launch({slot, generation: g, role})   any number of times
 *   retireGeneration(g)    once g is older than the current generation and its last worker has exited:
 *                          no worker of g is launched after it
 *
 * and the master calls reconfigure(config) with a HUP's re-read (before the rolling restart that
 * prepares the next generation) and close() once the arbiter has stopped.
 *
 * Implementations: SpawnLauncher (below), a fresh interpreter per worker, for which a generation is
 * nothing to prepare; reload mode's StandbyLauncher (src/reload/standby-launcher.ts), warm standbys in
 * front of it. A fork-server launcher would start one fork server per generation in prepareGeneration,
 * fork each worker from it in launch, and stop it in retireGeneration.
 */
export interface WorkerLauncher {
  /**
   * Gets a generation ready to launch workers. Undefined when it is ready at once, so the arbiter
   * launches in the same turn of the loop. Never rejects: a generation that could not be prepared
   * launches workers that fail to boot, which the arbiter handles as any failed boot.
   */
  prepareGeneration(generation: number): Promise<void> | undefined;
  /** A new worker, booting. May throw: the arbiter takes that as a worker that failed to start. */
  launch(spec: WorkerSpawnSpec): Worker;
  /** No worker of this generation is alive, and none will be launched. */
  retireGeneration(generation: number): void;
  /** The live configuration (a HUP's re-read): it reaches every worker launched from now on. */
  reconfigure(config: CorralConfig): void;
  /** The master is done: releases whatever the launcher holds (standbys, fork servers). */
  close(): Promise<void>;
}

export interface SpawnLauncherOptions {
  /** The configuration at start; reconfigure() replaces it. */
  config: CorralConfig;
  /** The listen sockets every worker inherits. */
  listenerFds: readonly number[];
  /** -u/-g: the workers' user and group. */
  identity?: { uid: number; gid: number } | undefined;
  onOutput: ProcessWorkerOptions['onOutput'];
  log: Logger;
  /** The environment each worker's starts from (the master's, read at each launch). */
  env?: () => NodeJS.ProcessEnv;
}

/** The worker's drain is bounded by itself; the master's SIGKILL comes this much later, as a backstop. */
const KILL_BACKSTOP_MS = 500;

/** Spawn per worker: each worker is `python -u corral_worker.py`, started from the live configuration. */
export class SpawnLauncher implements WorkerLauncher {
  private config: CorralConfig;
  private settings: Record<string, unknown>;

  constructor(private readonly options: SpawnLauncherOptions) {
    this.config = options.config;
    this.settings = workerSettings(options.config);
  }

  reconfigure(config: CorralConfig): void {
    this.config = config;
    this.settings = workerSettings(config);
  }

  /** A fresh interpreter per worker: nothing to prepare. */
  prepareGeneration(_generation: number): undefined {
    return undefined;
  }

  launch(spec: WorkerSpawnSpec): Worker {
    return this.start(spec);
  }

  /** A worker process with these settings over the configuration's (reload mode: `report_modules`, `standby`). */
  start(spec: WorkerSpawnSpec, extraSettings: Record<string, unknown> = {}): ProcessWorker {
    const config = this.config;
    // -e and --pythonpath may change with a HUP's re-read.
    const env = workerEnvironment(this.options.env?.() ?? process.env, config);
    const identity = this.options.identity;
    const worker = new ProcessWorker(spec, {
      python: config.python,
      entry: WORKER_ENTRY,
      listenerFds: this.options.listenerFds,
      env,
      settings: { ...this.settings, ...extraSettings },
      gracefulTimeoutMs: config.gracefulTimeout * 1000 + KILL_BACKSTOP_MS,
      onOutput: this.options.onOutput,
      ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
    });
    return markDeadOnExit(worker, env, this.options.log);
  }

  retireGeneration(_generation: number): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}
