import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Arbiter } from '../supervisor/arbiter.js';
import { UsageError } from '../exit-codes.js';
import type { CorralConfig } from '../config/resolve.js';
import type { ForkServerLauncher } from '../worker/fork-launcher.js';
import type { SpawnLauncher } from '../worker/launcher.js';
import type { Worker } from '../worker/worker.js';
import { ReloadCoalescer } from './coalescer.js';
import { WatchRules } from './matcher.js';
import { ForkStandbys } from './fork-standby.js';
import { SpawnStandbys, StandbyLauncher } from './standby-launcher.js';
import { watchSources, type ChangeKind, type SourceWatcher } from './watcher.js';

export { applyReloadMode, RELOAD_DRAIN_SECONDS } from './mode.js';
export { isCorralModule } from './standby-launcher.js';

function isDirectory(target: string): boolean {
  try {
    return fs.statSync(target).isDirectory();
  } catch {
    return false;
  }
}

/** The watch rules of a configuration; a reload directory that does not exist is a usage error. */
export function watchRulesOf(config: CorralConfig, cwd = process.cwd()): WatchRules {
  const dirs = (config.reloadDirs.length > 0 ? config.reloadDirs : [config.appDir]).map((dir) => path.resolve(cwd, dir));
  for (const [index, dir] of dirs.entries()) {
    if (!isDirectory(dir)) {
      const given = config.reloadDirs[index] ?? config.appDir;
      throw new UsageError(`--reload-dir ${JSON.stringify(given)}: not a directory; expected an existing directory to watch`);
    }
  }
  return new WatchRules({
    dirs,
    includes: config.reloadIncludes,
    excludes: config.reloadExcludes,
    extraFiles: config.reloadExtraFiles.map((file) => path.resolve(cwd, file)),
    isDirectory: (target) => isDirectory(path.resolve(cwd, target)),
  });
}

interface ReloadRun {
  startedAt: number;
  workers: Worker[];
  warm: number;
}

/**
 * `--reload`: watches the app's code, and on a change swaps in workers running the new code once
 * they are ready, from warm standbys when it can. A reload whose new workers fail to boot leaves the
 * old ones serving and says where the error is; the next change tries again.
 */
export class DevReloader {
  readonly rules: WatchRules;
  /**
   * The arbiter's launcher in reload mode: warm standbys in front of the workers, held children of a
   * fork server kept across saves (`forking`, --start-method fork) or spawned interpreters.
   */
  readonly launcher: StandbyLauncher;
  private readonly coalescer: ReloadCoalescer;
  private watcher: SourceWatcher | undefined;
  private arbiter: Arbiter | undefined;
  private current: ReloadRun | undefined;
  /** When the first change not yet part of a reload arrived. */
  private changedSince: number | undefined;

  constructor(
    private readonly config: CorralConfig,
    spawner: SpawnLauncher,
    forking: ForkServerLauncher | undefined,
    private readonly log: Logger,
  ) {
    this.rules = watchRulesOf(config);
    const backend = forking ? new ForkStandbys(forking, spawner, log) : new SpawnStandbys(spawner);
    this.launcher = new StandbyLauncher(backend, { size: config.workers, bootTimeoutMs: config.bootTimeout * 1000, rules: this.rules, log });
    this.coalescer = new ReloadCoalescer(config.reloadDelay * 1000, (changes) => this.reload(changes));
  }

  /** A worker the arbiter launched: part of the reload running, if any. */
  private onLaunched(worker: Worker): void {
    if (!this.current) return;
    this.current.workers.push(worker);
    if (this.launcher.wasWarm(worker)) this.current.warm += 1;
  }

