import type { Logger } from 'pino';
import type { CorralConfig } from '../config/resolve.js';
import type { ForkRequestOptions, ForkServerLauncher } from '../worker/fork-launcher.js';
import type { SpawnLauncher } from '../worker/launcher.js';
import type { Worker, WorkerSpawnSpec } from '../worker/worker.js';
import { COLD_SETTINGS, STANDBY_SETTINGS, type StandbyBackend, type StandbyWorker } from './standby-launcher.js';

/**
 * Reload mode with `--start-method fork` (the default): one fork server serves every save, since it
 * preloads only uvicorn and what the app imports from outside its own code, never the app's code. Its
 * standbys are children it forked ahead of the save: each connects back to the master, imports what
 * its fork server lacks of the modules the workers reported, says so, and waits for "go" (the same
 * `standby` runtime path as a spawned standby). A save sends "go"; the pool then forks the next one.
 *
 * A new fork server starts, and the current one retires (it exits once its children are gone), when
 *   - the import path changed (a package installed, upgraded or removed): the save that finds it
 *     forks its workers from the new one, "cold" (the StandbyPool's check, as for spawned standbys);
 *   - a standby had to import modules its fork server had not preloaded (the app imports a new
 *     dependency, or one only imported while it runs): the new one preloads them. The standbys held
 *     by the old one stay usable meanwhile (they imported those modules themselves), so no save waits.
 * A module is asked of a fork server once: one that it cannot import never starts another.
 *
 * The fork servers are numbered on their own (1, 2, …: `forkServer` in the logs and `corral status`);
 * the arbiter's generations do not start or retire them.
 */
export class ForkStandbys implements StandbyBackend {
  readonly pool = {
    snapshotAtStart: false,
    environmentChange: { since: 'the fork server', then: 'starting a new fork server for the new workers' },
  };
  /** The number of the fork server new standbys and cold workers fork from (undefined before the first). */
  private current: number | undefined;
  private count = 0;
  /** The modules the current fork server was asked to preload. */
  private asked: ReadonlySet<string> = new Set();
  /** The latest module list of the pool: what a new fork server preloads. */
  private latest: readonly string[] = [];
  private readonly serverOf = new WeakMap<Worker, number>();

  constructor(
    readonly forking: ForkServerLauncher,
    private readonly spawner: SpawnLauncher,
    private readonly log: Logger,
  ) {}

  /** A worker of the current fork server; spawned with the same settings when it cannot fork. */
  private fork(spec: WorkerSpawnSpec, settings: Record<string, unknown>): Worker {
    const server = this.ensureServer();
    const options: ForkRequestOptions = { forkServer: server, settings, spawn: (fallback) => this.spawner.start(fallback, settings) };
    const worker = this.forking.launch(spec, options);
    this.serverOf.set(worker, server);
    return worker;
  }

  startStandby(preload: readonly string[]): StandbyWorker {
    this.latest = preload;
    const standby = this.fork({ slot: 0, generation: 0, role: 'respawn' }, STANDBY_SETTINGS) as StandbyWorker;
    standby.send({ type: 'preload', modules: preload });
    return standby;
  }

  startCold(spec: WorkerSpawnSpec): Worker {
    return this.fork(spec, COLD_SETTINGS);
  }

  /** The first generation starts the first fork server; later ones keep it. */
  prepareGeneration(_generation: number): undefined {
    this.ensureServer();
    return undefined;
  }

  /** The arbiter's generations own no fork server here. */
  retireGeneration(_generation: number): void {}

  reconfigure(config: CorralConfig): void {
    this.forking.reconfigure(config);
  }

  close(): Promise<void> {
    return this.forking.close();
  }

  environmentChanged(): void {
    this.startServer();
  }

  standbyReady(standby: StandbyWorker, imported: readonly string[]): void {
    if (this.serverOf.get(standby) !== this.current) return;
    const missing = imported.filter((name) => !this.asked.has(name));
    if (missing.length === 0) return;
    this.log.info(
      { forkServer: this.current, modules: missing.length, examples: missing.slice(0, 5) },
      `reload: the app imports ${missing.length} module${missing.length === 1 ? '' : 's'} the fork server has not preloaded; starting a fork server that preloads ${missing.length === 1 ? 'it' : 'them'}`,
    );
    this.startServer();
  }

  private ensureServer(): number {
    return this.current ?? this.startServer();
  }

  /** A new fork server that preloads the latest module list; the previous one exits once its children are gone. */
  private startServer(): number {
    const previous = this.current;
    const server = ++this.count;
    this.current = server;
    this.asked = new Set(this.latest);
    this.forking.prepareGeneration(server, this.latest);
    if (previous !== undefined) this.forking.retireGeneration(previous);
    return server;
  }
}
