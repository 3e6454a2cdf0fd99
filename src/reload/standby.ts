import fs from 'node:fs';
import type { Logger } from 'pino';
import type { EventEmitter } from 'node:events';
import type { StopMode, StopReason, WorkerEvents, WorkerSpawnSpec, WorkerState } from '../worker/worker.js';

/** A standby as the pool needs it: a worker started with the `standby` setting (spawned, or forked and held). */
export interface StandbyProcess extends EventEmitter<WorkerEvents> {
  readonly pid: number | undefined;
  readonly state: WorkerState;
  stop(reason: StopReason, mode: StopMode): void;
  activate(spec: WorkerSpawnSpec): void;
}

export interface StandbyPoolOptions<P extends StandbyProcess> {
  /** How many standbys to keep: one per worker, so a reload of `-w N` is warm for all N. */
  size: number;
  /** Starts an interpreter that preloads these modules and waits. */
  spawnStandby(preload: readonly string[]): P;
  /** A standby that has not reported within this long is stopped. */
  bootTimeoutMs: number;
  log: Logger;
  /** Import-path directories holding the watched code itself: edits there reload, they do not make a standby stale. */
  isWatchedDirectory(directory: string): boolean;
  /** The current modification time of a directory (nanoseconds as text), undefined when it is gone. */
  mtimeOf?(directory: string): string | undefined;
  /**
   * Whether the master's own snapshot of the import path at a standby's start stands for it (a spawned
   * standby imports everything after it). A forked one reports its fork server's, taken before that
   * imported anything: false.
   */
  snapshotAtStart?: boolean;
  /** What the environment-change log line names as having started before the change, and what follows. */
  environmentChange?: { since: string; then: string };
  /** The import path changed: every standby is gone, the launch that found it starts cold. */
  onEnvironmentChanged?(): void;
  /** A standby waits for "go"; `imported` are the modules it imported itself. */
  onReady?(process: P, imported: readonly string[]): void;
}

interface Standby<P extends StandbyProcess> {
  process: P;
  preload: ReadonlySet<string>;
  /** Whether it has imported everything and waits for "go". */
  waiting: boolean;
  /**
   * The import path's directories (outside the watched code) → their mtimes before the standby
   * imported anything: the master's own snapshot at spawn once it knows the directories, else the
   * standby's report. Undefined while neither exists.
   */
  paths: Record<string, string> | undefined;
  timer: NodeJS.Timeout;
}

function directoryMtime(directory: string): string | undefined {
  try {
    return fs.statSync(directory, { bigint: true }).mtimeNs.toString();
  } catch {
    return undefined;
  }
}

/**
 * Reload mode's warm standbys: interpreters that have already imported uvicorn and the app's
 * third-party modules and wait to be told to import the app. A standby is only handed out while the
 * import path looks as it did when it started: a package installed or removed since changes a
 * directory's mtime, and then every standby is discarded and the reload starts cold.
 */
export class StandbyPool<P extends StandbyProcess> {
  private readonly standbys = new Set<Standby<P>>();
  private preload: readonly string[] | undefined;
  /** The import path's directories outside the watched code, as the first standby reported them. */
  private importDirs: readonly string[] | undefined;
  private closed = false;
  private readonly mtimeOf: (directory: string) => string | undefined;

  constructor(private readonly options: StandbyPoolOptions<P>) {
    this.mtimeOf = options.mtimeOf ?? directoryMtime;
  }

  /**
   * The modules a standby preloads, learnt from a running worker; the first list starts the pool.
   * Lists add up (a worker that has not imported everything yet must not shrink it); when the app
   * starts importing a module the standbys lack (a new dependency), they are replaced.
   */
  setPreload(modules: readonly string[]): void {
    const first = this.preload === undefined;
    const known = new Set(this.preload ?? []);
    this.preload = [...(this.preload ?? []), ...modules.filter((name) => !known.has(name))];
    const outdated = [...this.standbys].filter((standby) => modules.some((name) => !standby.preload.has(name)));
    for (const standby of outdated) {
      this.release(standby);
      standby.process.stop('reload', 'quick');
    }
    if (first || outdated.length > 0) this.fill();
  }

  /** How many standbys wait for "go" right now. */
  get waiting(): number {
    return [...this.standbys].filter((standby) => standby.waiting).length;
  }

  /**
   * A standby, activated for this slot: a waiting one, else one still importing (it is ahead of a
   * cold start all the same, and reads its "go" when done). Undefined when there is none, or when
   * the environment changed since it started.
   */
  take(spec: WorkerSpawnSpec): P | undefined {
    const usable = [...this.standbys].filter((candidate) => candidate.paths !== undefined && candidate.process.state === 'booting');
    const standby = usable.find((candidate) => candidate.waiting) ?? usable[0];
    if (!standby) return undefined;
    const changed = this.changedDirectory(standby.paths!);
    if (changed !== undefined) {
      const { since, then } = this.options.environmentChange ?? { since: 'the standby', then: 'starting cold and preparing new standbys' };
      this.options.log.info({ directory: changed }, `reload: the Python environment changed since ${since} started; ${then}`);
      this.discardAll();
      this.options.onEnvironmentChanged?.();
      return undefined;
    }
    this.release(standby);
    standby.process.activate(spec);
    return standby.process;
  }

  /** Starts standbys until the pool is full; call it when the machine is not busy booting workers. */
  fill(): void {
    if (this.closed || this.preload === undefined) return;
    while (this.standbys.size < this.options.size) this.start(this.preload);
  }

  close(): void {
    this.closed = true;
    this.discardAll();
  }

  private start(preload: readonly string[]): void {
    const process = this.options.spawnStandby(preload);
    const standby: Standby<P> = {
      process,
      preload: new Set(preload),
      waiting: false,
      paths: this.importDirs && this.options.snapshotAtStart !== false ? Object.fromEntries(this.importDirs.map((directory) => [directory, this.mtimeOf(directory) ?? ''])) : undefined,
      timer: setTimeout(() => {
        this.options.log.warn({ pid: process.pid }, 'standby did not get ready within the boot timeout; stopping it');
        this.release(standby);
        process.stop('boot-timeout', 'kill');
      }, this.options.bootTimeoutMs).unref(),
    };
    this.standbys.add(standby);
    process.once('standby', (paths, imported) => {
      clearTimeout(standby.timer);
      standby.waiting = true;
      const reported = Object.fromEntries(Object.entries(paths).filter(([directory]) => !this.options.isWatchedDirectory(directory)));
      this.importDirs ??= Object.keys(reported);
      standby.paths ??= reported;
      this.options.log.info({ pid: process.pid, modules: preload.length }, 'reload: warm standby ready');
      this.options.onReady?.(process, imported);
    });
    process.once('exit', (exit) => {
      if (!this.standbys.has(standby)) return;
      this.release(standby);
      this.options.log.warn({ pid: process.pid, code: exit.code, signal: exit.signal }, 'standby exited unexpectedly');
    });
  }

  private release(standby: Standby<P>): void {
    clearTimeout(standby.timer);
    this.standbys.delete(standby);
  }

  private discardAll(): void {
    for (const standby of [...this.standbys]) {
      this.release(standby);
      standby.process.stop('reload', 'quick');
    }
  }

  private changedDirectory(paths: Record<string, string>): string | undefined {
    return Object.entries(paths).find(([directory, mtime]) => this.mtimeOf(directory) !== mtime)?.[0];
  }
}