  /** Starts watching; standbys start once the workers are ready and have reported their modules. */
  async start(arbiter: Arbiter): Promise<void> {
    this.arbiter = arbiter;
    arbiter.on('worker-spawn', (worker) => this.onLaunched(worker));
    // Standbys boot when the workers do not: after a start or a respawn, and after a restart once its old
    // workers have exited.
    arbiter.on('all-ready', () => this.launcher.fillStandbys());
    arbiter.on('restart-end', () => this.launcher.fillStandbys());
    arbiter.on('stopping', () => void this.close());
    this.watcher = watchSources(
      this.rules,
      (file, kind) => this.onChange(file, kind),
      (error) => this.log.warn({ err: error }, 'reload: file watching failed'),
    );
    await this.watcher.ready;
    this.log.info(
      {
        dirs: this.rules.dirs,
        includes: this.rules.includes,
        excludes: this.rules.excludes,
        extraFiles: [...this.rules.extraFiles],
        delay: this.config.reloadDelay,
      },
      `reload: watching ${this.rules.dirs.join(', ')} for changes`,
    );
  }

  async close(): Promise<void> {
    this.coalescer.close();
    this.launcher.closeStandbys();
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.close();
  }

  private onChange(file: string, kind: ChangeKind): void {
    this.changedSince ??= Date.now();
    this.log.debug({ file, kind }, 'reload: change detected');
    this.coalescer.notify(file);
  }

  private describeChanges(changes: readonly string[]): string {
    const shown = changes.slice(0, 3).map((file) => this.relative(file));
    return changes.length > 3 ? `${shown.join(', ')} and ${changes.length - 3} more` : shown.join(', ');
  }

  private relative(file: string): string {
    const root = this.rules.dirs.find((dir) => !path.relative(dir, file).startsWith('..'));
    return root ? path.relative(root, file) : file;
  }

  private async reload(changes: string[]): Promise<void> {
    const arbiter = this.arbiter;
    if (!arbiter || arbiter.stopping) return;
    const startedAt = this.changedSince ?? Date.now();
    this.changedSince = undefined;
    const run: ReloadRun = { startedAt, workers: [], warm: 0 };
    this.current = run;
    this.log.info({ changes }, `reload: ${this.describeChanges(changes)} changed; starting new workers`);
    const outcome = new Promise<boolean>((resolve) => {
      // The new code serves once the new workers do, before the old ones have drained (a stream may
      // hold one for the drain bound). A restart that ends without serving has failed; an ok end is
      // an earlier restart's drain finishing.
      const onServing = () => finish(true);
      const onEnd = (_reason: string, ok: boolean) => {
        if (!ok) finish(false);
      };
      const onStop = () => finish(false);
      const finish = (ok: boolean) => {
        arbiter.off('restart-serving', onServing);
        arbiter.off('restart-end', onEnd);
        arbiter.off('stopping', onStop);
        resolve(ok);
      };
      arbiter.on('restart-serving', onServing);
      arbiter.on('restart-end', onEnd);
      arbiter.on('stopping', onStop);
    });
    arbiter.requestRollingRestart('reload');
    const ok = await outcome;
    this.current = undefined;
    if (arbiter.stopping) return;
    const seconds = (Date.now() - run.startedAt) / 1000;
    if (ok) {
      this.log.info(
        { seconds, workers: run.workers.length, warm: run.warm },
        `reload: new code serving ${seconds.toFixed(3)} s after the change (${run.warm} of ${run.workers.length} from warm standbys)`,
      );
      return;
    }
    this.reportFailure(run);
  }

  private reportFailure(run: ReloadRun): void {
    const failed = run.workers.find((worker) => worker.bootError) ?? run.workers[0];
    const error = failed?.bootError;
    const where = error?.file ? `${this.relative(error.file)}${error.line ? `:${error.line}` : ''}: ` : '';
    this.log.error(
      { file: error?.file, line: error?.line, error: error?.message, traceback: error?.traceback, worker: failed?.slot, pid: failed?.pid },
      `reload failed: ${where}${error?.exception ?? error?.message ?? 'the new workers did not start'}; the previous code keeps serving, save again to retry`,
    );
  }
}
